"""ADD: int8 or int16 element-wise addition of two tensors, with numpy-style broadcasting up to
4-D.

Reference semantics: TFLM's add.cc, i.e. reference_integer_ops::AddFunc applied element-wise (or
through BroadcastAdd6DSlow when the shapes differ). Both inputs are brought to a common scale of
twice the larger input scale with 20 bits of headroom, added, and rescaled to the output. TFLM
builds with double rounding (TFLITE_SINGLE_ROUNDING unset), so every rescaling is
RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), -shift).

int16 (TFLite's 16x8 mode, symmetric): the same arithmetic with 15 bits of headroom instead of 20
(CalculateOpDataAdd: 65535 << 15 still fits int32), which also changes the output multiplier.
TFLite (not Micro) has a second int16 path for power-of-two scales (pot_scale_int16: a rounding
shift and a saturating add); TFLM's add.cc always calls reference_ops::Add with pot_scale = false,
so every int16 ADD takes the general path above, power-of-two scales included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import (
    CValue,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import (
    SUFFIX,
    act_limits,
    activation_options_import,
    activation_options_lowering,
    check_activation,
    check_io,
    clamp_to,
    operand_args,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

LEFT_SHIFT = 20  # TFLM's headroom for int8 inputs
LEFT_SHIFT_INT16 = 15  # and for int16 ones: |x| <= 65535 << 15 stays inside int32


def left_shift_for(dtype: str) -> int:
    """CalculateOpDataAdd / CalculateOpDataSub's headroom for an output of this type."""
    return LEFT_SHIFT_INT16 if dtype == "int16" else LEFT_SHIFT


@dataclass
class AddRescale:
    """The integer parameters TFLM's CalculateOpDataAdd derives from the three scales."""

    input1: tuple[int, int]  # (multiplier, shift <= 0)
    input2: tuple[int, int]
    output: tuple[int, int]


def add_rescale(a: Tensor, b: Tensor, out: Tensor) -> AddRescale:
    """QuantizeMultiplierSmallerThanOneExp of each real multiplier, in TFLM's double arithmetic,
    with the headroom of the output's type."""
    twice_max = 2.0 * max(a.scale, b.scale)  # max of the float32 scales, then double
    real_out = twice_max / ((1 << left_shift_for(out.dtype)) * out.scale)
    return AddRescale(quant.quantize_multiplier(a.scale / twice_max),
                      quant.quantize_multiplier(b.scale / twice_max),
                      quant.quantize_multiplier(real_out))


def dims4_padded(shape: tuple[int, ...]) -> list[CValue]:
    """A shape of rank <= 4 as NHWC dims, left-padded with 1s (numpy broadcasting aligns right)."""
    assert len(shape) <= 4, shape
    return [int(s) for s in (1,) * (4 - len(shape)) + tuple(shape)]


def c_shapes(a: Tensor, b: Tensor,
             out: tuple[int, ...]) -> tuple[list[CValue], list[CValue], list[CValue]]:
    """4-D shapes the C kernel iterates; equal shapes of any rank flatten to one row."""
    if a.shape == b.shape:
        flat = dims4_padded((int(np.prod(out, dtype=np.int64)),))
        return flat, flat, flat
    return dims4_padded(a.shape), dims4_padded(b.shape), dims4_padded(out)


