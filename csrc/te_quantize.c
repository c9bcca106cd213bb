#include "te_quantize.h"

static int te_is_int8(int32_t x)
{
    return x >= -128 && x <= 127;
}

/*
 * round(x) half away from zero for |x| < 256, without libm: truncation to int is exact in that
 * range, and so is x - trunc(x) (both are floats of the same binade or finer).
 */
static int32_t te_round_half_away_small(float x)
{
    const int32_t t = (int32_t)x;
    const float frac = x - (float)t;
    if (frac >= 0.5f) {
        return t + 1;
    }
    if (frac <= -0.5f) {
        return t - 1;
    }
    return t;
}

te_status_t te_quantize_f32_s8(const te_quantize_params_t *p, const float *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 || !(p->scale > 0.0f) ||
        !te_is_int8(p->output_zero_point)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        /* One float32 division, as TFLM: val / static_cast<float>(scale). */
        const float q = input[i] / p->scale;
        int32_t r;
        if (q != q) {
            r = 0;
        } else if (q >= 256.0f) {
            r = 256; /* any value this large clamps to 127 for every zero point */
        } else if (q <= -256.0f) {
            r = -256;
        } else {
            r = te_round_half_away_small(q);
        }
        output[i] = (int8_t)te_clamp(r + p->output_zero_point, -128, 127);
    }
    return TE_OK;
}

te_status_t te_requantize_s8(const te_quantize_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 || p->multiplier < 0 ||
        p->shift < -31 || p->shift > 31 || !te_is_int8(p->input_zero_point) ||
        !te_is_int8(p->output_zero_point)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        /* int64: a product near INT32_MIN plus the zero point must not overflow. */
        const int64_t y =
            (int64_t)te_multiply_by_quantized_multiplier(x, p->multiplier, p->shift) +
            p->output_zero_point;
        output[i] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
    }
    return TE_OK;
}

te_status_t te_dequantize_s8_f32(const te_dequantize_params_t *p, const int8_t *input,
                                 float *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 ||
        !te_is_int8(p->zero_point)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        /* The double product is exact (24 x 9 bits), so only the conversion rounds. */
        output[i] = (float)((double)p->scale * (double)((int32_t)input[i] - p->zero_point));
    }
    return TE_OK;
}
