"""UNIDIRECTIONAL_SEQUENCE_LSTM's integer arithmetic: the parameters TFLM derives in Prepare and
the fixed-point pieces its Eval runs, as numpy (the specification of csrc/te_lstm.c).

Prepare (TFLM lstm_eval_common.cc, PrepareGateParametersInteger) fixes two internal scales:
every gate's fully connected products land in Q3.12 (scale 2^-12, int16) and every gate's
non-linearity writes Q0.15 (scale 2^-15). From the tensors' scales it then computes
- per gate, two FC multipliers: double(s_in) * double(s_w) / 2^-12 (the input product, with the
  gate's bias) and double(s_h) * double(s_rw) / 2^-12 (the recurrent product, no bias);
  CalculateOpDataFullyConnected's per-tensor rule, the one tinyengine/ops/fully_connected.py
  documents (TFLM multiplies the two scales in double);
- three element-wise multipliers (CreateInterGateMulParams): 2^-15 * s_c / s_c for forget x cell,
  2^-15 * 2^-15 / s_c for input x cell gate, 2^-15 * 2^-15 / s_h for tanh(cell) x output, the
  last one adding the hidden state's zero point and clamping to its type;
- the cell state's power of two p (s_c = 2^p, CheckedLog2), which scales the cell state into
  the int16 tanh's input, and the quantised cell clip int16(clamp(clip / s_c)), truncated.

Eval, per time step and batch row, for each gate g in (input, forget, cell, output):
  z_g = sat16(clamp16(MBQM(b_g + W_g (x + x_off))) + clamp16(MBQM(R_g (h + h_off))))
  input/forget/output: sigmoid16(z); cell: tanh16(z) with the Q3.12 scaling (multiplier 3)
  c = sat16(clamp16(mul(f, c)) + clamp16(mul(i, g))), clipped to +-clip when cell_clip > 0
  h = clamp_h(mul(tanh16(c, p), o) + zp_h); the step's output row is h.
The int8 path (8x8->16) accumulates in int32 and rescales with the int32
MultiplyByQuantizedMultiplier; the 16x8 path accumulates in int64 (int64 biases) and rescales
with the int64 overload, which rounds the multiplier to 16 bits first: a different rounding,
pinned by tests/test_ops_lstm.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import QRANGE, Graph, Op, Tensor
from .logistic_tanh import logistic_int16, tanh_int16

# Input positions of TFLite's 24-input LSTM (tensorflow/lite/micro/kernels/lstm_shared.h), gate
# order input, forget, cell, output.
INPUT = 0
INPUT_WEIGHTS = (1, 2, 3, 4)
RECURRENT_WEIGHTS = (5, 6, 7, 8)
PEEPHOLE = (9, 10, 11)
BIASES = (12, 13, 14, 15)
PROJECTION = (16, 17)
HIDDEN_STATE = 18
CELL_STATE = 19
LAYER_NORM = (20, 21, 22, 23)
N_INPUTS = 24
GATES = ("input", "forget", "cell", "output")

# The scales PrepareGateParametersInteger fixes: gate pre-activations in Q3.12, activations Q0.15.
GATE_INPUT_SCALE = float(np.float32(2.0 ** -12))
GATE_OUTPUT_SCALE = float(np.float32(2.0 ** -15))

INT16_MIN, INT16_MAX = QRANGE["int16"]
# The int64 MultiplyByQuantizedMultiplier's domain (TFLM asserts it): accumulators below 2^47 in
# magnitude, shifts -31..7.
INT64_ACC_LIMIT = 1 << 47
MAX_INT64_MBQM_SHIFT = 7
# The cell state's scale 2^p: p <= 2 keeps tanh's input multiplier 3 << (12 + p) times an int16
# within int32; p >= -43 keeps its right shift -(12 + p) below 32.
CELL_POWER_RANGE = (-43, 2)


def where(op: Op) -> str:
    return f"op {op.name} ({op.kind})"


# -- fixed-point pieces ----------------------------------------------------------------------

def sigmoid16(x: np.ndarray) -> np.ndarray:
    """reference_integer_ops::Logistic on int16 with input_multiplier 0 and shift 0 (Q3.12 in,
    Q0.15 out), as lstm_internal::Sigmoid calls it: the int16 LOGISTIC with v = 3x."""
    return logistic_int16(np.asarray(x, np.int64), 3, 0).astype(np.int64)


def tanh_scaling(power: int) -> tuple[int, int]:
    """(multiplier, right shift) with which reference_integer_ops::Tanh (int16) scales its input
    for lstm_internal::Tanh(cell_state_scale_power = power): the left shift 15 + power - 3 goes
    into the multiplier 3 << shift when it is >= 0, else it becomes a rounding right shift of 3x.
    The gates' own tanh uses power -12: (3, 0)."""
    shift = 15 + power - 3
    return (3 << shift, 0) if shift >= 0 else (3, -shift)


