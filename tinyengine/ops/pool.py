"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (global average pooling) on int8 NHWC activations.

Pooling semantics: TFLite's reference_integer_ops::AveragePool and ::MaxPool. The window is
clipped to the image, so padding pixels are neither summed nor counted; the average rounds half
away from zero with C's truncating division; input and output share one quantisation (TFLM's
PoolingPrepare insists on it), so nothing is requantised.

MEAN semantics: TFLM's reduce.cc, int8 path (EvalMeanHelper -> reference_ops::QuantizedMeanOrSum,
the only path TFLM takes for int8 since it aligned with TFLite in 2023, whether or not the input
and output quantisations are equal). With n elements per output:
  (M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))
  k = min(floor(log2 n), 32, 31 + s);  M' = (int64(M) << k) / n  (truncating);  s' = s - k
  out = clamp(MultiplyByQuantizedMultiplier(int32(sum(q) - in_zp * n), M', s') + out_zp)
We support the reduction over axes 1 and 2 of a 4-D tensor (global pooling), keep_dims or not.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, register
from .common import act_limits, check_activation, check_int8_io, clamp_int8, dims4, window_padding
from .conv import padded_windows

POOL_SOURCES = ["te_common.h", "te_pool.h", "te_pool.c"]


def _check_pool(graph: Graph, op: Op) -> None:
    check_int8_io(graph, op)
    check_activation(op)
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if len(x.shape) != 4:
        raise UnsupportedError(f"op {op.name} ({op.kind}): input {x.name} must be 4-D NHWC, "
                               f"got shape {x.shape}")
    fh, fw = op.attrs["filter"]
    sh, sw = op.attrs["stride"]
    if min(fh, fw, sh, sw) < 1:
        raise UnsupportedError(f"op {op.name} ({op.kind}): filter {(fh, fw)} and stride "
                               f"{(sh, sw)} must be positive")
    if op.attrs["padding"] not in ("SAME", "VALID"):
        raise UnsupportedError(f"op {op.name} ({op.kind}): padding {op.attrs['padding']} is not "
                               "SAME or VALID")
    oh, ow, _, _ = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    if oh < 1 or ow < 1:
        raise UnsupportedError(f"op {op.name} ({op.kind}): a {fh}x{fw} VALID window does not fit "
                               f"the {x.shape[1]}x{x.shape[2]} input")
    # TFLM's PoolingPrepare: same zero point, scales within 1e-6.
    if x.zero_point != out.zero_point or abs(x.scale - out.scale) > 1e-6:
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): input {x.name} and output {out.name} must share their "
            "quantisation (TFLite pooling does not requantise)")


def _pool_geometry(graph: Graph, op: Op) -> tuple[Tensor, int, int, int, int, int, int]:
    """(input tensor, fh, fw, oh, ow, pad_h, pad_w)."""
    x = graph.tensor(op.inputs[0])
    fh, fw = op.attrs["filter"]
    oh, ow, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    return x, fh, fw, oh, ow, ph, pw


