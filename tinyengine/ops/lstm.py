"""UNIDIRECTIONAL_SEQUENCE_LSTM, integer: int8 activations with an int16 cell state (TFLite's
8x8->16 LSTM, int32 biases) and 16x8 (int16 activations, int8 weights, int64 biases, int16 cell).

Reference semantics: TFLM's unidirectional_sequence_lstm.cc with lstm_eval.h / lstm_eval.cc /
lstm_eval_common.cc, the integer Eval of the standard LSTM (lstm_params.py holds the arithmetic
and says how Prepare derives each parameter). Like TFLM we implement only the standard LSTM:
all four gates (no CIFG), no peephole, no projection, no layer norm, the cell gate's activation
TANH; the op takes TFLite's 24 inputs, absent ones "" (index -1).

State: the output (hidden) state (input 18) and the cell state (input 19) are variable tensors
that carry from one invocation to the next (`state_inputs`); `reference` updates them in place,
and the C kernel gets pointers into the state region.

The C kernel (csrc/te_lstm.c) needs no scratch where TFLM takes four gate buffers: the four
gates of one cell depend only on the input row, the previous hidden state and that cell's
weight rows, so it computes them cell by cell, updates the cell state in place and writes the new
hidden value straight into the step's output row; the hidden state, which every cell's recurrent
product reads, is copied from that row once the step is done.

Not applicable: `from_onnx` and `to_qdq` (ONNX's LSTM node has another gate order, layout and
quantisation story; models come as TFLite), `quant_rule` (post-training quantisation of a float
LSTM needs the converter's intermediate scales: quantise it with TFLite's converter),
`scratch_bytes` (none, above), `window` (not windowed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, ConstArray, OpDef, OpEmission, TfliteImport, TfliteLowering, register
from .common import CTYPE, TFLITE_ACTIVATION, keep_inputs, tflite_options
from .lstm_params import (
    BIASES,
    CELL_STATE,
    GATES,
    HIDDEN_STATE,
    INPUT,
    INPUT_WEIGHTS,
    INT64_ACC_LIMIT,
    LAYER_NORM,
    MAX_INT64_MBQM_SHIFT,
    N_INPUTS,
    PEEPHOLE,
    PROJECTION,
    RECURRENT_WEIGHTS,
    lstm_eval,
    lstm_params,
    where,
)

if TYPE_CHECKING:
    from types import ModuleType

SOURCES = ["te_common.h", "te_requant16.h", "te_lstm.h", "te_lstm.c"]
BIAS_DTYPE = {"int8": "int32", "int16": "int64"}
# |x + offset| of an int8 input is at most 255; of a symmetric int16 one at most 32768.
MAX_ABS_INPUT = {"int8": 255, "int16": 32768}


def _role(k: int) -> str:
    """How messages name input k of the 24."""
    if k in INPUT_WEIGHTS:
        return f"input-to-{GATES[INPUT_WEIGHTS.index(k)]} weights"
    if k in RECURRENT_WEIGHTS:
        return f"recurrent-to-{GATES[RECURRENT_WEIGHTS.index(k)]} weights"
    if k in BIASES:
        return f"{GATES[BIASES.index(k)]} gate bias"
    return {INPUT: "input", HIDDEN_STATE: "output state", CELL_STATE: "cell state"}.get(
        k, f"input {k}")


def _check_structure(op: Op) -> None:
    """The standard LSTM's inputs: present where TFLM needs them, absent for the variants."""
    if len(op.inputs) != N_INPUTS or len(op.outputs) != 1:
        raise UnsupportedError(f"{where(op)}: takes TFLite's {N_INPUTS} inputs and 1 output, got "
                               f"{len(op.inputs)} inputs and {len(op.outputs)} outputs")
    present = [bool(n) for n in op.inputs]
    if not any(present[k] for k in (1, 5, 12)):
        raise UnsupportedError(f"{where(op)}: no input gate (inputs 1, 5 and 12 absent): CIFG "
                               "(coupled input and forget gates) is not supported, as in TFLM")
    variants = [(PEEPHOLE, "peephole weights"), (PROJECTION, "projection weights/bias"),
                (LAYER_NORM, "layer-norm coefficients")]
    for positions, what in variants:
        for k in positions:
            if present[k]:
                raise UnsupportedError(f"{where(op)}: input {k} ({op.inputs[k]}) holds "
                                       f"{what}; only the standard LSTM (no peephole, projection "
                                       "or layer norm) is supported, as in TFLM")
    required = (INPUT, *INPUT_WEIGHTS, *RECURRENT_WEIGHTS, *BIASES, HIDDEN_STATE, CELL_STATE)
    for k in required:
        if not present[k]:
            raise UnsupportedError(f"{where(op)}: its {_role(k)} (input {k}) is absent; the "
                                   "standard LSTM needs it")
    if op.attrs.get("activation", "TANH") != "TANH":
        raise UnsupportedError(f"{where(op)}: cell gate activation {op.attrs.get('activation')}"
                               " is not supported; TFLM's integer LSTM runs TANH only")


