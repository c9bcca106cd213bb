#include "te_elementwise.h"

/* One output element: reads input1[i1] and input2[i2] of one storage type, computes, writes
 * output[i]; `p` is the op's parameter struct. */
typedef void (*te_ew_elem_fn)(const void *p, const void *input1, int32_t i1, const void *input2,
                              int32_t i2, void *output, int32_t i);

/* An element function for storage type `type` around `one`, the op's arithmetic on int32 values
 * (the same for every type). `one` is called directly, so it inlines: one indirect call per
 * element, from the shared loop. */
#define TE_EW_ELEM(name, type, one)                                                          \
    static void name(const void *p, const void *input1, int32_t i1, const void *input2,    \
                     int32_t i2, void *output, int32_t i)                                   \
    {                                                                                       \
        const type a = ((const type *)input1)[i1];                                          \
        const type b = ((const type *)input2)[i2];                                          \
        ((type *)output)[i] = (type)one(p, a, b);                                           \
    }

static int te_ew_dim_ok(int32_t in, int32_t out)
{
    return in == out || in == 1;
}

static int te_broadcast_ok(const te_broadcast_dims_t *d)
{
    const te_dims_t *o = &d->output;
    return o->n >= 1 && o->h >= 1 && o->w >= 1 && o->c >= 1 && te_ew_dim_ok(d->input1.n, o->n) &&
           te_ew_dim_ok(d->input1.h, o->h) && te_ew_dim_ok(d->input1.w, o->w) &&
           te_ew_dim_ok(d->input1.c, o->c) && te_ew_dim_ok(d->input2.n, o->n) &&
           te_ew_dim_ok(d->input2.h, o->h) && te_ew_dim_ok(d->input2.w, o->w) &&
           te_ew_dim_ok(d->input2.c, o->c);
}

static int te_same_dims(const te_dims_t *a, const te_dims_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/** Element strides of an input over the output's n, h, w, c; 0 along a broadcast dimension. */
static void te_ew_strides(const te_dims_t *in, const te_dims_t *out, int32_t stride[4])
{
    stride[3] = (in->c == 1 && out->c != 1) ? 0 : 1;
    stride[2] = (in->w == 1 && out->w != 1) ? 0 : in->c;
    stride[1] = (in->h == 1 && out->h != 1) ? 0 : in->w * in->c;
    stride[0] = (in->n == 1 && out->n != 1) ? 0 : in->h * in->w * in->c;
}

/* The loop every op and type shares: in output order, read input1[i1] and input2[i2], then
 * write output[i]. An input of the output's shape has i1 == i, so an aliased output is safe. */
static void te_ew_run(const te_broadcast_dims_t *d, const void *input1, const void *input2,
                      void *output, te_ew_elem_fn elem, const void *p)
{
    int32_t s1[4], s2[4];
    int32_t n, h, w, c, i;
    if (te_same_dims(&d->input1, &d->output) && te_same_dims(&d->input2, &d->output)) {
        const int32_t size = d->output.n * d->output.h * d->output.w * d->output.c;
        for (i = 0; i < size; ++i) {
            elem(p, input1, i, input2, i, output, i);
        }
        return;
    }
    te_ew_strides(&d->input1, &d->output, s1);
    te_ew_strides(&d->input2, &d->output, s2);
    i = 0;
    for (n = 0; n < d->output.n; ++n) {
        for (h = 0; h < d->output.h; ++h) {
            for (w = 0; w < d->output.w; ++w) {
                const int32_t o1 = n * s1[0] + h * s1[1] + w * s1[2];
                const int32_t o2 = n * s2[0] + h * s2[1] + w * s2[2];
                for (c = 0; c < d->output.c; ++c) {
                    elem(p, input1, o1 + c * s1[3], input2, o2 + c * s2[3], output, i++);
                }
            }
        }
    }
}

static int te_ew_input_ok(const te_ew_input_t *in)
{
    return in->offset >= -127 && in->offset <= 128 && in->multiplier >= 0 && in->shift <= 0 &&
           in->shift >= -31;
}

static int te_ew_limits_ok(int32_t output_offset, int32_t act_min, int32_t act_max)
{
    return output_offset >= -128 && output_offset <= 127 && act_min >= -128 && act_max <= 127 &&
           act_min <= act_max;
}

/** (x + offset) << left_shift, rescaled into the common domain of the two inputs. */
static int32_t te_ew_scale_input(const te_ew_input_t *in, int32_t left_shift, int32_t x)
{
    const int32_t shifted = te_shift_left(x + in->offset, left_shift);
    return te_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, in->multiplier,
                                                                    in->shift);
}

/* -- SUB ------------------------------------------------------------------------------------ */

/* int8 and int16 alike (SubElementwise); only the headroom and the limits differ. */
static int32_t te_sub_one(const void *params, int32_t a, int32_t b)
{
    const te_sub_params_t *p = (const te_sub_params_t *)params;
    const int32_t diff = te_ew_scale_input(&p->input1, p->left_shift, a) -
                         te_ew_scale_input(&p->input2, p->left_shift, b);
    const int32_t y = te_multiply_by_quantized_multiplier_smaller_than_one_exp(
                          diff, p->output_multiplier, p->output_shift) +
                      p->output_offset;
    return te_clamp(y, p->act_min, p->act_max);
}

TE_EW_ELEM(te_sub_elem_s8, int8_t, te_sub_one)
TE_EW_ELEM(te_sub_elem_s16, int16_t, te_sub_one)

