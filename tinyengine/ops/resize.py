"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR: int8 NHWC upsampling/downsampling of H and W.

Semantics: TFLM's resize_nearest_neighbor.cc and resize_bilinear.cc, int8 paths:
- nearest: reference_ops::ResizeNearestNeighbor. Per output row y, in float32 as TFLM computes it:
  scale = (in - 1) / (out - 1) with align_corners (and out > 1), else in / out;
  src = min(align_corners ? round((y + offset) * scale) : floor((y + offset) * scale), in - 1),
  offset = 0.5 with half_pixel_centers (then also max(src, 0)), else 0.
- bilinear: reference_ops::ResizeBilinearInteger, all integer: scale_10 = round(1024 * in / out)
  (align_corners: 1024 * (in - 1) / (out - 1)), scaled = y * scale_10 (+ scale_10 / 2 - 512 with
  half_pixel_centers), y0 = max(scaled / 1024, 0), y1 = min(ceil(scaled / 1024), in - 1), weight
  scaled - 1024 * y0; the four taps summed in 2^-20 units, rounded half away from zero.
The output size (TFLite's constant `size` input) is attrs["size"] = (out_h, out_w); the flags are
attrs "align_corners" and "half_pixel_centers" (not both). Input and output share one
quantisation: the kernels interpolate int8 values without requantising, as TFLM does.

The source rows/columns depend only on sizes and flags, so Python computes them (the float
arithmetic of nearest neighbour included) and the C kernels read them from constant tables.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
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
from .common import check_int8_io, tflite_const, tflite_import, tflite_options

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

SOURCES = ["te_common.h", "te_resize.h", "te_resize.c"]
ONE = 1 << 10  # bilinear weight unit


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def nearest_sources(in_size: int, out_size: int, align_corners: bool,
                    half_pixel_centers: bool) -> np.ndarray:
    """TFLM's GetNearestNeighbor for every output index, in float32 like TFLM."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    out = np.empty(out_size, np.int32)
    for y in range(out_size):
        v = f32(f32(y) + offset) * scale
        # TfLiteRound is std::round: half away from zero (v >= 0 here).
        src = int(math.floor(float(v) + 0.5)) if align_corners else int(math.floor(float(v)))
        src = min(src, in_size - 1)
        if half_pixel_centers:
            src = max(src, 0)
        out[y] = src
    return out


def bilinear_scale_10(in_size: int, out_size: int, align_corners: bool) -> int:
    if align_corners and out_size > 1:
        return (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return (ONE * in_size + out_size // 2) // out_size


def bilinear_taps(in_size: int, out_size: int, align_corners: bool,
                  half_pixel_centers: bool) -> np.ndarray:
    """[out_size, 3] rows (lo, hi, weight) of ComputeInterpolationValuesInteger. The lower
    index is not clipped above (TFLM does not clip it); check() refuses sizes where it would
    leave the input."""
    s = bilinear_scale_10(in_size, out_size, align_corners)
    taps = np.empty((out_size, 3), np.int64)
    for y in range(out_size):
        scaled = y * s + s // 2 - (1 << 9) if half_pixel_centers else y * s
        lo = max(_c_div(scaled, ONE), 0)
        hi = min(_c_div(scaled + ONE - 1, ONE), in_size - 1)
        taps[y] = (lo, hi, scaled - ONE * lo)
    return taps


class _Resize(OpDef):
    dtypes = ("int8",)
    patch = "none"
    onnx_types: tuple[str, ...] = ()
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})
    options = ""  # the TFLite builtin options table

    def _size(self, op: Op) -> tuple[int, int]:
        h, w = op.attrs["size"]
        return int(h), int(w)

    def _flags(self, op: Op) -> tuple[bool, bool]:
        return bool(op.attrs.get("align_corners", False)), \
            bool(op.attrs.get("half_pixel_centers", False))

    def tables(self, graph: Graph, op: Op) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # -- semantics ------------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 1 or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs one input and one output (the size is an "
                                   f"attr), got inputs {op.inputs}")
        check_int8_io(graph, op)
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if len(x.shape) != 4:
            raise UnsupportedError(f"{where}: input {x.name} has shape {x.shape}; only 4-D NHWC "
                                   "tensors are resized")
        size = op.attrs.get("size")
        if size is None or len(size) != 2 or not all(int(s) >= 1 for s in size):
            raise UnsupportedError(f"{where}: size {size} must be two positive ints (out_h, "
                                   "out_w)")
        if max(int(s) for s in size) > 1 << 16 or max(x.shape[1], x.shape[2]) > 1 << 16:
            raise UnsupportedError(f"{where}: sizes above 65536 are not supported")
        align, half = self._flags(op)
        if align and half:
            raise UnsupportedError(f"{where}: align_corners and half_pixel_centers cannot both "
                                   "be set (TFLite refuses it)")
        want = self.infer_shapes(graph, op)[0]
        if tuple(out.shape) != want:
            raise UnsupportedError(f"{where}: output {out.name} has shape {out.shape}; resizing "
                                   f"{x.name} {x.shape} to size {tuple(size)} gives {want}")
        if x.scale != out.scale or x.zero_point != out.zero_point:
            raise UnsupportedError(f"{where}: input {x.name} and output {out.name} have "
                                   "different quantisation; a resize cannot requantise (give "
                                   "them the same scale and zero point)")
        if op.kind == "RESIZE_BILINEAR":
            for n, o in ((x.shape[1], int(size[0])), (x.shape[2], int(size[1]))):
                s = bilinear_scale_10(n, o, align)
                if (o - 1) * s + s // 2 >= 1 << 31:
                    raise UnsupportedError(f"{where}: resizing {n} to {o} overflows TFLite's "
                                           "int32 source coordinates; not supported")
        ty, tx = self.tables(graph, op)
        for t, n, axis in ((ty, x.shape[1], "height"), (tx, x.shape[2], "width")):
            idx = t if t.ndim == 1 else t[:, :2]
            if idx.min() < 0 or idx.max() >= n:
                raise UnsupportedError(f"{where}: resizing the {axis} {n} of {x.name} to "
                                       f"{tuple(size)} makes TFLite's kernel read outside the "
                                       "input; not supported")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        n, _, _, c = graph.tensor(op.inputs[0]).shape
        h, w = self._size(op)
        return [(n, h, w, c)]

    # -- C --------------------------------------------------------------------------------------

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        ty, tx = self.tables(graph, op)
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_resize_params_t",
            params={"input": [int(d) for d in x.shape], "output": [int(d) for d in out.shape]},
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("const", "rows", "const int32_t"),
                  Arg("const", "cols", "const int32_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            consts=[ConstArray("rows", "int32_t", ty.astype(np.int32).ravel()),
                    ConstArray("cols", "int32_t", tx.astype(np.int32).ravel())],
            sources=list(SOURCES),
        )

    # -- frontends ------------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, self.options)
        size = tflite_const(inputs, 1, f"{self.kind} size").ravel()
        if size.size != 2:
            raise UnsupportedError(f"op {self.kind}: size {size.tolist()} must hold two values "
                                   "(out_h, out_w)")
        return tflite_import({"size": (int(size[0]), int(size[1])),
                              "align_corners": bool(o.AlignCorners()) if o else False,
                              "half_pixel_centers": bool(o.HalfPixelCenters()) if o else False},
                             1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = getattr(fb, f"{self.options}T")()
        o.alignCorners, o.halfPixelCenters = self._flags(op)
        return TfliteLowering(self.options, o, [np.array(self._size(op), np.int32)])

    def from_onnx(self, b: Any, i: int, node: NodeProto) -> None:
        _resize_from_onnx(b, node)

    def to_qdq(self, b: Any, op: Op) -> str:
        x = b.graph.tensor(op.inputs[0])
        n, _, _, c = x.shape
        h, w = self._size(op)
        align, half = self._flags(op)
        attrs: dict[str, Any]
        if op.kind == "RESIZE_NEAREST_NEIGHBOR":
            attrs = {"mode": "nearest",
                     "coordinate_transformation_mode": "align_corners" if align else
                     "tf_half_pixel_for_nn" if half else "asymmetric",
                     "nearest_mode": "round_prefer_ceil" if align else "floor"}
        else:
            attrs = {"mode": "linear",
                     "coordinate_transformation_mode": "align_corners" if align else
                     "half_pixel" if half else "asymmetric"}
        sizes = b.const("sizes", np.array([n, c, h, w], np.int64))
        return b.node("Resize", [b.dequantized(op.inputs[0]), "", "", sizes], op.name, **attrs)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])


@register
class ResizeNearestNeighbor(_Resize):
    kind = "RESIZE_NEAREST_NEIGHBOR"
    options = "ResizeNearestNeighborOptions"
    # Resize converts to either kind (by its mode); this op owns the node type.
    onnx_types = ("Resize",)

    def tables(self, graph: Graph, op: Op) -> tuple[np.ndarray, np.ndarray]:
        _, ih, iw, _ = graph.tensor(op.inputs[0]).shape
        h, w = self._size(op)
        return nearest_sources(ih, h, *self._flags(op)), nearest_sources(iw, w, *self._flags(op))

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_resize_nearest_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ys, xs = self.tables(graph, op)
        return [inputs[0][:, ys][:, :, xs].astype(np.int8)]


@register
class ResizeBilinear(_Resize):
    kind = "RESIZE_BILINEAR"
    options = "ResizeBilinearOptions"

    def tables(self, graph: Graph, op: Op) -> tuple[np.ndarray, np.ndarray]:
        _, ih, iw, _ = graph.tensor(op.inputs[0]).shape
        h, w = self._size(op)
        align, half = self._flags(op)
        return bilinear_taps(ih, h, align, half), bilinear_taps(iw, w, align, half)

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_resize_bilinear_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        ty, tx = self.tables(graph, op)
        x = inputs[0].astype(np.int64)
        wy = ty[:, 2][None, :, None, None]
        wx = tx[:, 2][None, None, :, None]

        def tap(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            return x[:, rows][:, :, cols]

        s = (tap(ty[:, 0], tx[:, 0]) * (ONE - wy) * (ONE - wx)
             + tap(ty[:, 1], tx[:, 0]) * wy * (ONE - wx)
             + tap(ty[:, 0], tx[:, 1]) * (ONE - wy) * wx
             + tap(ty[:, 1], tx[:, 1]) * wy * wx)
        half = np.where(s > 0, 1 << 19, -(1 << 19))
        q = s + half
        y = np.sign(q) * (np.abs(q) >> 20)  # C division: truncates toward zero
        return [y.astype(np.int8)]


# -- ONNX import --------------------------------------------------------------------------------

# (mode, coordinate_transformation_mode, nearest_mode) -> (kind, align_corners, half_pixel).
# Nearest: TFLite's floor((y + offset) * in / out) is ONNX's asymmetric / tf_half_pixel_for_nn
# with floor; ONNX's half_pixel with round_prefer_ceil rounds (y + 0.5) * in / out - 0.5 half up,
# the same floor((y + 0.5) * in / out); align_corners rounds half away from zero, which for these
# non-negative coordinates is round_prefer_ceil.
_ONNX_RESIZE = {
    ("nearest", "asymmetric", "floor"): ("RESIZE_NEAREST_NEIGHBOR", False, False),
    ("nearest", "tf_half_pixel_for_nn", "floor"): ("RESIZE_NEAREST_NEIGHBOR", False, True),
    ("nearest", "half_pixel", "round_prefer_ceil"): ("RESIZE_NEAREST_NEIGHBOR", False, True),
    ("nearest", "align_corners", "round_prefer_ceil"): ("RESIZE_NEAREST_NEIGHBOR", True, False),
    ("linear", "asymmetric", None): ("RESIZE_BILINEAR", False, False),
    ("linear", "half_pixel", None): ("RESIZE_BILINEAR", False, True),
    ("linear", "pytorch_half_pixel", None): ("RESIZE_BILINEAR", False, True),
    ("linear", "align_corners", None): ("RESIZE_BILINEAR", True, False),
}


def _resize_from_onnx(b: Any, node: NodeProto) -> None:
    """ONNX Resize (opset 11+) over H and W of an NCHW tensor, with constant scales or sizes,
    as the TFLite resize whose coordinates it computes."""
    from ..frontend import onnx_ops as ox
    if b.opset < 11:
        raise ox.Unsupported(f"Resize of opset {b.opset} (before coordinate_transformation_mode) "
                             "is not supported; export with opset 11 or later")
    a = ox.node_attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    n, c, ih, iw = b.shape(x)
    _, _, oh, ow = b.shape(node.output[0])
    mode = a.get("mode", "nearest")
    coord = a.get("coordinate_transformation_mode", "half_pixel")
    nearest = a.get("nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear"):
        raise ox.Unsupported(f"mode {mode}: only nearest and linear (bilinear) are supported")
    key = (mode, coord, nearest if mode == "nearest" else None)
    if key not in _ONNX_RESIZE:
        raise ox.Unsupported(
            f"mode {mode} with coordinate_transformation_mode {coord}"
            + (f" and nearest_mode {nearest}" if mode == "nearest" else "")
            + " has no TFLite equivalent; supported: " + ", ".join(
                f"{m}/{ct}" + (f"/{nm}" if nm else "") for m, ct, nm in _ONNX_RESIZE))
    kind, align, half = _ONNX_RESIZE[key]
    if coord == "pytorch_half_pixel" and min(oh, ow) == 1:
        raise ox.Unsupported("pytorch_half_pixel with an output size of 1 differs from "
                             "TFLite's half_pixel_centers")
    if a.get("antialias", 0) and mode == "linear" and (oh < ih or ow < iw):
        raise ox.Unsupported("antialias when downsampling is not supported")
    if a.get("axes") is not None or a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ox.Unsupported("the axes and keep_aspect_ratio_policy attributes are not "
                             "supported")
    # Inputs (X, roi, scales, sizes); roi only matters for tf_crop_and_resize.
    scales = None
    if len(node.input) > 2 and node.input[2]:
        scales = b.const(node.input[2], "scales").ravel()
        if scales.size == 0:
            scales = None
    if len(node.input) > 3 and node.input[3]:
        sizes = b.const(node.input[3], "sizes").astype(np.int64).ravel()
        if sizes.size != 4 or tuple(sizes) != (n, c, oh, ow):
            raise ox.Unsupported(f"sizes {sizes.tolist()} do not match the inferred output "
                                 f"{(n, c, oh, ow)}")
    elif scales is None:
        raise ox.Unsupported("it has neither scales nor sizes")
    if scales is not None:
        if scales.size != 4 or scales[0] != 1 or scales[1] != 1:
            raise ox.Unsupported(f"scales {scales.tolist()}: only H and W may be resized")
        # ONNX maps coordinates by the given scale, TFLite by out / in: equal only when the
        # scale gives the output size exactly.
        if float(scales[2]) * ih != oh or float(scales[3]) * iw != ow:
            raise ox.Unsupported(f"scales {scales.tolist()} do not give whole output sizes "
                                 f"from {(ih, iw)}; pass sizes instead")
    if (n, c) != tuple(b.shape(node.output[0])[:2]):
        raise ox.Unsupported("only H and W may be resized")
    b.emit(kind, node, [x], node.output[0],
           {"size": (int(oh), int(ow)), "align_corners": align, "half_pixel_centers": half})