def _check_activation(op: Op, k: int, t: Tensor, dtype: str) -> None:
    if t.dtype != dtype or t.quant is None or t.quant.per_channel:
        raise UnsupportedError(f"{where(op)}: {_role(k)} {t.name} is {t.dtype}; it must be {dtype} "
                               "quantised per tensor, the type of the input")
    if dtype == "int16" and t.zero_point != 0:
        raise UnsupportedError(f"{where(op)}: int16 {_role(k)} {t.name} has zero point "
                               f"{t.zero_point}; TFLite's 16x8 LSTM takes symmetric int16 (0)")


def _check_tensors(graph: Graph, op: Op) -> str:
    """Types, quantisation and shapes; returns the activation type."""
    x = graph.tensor(op.inputs[INPUT])
    dtype = x.dtype
    if dtype not in BIAS_DTYPE:
        raise UnsupportedError(f"{where(op)}: input {x.name} is {dtype}; the integer LSTM runs on "
                               "int8 (8x8->16) or int16 (16x8) activations")
    out = graph.tensor(op.outputs[0])
    for k, t in ((INPUT, x), (HIDDEN_STATE, graph.tensor(op.inputs[HIDDEN_STATE]))):
        _check_activation(op, k, t, dtype)
    if out.dtype != dtype or out.quant is None or out.quant.per_channel or (
            dtype == "int16" and out.zero_point != 0):
        raise UnsupportedError(f"{where(op)}: output {out.name} must be {dtype} quantised per "
                               "tensor (zero point 0 for int16), the type of the input")
    hidden, cell = graph.tensor(op.inputs[HIDDEN_STATE]), graph.tensor(op.inputs[CELL_STATE])
    for k, t in ((HIDDEN_STATE, hidden), (CELL_STATE, cell)):
        if not t.variable:
            raise UnsupportedError(f"{where(op)}: its {_role(k)} {t.name} (input {k}) must be a "
                                   "variable (state) tensor, as TFLM requires")
    if cell.dtype != "int16" or cell.quant is None or cell.quant.per_channel \
            or cell.zero_point != 0:
        raise UnsupportedError(f"{where(op)}: cell state {cell.name} must be int16 quantised per "
                               "tensor with zero point 0 (TFLite's integer LSTM keeps it so)")
    if len(x.shape) != 3:
        raise UnsupportedError(f"{where(op)}: input {x.name} has shape {x.shape}; expected 3-D "
                               "[batch, time, features] (or [time, batch, features], time major)")
    if len(hidden.shape) != 2:
        raise UnsupportedError(f"{where(op)}: output state {hidden.name} has shape "
                               f"{hidden.shape}; expected [batch, units]")
    time_major = bool(op.attrs.get("time_major", False))
    batches, n_in, n_state = x.shape[1 if time_major else 0], x.shape[2], hidden.shape[1]
    if hidden.size != batches * n_state or cell.size != batches * n_state:
        raise UnsupportedError(f"{where(op)}: output state {hidden.shape} and cell state "
                               f"{cell.shape} must hold {batches} x {n_state} values")
    _check_weights(graph, op, dtype, n_in, n_state)
    return dtype


