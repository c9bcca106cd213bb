"""SOFTMAX: int8 in, int8 out (scale 1/256, zero point -128), over the last axis.

Reference semantics: TFLM's kernels/softmax.cc takes, for int8 input and int8 output, the
quantised template `reference_ops::Softmax` (kernels/internal/reference/softmax.h) with
parameters from `CalculateSoftmaxParams` (micro/kernels/softmax_common.cc). The int16 LUT path
is for int16 input only and is not used here.

The algorithm, all in gemmlowp fixed point: for each row, the difference d = x - max(row) is
scaled by beta * input_scale into Q5.26 (differences below `diff_min` would overflow the
scaling and count as exp = 0); exp(d) is computed in Q0.31, the exps are summed in Q12.19, the
sum is inverted (GetReciprocal) and each exp is multiplied by the reciprocal and shifted down to
the 8-bit output, offset by -128.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import fixedpoint as fp
from .. import quant
from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import (
    check_int8_io,
    require_inputs,
    tflite_import,
    tflite_options,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SCALED_DIFF_INTEGER_BITS = 5  # kScaledDiffIntegerBits: the exp() argument is Q5.26
ACCUMULATION_INTEGER_BITS = 12  # kAccumulationIntegerBits: the sum of exps is Q12.19
OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128


def softmax_params(op: Op, input_scale: float, beta: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's CalculateSoftmaxParams.

    PreprocessSoftmaxScaling: real = min(beta * input_scale * 2^26, 2^31 - 1) in double, both
    operands being the float32 values of the model; QuantizeMultiplierGreaterThanOne(real).
    CalculateInputRadius(5, shift): floor((2^5 - 1) * 2^26 / 2^shift).
    """
    beta64 = float(np.float32(beta))
    scale64 = float(np.float32(input_scale))
    real = min(beta64 * scale64 * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise UnsupportedError(
            f"op {op.name} (SOFTMAX): beta {beta} times input scale {input_scale} is below "
            "2^-26; TFLite's softmax requires a larger product (TFLM rejects this model)")
    multiplier, shift = quant.quantize_multiplier(real)
    radius = (((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS)) >> shift
    return multiplier, shift, -radius


def softmax_int8(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """reference_ops::Softmax for int8 -> int8 over the last axis of x.

    Raises TinyEngineError for a row whose sum of exps leaves TFLM's range (TFLM aborts there:
    only possible with 512 or more elements near the row's maximum).
    """
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    valid = diff >= diff_min
    scaled = quant.multiply_by_quantized_multiplier_greater_than_one(diff, multiplier, left_shift)
    exps = fp.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    terms = np.where(valid, fp.rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = quant._wrap32(terms.sum(axis=1))  # gemmlowp's + wraps
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    bad = (sum_of_exps <= 0) | (exponent < 0) | (exponent > 31)
    if np.any(bad):
        raise TinyEngineError(
            f"softmax: the sum of exponentials of row {int(np.argmax(bad))} overflows TFLite's "
            "Q12.19 accumulator (TFLM aborts on this input)")
    prob = fp.rounding_divide_by_pot(fp.mul(shifted_scale[:, None], exps), exponent[:, None])
    out = np.where(valid, np.clip(prob + OUTPUT_ZERO_POINT, -128, 127), -128)
    return out.astype(np.int8).reshape(x.shape)


@register
class Softmax(OpDef):
    kind = "SOFTMAX"
    dtypes = ("int8",)
    patch = "none"
    onnx_types = ("Softmax",)
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "SoftmaxOptions")
        return tflite_import({"beta": float(o.Beta()) if o else 1.0}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.SoftmaxOptionsT()
        o.beta = float(op.attrs.get("beta", 1.0))
        return TfliteLowering("SoftmaxOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        _softmax_from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _softmax_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(fixed={op.outputs[0]: (OUTPUT_SCALE, OUTPUT_ZERO_POINT)})

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_softmax_s8"


    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype != "int8":
            raise UnsupportedError(
                f"op {op.name} (SOFTMAX): input {x.name} is {x.dtype}; only int8 softmax is "
                "supported (quantise the model to int8)")
        if out.dtype != "int8":
            raise UnsupportedError(
                f"op {op.name} (SOFTMAX): output {out.name} is {out.dtype}; only int8 output is "
                "supported")
        check_int8_io(graph, op)
        if len(x.shape) < 1 or tuple(x.shape) != tuple(out.shape):
            raise UnsupportedError(
                f"op {op.name} (SOFTMAX): input shape {x.shape} and output shape {out.shape} "
                "must be equal and of rank >= 1")
        if np.float32(out.scale) != np.float32(OUTPUT_SCALE) or out.zero_point != -128:
            raise UnsupportedError(
                f"op {op.name} (SOFTMAX): output {out.name} has scale {out.scale} and zero point "
                f"{out.zero_point}; TFLite's int8 softmax needs exactly 1/256 and -128")
        softmax_params(op, x.scale, float(op.attrs["beta"]))

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]  # each row's max and sum are taken before the row is written

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xt = graph.tensor(op.inputs[0])
        try:
            return [softmax_int8(inputs[0], *softmax_params(op, xt.scale, op.attrs["beta"]))]
        except TinyEngineError as e:
            raise TinyEngineError(f"op {op.name}: {e}") from None

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt = graph.tensor(op.inputs[0])
        multiplier, shift, diff_min = softmax_params(op, xt.scale, float(op.attrs["beta"]))
        depth = int(xt.shape[-1])
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_softmax_params_t",
            params={"outer": xt.size // depth, "depth": depth, "input_multiplier": multiplier,
                    "input_left_shift": shift, "diff_min": diff_min},
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=["te_common.h", "te_fixedpoint.h", "te_softmax.h", "te_softmax.c"],
        )


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _softmax_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    x = b.activation(node.input[0])
    shape = b.shape(x)
    rank = len(shape)
    # Before opset 13 Softmax flattened everything from `axis` on, and axis defaulted to 1.
    axis = int(ox.node_attrs(node).get("axis", -1 if b.opset >= 13 else 1)) % rank
    # NCHW's channel axis is the IR's last axis; any other tensor keeps its axes.
    channel = 1 if rank == 4 else rank - 1
    if axis != channel or (b.opset < 13 and int(np.prod(shape[axis + 1:])) != 1):
        raise ox.Unsupported(f"axis {axis} (opset {b.opset}): only a softmax over channels (the "
                           "engine's last axis) is supported")
    b.emit("SOFTMAX", node, [x], node.output[0], {"beta": 1.0})




def _softmax_to_qdq(b: QdqBuilder, op: Op) -> str:
    x = b.graph.tensor(op.inputs[0])
    v = b.dequantized(x.name)
    beta = float(op.attrs.get("beta", 1.0))
    if beta != 1.0:
        v = b.node("Mul", [v, b.const("beta", np.array(beta, np.float32))], op.name)
    return b.node("Softmax", [v], op.name, axis=1 if len(x.shape) == 4 else -1)
