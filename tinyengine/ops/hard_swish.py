"""HARD_SWISH on int8 tensors, y = x * relu6(x + 3) / 6; and ONNX HardSigmoid's import.

Reference semantics: TFLM's hard_swish.cc (HardSwishPrepare) and reference_ops::HardSwish<int8>,
which compute in int16 fixed point. With s_hi = float(s_in / 128):
  output multiplier:  QuantizeMultiplier(double(float(s_hi / s_out))), exponent e_o <= 0
  reluish multiplier: QuantizeMultiplier(double(float(s_hi / (3 / 32768)))), exponent e_r
each rounded to 16 bits by DownScaleInt32ToInt16Multiplier. Per element, v = (x - zp_in) * 128;
p = SRDHM16(v, m_o) is x on the (pre-shift) output scale; r = v rescaled so that 3.0 is 32768
(saturating left shifts by e_r - 1 and 1 around SRDHM16(., m_r), or a rounding right shift),
then mapped from [-1, 1] to [0, 1] as (r + 32768) >> 1; y = RoundingDivideByPOT(
SaturatingDoublingHighMul16(r, p), -e_o) + zp_out in int16 (wrapping), clamped to int8.
SRDHM16 is gemmlowp's int16 SaturatingRoundingDoublingHighMul; SaturatingDoublingHighMul16
truncates instead of rounding. gemmlowp's int16 RoundingDivideByPOT is only well defined for
exponents up to 15, so scales needing more are refused (ratios below about 2^-9 or 3.6e-7).

ONNX HardSigmoid, y = clamp(alpha * x + beta, 0, 1), has no TFLite builtin; it imports as a
1x1 DEPTHWISE_CONV_2D with weight alpha and bias beta per channel and a fused RELU (the lower
bound), writing the ONNX output tensor. The upper bound needs no op: that tensor is calibrated on
HardSigmoid's own outputs, which never exceed 1, so int8 saturation at its calibrated maximum is
the clamp. A 2-D [N, C] input goes through RESHAPEs to and from [N, 1, 1, C], whose tensors share
the quantisation of the ONNX tensors they stand for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .activations import UnaryActivation, check_unary, where
from .base import OpEmission, QuantRule, register

if TYPE_CHECKING:
    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def downscale_to_int16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15."""
    return INT16_MAX if m >= quant.INT32_MAX - (1 << 15) else (m + (1 << 15)) >> 16


def hard_swish_params(op: Op, x: Tensor, out: Tensor) -> tuple[int, int, int, int]:
    """(output multiplier16, output exponent, reluish multiplier16, reluish exponent)."""
    hires = np.float32(np.float32(1.0 / 128.0) * np.float32(x.scale))
    m_o, e_o = quant.quantize_multiplier(float(np.float32(hires / np.float32(out.scale))))
    m_r, e_r = quant.quantize_multiplier(
        float(np.float32(hires / np.float32(3.0 / 32768.0))))
    if e_o > 0:
        raise UnsupportedError(
            f"{where(op)}: output scale {out.scale:g} is below input scale / 128 "
            f"({float(hires):g}); TFLite's HARD_SWISH needs it at least that large")
    if e_o < -15:
        raise UnsupportedError(
            f"{where(op)}: output scale {out.scale:g} is over 2^15 times input scale / 128; "
            "TFLite's int16 arithmetic for HARD_SWISH is undefined there")
    if not -15 <= e_r <= 31:
        raise UnsupportedError(f"{where(op)}: input scale {x.scale:g} is outside the range "
                               "TFLite's int16 HARD_SWISH arithmetic handles (about 3.6e-7 to "
                               "2.5e7)")
    return downscale_to_int16(m_o), e_o, downscale_to_int16(m_r), e_r