def _check_weights(graph: Graph, op: Op, dtype: str, n_in: int, n_state: int) -> None:
    """Per-tensor symmetric int8 weights ([units, in] and [units, units]), biases of the
    activation's bias type, and accumulators that stay in range."""
    for k in INPUT_WEIGHTS + RECURRENT_WEIGHTS:
        w = graph.tensor(op.inputs[k])
        shape = (n_state, n_in) if k in INPUT_WEIGHTS else (n_state, n_state)
        if w.dtype != "int8" or w.quant is None or not w.is_const or tuple(w.shape) != shape:
            raise UnsupportedError(f"{where(op)}: {_role(k)} {w.name} {w.dtype} {w.shape} must "
                                   f"be constant int8 {shape}")
        if w.quant.per_channel:
            # TFLM's LSTM builds each gate FC with FullyConnectedParamsQuantized, which keeps the
            # per-tensor multiplier only.
            raise UnsupportedError(f"{where(op)}: {_role(k)} {w.name} are quantised per channel; "
                                   "TFLM's LSTM applies one scale per weight matrix")
        if w.zero_point != 0:
            raise UnsupportedError(f"{where(op)}: {_role(k)} {w.name} have zero point "
                                   f"{w.zero_point}; TFLite's LSTM weights are symmetric (0)")
    for g, k in enumerate(BIASES):
        b = graph.tensor(op.inputs[k])
        if b.dtype != BIAS_DTYPE[dtype] or not b.is_const or tuple(b.shape) != (n_state,):
            raise UnsupportedError(f"{where(op)}: {_role(k)} {b.name} {b.dtype} {b.shape} must be "
                                   f"a constant {BIAS_DTYPE[dtype]} vector of {n_state} units")
        _check_accumulators(graph, op, dtype, g)


def _check_accumulators(graph: Graph, op: Op, dtype: str, gate: int) -> None:
    """The int8 path accumulates bias + W (x + offset) in int32 (C's signed overflow is
    undefined), the 16x8 path in int64 within the int64 rescale's domain |acc| < 2^47."""
    limit = (1 << 31) - 1 if dtype == "int8" else INT64_ACC_LIMIT - 1
    products = [(op.inputs[INPUT_WEIGHTS[gate]], op.inputs[BIASES[gate]]),
                (op.inputs[RECURRENT_WEIGHTS[gate]], "")]
    for w_name, b_name in products:
        w = graph.tensor(w_name).data
        b = graph.tensor(b_name).data if b_name else None
        if w is None or (b_name and b is None):
            continue  # values not known yet (a network description)
        bound = MAX_ABS_INPUT[dtype] * np.abs(w.astype(np.int64)).sum(axis=1)
        if b is not None:
            bound = bound + np.abs(b.astype(np.int64))
        if np.any(bound > limit):
            u = int(np.argmax(bound > limit))
            raise UnsupportedError(
                f"{where(op)}: the {GATES[gate]} gate's product with {w_name} (unit {u}) can "
                f"reach {int(bound[u])}, beyond the {'int32' if dtype == 'int8' else '2^47'} "
                "accumulator; the weights or bias are out of range")


