"""SOFTMAX over the last axis: int8 -> int8, int8 -> int16 and int16 -> int16.

Reference semantics: TFLM's kernels/softmax.cc with parameters from `CalculateSoftmaxParams`
(micro/kernels/softmax_common.cc). For int8 input it runs the quantised template
`reference_ops::Softmax<int8_t, OutputT>` (kernels/internal/reference/softmax.h), all in gemmlowp
fixed point: for each row, the difference d = x - max(row) is scaled by beta * input_scale into
Q5.26 (differences below `diff_min` would overflow the scaling and count as exp = 0); exp(d) is
computed in Q0.31, the exps are summed in Q12.19, the sum is inverted (GetReciprocal) and each
exp is multiplied by the reciprocal and shifted down to the output's bits, offset by the type's
minimum. The output is int8 (scale exactly 1/256, zero point -128) or int16 (scale 1/65536 to
within 0.1%, zero point -32768), which is how keyword_scrambled's last op writes its int16
output from int8 logits.

int16 input (int16 output: scale 1/32768, zero point 0) takes another algorithm,
`reference_ops::SoftmaxInt16`: exp(x - max) from a 513-entry interpolated table over [-10, 0]
(the input differences are rescaled onto it by s_in * beta * 65535 / 10), summed in int32, the
sum normalised and inverted through a second table of 1 / (1 + x), and each exp multiplied by
the inverse with a rounding right shift. TFLM fills both tables in float32 at Prepare; they
depend on nothing in the model, so they are computed once here (bit for bit as TFLM's float
code does) and go to flash as constants: the C kernel is integer only.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import fixedpoint as fp
from .. import quant
from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, Tensor
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
from .common import CTYPE, check_io, require_inputs, tflite_import, tflite_options, where

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SCALED_DIFF_INTEGER_BITS = 5  # kScaledDiffIntegerBits: the exp() argument is Q5.26
ACCUMULATION_INTEGER_BITS = 12  # kAccumulationIntegerBits: the sum of exps is Q12.19
OUTPUT_SCALE = 1.0 / 256
OUTPUT_ZERO_POINT = -128
# (input dtype, output dtype) -> (output scale, zero point) TFLM's Prepare requires. int8 output
# scales must be exact; int16 ones within 0.1% (TF_LITE_ENSURE_NEAR in float32).
OUTPUT_PARAMS = {("int8", "int8"): (OUTPUT_SCALE, OUTPUT_ZERO_POINT),
                 ("int8", "int16"): (1.0 / 65536, -32768),
                 ("int16", "int16"): (1.0 / 32768, 0)}
SCALE_TEXT = {256: "exactly 1/256", 65536: "1/65536 (to within 0.1%)",
              32768: "1/32768 (to within 0.1%)"}
KERNELS = {("int8", "int8"): "te_softmax_s8", ("int8", "int16"): "te_softmax_s8_s16",
           ("int16", "int16"): "te_softmax_s16"}
INT16_MAX_DEPTH = 65536  # SoftmaxInt16 sums up to 32767 per element in int32
LUT_SIZE = 513


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


def softmax_int8(x: np.ndarray, multiplier: int, left_shift: int, diff_min: int,
                 out_dtype: str = "int8") -> np.ndarray:
    """reference_ops::Softmax<int8_t, OutputT> over the last axis of x; OutputT int8 or int16.

    Raises TinyEngineError for a row whose sum of exps leaves TFLM's range (TFLM aborts there:
    only possible with 512 or more elements near the row's maximum).
    """
    bits = 8 if out_dtype == "int8" else 16
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    valid = diff >= diff_min
    scaled = quant.multiply_by_quantized_multiplier_greater_than_one(diff, multiplier, left_shift)
    exps = fp.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    terms = np.where(valid, fp.rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = quant._wrap32(terms.sum(axis=1))  # gemmlowp's + wraps
    shifted_scale, num_bits_over_unit = fp.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - bits
    bad = (sum_of_exps <= 0) | (exponent < 0) | (exponent > 31)
    if np.any(bad):
        raise TinyEngineError(
            f"softmax: the sum of exponentials of row {int(np.argmax(bad))} overflows TFLite's "
            "Q12.19 accumulator (TFLM aborts on this input)")
    prob = fp.rounding_divide_by_pot(fp.mul(shifted_scale[:, None], exps), exponent[:, None])
    out = np.where(valid, np.clip(prob + lo, lo, hi), lo)
    return out.astype(out_dtype).reshape(x.shape)


# -- int16 input: SoftmaxInt16 ----------------------------------------------------------------

def _roundf(x: np.float32) -> np.float32:
    """std::round on a float: half away from zero, exactly (no x + 0.5 rounding error)."""
    t = np.trunc(x)
    return np.float32(t + np.sign(x)) if abs(x - t) >= np.float32(0.5) else np.float32(t)


def _lut_populate_int16(input_scale: np.float32, input_zero_point: int,
                        output_scale: np.float32, fn: Any) -> np.ndarray:
    """TFLite's LUTPopulateInt16<float> (output zero point 0): 512 samples of fn over the input
    range, each biased by half the error of linear interpolation at the interval's midpoint, and
    the value at the range's end; every step in float32, as TFLM's Prepare computes it."""
    f = np.float32
    in_min = f(input_scale * f(-32768 - input_zero_point))
    in_max = f(input_scale * f(32767 - input_zero_point))
    out_min, out_max = f(output_scale * f(-32768)), f(output_scale * f(32767))
    step = f((in_max - in_min) / f(512))
    half_step = f(step / f(2))
    scaling_inv = f(f(65536) / f(out_max - out_min))
    lut = np.zeros(LUT_SIZE, np.int16)
    for i in range(512):
        x = f(in_min + f(f(i) * step))
        val, mid = fn(x), fn(f(x + half_step))
        nxt = fn(f(in_min + f(f(i + 1) * step)))
        sample = _roundf(f(val * scaling_inv))
        interp = _roundf(f(f(f(nxt * scaling_inv) + sample) / f(2)))
        bias = _roundf(f(f(interp - _roundf(f(mid * scaling_inv))) / f(2)))
        lut[i] = int(min(max(f(sample - bias), f(-32768)), f(32767)))
    lut[512] = int(min(max(_roundf(f(fn(in_max) * scaling_inv)), f(-32768)), f(32767)))
    return lut


def _expf(x: np.float32) -> np.float32:
    # TFLM calls the C library's expf, which may differ from this by one unit in the last place
    # on a few arguments; the table comes out the same (tests/test_ops_16x8_activations.py
    # builds it with the C library's expf too and compares).
    return np.float32(np.exp(np.float64(x)))


def _one_over_one_plus(x: np.float32) -> np.float32:
    return np.float32(np.float32(1) / np.float32(np.float32(1) + x))


@cache
def exp_lut() -> np.ndarray:
    """exp on [-10, 0] (input zero point 32767) into [-1, 1] (scale 2/65535), as TFLM's
    InitializeLutForInt16. Read-only: every op shares it."""
    r = np.float32(65535)
    lut = _lut_populate_int16(np.float32(np.float32(10) / r), 32767,
                              np.float32(np.float32(2) / r), _expf)
    lut.flags.writeable = False
    return lut


@cache
def one_over_one_plus_x_lut() -> np.ndarray:
    """1 / (1 + x) on [0, 1] (input zero point -32768) into [-1, 1]. Read-only."""
    r = np.float32(65535)
    lut = _lut_populate_int16(np.float32(np.float32(1) / r), -32768,
                              np.float32(np.float32(2) / r), _one_over_one_plus)
    lut.flags.writeable = False
    return lut


def lut_lookup_int16(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's LUTLookup(int16, lut): the top 9 bits of value index the table, the low 7
    interpolate; slope and result wrap to int16 as TFLite's int16_t variables do."""
    v = np.asarray(value, np.int64)
    table = lut.astype(np.int64)
    index = 256 + (v >> 7)
    slope = (table[index + 1] - table[index] + 32768) % 65536 - 32768
    delta = (slope * (v & 0x7F) + 64) >> 7
    return ((table[index] + delta + 32768) % 65536 - 32768).astype(np.int64)


