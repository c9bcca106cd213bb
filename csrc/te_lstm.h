/**
 * @file te_lstm.h
 * @brief TFLite UNIDIRECTIONAL_SEQUENCE_LSTM, integer: int8 activations with an int16 cell state
 *        (te_lstm_s8, int32 biases) and 16x8 (te_lstm_s16: int16 activations, int64 biases).
 *
 * The standard LSTM of TFLM's lstm_eval.h (no CIFG, peephole, projection or layer norm; the cell
 * gate's activation tanh), bit for bit; tinyengine/ops/lstm_params.py is the specification. Gate
 * order is TFLite's: input, forget, cell, output. Per time step and batch row, for each cell u:
 *   z_g = sat16(clamp16(MBQM(bias_g[u] + W_g[u] . (x + input_offset)))
 *               + clamp16(MBQM(R_g[u] . (h + hidden_offset))))           (Q3.12)
 *   i, f, o = sigmoid16(z), g = tanh16(z)                                 (Q0.15)
 *   c[u] = sat16(clamp16(MBQM(f c[u])) + clamp16(MBQM(i g))), clipped to +-cell_clip if > 0
 *   out[u] = clamp_h(MBQM(tanh16(c[u] scaled) o) + hidden_zero_point)
 * and once the row's cells are done the hidden state row becomes the output row. MBQM is
 * TFLite's MultiplyByQuantizedMultiplier: the int32 rule everywhere in te_lstm_s8, the int64 rule
 * for the gate products of te_lstm_s16. No scratch: see tinyengine/ops/lstm.py.
 */
#ifndef TE_LSTM_H
#define TE_LSTM_H

#include "te_common.h"

typedef struct {
    int32_t batches;           /**< B >= 1 */
    int32_t time_steps;        /**< T >= 1 */
    int32_t n_input;           /**< I >= 1: input features */
    int32_t n_state;           /**< S >= 1: cells (= hidden units, no projection) */
    int32_t time_major;        /**< 1: input [T][B][I], output [T][B][S]; 0: [B][T][I], [B][T][S] */
    int32_t input_offset;      /**< minus the input's zero point (0 for int16) */
    int32_t hidden_offset;     /**< minus the hidden state's zero point (0 for int16) */
    int32_t hidden_zero_point; /**< the hidden state's zero point */
    int32_t hidden_min;        /**< the hidden state type's range */
    int32_t hidden_max;
    int32_t input_mult[4];     /**< per gate: input product -> Q3.12 (multiplier, shift) */
    int32_t input_shift[4];
    int32_t recurrent_mult[4]; /**< per gate: recurrent product -> Q3.12 */
    int32_t recurrent_shift[4];
    int32_t forget_mult;       /**< forget gate x cell state -> cell state */
    int32_t forget_shift;
    int32_t update_mult;       /**< input gate x cell gate -> cell state */
    int32_t update_shift;
    int32_t hidden_mult;       /**< tanh(cell) x output gate -> hidden state */
    int32_t hidden_shift;
    int32_t cell_clip;         /**< quantised cell clip in [0, 32767]; 0: no clipping */
    int32_t tanh_mult;         /**< the cell state's scaling into tanh: (c * mult + round) >> */
    int32_t tanh_shift;        /**< shift, in [0, 31]; tanh_mult in [1, 65535] */
} te_lstm_params_t;

/**
 * 8x8->16 LSTM over all time steps, updating the state in place.
 * @param input             int8 [B][T][I] (or [T][B][I] when time_major)
 * @param input_weights     int8 [4][S][I]: the four gates' input weights, TFLite's gate order
 * @param recurrent_weights int8 [4][S][S]
 * @param bias              int32 [4][S]
 * @param hidden_state      int8 [B][S], read and written (state)
 * @param cell_state        int16 [B][S], read and written (state)
 * @param output            int8 [B][T][S] (or [T][B][S]); must not overlap the other arrays
 * @return TE_OK, or TE_ERR_ARG for null pointers, non-positive sizes, a negative multiplier,
 *         a shift outside [-31, 31] or tanh scaling or hidden limits outside their ranges.
 *         The caller (tinyengine/ops/lstm.py's check) keeps every int32 sum in range.
 */
te_status_t te_lstm_s8(const te_lstm_params_t *p, const int8_t *input,
                       const int8_t *input_weights, const int8_t *recurrent_weights,
                       const int32_t *bias, int8_t *hidden_state, int16_t *cell_state,
                       int8_t *output);

/**
 * 16x8 LSTM (int16 activations, int8 weights, int64 biases, int16 cell state); arguments as
 * te_lstm_s8 with int16 input, hidden state and output, and
 * @param bias int64 [4][S]
 * @return as te_lstm_s8; the gate products' shifts must also lie in [-31, 7], the int64 rule's
 *         domain (TFLM's), and the caller keeps every sum below 2^47 in magnitude.
 */
te_status_t te_lstm_s16(const te_lstm_params_t *p, const int16_t *input,
                        const int8_t *input_weights, const int8_t *recurrent_weights,
                        const int64_t *bias, int16_t *hidden_state, int16_t *cell_state,
                        int16_t *output);

#endif /* TE_LSTM_H */
