#include "te_svdf.h"

#include <string.h>

/* Sums are kept in uint32 so that they wrap as TFLM's int32 sums do on every compiler (signed
 * overflow is undefined in C); each product fits int32: |int8 * 255| and |int16 * 65535| are
 * below 2^31. */

static int te_svdf_params_ok(const te_svdf_params_t *p, int32_t state_min, int32_t state_max)
{
    return p->batches >= 1 && p->input_size >= 1 && p->filters >= 1 && p->rank >= 1 &&
           p->memory >= 1 && p->filters % p->rank == 0 &&
           (int64_t)p->batches * p->filters * p->memory <= INT32_MAX &&
           (int64_t)p->batches * p->input_size <= INT32_MAX &&
           p->input_offset >= -127 && p->input_offset <= 128 &&
           p->output_offset >= -128 && p->output_offset <= 127 &&
           p->state_zero_point >= state_min && p->state_zero_point <= state_max &&
           p->feature_multiplier >= 0 && p->output_multiplier >= 0 &&
           p->feature_shift >= -31 && p->feature_shift <= 31 &&
           p->output_shift >= -31 && p->output_shift <= 31;
}

/* uint32 -> int32 two's complement, without an implementation-defined conversion. */
static int32_t te_svdf_to_int32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* The low `bits` bits of v as a signed value: C's conversion to a narrower type on a two's
 * complement machine, written out so that it is defined everywhere. */
static int32_t te_svdf_wrap(int32_t v, int32_t bits)
{
    const uint32_t mask = (1u << bits) - 1u, sign = 1u << (bits - 1);
    const uint32_t u = (uint32_t)v & mask;
    return u >= sign ? (int32_t)u - (int32_t)(mask + 1u) : (int32_t)u;
}

/* One filter's feature value for this step: the dot product with the input row, requantised to
 * the state's scale, clamped to the state type's range [lo, hi], plus the state's zero point. */
static int32_t te_svdf_feature(const te_svdf_params_t *p, const int8_t *x, const int8_t *w,
                               int32_t lo, int32_t hi)
{
    uint32_t acc = 0;
    int32_t i;
    for (i = 0; i < p->input_size; ++i) {
        acc += (uint32_t)((int32_t)w[i] * ((int32_t)x[i] + p->input_offset));
    }
    return te_clamp(te_multiply_by_quantized_multiplier(te_svdf_to_int32(acc),
                                                        p->feature_multiplier,
                                                        p->feature_shift),
                    lo, hi) + p->state_zero_point;
}

/* bias + the rank time sums of a unit (acc), requantised to the output, clamped to int8. */
static int8_t te_svdf_output(const te_svdf_params_t *p, uint32_t acc)
{
    const int32_t y = te_multiply_by_quantized_multiplier(te_svdf_to_int32(acc),
                                                          p->output_multiplier, p->output_shift);
    return (int8_t)te_clamp(y + p->output_offset, -128, 127);
}

/* One SVDF step for state of type S (int16 or int8; its range [LO, HI], BITS wide), shared by
 * both entry points. Forget the oldest step: the whole state buffer moves left by one element,
 * as TFLM moves it; the slot that each row's first element lands in is rewritten just below. */
#define TE_SVDF_BODY(S, LO, HI, BITS)                                                             \
    int32_t b, f, u, r, j;                                                                        \
    if (p == NULL || input == NULL || weights_feature == NULL || weights_time == NULL ||         \
        bias == NULL || state == NULL || output == NULL || !te_svdf_params_ok(p, LO, HI)) {      \
        return TE_ERR_ARG;                                                                        \
    }                                                                                             \
    memmove(state, state + 1, (size_t)(p->batches * p->filters * p->memory - 1) * sizeof(S));    \
    for (b = 0; b < p->batches; ++b) {                                                            \
        const int8_t *x = input + b * p->input_size;                                              \
        S *s = state + b * p->filters * p->memory;                                                \
        const int32_t units = p->filters / p->rank;                                               \
        for (f = 0; f < p->filters; ++f) {                                                        \
            const int32_t v =                                                                     \
                te_svdf_feature(p, x, weights_feature + f * p->input_size, LO, HI);               \
            s[f * p->memory + p->memory - 1] = (S)te_svdf_wrap(v, BITS);                          \
        }                                                                                         \
        for (u = 0; u < units; ++u) {                                                             \
            uint32_t acc = (uint32_t)bias[u];                                                     \
            for (r = 0; r < p->rank; ++r) {                                                       \
                const int32_t row = (u * p->rank + r) * p->memory;                                \
                for (j = 0; j < p->memory; ++j) {                                                 \
                    acc += (uint32_t)((int32_t)weights_time[row + j] *                            \
                                      ((int32_t)s[row + j] - p->state_zero_point));               \
                }                                                                                 \
            }                                                                                     \
            output[b * units + u] = te_svdf_output(p, acc);                                       \
        }                                                                                         \
    }                                                                                             \
    return TE_OK

te_status_t te_svdf_s8(const te_svdf_params_t *p, const int8_t *input,
                       const int8_t *weights_feature, const int16_t *weights_time,
                       const int32_t *bias, int16_t *state, int8_t *output)
{
    TE_SVDF_BODY(int16_t, INT16_MIN, INT16_MAX, 16);
}

te_status_t te_svdf_s8_state_s8(const te_svdf_params_t *p, const int8_t *input,
                                const int8_t *weights_feature, const int8_t *weights_time,
                                const int32_t *bias, int8_t *state, int8_t *output)
{
    TE_SVDF_BODY(int8_t, INT8_MIN, INT8_MAX, 8);
}
