/**
 * @file te_quantize.h
 * @brief TFLite QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32).
 *
 * The only kernels that touch floating point. They assume IEEE binary32 float and binary64
 * double with round-to-nearest and no flush of subnormals. Each computes one correctly rounded
 * IEEE operation (a division, or a conversion of an exact product) in the same order as TFLM's
 * reference kernels, so contraction into FMA and x87 excess precision cannot change a result;
 * tinyengine/ops/quantize.py is the specification.
 */
#ifndef TE_QUANTIZE_H
#define TE_QUANTIZE_H

#include "te_common.h"

/** Parameters of QUANTIZE; each kernel reads the fields its comment names. */
typedef struct {
    int32_t size;              /**< number of elements, >= 0 (both kernels) */
    float scale;               /**< output scale, > 0 (te_quantize_f32_s8) */
    int32_t input_zero_point;  /**< in [-128, 127] (te_requantize_s8) */
    int32_t output_zero_point; /**< in [-128, 127] (both kernels) */
    int32_t multiplier;        /**< Q31 of in_scale / out_scale, >= 0 (te_requantize_s8) */
    int32_t shift;             /**< its shift, > 0 left, in [-31, 31] (te_requantize_s8) */
} te_quantize_params_t;

/** Parameters of DEQUANTIZE. */
typedef struct {
    int32_t size;       /**< number of elements, >= 0 */
    float scale;        /**< input scale, > 0 */
    int32_t zero_point; /**< input zero point, in [-128, 127] */
} te_dequantize_params_t;

/**
 * float32 -> int8, TFLite's AffineQuantize: q = round(x / scale) + zero_point, clamped, where the
 * division is in float32 and round() halves away from zero. TFLM's float-to-int conversion is
 * undefined beyond int32 range; here such values (and infinities) saturate as on Arm, NaN gives
 * the zero point.
 * @param input  float32, size values.
 * @param output int8, size values; may start at input (the write trails the read), must not
 *               overlap it otherwise.
 */
te_status_t te_quantize_f32_s8(const te_quantize_params_t *p, const float *input, int8_t *output);

/**
 * int8 -> int8 with new scale and zero point, TFLite's Requantize:
 * q = MultiplyByQuantizedMultiplier(x - input_zero_point, multiplier, shift) + output_zero_point,
 * clamped to int8.
 * @param input  int8, size values.
 * @param output int8, size values; may be the same pointer as input.
 */
te_status_t te_requantize_s8(const te_quantize_params_t *p, const int8_t *input, int8_t *output);

/**
 * int8 -> float32, TFLite's Dequantize: (float)((double)scale * (q - zero_point)).
 * @param input  int8, size values.
 * @param output float32, size values; must not overlap input.
 */
te_status_t te_dequantize_s8_f32(const te_dequantize_params_t *p, const int8_t *input,
                                 float *output);

#endif /* TE_QUANTIZE_H */
