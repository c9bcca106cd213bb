#include "te_quantize.h"

/* Zero-point ranges by type: an int32 tensor must have zero point 0, so that x - zero_point and
 * y + zero_point cannot leave int32. */
#define TE_S8_MIN (-128)
#define TE_S8_MAX 127
#define TE_S16_MIN (-32768)
#define TE_S16_MAX 32767

static int te_in_range(int32_t x, int32_t lo, int32_t hi)
{
    return x >= lo && x <= hi;
}

/*
 * round(x) half away from zero for |x| < 2^24, without libm: truncation to int is exact in that
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

/* AffineQuantize of one value into [qmin, qmax]; `span` = qmax - qmin + 1: a quotient at least
 * that far from 0 clamps for every zero point in the type, so larger ones need no rounding. */
static int32_t te_affine_quantize_one(const te_quantize_params_t *p, float x, float span,
                                      int32_t qmin, int32_t qmax)
{
    /* One float32 division, as TFLM: val / static_cast<float>(scale). */
    const float q = x / p->scale;
    int32_t r;
    if (q != q) {
        r = 0;
    } else if (q >= span) {
        r = (int32_t)span;
    } else if (q <= -span) {
        r = -(int32_t)span;
    } else {
        r = te_round_half_away_small(q);
    }
    return te_clamp(r + p->output_zero_point, qmin, qmax);
}

te_status_t te_quantize_f32_s8(const te_quantize_params_t *p, const float *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 || !(p->scale > 0.0f) ||
        !te_in_range(p->output_zero_point, TE_S8_MIN, TE_S8_MAX)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)te_affine_quantize_one(p, input[i], 256.0f, TE_S8_MIN, TE_S8_MAX);
    }
    return TE_OK;
}

te_status_t te_quantize_f32_s16(const te_quantize_params_t *p, const float *input,
                                int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 || !(p->scale > 0.0f) ||
        !te_in_range(p->output_zero_point, TE_S16_MIN, TE_S16_MAX)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] =
            (int16_t)te_affine_quantize_one(p, input[i], 65536.0f, TE_S16_MIN, TE_S16_MAX);
    }
    return TE_OK;
}

/* The parameters every Requantize shares; the zero points must lie in [*_zp_min, *_zp_max]. */
static int te_requantize_ok(const te_quantize_params_t *p, const void *input, const void *output,
                            int32_t in_zp_min, int32_t in_zp_max, int32_t out_zp_min,
                            int32_t out_zp_max)
{
    return p != NULL && input != NULL && output != NULL && p->size >= 0 && p->multiplier >= 0 &&
           p->shift >= -31 && p->shift <= 31 &&
           te_in_range(p->input_zero_point, in_zp_min, in_zp_max) &&
           te_in_range(p->output_zero_point, out_zp_min, out_zp_max);
}

/* Requantize of one value: x - input_zero_point fits int32 for every accepted zero point, and the
 * sum with the output zero point is taken in int64 (a product near INT32_MIN plus the zero point
 * must not overflow) before the clamp to the output type's [lo, hi]. */
static int32_t te_requantize_one(const te_quantize_params_t *p, int32_t x, int32_t lo, int32_t hi)
{
    const int64_t y = (int64_t)te_multiply_by_quantized_multiplier(x - p->input_zero_point,
                                                                   p->multiplier, p->shift) +
                      p->output_zero_point;
    return (int32_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* One entry point per (input, output) type pair; they differ only in the types, the zero-point
 * ranges and the clamp. */
#define TE_DEFINE_REQUANTIZE(name, in_t, out_t, in_zp_min, in_zp_max, out_min, out_max,           \
                             out_zp_min, out_zp_max)                                            \
    te_status_t name(const te_quantize_params_t *p, const in_t *input, out_t *output)            \
    {                                                                                           \
        int32_t i;                                                                              \
        if (!te_requantize_ok(p, input, output, in_zp_min, in_zp_max, out_zp_min, out_zp_max)) { \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        for (i = 0; i < p->size; ++i) {                                                         \
            output[i] = (out_t)te_requantize_one(p, input[i], out_min, out_max);               \
        }                                                                                       \
        return TE_OK;                                                                           \
    }

TE_DEFINE_REQUANTIZE(te_requantize_s8, int8_t, int8_t, TE_S8_MIN, TE_S8_MAX, TE_S8_MIN, TE_S8_MAX,
                     TE_S8_MIN, TE_S8_MAX)
TE_DEFINE_REQUANTIZE(te_requantize_s16, int16_t, int16_t, TE_S16_MIN, TE_S16_MAX, TE_S16_MIN,
                     TE_S16_MAX, TE_S16_MIN, TE_S16_MAX)
TE_DEFINE_REQUANTIZE(te_requantize_s8_s16, int8_t, int16_t, TE_S8_MIN, TE_S8_MAX, TE_S16_MIN,
                     TE_S16_MAX, TE_S16_MIN, TE_S16_MAX)
TE_DEFINE_REQUANTIZE(te_requantize_s16_s8, int16_t, int8_t, TE_S16_MIN, TE_S16_MAX, TE_S8_MIN,
                     TE_S8_MAX, TE_S8_MIN, TE_S8_MAX)
TE_DEFINE_REQUANTIZE(te_requantize_s8_s32, int8_t, int32_t, TE_S8_MIN, TE_S8_MAX, INT32_MIN,
                     INT32_MAX, 0, 0)
TE_DEFINE_REQUANTIZE(te_requantize_s16_s32, int16_t, int32_t, TE_S16_MIN, TE_S16_MAX, INT32_MIN,
                     INT32_MAX, 0, 0)
TE_DEFINE_REQUANTIZE(te_requantize_s32_s8, int32_t, int8_t, 0, 0, TE_S8_MIN, TE_S8_MAX, TE_S8_MIN,
                     TE_S8_MAX)
TE_DEFINE_REQUANTIZE(te_requantize_s32_s16, int32_t, int16_t, 0, 0, TE_S16_MIN, TE_S16_MAX,
                     TE_S16_MIN, TE_S16_MAX)

/* Dequantize of one value: x - zero_point (17 bits at most) converts to float exactly, so the
 * one float multiply rounds the exact product once, as TFLite's float arithmetic does. (A double
 * product rounded to float gives the same bits, but pulls the soft-double routines into every
 * firmware: 1.6 KB on a Cortex-M4, 1.9 KB on an M0+.) */
static float te_dequantize_one(const te_dequantize_params_t *p, int32_t x)
{
    return p->scale * (float)(x - p->zero_point);
}

te_status_t te_dequantize_s8_f32(const te_dequantize_params_t *p, const int8_t *input,
                                 float *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 ||
        !te_in_range(p->zero_point, TE_S8_MIN, TE_S8_MAX)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = te_dequantize_one(p, input[i]);
    }
    return TE_OK;
}

te_status_t te_dequantize_s16_f32(const te_dequantize_params_t *p, const int16_t *input,
                                  float *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || p->size < 0 ||
        !te_in_range(p->zero_point, TE_S16_MIN, TE_S16_MAX)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = te_dequantize_one(p, input[i]);
    }
    return TE_OK;
}