@register
class UnidirectionalSequenceLstm(OpDef):
    kind = "UNIDIRECTIONAL_SEQUENCE_LSTM"
    dtypes = ("int8", "int16")
    patch = "none"
    not_applicable = frozenset({"window", "scratch_bytes", "from_onnx", "to_qdq", "quant_rule"})

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [HIDDEN_STATE, CELL_STATE]

    def check(self, graph: Graph, op: Op) -> None:
        _check_structure(op)
        dtype = _check_tensors(graph, op)
        p = lstm_params(graph, op)  # raises for multipliers outside Q31
        if dtype == "int16":
            worst = max(p.input_shift + p.recurrent_shift)
            if worst > MAX_INT64_MBQM_SHIFT:
                raise UnsupportedError(
                    f"{where(op)}: a gate's input or recurrent scale product is 2^{worst} times "
                    "the gate's 2^-12; the 16x8 LSTM's int64 rescale takes shifts up to "
                    f"{MAX_INT64_MBQM_SHIFT} (fix the weight or activation scales)")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x, hidden = graph.tensor(op.inputs[INPUT]), graph.tensor(op.inputs[HIDDEN_STATE])
        return [(x.shape[0], x.shape[1], hidden.shape[-1])]

    def macs(self, graph: Graph, op: Op) -> int:
        x, hidden = graph.tensor(op.inputs[INPUT]), graph.tensor(op.inputs[HIDDEN_STATE])
        rows = x.shape[0] * x.shape[1]  # batch x time
        n_state = hidden.shape[-1]
        return rows * 4 * n_state * (x.shape[2] + n_state)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        p = lstm_params(graph, op)
        out_t = graph.tensor(op.outputs[0])
        y = lstm_eval(p, inputs[INPUT], [inputs[k] for k in INPUT_WEIGHTS],
                      [inputs[k] for k in RECURRENT_WEIGHTS], [inputs[k] for k in BIASES],
                      inputs[HIDDEN_STATE], inputs[CELL_STATE])
        return [y.astype(out_t.dtype).reshape(out_t.shape)]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_lstm_s16" if graph.tensor(op.inputs[INPUT]).dtype == "int16" else "te_lstm_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        p = lstm_params(graph, op)
        dtype = graph.tensor(op.inputs[INPUT]).dtype
        act, bias = CTYPE[dtype], CTYPE[BIAS_DTYPE[dtype]]

        def stacked(positions: tuple[int, ...]) -> np.ndarray:
            data = [graph.tensor(op.inputs[k]).data for k in positions]
            assert all(d is not None for d in data), f"{op.name}: weights without values"
            return np.concatenate([np.ravel(d) for d in data])  # type: ignore[arg-type]

        lo, hi = p.hidden_range
        params: dict[str, Any] = {
            "batches": p.batches, "time_steps": p.time_steps, "n_input": p.n_input,
            "n_state": p.n_state, "time_major": int(p.time_major),
            "input_offset": p.input_offset, "hidden_offset": p.hidden_offset,
            "hidden_zero_point": p.hidden_zero_point, "hidden_min": lo, "hidden_max": hi,
            "input_mult": p.input_mult, "input_shift": p.input_shift,
            "recurrent_mult": p.recurrent_mult, "recurrent_shift": p.recurrent_shift,
            "forget_mult": p.forget_mul[0], "forget_shift": p.forget_mul[1],
            "update_mult": p.update_mul[0], "update_shift": p.update_mul[1],
            "hidden_mult": p.hidden_mul[0], "hidden_shift": p.hidden_mul[1],
            "cell_clip": p.cell_clip, "tanh_mult": p.tanh_mult, "tanh_shift": p.tanh_shift,
        }
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_lstm_params_t",
            params=params,
            args=[Arg("tensor", op.inputs[INPUT], f"const {act}"),
                  Arg("const", "input_weights", "const int8_t"),
                  Arg("const", "recurrent_weights", "const int8_t"),
                  Arg("const", "bias", f"const {bias}"),
                  Arg("tensor", op.inputs[HIDDEN_STATE], act),
                  Arg("tensor", op.inputs[CELL_STATE], "int16_t"),
                  Arg("tensor", op.outputs[0], act)],
            consts=[ConstArray("input_weights", "int8_t", stacked(INPUT_WEIGHTS)),
                    ConstArray("recurrent_weights", "int8_t", stacked(RECURRENT_WEIGHTS)),
                    ConstArray("bias", bias, stacked(BIASES))],
            sources=list(SOURCES),
        )

    # -- TFLite ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        if len(inputs) != N_INPUTS:
            raise UnsupportedError(f"takes TFLite's {N_INPUTS} inputs, got {len(inputs)}")
        o = tflite_options(operator, "UnidirectionalSequenceLSTMOptions")
        if o is None:
            raise UnsupportedError("has no UnidirectionalSequenceLSTMOptions")
        if o.AsymmetricQuantizeInputs():
            raise UnsupportedError("asymmetric_quantize_inputs (hybrid, float activations) is not "
                                   "supported; give a fully integer model")
        if o.DiagonalRecurrentTensors():
            raise UnsupportedError("diagonal_recurrent_tensors is not supported (TFLM has none)")
        attrs = {"activation": TFLITE_ACTIVATION.get(o.FusedActivationFunction(), "NONE"),
                 "cell_clip": float(o.CellClip()), "proj_clip": float(o.ProjClip()),
                 "time_major": bool(o.TimeMajor())}
        return TfliteImport(attrs, keep_inputs(N_INPUTS, inputs))

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.UnidirectionalSequenceLSTMOptionsT()
        o.fusedActivationFunction = int(getattr(fb.ActivationFunctionType,
                                                op.attrs.get("activation", "TANH")))
        o.cellClip = float(op.attrs.get("cell_clip", 0.0))
        o.projClip = float(op.attrs.get("proj_clip", 0.0))
        o.timeMajor = bool(op.attrs.get("time_major", False))
        o.asymmetricQuantizeInputs = False
        return TfliteLowering("UnidirectionalSequenceLSTMOptions", o)