def tanh16(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """reference_integer_ops::Tanh on int16 (the int16 TANH's arithmetic), Q0.15."""
    return tanh_int16(np.asarray(x, np.int64), multiplier, shift).astype(np.int64)


def mbqm64(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int64 x, ...), quant's one definition."""
    return quant.multiply_by_quantized_multiplier_64(acc, multiplier, shift)


def mul_rescale(a: np.ndarray, b: np.ndarray, mult: int, shift: int, zero_point: int,
                lo: int, hi: int) -> np.ndarray:
    """reference_integer_ops::MulElementwise of two int16 Q0.15/cell values (offsets 0)."""
    prod = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    return np.clip(quant.multiply_by_quantized_multiplier(prod, mult, shift) + zero_point, lo, hi)


# -- Prepare ---------------------------------------------------------------------------------

@dataclass
class LstmParams:
    """Everything the integer Eval needs besides the tensors' data."""

    batches: int
    time_steps: int
    n_input: int
    n_state: int
    time_major: bool
    int16: bool  # 16x8 (int16 activations, int64 biases) rather than 8x8->16
    input_offset: int  # minus the input's zero point
    hidden_offset: int  # minus the hidden state's zero point
    hidden_zero_point: int
    hidden_range: tuple[int, int]
    input_mult: list[int]  # per gate: the input FC's multiplier and shift
    input_shift: list[int]
    recurrent_mult: list[int]  # per gate: the recurrent FC's
    recurrent_shift: list[int]
    forget_mul: tuple[int, int]  # forget gate x cell state -> cell state
    update_mul: tuple[int, int]  # input gate x cell gate -> cell state
    hidden_mul: tuple[int, int]  # tanh(cell) x output gate -> hidden state
    cell_clip: int  # quantised clip, 0: none
    tanh_mult: int  # the cell state's scaling into tanh
    tanh_shift: int


def fc_multiplier(activation: Tensor, weights: Tensor) -> tuple[int, int]:
    """A gate FC's (multiplier, shift): double(s_x) * double(s_w) / double(2^-12)."""
    real = float(np.float64(np.float32(activation.scale)) * np.float64(np.float32(weights.scale))
                 / np.float64(GATE_INPUT_SCALE))
    return quant.quantize_multiplier(real)


def inter_gate_multiplier(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """CreateInterGateMulParams: double(s1) * double(s2) / double(s_out)."""
    real = float(np.float64(np.float32(s1)) * np.float64(np.float32(s2))
                 / np.float64(np.float32(s_out)))
    return quant.quantize_multiplier(real)


def cell_power(op: Op, cell: Tensor) -> int:
    """p with s_c = 2^p. TFLM's CheckedLog2 rounds log2(s_c) and ignores its own verdict; a scale
    that is not a power of two would make TFLM's tanh read the cell state at the wrong scale, so
    it is refused (TFLite's converter always makes it one)."""
    scale = float(np.float32(cell.scale))
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise UnsupportedError(f"{where(op)}: cell state {cell.name} has scale {scale:g}, not a "
                               "power of two; TFLite's integer LSTM needs 2^p (re-quantise it)")
    power = exponent - 1
    lo, hi = CELL_POWER_RANGE
    if not lo <= power <= hi:
        raise UnsupportedError(f"{where(op)}: cell state {cell.name} has scale 2^{power}, outside "
                               f"2^{lo}..2^{hi} where the int16 tanh's input scaling is defined")
    return power


def quantized_cell_clip(op: Op, cell: Tensor) -> int:
    """CreateLstmCellStateInfo: int16(min(max(clip / s_c, -32768), 32767)), truncating, applied
    only when cell_clip > 0."""
    clip = float(np.float32(op.attrs.get("cell_clip", 0.0)))
    if not clip > 0:
        return 0
    q = min(max(clip / float(np.float32(cell.scale)), -32768.0), 32767.0)
    return int(q)  # static_cast<int16_t> of a double in range truncates toward zero


def lstm_params(graph: Graph, op: Op) -> LstmParams:
    """TFLM's Prepare for one (already checked) LSTM op."""
    x, hidden, cell = (graph.tensor(op.inputs[k]) for k in (INPUT, HIDDEN_STATE, CELL_STATE))
    time_major = bool(op.attrs.get("time_major", False))
    batches, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    mults = [fc_multiplier(x, graph.tensor(op.inputs[k])) for k in INPUT_WEIGHTS]
    rmults = [fc_multiplier(hidden, graph.tensor(op.inputs[k])) for k in RECURRENT_WEIGHTS]
    power = cell_power(op, cell)
    tanh_mult, tanh_shift = tanh_scaling(power)
    s_c = float(cell.scale)
    return LstmParams(
        batches=batches, time_steps=steps, n_input=x.shape[2], n_state=hidden.shape[1],
        time_major=time_major, int16=x.dtype == "int16",
        input_offset=-x.zero_point, hidden_offset=-hidden.zero_point,
        hidden_zero_point=hidden.zero_point, hidden_range=QRANGE[hidden.dtype],
        input_mult=[m for m, _ in mults], input_shift=[s for _, s in mults],
        recurrent_mult=[m for m, _ in rmults], recurrent_shift=[s for _, s in rmults],
        forget_mul=inter_gate_multiplier(GATE_OUTPUT_SCALE, s_c, s_c),
        update_mul=inter_gate_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, s_c),
        hidden_mul=inter_gate_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, hidden.scale),
        cell_clip=quantized_cell_clip(op, cell), tanh_mult=tanh_mult, tanh_shift=tanh_shift)