def _srdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16: round(a * b / 2^15)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    high = (ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)))
    high = np.sign(high) * (np.abs(high) // (1 << 15))  # C division truncates
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high).astype(np.int64)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingDoublingHighMul on int16: a * b / 2^15 truncated toward zero."""
    ab = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    high = np.sign(ab) * (np.abs(ab) // (1 << 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, high).astype(np.int64)


def _saturating_left_shift16(v: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(np.asarray(v, np.int64) << amount, INT16_MIN, INT16_MAX)


def hard_swish_int8(x: np.ndarray, zp_in: int, zp_out: int, m_o: int, e_o: int, m_r: int,
                    e_r: int) -> np.ndarray:
    """reference_ops::HardSwish<int8_t> over an array, in int16 arithmetic held in int64."""
    hires = (x.astype(np.int64) - zp_in) * 128  # |.| <= 32640: fits int16
    preshift_out = _srdhm16(hires, m_o)
    r = hires
    if e_r > 0:
        r = _saturating_left_shift16(r, e_r - 1)
    r = _srdhm16(r, m_r)
    if e_r > 0:
        r = _saturating_left_shift16(r, 1)
    if e_r < 0:
        r = quant.rounding_divide_by_pot(r, -e_r)
    r = (r + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]
    y = quant.rounding_divide_by_pot(_sdhm16(r, preshift_out), -e_o) + zp_out
    y = (y - INT16_MIN) % (1 << 16) + INT16_MIN  # the int16 accumulator wraps
    return np.clip(y, -128, 127).astype(np.int8)


@register
class HardSwish(UnaryActivation):
    kind = "HARD_SWISH"
    onnx_types = ("HardSwish", "HardSigmoid")

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op)
        hard_swish_params(op, x, out)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # TFLM refuses an output scale below input scale / 128 (a multiplier exponent above 0).
        return QuantRule(output_scale_floor=lambda scales: scales[0] / 128.0 * (1.0 + 1e-6))

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_hard_swish_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        params = hard_swish_params(op, x, out)
        return [hard_swish_int8(inputs[0], x.zero_point, out.zero_point, *params)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m_o, e_o, m_r, e_r = hard_swish_params(op, x, out)
        return self.unary_emission(graph, op, "te_hard_swish_params_t", {
            "size": x.size, "input_zero_point": x.zero_point,
            "output_zero_point": out.zero_point,
            "output_multiplier": m_o, "output_exponent": e_o,
            "reluish_multiplier": m_r, "reluish_exponent": e_r},
            ["te_common.h", "te_hard_swish.h", "te_hard_swish.c"])

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        if node.op_type == "HardSigmoid":
            _hard_sigmoid_from_onnx(b, i, node)
        else:
            b.emit("HARD_SWISH", node, [b.activation(node.input[0])], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("HardSwish", [b.dequantized(op.inputs[0])], op.name)


def _hard_sigmoid_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    """HardSigmoid as a 1x1 depthwise convolution with a fused RELU (see the module docstring)."""
    from ..frontend import onnx_ops as ox

    a = ox.node_attrs(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if alpha == 0.0 or not np.isfinite(alpha) or not np.isfinite(beta):
        raise ox.Unsupported(f"alpha {alpha:g}, beta {beta:g}: only a finite non-zero alpha "
                             "(a non-constant HardSigmoid) is supported")
    x = b.activation(node.input[0], rank=(2, 4))
    shape = b.shape(x)
    n, c = shape[0], shape[1]
    base = node.name or f"hard_sigmoid_{i}"
    w = b.add_const(f"{base}.filter", np.full((1, 1, 1, c), alpha))
    bias = b.add_const(f"{base}.bias", np.full((c,), beta))
    attrs: dict[str, Any] = {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID",
                             "activation": "RELU", "depth_multiplier": 1}
    out = node.output[0]
    if len(shape) == 4:
        b.emit("DEPTHWISE_CONV_2D", node, [x, w, bias], out, attrs)
        return
    x4, y4 = b.fresh(f"{x}/nhwc"), b.fresh(f"{out}/nhwc")
    b.emit("RESHAPE", node, [x], x4, {}, shape=(n, 1, 1, c), suffix="/to_4d")
    b.shares_quant[x4] = x
    b.emit("DEPTHWISE_CONV_2D", node, [x4, w, bias], y4, attrs, shape=(n, 1, 1, c))
    b.shares_quant[y4] = out
    b.emit("RESHAPE", node, [y4], out, {}, suffix="/to_2d")
