/**
 * @file te_quantize.h
 * @brief TFLite QUANTIZE (float32 -> int8/int16; requantisation int8/int16/int32 -> int8/int16,
 *        int8/int16 -> int32) and DEQUANTIZE (int8/int16 -> float32).
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

/** Parameters of QUANTIZE; each kernel reads the fields its comment names. A zero point lies in
 *  its tensor's type: [-128, 127] for int8, [-32768, 32767] for int16, and 0 for int32 (so that
 *  neither x - zero_point nor y + zero_point can leave int32). */
typedef struct {
    int32_t size;              /**< number of elements, >= 0 (all kernels) */
    float scale;               /**< output scale, > 0 (te_quantize_f32_*) */
    int32_t input_zero_point;  /**< in the input's type (te_requantize_*) */
    int32_t output_zero_point; /**< in the output's type (all kernels) */
    int32_t multiplier;        /**< Q31 of in_scale / out_scale, >= 0 (te_requantize_*) */
    int32_t shift;             /**< its shift, > 0 left, in [-31, 31] (te_requantize_*) */
} te_quantize_params_t;

/** Parameters of DEQUANTIZE. */
typedef struct {
    int32_t size;       /**< number of elements, >= 0 */
    float scale;        /**< input scale, > 0 */
    int32_t zero_point; /**< input zero point, in the input's type */
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
 * float32 -> int16, as te_quantize_f32_s8 with the int16 range.
 * @param input  float32, size values.
 * @param output int16, size values; may start at input, must not overlap it otherwise.
 */
te_status_t te_quantize_f32_s16(const te_quantize_params_t *p, const float *input,
                                int16_t *output);

/**
 * int8 -> int8 with new scale and zero point, TFLite's Requantize:
 * q = MultiplyByQuantizedMultiplier(x - input_zero_point, multiplier, shift) + output_zero_point,
 * clamped to int8.
 * @param input  int8, size values.
 * @param output int8, size values; may be the same pointer as input.
 */
te_status_t te_requantize_s8(const te_quantize_params_t *p, const int8_t *input, int8_t *output);

/*
 * The other pairs TFLM requantizes, as te_requantize_s8 with their types' zero-point ranges and
 * clamp (int32 outputs are not clamped: the result is already an int32). Input and output hold
 * size values each. An output no wider than the input may be the same pointer as the input
 * (element i is written after it is read); a wider one must not overlap the input.
 */

/** int16 -> int16 (new scale and zero point). */
te_status_t te_requantize_s16(const te_quantize_params_t *p, const int16_t *input,
                              int16_t *output);
/** int8 -> int16. */
te_status_t te_requantize_s8_s16(const te_quantize_params_t *p, const int8_t *input,
                                 int16_t *output);
/** int16 -> int8. */
te_status_t te_requantize_s16_s8(const te_quantize_params_t *p, const int16_t *input,
                                 int8_t *output);
/** int8 -> int32 (output zero point 0). */
te_status_t te_requantize_s8_s32(const te_quantize_params_t *p, const int8_t *input,
                                 int32_t *output);
/** int16 -> int32 (output zero point 0), e.g. after an int16 SOFTMAX. */
te_status_t te_requantize_s16_s32(const te_quantize_params_t *p, const int16_t *input,
                                  int32_t *output);
/** int32 -> int8 (input zero point 0). */
te_status_t te_requantize_s32_s8(const te_quantize_params_t *p, const int32_t *input,
                                 int8_t *output);
/** int32 -> int16 (input zero point 0). */
te_status_t te_requantize_s32_s16(const te_quantize_params_t *p, const int32_t *input,
                                  int16_t *output);

/**
 * int8 -> float32, TFLite's Dequantize: (float)((double)scale * (q - zero_point)).
 * @param input  int8, size values.
 * @param output float32, size values; must not overlap input.
 */
te_status_t te_dequantize_s8_f32(const te_dequantize_params_t *p, const int8_t *input,
                                 float *output);

/**
 * int16 -> float32, as te_dequantize_s8_f32 (the double product stays exact: 24 x 17 bits).
 * @param input  int16, size values.
 * @param output float32, size values; must not overlap input.
 */
te_status_t te_dequantize_s16_f32(const te_dequantize_params_t *p, const int16_t *input,
                                  float *output);

#endif /* TE_QUANTIZE_H */
