#include "te_add.h"

/* One output element from the values of one element of each input, written at output[i]. */
typedef void (*te_add_elem_fn)(const te_add_params_t *p, const void *input1, int32_t i1,
                               const void *input2, int32_t i2, void *output, int32_t i);

static int te_add_input_ok(const te_add_input_t *in, const te_dims_t *out, int32_t min_offset,
                           int32_t max_offset)
{
    return (in->dims.n == out->n || in->dims.n == 1) && (in->dims.h == out->h || in->dims.h == 1) &&
           (in->dims.w == out->w || in->dims.w == 1) && (in->dims.c == out->c || in->dims.c == 1) &&
           in->offset >= min_offset && in->offset <= max_offset && in->multiplier >= 0 &&
           in->shift <= 0 && in->shift >= -31;
}

/* The checks both types share; the offset range and `max_left_shift` keep
 * (x + offset) << left_shift inside int32 (255 << 20 for int8, 32768 << 15 for int16), and with
 * multipliers below one the sum of two scaled inputs too. */
static int te_add_params_ok(const te_add_params_t *p, int32_t min_offset, int32_t max_offset,
                            int32_t max_left_shift, int32_t qmin, int32_t qmax)
{
    return p->output.n >= 1 && p->output.h >= 1 && p->output.w >= 1 && p->output.c >= 1 &&
           te_add_input_ok(&p->input1, &p->output, min_offset, max_offset) &&
           te_add_input_ok(&p->input2, &p->output, min_offset, max_offset) && p->left_shift >= 0 &&
           p->left_shift <= max_left_shift && p->output_multiplier >= 0 && p->output_shift <= 0 &&
           p->output_shift >= -31 && p->act_min >= qmin && p->act_max <= qmax &&
           p->act_min <= p->act_max;
}

static int te_same_dims(const te_dims_t *a, const te_dims_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/** (x + offset) << left_shift, rescaled into the common domain of the two inputs. */
static int32_t te_add_scale_input(const te_add_input_t *in, int32_t left_shift, int32_t x)
{
    const int32_t shifted = te_shift_left(x + in->offset, left_shift);
    return te_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, in->multiplier,
                                                                    in->shift);
}

/* The same arithmetic for int8 and int16 (AddElementwise); only the headroom and limits differ. */
static int32_t te_add_one(const te_add_params_t *p, int32_t a, int32_t b)
{
    const int32_t sum = te_add_scale_input(&p->input1, p->left_shift, a) +
                        te_add_scale_input(&p->input2, p->left_shift, b);
    const int32_t y = te_multiply_by_quantized_multiplier_smaller_than_one_exp(
                          sum, p->output_multiplier, p->output_shift) +
                      p->output_offset;
    return te_clamp(y, p->act_min, p->act_max);
}

static void te_add_elem_s8(const te_add_params_t *p, const void *input1, int32_t i1,
                           const void *input2, int32_t i2, void *output, int32_t i)
{
    ((int8_t *)output)[i] =
        (int8_t)te_add_one(p, ((const int8_t *)input1)[i1], ((const int8_t *)input2)[i2]);
}

static void te_add_elem_s16(const te_add_params_t *p, const void *input1, int32_t i1,
                            const void *input2, int32_t i2, void *output, int32_t i)
{
    ((int16_t *)output)[i] =
        (int16_t)te_add_one(p, ((const int16_t *)input1)[i1], ((const int16_t *)input2)[i2]);
}

/** Element strides of an input over the output's n, h, w, c; 0 along a broadcast dimension. */
static void te_add_strides(const te_dims_t *in, const te_dims_t *out, int32_t stride[4])
{
    stride[3] = (in->c == 1 && out->c != 1) ? 0 : 1;
    stride[2] = (in->w == 1 && out->w != 1) ? 0 : in->c;
    stride[1] = (in->h == 1 && out->h != 1) ? 0 : in->w * in->c;
    stride[0] = (in->n == 1 && out->n != 1) ? 0 : in->h * in->w * in->c;
}

/* In output order, read input1[i1] and input2[i2], then write output[i]. An input of the
 * output's shape has i1 == i, so an aliased output is safe. */
static void te_add_run(const te_add_params_t *p, const void *input1, const void *input2,
                       void *output, te_add_elem_fn fn)
{
    int32_t s1[4], s2[4];
    int32_t n, h, w, c, i;
    if (te_same_dims(&p->input1.dims, &p->output) && te_same_dims(&p->input2.dims, &p->output)) {
        const int32_t size = p->output.n * p->output.h * p->output.w * p->output.c;
        for (i = 0; i < size; ++i) {
            fn(p, input1, i, input2, i, output, i);
        }
        return;
    }
    te_add_strides(&p->input1.dims, &p->output, s1);
    te_add_strides(&p->input2.dims, &p->output, s2);
    i = 0;
    for (n = 0; n < p->output.n; ++n) {
        for (h = 0; h < p->output.h; ++h) {
            for (w = 0; w < p->output.w; ++w) {
                const int32_t o1 = n * s1[0] + h * s1[1] + w * s1[2];
                const int32_t o2 = n * s2[0] + h * s2[1] + w * s2[2];
                for (c = 0; c < p->output.c; ++c) {
                    fn(p, input1, o1 + c * s1[3], input2, o2 + c * s2[3], output, i++);
                }
            }
        }
    }
}

te_status_t te_add_s8(const te_add_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL ||
        !te_add_params_ok(p, -127, 128, 20, -128, 127)) {
        return TE_ERR_ARG;
    }
    te_add_run(p, input1, input2, output, te_add_elem_s8);
    return TE_OK;
}

te_status_t te_add_s16(const te_add_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL ||
        !te_add_params_ok(p, 0, 0, 15, -32768, 32767) || p->output_offset != 0) {
        return TE_ERR_ARG;
    }
    te_add_run(p, input1, input2, output, te_add_elem_s16);
    return TE_OK;
}
