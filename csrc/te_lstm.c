/**
 * @file te_lstm.c
 * @brief UNIDIRECTIONAL_SEQUENCE_LSTM kernels (te_lstm.h); the arithmetic of
 *        tinyengine/ops/lstm_params.py, bit for bit.
 *
 * Each cell's four gates depend only on the step's input row, the previous hidden state row and
 * that cell's weight rows, so the kernels walk cell by cell: the four gate products, the cell
 * update in place, the new hidden value straight into the output row. The previous hidden state
 * stays intact until every cell of the row is done (each cell's recurrent product reads all of
 * it), then the output row is copied into it. No scratch is needed.
 */
#include "te_lstm.h"
#include "te_requant16.h"

#include <string.h>

#define TE_LSTM_INT16_MIN (-32768)
#define TE_LSTM_INT16_MAX 32767
/* The int64 MultiplyByQuantizedMultiplier's shift domain (TFLM asserts -31 <= shift < 8). */
#define TE_LSTM_S64_MAX_SHIFT 7

/* sigmoid(i / 24) in 0.16 fixed point (TFLite's sigmoid_table_uint16). */
static const uint16_t te_lstm_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535
};

static int32_t te_lstm_sat16(int32_t x)
{
    return te_clamp(x, TE_LSTM_INT16_MIN, TE_LSTM_INT16_MAX);
}

/* reference_integer_ops::Logistic on int16, Q3.12 in, Q0.15 out: TFLM's LSTM passes multiplier
 * 0 and shift 0, which the function turns into multiplier 3, no shift. */
static int32_t te_lstm_sigmoid(int32_t x)
{
    const int32_t v = x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 9;
    uint32_t r;
    if (uh >= 255u) {
        r = 0x7FFFu << 10;
    } else {
        const uint32_t ua = te_lstm_sigmoid_table[uh];
        const uint32_t ub = te_lstm_sigmoid_table[uh + 1u];
        r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int32_t)(r >> 10);
}

/* reference_integer_ops::Tanh on int16: the input scaled by (x * mult + round) >> shift into
 * Q3.12 (times 3/4's table scaling), a lookup with 8-bit interpolation, Q0.15 out. */
