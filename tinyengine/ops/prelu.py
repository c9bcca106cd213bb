"""PRELU on int8 tensors: y = x for x >= 0, alpha * x below, alpha broadcast against x.

Reference semantics: TFLM's prelu.cc (CalculatePreluParams) and
reference_ops::BroadcastPrelu4DSlow. Two multipliers, in double arithmetic:
  (M1, s1) = QuantizeMultiplier(s_in / s_out),  (M2, s2) = QuantizeMultiplier(s_in * s_a / s_out)
With v = x - zp_in and a = alpha - zp_a: y = MultiplyByQuantizedMultiplier(v, M1, s1) for v >= 0,
else MultiplyByQuantizedMultiplier(v * a, M2, s2); plus zp_out, clamped to int8.

alpha is an int8 tensor quantised per tensor (TFLM reads one scale and zero point), usually a
constant per channel; its shape must broadcast into the input's (the output has the input's
shape), up to 4-D.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .activations import check_unary, rescale, where
from .base import (
    Arg,
    ConstArray,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import clamp_int8, tflite_import

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


def prelu_params(op: Op, x: Tensor, alpha: Tensor, out: Tensor) -> tuple[int, int, int, int]:
    """(M1, s1, M2, s2) of CalculatePreluParams."""
    s_in, s_a, s_out = (float(np.float32(t.scale)) for t in (x, alpha, out))
    m1, s1 = rescale(op, s_in / s_out, "identity")
    m2, s2 = rescale(op, s_in * s_a / s_out, "alpha")
    return m1, s1, m2, s2


def dims4(shape: tuple[int, ...]) -> list[int]:
    """A shape of rank <= 4 left-padded with 1s (broadcasting aligns on the right)."""
    return [int(d) for d in (1,) * (4 - len(shape)) + tuple(shape)]


@register
class Prelu(OpDef):
    kind = "PRELU"
    dtypes = ("int8",)
    patch = "elementwise"
    onnx_types = ("PRelu",)
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    def check(self, graph: Graph, op: Op) -> None:
        if len(op.inputs) != 2 or not all(op.inputs) or len(op.outputs) != 1:
            raise UnsupportedError(f"{where(op)}: needs an input and an alpha tensor and one "
                                   f"output, got inputs {op.inputs}")
        alpha = graph.tensor(op.inputs[1])
        if alpha.dtype != "int8" or alpha.quant is None or alpha.quant.per_channel:
            raise UnsupportedError(
                f"{where(op)}: alpha {alpha.name} is {alpha.dtype}"
                f"{' quantised per channel' if alpha.quant and alpha.quant.per_channel else ''};"
                " TFLite's int8 PRELU needs an int8 alpha with one scale and zero point")
        x, out = check_unary(graph, Op(op.name, op.kind, op.inputs[:1], op.outputs))
        if len(x.shape) > 4:
            raise UnsupportedError(f"{where(op)}: input {x.name} has rank {len(x.shape)}; up "
                                   "to 4-D is supported")
        a_shape = tuple(alpha.shape)
        fits = len(a_shape) <= len(x.shape) and all(
            d in (1, xd) for d, xd in zip(a_shape[::-1], x.shape[::-1]))
        if not fits:
            raise UnsupportedError(
                f"{where(op)}: alpha {alpha.name} {a_shape} does not broadcast into input "
                f"{x.name} {tuple(x.shape)}; each alpha dimension, aligned on the right, must "
                "be 1 or the input's")
        if not -128 <= alpha.zero_point <= 127:
            raise UnsupportedError(f"{where(op)}: zero point {alpha.zero_point} of alpha "
                                   f"{alpha.name} is not in the int8 range")
        prelu_params(op, x, alpha, out)

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]  # te_prelu_s8 reads each input element before writing the same element

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(const_operands=True)  # a float alpha becomes a per-tensor int8 const

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_prelu_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, alpha, out = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
        m1, s1, m2, s2 = prelu_params(op, x, alpha, out)
        v = inputs[0].astype(np.int64) - x.zero_point
        a = np.broadcast_to(inputs[1].astype(np.int64) - alpha.zero_point, v.shape)
        y = np.where(v >= 0, quant.multiply_by_quantized_multiplier(v, m1, s1),
                     quant.multiply_by_quantized_multiplier(v * a, m2, s2))
        return [clamp_int8(y + out.zero_point, -128, 127).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, alpha, out = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
        m1, s1, m2, s2 = prelu_params(op, x, alpha, out)
        consts: list[ConstArray] = []
        if alpha.is_const:
            assert alpha.data is not None
            consts.append(ConstArray("alpha", "int8_t", alpha.data.ravel()))
            alpha_arg = Arg("const", "alpha", "const int8_t")
        else:
            alpha_arg = Arg("tensor", alpha.name, "const int8_t")
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_prelu_params_t",
            params={"input": dims4(x.shape), "alpha": dims4(alpha.shape),
                    "input_offset": -x.zero_point, "alpha_offset": -alpha.zero_point,
                    "output_offset": out.zero_point,
                    "multiplier_identity": m1, "shift_identity": s1,
                    "multiplier_alpha": m2, "shift_alpha": s2},
            args=[Arg("tensor", x.name, "const int8_t"), alpha_arg,
                  Arg("tensor", out.name, "int8_t")],
            consts=consts,
            sources=["te_common.h", "te_prelu.h", "te_prelu.c"])

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 2, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("NONE")

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox

        x = b.activation(node.input[0])
        shape = tuple(b.shape(x))
        slope = b.const(node.input[1], "slope")
        try:
            fits = np.broadcast_shapes(slope.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits or slope.ndim > len(shape):
            raise ox.Unsupported(f"slope {slope.shape} does not broadcast into the input "
                                 f"{shape}")
        full = slope.reshape((1,) * (len(shape) - slope.ndim) + slope.shape)
        if len(shape) == 4:
            full = full.transpose(0, 2, 3, 1)  # NCHW -> NHWC
        dims = list(full.shape)
        while len(dims) > 1 and dims[0] == 1:
            dims.pop(0)
        alpha = b.add_const(f"{node.name or f'prelu_{i}'}.alpha", full.reshape(dims))
        b.emit("PRELU", node, [x, alpha], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        from ..quantize import qdq as qx

        out_rank = len(b.graph.tensor(op.outputs[0]).shape)
        alpha = b.graph.tensor(op.inputs[1])
        slope = b.dequantized(alpha.name)
        if out_rank == 4 and len(alpha.shape) < 4:  # NHWC broadcasting, made explicit in NCHW
            slope = b.node("Reshape", [slope, b.shape_const(dims4(alpha.shape))], op.name)
            slope = b.node("Transpose", [slope], op.name, perm=list(qx.NCHW))
        return b.node("PRelu", [b.dequantized(op.inputs[0]), slope], op.name)