te_status_t te_sub_s8(const te_sub_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_broadcast_ok(&p->dims) || !te_ew_input_ok(&p->input1) ||
        !te_ew_input_ok(&p->input2) || p->left_shift < 0 || p->left_shift > 20 ||
        p->output_multiplier < 0 || p->output_shift > 0 || p->output_shift < -31 ||
        !te_ew_limits_ok(p->output_offset, p->act_min, p->act_max)) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, te_sub_elem_s8, p);
    return TE_OK;
}

te_status_t te_sub_s16(const te_sub_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    /* Zero offsets: |x| << 15 <= 2^30, and each rescaled input stays within +-2^30, so their
     * difference fits int32 too. */
    if (!te_broadcast_ok(&p->dims) || p->input1.offset != 0 || p->input2.offset != 0 ||
        !te_ew_input_ok(&p->input1) || !te_ew_input_ok(&p->input2) || p->left_shift < 0 ||
        p->left_shift > 15 || p->output_multiplier < 0 || p->output_shift > 0 ||
        p->output_shift < -31 || p->output_offset != 0 || p->act_min < -32768 ||
        p->act_max > 32767 || p->act_min > p->act_max) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, te_sub_elem_s16, p);
    return TE_OK;
}

/* -- SQUARED_DIFFERENCE --------------------------------------------------------------------- */

static int32_t te_squared_difference_one_s8(const void *params, int32_t a, int32_t b)
{
    const te_squared_difference_params_t *p = (const te_squared_difference_params_t *)params;
    const int32_t diff = te_ew_scale_input(&p->input1, p->left_shift, a) -
                         te_ew_scale_input(&p->input2, p->left_shift, b);
    /* TFLite's multipliers keep |diff| <= 255 << 7, so the square stays below 2^30; squaring
     * through uint32 keeps parameters outside that domain free of undefined behaviour. */
    const int32_t square = (int32_t)((uint32_t)diff * (uint32_t)diff);
    const int32_t y =
        te_multiply_by_quantized_multiplier(square, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return te_clamp(y, p->act_min, p->act_max);
}

TE_EW_ELEM(te_squared_difference_elem_s8, int8_t, te_squared_difference_one_s8)

te_status_t te_squared_difference_s8(const te_squared_difference_params_t *p,
                                     const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_broadcast_ok(&p->dims) || !te_ew_input_ok(&p->input1) ||
        !te_ew_input_ok(&p->input2) || p->left_shift < 0 || p->left_shift > 7 ||
        p->output_multiplier < 0 || p->output_shift > 1 || p->output_shift < -31 ||
        !te_ew_limits_ok(p->output_offset, p->act_min, p->act_max)) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, te_squared_difference_elem_s8, p);
    return TE_OK;
}

/* -- MUL ------------------------------------------------------------------------------------ */

/* int8 and int16 alike (MulElementwise); only the shift range and the limits differ. */
static int32_t te_mul_one(const void *params, int32_t a, int32_t b)
{
    const te_mul_params_t *p = (const te_mul_params_t *)params;
    const int32_t prod = (a + p->input1_offset) * (b + p->input2_offset);
    const int32_t y =
        te_multiply_by_quantized_multiplier(prod, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return te_clamp(y, p->act_min, p->act_max);
}

TE_EW_ELEM(te_mul_elem_s8, int8_t, te_mul_one)
TE_EW_ELEM(te_mul_elem_s16, int16_t, te_mul_one)

te_status_t te_mul_s8(const te_mul_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_broadcast_ok(&p->dims) || p->input1_offset < -127 || p->input1_offset > 128 ||
        p->input2_offset < -127 || p->input2_offset > 128 || p->output_multiplier < 0 ||
        p->output_shift > 15 || p->output_shift < -31 ||
        !te_ew_limits_ok(p->output_offset, p->act_min, p->act_max)) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, te_mul_elem_s8, p);
    return TE_OK;
}

te_status_t te_mul_s16(const te_mul_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    /* Zero offsets (TFLM requires them): |x_1 * x_2| <= 2^30, which only a shift <= 0 keeps
     * inside int32. */
    if (!te_broadcast_ok(&p->dims) || p->input1_offset != 0 || p->input2_offset != 0 ||
        p->output_multiplier < 0 || p->output_shift > 0 || p->output_shift < -31 ||
        p->output_offset != 0 || p->act_min < -32768 || p->act_max > 32767 ||
        p->act_min > p->act_max) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, te_mul_elem_s16, p);
    return TE_OK;
}

/* -- MAXIMUM / MINIMUM ---------------------------------------------------------------------- */

static int32_t te_maximum_one_s8(const void *params, int32_t a, int32_t b)
{
    (void)params;
    return a > b ? a : b;
}

static int32_t te_minimum_one_s8(const void *params, int32_t a, int32_t b)
{
    (void)params;
    return a < b ? a : b;
}

TE_EW_ELEM(te_maximum_elem_s8, int8_t, te_maximum_one_s8)
TE_EW_ELEM(te_minimum_elem_s8, int8_t, te_minimum_one_s8)

static te_status_t te_max_min_s8(const te_max_min_params_t *p, const int8_t *input1,
                                 const int8_t *input2, int8_t *output, te_ew_elem_fn elem)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL ||
        !te_broadcast_ok(&p->dims)) {
        return TE_ERR_ARG;
    }
    te_ew_run(&p->dims, input1, input2, output, elem, p);
    return TE_OK;
}

te_status_t te_maximum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output)
{
    return te_max_min_s8(p, input1, input2, output, te_maximum_elem_s8);
}

te_status_t te_minimum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output)
{
    return te_max_min_s8(p, input1, input2, output, te_minimum_elem_s8);
}