static int32_t te_lstm_tanh(int32_t x, int32_t mult, int32_t shift)
{
    const int64_t rnd = shift > 0 ? (int64_t)1 << (shift - 1) : 0;
    const int32_t v = (int32_t)(((int64_t)x * mult + rnd) >> shift);
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 8;
    int32_t r;
    if (uh >= 255u) {
        r = 0xFFFF << 8;
    } else {
        const uint32_t ua = te_lstm_sigmoid_table[uh];
        const uint32_t ub = te_lstm_sigmoid_table[uh + 1u];
        r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return r >> 8;
}

/* MulElementwise of two int16 values (offsets 0), before the output offset and clamp. */
static int32_t te_lstm_mul(int32_t a, int32_t b, int32_t mult, int32_t shift)
{
    return te_multiply_by_quantized_multiplier(a * b, mult, shift);
}

/* One cell from its four gate pre-activations (Q3.12): updates *cell, returns the new hidden
 * value in the hidden state's type. */
static int32_t te_lstm_cell(const te_lstm_params_t *p, const int32_t z[4], int16_t *cell)
{
    const int32_t in_gate = te_lstm_sigmoid(z[0]);
    const int32_t forget_gate = te_lstm_sigmoid(z[1]);
    const int32_t cell_gate = te_lstm_tanh(z[2], 3, 0);
    const int32_t out_gate = te_lstm_sigmoid(z[3]);
    int32_t c = te_lstm_sat16(te_lstm_mul(forget_gate, *cell, p->forget_mult, p->forget_shift));
    c = te_lstm_sat16(c + te_lstm_sat16(te_lstm_mul(in_gate, cell_gate, p->update_mult,
                                                    p->update_shift)));
    if (p->cell_clip > 0) {
        c = te_clamp(c, -p->cell_clip, p->cell_clip);
    }
    *cell = (int16_t)c;
    return te_clamp(te_lstm_mul(te_lstm_tanh(c, p->tanh_mult, p->tanh_shift), out_gate,
                                p->hidden_mult, p->hidden_shift) + p->hidden_zero_point,
                    p->hidden_min, p->hidden_max);
}

static int te_lstm_shift_ok(int32_t shift, int32_t max_shift)
{
    return shift >= -31 && shift <= max_shift;
}

/* The parameters' domain; gate_max_shift: 31 for the int32 rule, 7 for the int64 one. */
static int te_lstm_params_ok(const te_lstm_params_t *p, int32_t gate_max_shift, int32_t act_min,
                             int32_t act_max)
{
    int32_t g;
    if (p->batches < 1 || p->time_steps < 1 || p->n_input < 1 || p->n_state < 1) {
        return 0;
    }
    for (g = 0; g < 4; ++g) {
        if (p->input_mult[g] < 0 || p->recurrent_mult[g] < 0 ||
            !te_lstm_shift_ok(p->input_shift[g], gate_max_shift) ||
            !te_lstm_shift_ok(p->recurrent_shift[g], gate_max_shift)) {
            return 0;
        }
    }
    if (p->forget_mult < 0 || p->update_mult < 0 || p->hidden_mult < 0 ||
        !te_lstm_shift_ok(p->forget_shift, 31) || !te_lstm_shift_ok(p->update_shift, 31) ||
        !te_lstm_shift_ok(p->hidden_shift, 31)) {
        return 0;
    }
    if (p->tanh_mult < 1 || p->tanh_mult > 65535 || p->tanh_shift < 0 || p->tanh_shift > 31) {
        return 0;
    }
    if (p->cell_clip < 0 || p->cell_clip > TE_LSTM_INT16_MAX) {
        return 0;
    }
    return act_min <= p->hidden_min && p->hidden_min <= p->hidden_max && p->hidden_max <= act_max;
}

/* Where step t of chunk k starts in the input and output (elements), and the rows it holds. */
static void te_lstm_step_offsets(const te_lstm_params_t *p, int32_t k, int32_t t, int32_t *in,
                                 int32_t *out)
{
    if (p->time_major) {
        *in = t * p->batches * p->n_input;
        *out = t * p->batches * p->n_state;
    } else {
        *in = (k * p->time_steps + t) * p->n_input;
        *out = (k * p->time_steps + t) * p->n_state;
    }
}

static int32_t te_lstm_gate_s8(const te_lstm_params_t *p, int32_t g, int32_t u,
                               const int8_t *x, const int8_t *h, const int8_t *input_weights,
                               const int8_t *recurrent_weights, const int32_t *bias)
{
    const int8_t *w = input_weights + ((size_t)g * (size_t)p->n_state + (size_t)u) *
                                          (size_t)p->n_input;
    const int8_t *r = recurrent_weights + ((size_t)g * (size_t)p->n_state + (size_t)u) *
                                              (size_t)p->n_state;
    int32_t acc = bias[g * p->n_state + u];
    int32_t acc_h = 0;
    int32_t k;
    for (k = 0; k < p->n_input; ++k) {
        acc += (int32_t)w[k] * ((int32_t)x[k] + p->input_offset);
    }
    for (k = 0; k < p->n_state; ++k) {
        acc_h += (int32_t)r[k] * ((int32_t)h[k] + p->hidden_offset);
    }
    return te_lstm_sat16(
        te_lstm_sat16(te_multiply_by_quantized_multiplier(acc, p->input_mult[g],
                                                          p->input_shift[g])) +
        te_lstm_sat16(te_multiply_by_quantized_multiplier(acc_h, p->recurrent_mult[g],
                                                          p->recurrent_shift[g])));
}

/* The time steps of both entry points, over activations of type T with the gate function GATE:
 * each chunk (one batch, or all of them when time-major) carries its hidden and cell state
 * from step to step; each step's output row is the new hidden state. */
#define TE_LSTM_STEPS(T, GATE)                                                                    \
    rows = p->time_major ? p->batches : 1;                                                        \
    chunks = p->time_major ? 1 : p->batches;                                                      \
    for (k = 0; k < chunks; ++k) {                                                                \
        T *h = hidden_state + k * p->n_state;                                                     \
        int16_t *c = cell_state + k * p->n_state;                                                 \
        for (t = 0; t < p->time_steps; ++t) {                                                     \
            te_lstm_step_offsets(p, k, t, &in_at, &out_at);                                       \
            for (r = 0; r < rows; ++r) {                                                          \
                const T *x = input + in_at + r * p->n_input;                                      \
                for (u = 0; u < p->n_state; ++u) {                                                \
                    for (g = 0; g < 4; ++g) {                                                     \
                        z[g] = GATE(p, g, u, x, h + r * p->n_state, input_weights,                \
                                    recurrent_weights, bias);                                     \
                    }                                                                             \
                    output[out_at + r * p->n_state + u] =                                         \
                        (T)te_lstm_cell(p, z, &c[r * p->n_state + u]);                            \
                }                                                                                 \
            }                                                                                     \
            memcpy(h, output + out_at, (size_t)rows * (size_t)p->n_state * sizeof(T));            \
        }                                                                                         \
    }                                                                                             \
    return TE_OK

te_status_t te_lstm_s8(const te_lstm_params_t *p, const int8_t *input,
                       const int8_t *input_weights, const int8_t *recurrent_weights,
                       const int32_t *bias, int8_t *hidden_state, int16_t *cell_state,
                       int8_t *output)
{
    int32_t rows, chunks, k, t, r, u, g, in_at, out_at;
    int32_t z[4];
    if (p == NULL || input == NULL || input_weights == NULL || recurrent_weights == NULL ||
        bias == NULL || hidden_state == NULL || cell_state == NULL || output == NULL ||
        !te_lstm_params_ok(p, 31, -128, 127) || p->input_offset < -127 ||
        p->input_offset > 128 || p->hidden_offset < -127 || p->hidden_offset > 128) {
        return TE_ERR_ARG;
    }
    TE_LSTM_STEPS(int8_t, te_lstm_gate_s8);
}

static int32_t te_lstm_gate_s16(const te_lstm_params_t *p, int32_t g, int32_t u,
                                const int16_t *x, const int16_t *h, const int8_t *input_weights,
                                const int8_t *recurrent_weights, const int64_t *bias)
{
    const int8_t *w = input_weights + ((size_t)g * (size_t)p->n_state + (size_t)u) *
                                          (size_t)p->n_input;
    const int8_t *r = recurrent_weights + ((size_t)g * (size_t)p->n_state + (size_t)u) *
                                              (size_t)p->n_state;
    int64_t acc = bias[g * p->n_state + u];
    int64_t acc_h = 0;
    int32_t k;
    for (k = 0; k < p->n_input; ++k) {
        acc += (int32_t)w[k] * ((int32_t)x[k] + p->input_offset);
    }
    for (k = 0; k < p->n_state; ++k) {
        acc_h += (int32_t)r[k] * ((int32_t)h[k] + p->hidden_offset);
    }
    return te_lstm_sat16(
        te_lstm_sat16(te_multiply_by_quantized_multiplier_s64(acc, p->input_mult[g],
                                                              p->input_shift[g])) +
        te_lstm_sat16(te_multiply_by_quantized_multiplier_s64(acc_h, p->recurrent_mult[g],
                                                              p->recurrent_shift[g])));
}

te_status_t te_lstm_s16(const te_lstm_params_t *p, const int16_t *input,
                        const int8_t *input_weights, const int8_t *recurrent_weights,
                        const int64_t *bias, int16_t *hidden_state, int16_t *cell_state,
                        int16_t *output)
{
    int32_t rows, chunks, k, t, r, u, g, in_at, out_at;
    int32_t z[4];
    if (p == NULL || input == NULL || input_weights == NULL || recurrent_weights == NULL ||
        bias == NULL || hidden_state == NULL || cell_state == NULL || output == NULL ||
        !te_lstm_params_ok(p, TE_LSTM_S64_MAX_SHIFT, TE_LSTM_INT16_MIN, TE_LSTM_INT16_MAX) ||
        p->input_offset != 0 || p->hidden_offset != 0) {
        return TE_ERR_ARG;
    }
    TE_LSTM_STEPS(int16_t, te_lstm_gate_s16);
}