class _Pool2D(OpDef):
    kernel = ""

    def check(self, graph: Graph, op: Op) -> None:
        _check_pool(graph, op)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x, _, _, oh, ow, _, _ = _pool_geometry(graph, op)
        return [(x.shape[0], oh, ow, x.shape[3])]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # comparisons and additions only, no multiply-accumulates

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, fh, fw, _, _, ph, pw = _pool_geometry(graph, op)
        out = graph.tensor(op.outputs[0])
        sh, sw = op.attrs["stride"]
        lo, hi = act_limits(op, out)
        return OpEmission(
            kernel=self.kernel,
            params_type="te_pool_params_t",
            params={
                "input": dims4(x.shape), "output": dims4(out.shape),
                "filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
                "pad_h": ph, "pad_w": pw, "act_min": lo, "act_max": hi,
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=list(POOL_SOURCES),
        )


@register
class AveragePool2D(_Pool2D):
    kind = "AVERAGE_POOL_2D"
    kernel = "te_avgpool_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, fh, fw, oh, ow, ph, pw = _pool_geometry(graph, op)
        stride = op.attrs["stride"]
        n, ih, iw, c = x.shape
        total = np.zeros((n, oh, ow, c), np.int64)
        count = np.zeros((1, oh, ow, 1), np.int64)
        # Padding reads as 0 in both the data and the all-ones mask, so it adds to neither.
        taps = zip(padded_windows(inputs[0], 0, oh, ow, fh, fw, stride, (1, 1), (ph, pw)),
                   padded_windows(np.ones((1, ih, iw, 1), np.int64), 0, oh, ow, fh, fw, stride,
                                  (1, 1), (ph, pw)), strict=True)
        for (_, _, win), (_, _, mask) in taps:
            total += win
            count += mask
        half = count // 2
        # C's truncating division: positive sums round up from +half, others down from -half.
        avg = np.where(total > 0, (total + half) // count, -((half - total) // count))
        lo, hi = act_limits(op, graph.tensor(op.outputs[0]))
        return [clamp_int8(avg, lo, hi)]


@register
class MaxPool2D(_Pool2D):
    kind = "MAX_POOL_2D"
    kernel = "te_maxpool_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, fh, fw, oh, ow, ph, pw = _pool_geometry(graph, op)
        n, _, _, c = x.shape
        # Shift by +128 (zero point -128) so that padding reads as 0 = int8 -128, the value
        # TFLite's max starts from; it never beats a real pixel.
        best = np.zeros((n, oh, ow, c), np.int64)
        for _, _, win in padded_windows(inputs[0], -128, oh, ow, fh, fw, op.attrs["stride"],
                                        (1, 1), (ph, pw)):
            np.maximum(best, win, out=best)
        lo, hi = act_limits(op, graph.tensor(op.outputs[0]))
        return [clamp_int8(best - 128, lo, hi)]


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum's multiplier and shift, with the 1/count division folded in."""
    mult, shift = quant.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), shift - k


@register
class Mean(OpDef):
    kind = "MEAN"

    def check(self, graph: Graph, op: Op) -> None:
        check_int8_io(graph, op)
        x = graph.tensor(op.inputs[0])
        axes = tuple(op.attrs.get("axes", ()))
        if len(x.shape) != 4 or set(axes) != {1, 2}:
            raise UnsupportedError(
                f"op {op.name} (MEAN): only the mean over axes (1, 2) of a 4-D NHWC tensor "
                f"(global average pooling) is supported, got axes {axes} of shape {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        n, _, _, c = graph.tensor(op.inputs[0]).shape
        return [(n, 1, 1, c) if op.attrs.get("keep_dims", False) else (n, c)]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # additions only, no multiply-accumulates

    def _requant(self, graph: Graph, op: Op) -> tuple[Tensor, Tensor, int, int, int]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        count = x.shape[1] * x.shape[2]
        mult, shift = mean_multiplier(x.scale, out.scale, count)
        return x, out, count, mult, shift

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out, count, mult, shift = self._requant(graph, op)
        total = inputs[0].astype(np.int64).sum(axis=(1, 2))
        shifted = quant._wrap32(total - x.zero_point * count)  # TFLM sums in wrapping int32
        y = quant.multiply_by_quantized_multiplier(shifted, mult, shift) + out.zero_point
        return [clamp_int8(y, -128, 127).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out, _, mult, shift = self._requant(graph, op)
        n, _, _, c = x.shape
        return OpEmission(
            kernel="te_mean_s8",
            params_type="te_mean_params_t",
            params={
                "input": dims4(x.shape), "output": [n, 1, 1, c],
                "q": [-x.zero_point, out.zero_point, -128, 127],
                "multiplier": mult, "shift": shift,
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=list(POOL_SOURCES),
        )