# -- Eval ------------------------------------------------------------------------------------

def _gate_fc(p: LstmParams, rows: np.ndarray, offset: int, weights: np.ndarray,
             bias: np.ndarray | None, mult: int, shift: int) -> np.ndarray:
    """reference_integer_ops::FullyConnected into the int16 Q3.12 gate buffer."""
    acc = (rows.astype(np.int64) + offset) @ weights.astype(np.int64).T
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    if p.int16:
        scaled = mbqm64(acc, mult, shift)
    else:
        scaled = quant.multiply_by_quantized_multiplier(acc, mult, shift)
    return np.clip(scaled, INT16_MIN, INT16_MAX)


def lstm_eval(p: LstmParams, x: np.ndarray, input_weights: list[np.ndarray],
              recurrent_weights: list[np.ndarray], biases: list[np.ndarray],
              hidden: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Run all time steps; updates `hidden` and `cell` in place and returns the output.

    Batch rows never mix (each FC row, each element-wise op is per row), so TFLM's batch-major
    loop (one row, all steps, then the next row) equals stepping all rows together; both layouts
    run here as steps over [T, B, ...]."""
    seq = x if p.time_major else np.swapaxes(x, 0, 1)  # [T, B, I]
    h = hidden.reshape(p.batches, p.n_state).astype(np.int64)
    c = cell.reshape(p.batches, p.n_state).astype(np.int64)
    out = np.empty((p.time_steps, p.batches, p.n_state), np.int64)
    lo_h, hi_h = p.hidden_range
    for t in range(p.time_steps):
        z = [np.clip(_gate_fc(p, seq[t], p.input_offset, input_weights[g], biases[g],
                              p.input_mult[g], p.input_shift[g])
                     + _gate_fc(p, h, p.hidden_offset, recurrent_weights[g], None,
                                p.recurrent_mult[g], p.recurrent_shift[g]),
                     INT16_MIN, INT16_MAX) for g in range(4)]
        i_gate, f_gate, o_gate = sigmoid16(z[0]), sigmoid16(z[1]), sigmoid16(z[3])
        g_gate = tanh16(z[2], *tanh_scaling(-12))
        c = mul_rescale(f_gate, c, *p.forget_mul, 0, INT16_MIN, INT16_MAX)
        c = np.clip(c + mul_rescale(i_gate, g_gate, *p.update_mul, 0, INT16_MIN, INT16_MAX),
                    INT16_MIN, INT16_MAX)
        if p.cell_clip > 0:
            c = np.clip(c, -p.cell_clip, p.cell_clip)
        h = mul_rescale(tanh16(c, p.tanh_mult, p.tanh_shift), o_gate, *p.hidden_mul,
                        p.hidden_zero_point, lo_h, hi_h)
        out[t] = h
    hidden[...] = h.reshape(hidden.shape)
    cell[...] = c.reshape(cell.shape)
    return out if p.time_major else np.swapaxes(out, 0, 1)
