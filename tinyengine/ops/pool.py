"""AVERAGE_POOL_2D and MAX_POOL_2D on int8 and int16 NHWC activations.

Pooling semantics: TFLite's reference_integer_ops::AveragePool and ::MaxPool (the int16
overloads are the same code on int16 values: an int32 sum, the maximum starting from -32768,
the fused activation clamped to int16's range). The window is clipped to the image, so padding
pixels are neither summed nor counted; the average rounds half away from zero with C's
truncating division; input and output share one quantisation (TFLM's PoolingPrepare insists on
it), so nothing is requantised. An int16 average's sum stays within int32 only for windows of
at most 65535 pixels inside the image; larger ones are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, Window, register
from .common import (
    CTYPE,
    SUFFIX,
    TFLITE_ACTIVATION,
    TFLITE_PADDING,
    act_limits,
    check_activation,
    check_io,
    clamp_to,
    dims4,
    fb_activation,
    fb_padding,
    qrange,
    tflite_import,
    tflite_options,
    window_padding,
)
from .conv import padded_windows

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

POOL_SOURCES = ["te_common.h", "te_pool.h", "te_pool.c"]


def _check_pool(graph: Graph, op: Op) -> None:
    dtype = check_io(graph, op, 1, _Pool2D.dtypes)
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
    # The average sums up to min(fh, ih) * min(fw, iw) values in int32 and moves the sum half
    # the count away from zero: the most negative total must stay >= -2^31.
    count = min(fh, x.shape[1]) * min(fw, x.shape[2])
    if op.kind == "AVERAGE_POOL_2D" and count * -qrange(dtype)[0] + count // 2 > 2**31:
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): a {fh}x{fw} window over input {x.name} {x.shape} sums "
            f"up to {count} {dtype} values, which can overflow TFLite's int32 accumulator")


def _pool_geometry(graph: Graph, op: Op) -> tuple[Tensor, int, int, int, int, int, int]:
    """(input tensor, fh, fw, oh, ow, pad_h, pad_w)."""
    x = graph.tensor(op.inputs[0])
    fh, fw = op.attrs["filter"]
    oh, ow, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    return x, fh, fw, oh, ow, ph, pw


class _Pool2D(OpDef):
    dtypes = ("int8", "int16")
    patch = "windowed"
    not_applicable = frozenset({"scratch_bytes", "macs"})
    c_kernel = ""

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"{self.c_kernel}_{SUFFIX[graph.tensor(op.inputs[0]).dtype]}"

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "Pool2DOptions")
        return tflite_import({"stride": (o.StrideH(), o.StrideW()),
                              "padding": TFLITE_PADDING[o.Padding()],
                              "filter": (o.FilterHeight(), o.FilterWidth()),
                              "activation": TFLITE_ACTIVATION[o.FusedActivationFunction()]},
                             1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.Pool2DOptionsT()
        o.padding = fb_padding(fb, op)
        o.strideH, o.strideW = op.attrs["stride"]
        o.filterHeight, o.filterWidth = op.attrs["filter"]
        o.fusedActivationFunction = fb_activation(fb, op)
        return TfliteLowering("Pool2DOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        if node.op_type == "GlobalAveragePool":
            _global_pool_from_onnx(b, i, node)
        else:
            _pool_from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _pool_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # TFLM's PoolingPrepare: input and output share one quantisation.
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])

    def window(self, graph: Graph, op: Op) -> Window:
        x = graph.tensor(op.inputs[0])
        fh, fw = op.attrs["filter"]
        sh, sw = op.attrs["stride"]
        _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
        return fh, fw, sh, sw, 1, 1, ph, pw

    def check(self, graph: Graph, op: Op) -> None:
        _check_pool(graph, op)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x, _, _, oh, ow, _, _ = _pool_geometry(graph, op)
        return [(x.shape[0], oh, ow, x.shape[3])]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, fh, fw, _, _, ph, pw = _pool_geometry(graph, op)
        out = graph.tensor(op.outputs[0])
        sh, sw = op.attrs["stride"]
        lo, hi = act_limits(op, out)
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_pool_params_t",
            params={
                "input": dims4(x.shape), "output": dims4(out.shape),
                "filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
                "pad_h": ph, "pad_w": pw, "act_min": lo, "act_max": hi,
            },
            args=[Arg("tensor", op.inputs[0], f"const {CTYPE[x.dtype]}"),
                  Arg("tensor", op.outputs[0], CTYPE[x.dtype])],
            sources=list(POOL_SOURCES),
        )


@register
class AveragePool2D(_Pool2D):
    kind = "AVERAGE_POOL_2D"
    c_kernel = "te_avgpool"
    onnx_types = ("AveragePool", "GlobalAveragePool")

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
        out = graph.tensor(op.outputs[0])
        lo, hi = act_limits(op, out)
        return [clamp_to(avg, out, lo, hi)]


@register
class MaxPool2D(_Pool2D):
    kind = "MAX_POOL_2D"
    c_kernel = "te_maxpool"
    onnx_types = ("MaxPool",)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, fh, fw, oh, ow, ph, pw = _pool_geometry(graph, op)
        n, _, _, c = x.shape
        # Shift by -min (zero point min) so that padding reads as 0 = the type's minimum, the
        # value TFLite's max starts from; it never beats a real pixel.
        low = qrange(x)[0]
        best = np.zeros((n, oh, ow, c), np.int64)
        for _, _, win in padded_windows(inputs[0], low, oh, ow, fh, fw, op.attrs["stride"],
                                        (1, 1), (ph, pw)):
            np.maximum(best, win, out=best)
        out = graph.tensor(op.outputs[0])
        lo, hi = act_limits(op, out)
        return [clamp_to(best + low, out, lo, hi)]


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _pool_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    a = ox.node_attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    if len(node.output) > 1 and node.output[1]:
        raise ox.Unsupported("MaxPool indices are not supported")
    if ox.pairs(a, "dilations", 1) != (1, 1):
        raise ox.Unsupported("dilated pooling is not supported")
    _, _, ih, iw = b.shape(x)
    k, stride = ox.pairs(a, "kernel_shape", 1), ox.pairs(a, "strides", 1)
    same = ox.same_pads((ih, iw), k, stride, (1, 1))
    explicit = ox.onnx_pads(a, same)
    padding, pads = ox.pad_mode(explicit, same)
    average = node.op_type == "AveragePool"
    counts_pad = average and bool(a.get("count_include_pad", 0))
    if a.get("ceil_mode", 0) and padding == "VALID" and pads is None and not counts_pad \
            and ox.ceil_is_same(b, node.output[0], ih, iw, k, stride, same):
        padding = "SAME"  # the extra window sees the input's end and nothing after it
    if counts_pad and padding == "SAME":
        # TFLite's average leaves padding out of the count; counting it as zeros is an explicit
        # zero PAD followed by a VALID window.
        padding, pads = "VALID", explicit
    elif pads is not None and not counts_pad and (average or not ox.nonnegative(b, x)):
        raise ox.Unsupported(
            f"pads (before, after) per axis {pads} are neither TFLite SAME nor VALID, and "
            + ("count_include_pad=0 cannot become an explicit PAD" if average else
               "max pooling over an explicit zero PAD differs unless the input follows a ReLU"))
    tail = ox.fold_tail(b, node.output[0], 0, affine=False)
    if pads is not None:
        x = ox.insert_pad(b, node, x, pads)
    b.emit("AVERAGE_POOL_2D" if average else "MAX_POOL_2D", node, [x], tail.output,
           {"stride": stride, "filter": k, "padding": padding, "activation": tail.activation})


def _global_pool_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    x = b.activation(node.input[0], rank=(4,))
    _, _, h, w = b.shape(x)
    tail = ox.fold_tail(b, node.output[0], 0, affine=False)
    b.emit("AVERAGE_POOL_2D", node, [x], tail.output,
           {"stride": (1, 1), "filter": (h, w), "padding": "VALID",
            "activation": tail.activation})


def _pool_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    fh, fw = op.attrs["filter"]
    attrs: dict[str, Any] = {"kernel_shape": [fh, fw], "strides": list(op.attrs["stride"]),
                             "pads": qx.window_pads(op, b.graph, fh, fw)}
    if op.kind == "AVERAGE_POOL_2D":
        attrs["count_include_pad"] = 0  # TFLite averages over the pixels inside the image
    kind = "AveragePool" if op.kind == "AVERAGE_POOL_2D" else "MaxPool"
    return b.node(kind, [b.dequantized(op.inputs[0])], op.name, **attrs)
