#include "te_transpose_conv.h"

static int te_dims_ok(const te_dims_t *d)
{
    return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

int32_t te_transpose_conv_get_buffer_size_s8(const te_dims_t *output)
{
    int64_t bytes;
    if (output == NULL || !te_dims_ok(output)) {
        return 0;
    }
    bytes = (int64_t)output->n * output->h * output->w * output->c * (int64_t)sizeof(int32_t);
    return bytes > INT32_MAX ? 0 : (int32_t)bytes;
}

static int te_transpose_conv_params_ok(const te_transpose_conv_params_t *p)
{
    return te_dims_ok(&p->input) && te_dims_ok(&p->filter) && te_dims_ok(&p->output) &&
           p->input.n == p->output.n && p->input.c == p->filter.c &&
           p->filter.n == p->output.c && p->stride_h >= 1 && p->stride_w >= 1 &&
           p->pad_h >= 0 && p->pad_w >= 0 && p->q.input_offset >= -127 &&
           p->q.input_offset <= 128 && p->q.act_min >= -128 && p->q.act_max <= 127 &&
           p->q.act_min <= p->q.act_max && p->rq.multiplier != NULL && p->rq.shift != NULL;
}

/*
 * The int8 scatter: add every input pixel's contribution to the accumulators of the output
 * pixels its taps reach. Sums go through uint32 so that they wrap modulo 2^32 (TFLite's int32
 * arithmetic) without signed overflow.
 */
static void te_transpose_conv_scatter_s8(const te_transpose_conv_params_t *p, const int8_t *input,
                                         const int8_t *filter, int32_t *acc)
{
    const int32_t cin = p->input.c, cout = p->output.c;
    const int32_t fh = p->filter.h, fw = p->filter.w;
    const int32_t oh = p->output.h, ow = p->output.w;
    int32_t b, y, x, ky, kx, oc, ic;
    for (b = 0; b < p->input.n; ++b) {
        for (y = 0; y < p->input.h; ++y) {
            for (x = 0; x < p->input.w; ++x) {
                const int8_t *px = input + ((b * p->input.h + y) * p->input.w + x) * cin;
                const int32_t oy0 = y * p->stride_h - p->pad_h;
                const int32_t ox0 = x * p->stride_w - p->pad_w;
                for (ky = 0; ky < fh; ++ky) {
                    const int32_t oy = oy0 + ky;
                    if (oy < 0 || oy >= oh) {
                        continue;
                    }
                    for (kx = 0; kx < fw; ++kx) {
                        const int32_t ox = ox0 + kx;
                        int32_t *out_acc;
                        if (ox < 0 || ox >= ow) {
                            continue;
                        }
                        out_acc = acc + ((b * oh + oy) * ow + ox) * cout;
                        for (oc = 0; oc < cout; ++oc) {
                            const int8_t *w = filter + ((oc * fh + ky) * fw + kx) * cin;
                            uint32_t sum = (uint32_t)out_acc[oc];
                            for (ic = 0; ic < cin; ++ic) {
                                sum += (uint32_t)(((int32_t)px[ic] + p->q.input_offset) *
                                                  (int32_t)w[ic]);
                            }
                            out_acc[oc] = (int32_t)sum;
                        }
                    }
                }
            }
        }
    }
}

te_status_t te_transpose_conv_s8(const te_transpose_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output,
                                 int32_t *scratch)
{
    int32_t i, count, cout;
    if (p == NULL || input == NULL || filter == NULL || output == NULL || scratch == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_transpose_conv_params_ok(p)) {
        return TE_ERR_ARG;
    }
    cout = p->output.c;
    count = p->output.n * p->output.h * p->output.w * cout;
    for (i = 0; i < count; ++i) {
        scratch[i] = 0;
    }
    te_transpose_conv_scatter_s8(p, input, filter, scratch);
    for (i = 0; i < count; ++i) {
        const int32_t oc = i % cout;
        int32_t acc = scratch[i];
        if (bias != NULL) {
            acc = (int32_t)((uint32_t)acc + (uint32_t)bias[oc]);
        }
        acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
        output[i] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
    }
    return TE_OK;
}