@register
class Add(OpDef):
    kind = "ADD"
    dtypes = ("int8", "int16")
    patch = "elementwise"
    onnx_types = ("Add",)
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return activation_options_import(operator, "AddOptions", inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return activation_options_lowering(fb, op, "AddOptions")

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        _add_from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _add_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # TFLite needs 2 * max(input scales) < 2^shift * output scale (shift 20, or 15 for
        # int16); an output whose range nearly cancels out (x + (-x)) gets the smallest scale
        # that satisfies it.
        shift = left_shift_for(graph.tensor(op.outputs[0]).dtype)
        return QuantRule(const_operands=True,
                         output_scale_floor=lambda s: 2.0 * max(s) / (1 << shift) * 1.01)

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_add_{SUFFIX[graph.tensor(op.outputs[0]).dtype]}"

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 2 or not all(op.inputs):
            raise UnsupportedError(f"{where}: needs exactly two inputs, got {op.inputs}")
        dtype = check_io(graph, op, n_act_inputs=2, dtypes=self.dtypes)
        check_activation(op)
        a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        try:
            out = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise UnsupportedError(f"{where}: input shapes {a.shape} and {b.shape} do not "
                                   "broadcast") from None
        if a.shape != b.shape and len(out) > 4:
            raise UnsupportedError(f"{where}: broadcasting {a.shape} with {b.shape} needs more "
                                   "than 4 dimensions; only up to 4-D broadcasting is supported")
        for t in (a, b):  # int16 zero points are 0 (check_io)
            if not -128 <= t.zero_point <= 127:
                raise UnsupportedError(f"{where}: zero point {t.zero_point} of {t.name} is not "
                                       "int8")
        o = graph.tensor(op.outputs[0])
        real_out = 2.0 * max(a.scale, b.scale) / ((1 << left_shift_for(dtype)) * o.scale)
        if real_out >= 1.0:
            raise UnsupportedError(f"{where}: output {o.name} scale {o.scale} is too small for "
                                   f"input scales {a.scale} and {b.scale} (TFLite needs the "
                                   "output rescale below 1)")

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # te_add_s8/_s16 read both operands of an element before writing it, so the output may
        # overwrite an operand of the output's full shape (not one that is broadcast).
        out = graph.tensor(op.outputs[0])
        return [i for i, n in enumerate(op.inputs[:2])
                if not graph.tensor(n).is_const and graph.tensor(n).shape == out.shape]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        return [tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x1, x2 = inputs
        at, bt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        r = add_rescale(at, bt, ot)
        left_shift = left_shift_for(ot.dtype)

        def scaled(x: np.ndarray, t: Tensor, mult_shift: tuple[int, int]) -> np.ndarray:
            # |x - zp| << shift is at most 255 << 20 (int8) or 32768 << 15 (int16): inside int32.
            shifted = (x.astype(np.int64) - t.zero_point) << left_shift
            return quant.multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, *mult_shift)

        raw_sum = scaled(x1, at, r.input1) + scaled(x2, bt, r.input2)
        y = quant.multiply_by_quantized_multiplier_smaller_than_one_exp(raw_sum, *r.output)
        lo, hi = act_limits(op, ot)
        return [clamp_to(y + ot.zero_point, ot, lo, hi).reshape(ot.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        at, bt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        r = add_rescale(at, bt, ot)
        lo, hi = act_limits(op, ot)
        d1, d2, dout = c_shapes(at, bt, ot.shape)
        args, consts = operand_args(graph, op)
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_add_params_t",
            params={
                "input1": [d1, -at.zero_point, r.input1[0], r.input1[1]],
                "input2": [d2, -bt.zero_point, r.input2[0], r.input2[1]],
                "output": dout,
                "left_shift": left_shift_for(ot.dtype),
                "output_multiplier": r.output[0], "output_shift": r.output[1],
                "output_offset": ot.zero_point,
                "act_min": lo, "act_max": hi,
            },
            args=args,
            consts=consts,
            sources=["te_common.h", "te_add.h", "te_add.c"],
        )


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _add_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    if any(b.name(n) in b.consts for n in node.input):
        raise ox.Unsupported("it adds a constant that is not a per-channel bias after a "
                           "Conv/Gemm/MatMul, so it cannot be folded")
    x, y = (b.activation(n) for n in node.input)
    if len(b.shape(x)) != len(b.shape(y)):
        raise ox.Unsupported(f"inputs of rank {len(b.shape(x))} and {len(b.shape(y))}")
    tail = ox.fold_tail(b, node.output[0], 0, affine=False)
    b.emit("ADD", node, [x, y], tail.output, {"activation": tail.activation})


def _add_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    out_rank = len(b.graph.tensor(op.outputs[0]).shape)
    operands = []
    for n in op.inputs:
        t = b.graph.tensor(n)
        v = b.dequantized(n)
        if out_rank == 4 and len(t.shape) < 4:  # qx.NHWC broadcasting, made explicit in qx.NCHW
            padded = (1,) * (4 - len(t.shape)) + tuple(t.shape)
            v = b.node("Reshape", [v, b.shape_const(padded)], op.name)
            v = b.node("Transpose", [v], op.name, perm=list(qx.NCHW))
        operands.append(v)
    return b.node("Add", operands, op.name)