def softmax_int16_params(op: Op, input_scale: float, beta: float) -> tuple[int, int]:
    """(input_multiplier, input_shift): QuantizeMultiplier(s_in * beta / (10 / 65535)) in double,
    which maps input differences of [-65535, 0] onto the exp table's [-10, 0]."""
    real = float(np.float32(input_scale)) * float(np.float32(beta)) / (10.0 / 65535.0)
    multiplier, shift = quant.quantize_multiplier(real)
    if multiplier == 0 or not -31 <= shift <= 30:
        raise UnsupportedError(
            f"{where(op)}: beta {beta} times input scale {input_scale:g} gives the rescale "
            f"{real:g}, outside [2^-32, 2^30] where TFLite's int16 softmax can compute it")
    return multiplier, shift


def softmax_int16(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """reference_ops::SoftmaxInt16 over the last axis of x: Q0.15 probabilities in [0, 32767]."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    scaled = quant.multiply_by_quantized_multiplier(diff, multiplier, shift)
    exps = lut_lookup_int16(np.clip(scaled + 32767, -32768, 32767), exp_lut())
    sums = exps.sum(axis=1)
    headroom_plus_one = fp.count_leading_zeros(sums)
    shifted_sum = ((sums << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    # 1/(1 + x) of x = sum - 1, recentred from [0, 65535] to the table's [-32768, 32767].
    reciprocal = lut_lookup_int16(np.clip(shifted_sum - (1 << 15) - (1 << 16), -32768, 32767),
                                  one_over_one_plus_x_lut())
    right_shift = (31 - headroom_plus_one)[:, None]
    out = (exps * reciprocal[:, None] + (1 << (right_shift - 1))) >> right_shift
    return np.clip(out, 0, 32767).astype(np.int16).reshape(x.shape)


def check_output_params(op: Op, x: Tensor, out: Tensor) -> None:
    """The output quantisation TFLM's CalculateSoftmaxParams requires for these types."""
    scale, zero_point = OUTPUT_PARAMS[(x.dtype, out.dtype)]
    f = np.float32
    if out.dtype == "int8":
        ok = f(out.scale) == f(scale)
    else:  # TF_LITE_ENSURE_NEAR(scale, 1/N, 0.001/N), all in float32
        ok = abs(f(out.scale) - f(scale)) <= f(f(0.001) * f(scale))
    if not ok or out.zero_point != zero_point:
        raise UnsupportedError(
            f"{where(op)}: output {out.name} has scale {out.scale:g} and zero point "
            f"{out.zero_point}; TFLite's {x.dtype} -> {out.dtype} softmax needs scale "
            f"{SCALE_TEXT[round(1 / scale)]} and zero point {zero_point}")


@register
class Softmax(OpDef):
    kind = "SOFTMAX"
    dtypes = ("int8", "int16")
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

    def _types(self, graph: Graph, op: Op) -> tuple[str, str]:
        return graph.tensor(op.inputs[0]).dtype, graph.tensor(op.outputs[0]).dtype

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        params = OUTPUT_PARAMS.get(self._types(graph, op), (OUTPUT_SCALE, OUTPUT_ZERO_POINT))
        return QuantRule(fixed={op.outputs[0]: params})

    def kernel(self, graph: Graph, op: Op) -> str:
        return KERNELS[self._types(graph, op)]

    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        if len(op.inputs) != 1 or len(op.outputs) != 1:
            raise UnsupportedError(f"{where(op)}: needs one input and one output, got inputs "
                                   f"{op.inputs} and outputs {op.outputs}")
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if self._types(graph, op) not in KERNELS:
            raise UnsupportedError(
                f"{where(op)}: input {x.name} is {x.dtype} and output {out.name} is {out.dtype}; "
                "TFLite's softmax runs int8 -> int8, int8 -> int16 and int16 -> int16")
        # One type at a time: the int16 output of int8 input has zero point -32768.
        check_io(graph, Op(op.name, op.kind, op.inputs, [], op.attrs), 1, (x.dtype,))
        check_io(graph, Op(op.name, op.kind, [], op.outputs, op.attrs), 0, (out.dtype,),
                 symmetric_int16=x.dtype == "int16")
        if len(x.shape) < 1 or tuple(x.shape) != tuple(out.shape):
            raise UnsupportedError(
                f"{where(op)}: input shape {x.shape} and output shape {out.shape} must be equal "
                "and of rank >= 1")
        check_output_params(op, x, out)
        if x.dtype == "int16":
            if x.shape[-1] > INT16_MAX_DEPTH:
                raise UnsupportedError(
                    f"{where(op)}: input {x.name} has {x.shape[-1]} values per row; TFLite's "
                    f"int16 softmax sums at most {INT16_MAX_DEPTH} of them in int32")
            softmax_int16_params(op, x.scale, float(op.attrs["beta"]))
        else:
            softmax_params(op, x.scale, float(op.attrs["beta"]))

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # Each row's max (and for int16 each exp) is read before the row is written; an int16
        # output of int8 input has other bytes and cannot share its buffer.
        x, out = self._types(graph, op)
        return [0] if x == out else []

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xt, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        beta = float(op.attrs["beta"])
        if xt.dtype == "int16":
            return [softmax_int16(inputs[0], *softmax_int16_params(op, xt.scale, beta))]
        try:
            return [softmax_int8(inputs[0], *softmax_params(op, xt.scale, beta), out.dtype)]
        except TinyEngineError as e:
            raise TinyEngineError(f"op {op.name}: {e}") from None

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        depth = int(xt.shape[-1])
        beta = float(op.attrs["beta"])
        args = [Arg("tensor", op.inputs[0], f"const {CTYPE[xt.dtype]}"),
                Arg("tensor", op.outputs[0], CTYPE[out.dtype])]
        sources = ["te_common.h", "te_fixedpoint.h", "te_softmax.h", "te_softmax.c"]
        if xt.dtype == "int16":
            multiplier, shift = softmax_int16_params(op, xt.scale, beta)
            luts = [ConstArray("exp_lut", "int16_t", exp_lut(), shared=True),
                    ConstArray("recip_lut", "int16_t", one_over_one_plus_x_lut(), shared=True)]
            return OpEmission(
                kernel=self.kernel(graph, op), params_type="te_softmax_s16_params_t",
                params={"outer": xt.size // depth, "depth": depth,
                        "input_multiplier": multiplier, "input_shift": shift},
                args=[args[0], Arg("const", "exp_lut", "const int16_t"),
                      Arg("const", "recip_lut", "const int16_t"), args[1]],
                consts=luts, sources=sources)
        multiplier, shift, diff_min = softmax_params(op, xt.scale, beta)
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_softmax_params_t",
            params={"outer": xt.size // depth, "depth": depth, "input_multiplier": multiplier,
                    "input_left_shift": shift, "diff_min": diff_min},
            args=args, sources=sources)


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
