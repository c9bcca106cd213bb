"""STRIDED_SLICE: every stride-th element from begin towards end along each axis of an int8 or
int16 tensor, as TFLite's tf.strided_slice; also the ONNX Slice converter (to SLICE or
STRIDED_SLICE).

Reference semantics: TFLM's strided_slice.cc -> reference_ops::StridedSlice. Per axis of size n
(TFLM's StridedSliceStartForAxis / StridedSliceEndForAxis, offset false):
  start = begin (+ n if negative), clamped to [0, n] for a positive stride, [-1, n - 1] for a
          negative one; begin_mask bit set: 0 (positive) or n - 1 (negative stride);
  stop  = the same for end, but end_mask gives n (positive) or -1 (negative stride);
  a shrink_axis_mask bit takes the single element at start and drops the axis from the shape;
the axis then holds start, start + stride, ... while before stop. TFLM takes inputs of up to
4 dimensions, and sets ellipsis_mask and new_axis_mask to 0 whatever the model says (the
TFLite importer refuses those rather than run them wrongly), as it ignores `offset`. Shrinking an
axis with a negative stride or at a begin outside [-n, n) makes TFLM write nothing, and an empty
slice is a tensor our IR cannot hold; `check` refuses all three. int16 runs the same walk
(TFLM's Eval instantiates StridedSlice<int16_t>; its Prepare has no type-specific rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import tflite_const, tflite_options
from .transpose import (
    IR_TO_ONNX,
    MOVER_DTYPES,
    check_moves_bytes,
    gather_plan,
    ir_axis_to_onnx,
    mover_types,
    onnx_axis_to_ir,
    strides_of,
    where,
)

MAX_DIMS = 4  # TFLM's StridedSlicePrepare: "input dim should not exceed 4"
MASKS = ("begin_mask", "end_mask", "shrink_axis_mask")


@dataclass
class AxisWalk:
    start: int
    stride: int
    count: int  # elements taken along the axis
    shrink: bool


def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def axis_walks(shape: tuple[int, ...], attrs: dict[str, Any]) -> list[AxisWalk]:
    """Each axis's start, stride and element count, by TFLM's Eval formulas."""
    walks = []
    for k, n in enumerate(shape):
        stride = int(attrs["strides"][k])
        begin, end = int(attrs["begin"][k]), int(attrs["end"][k])
        shrink = bool(int(attrs.get("shrink_axis_mask", 0)) >> k & 1)
        start = begin + n if begin < 0 else begin
        start = _clamp(start, 0, n) if stride > 0 else _clamp(start, -1, n - 1)
        if int(attrs.get("begin_mask", 0)) >> k & 1:
            start = 0 if stride > 0 else n - 1
        if shrink:
            stop = start if start >= n else start + 1
        else:
            stop = end + n if end < 0 else end
            stop = _clamp(stop, 0, n) if stride > 0 else _clamp(stop, -1, n - 1)
            if int(attrs.get("end_mask", 0)) >> k & 1:
                stop = n if stride > 0 else -1
        count = len(range(start, stop, stride))
        walks.append(AxisWalk(start, stride, count, shrink))
    return walks


@register
class StridedSlice(OpDef):
    kind = "STRIDED_SLICE"
    dtypes = MOVER_DTYPES
    patch = "none"
    onnx_types = ("Slice",)
    not_applicable = frozenset({"window"})

    def check(self, graph: Graph, op: Op) -> None:
        check_moves_bytes(graph, op)
        x = graph.tensor(op.inputs[0])
        rank = len(x.shape)
        if rank > MAX_DIMS:
            raise UnsupportedError(f"{where(op)}: input {x.name} has rank {rank}; TFLM's "
                                   f"STRIDED_SLICE takes at most {MAX_DIMS} dimensions")
        for key in ("ellipsis_mask", "new_axis_mask", "offset"):
            if op.attrs.get(key):
                raise UnsupportedError(f"{where(op)}: {key} is not supported (TFLM ignores it)")
        for key in ("begin", "end", "strides"):
            if len(op.attrs[key]) != rank:
                raise UnsupportedError(f"{where(op)}: {key} {list(op.attrs[key])} must give one "
                                       f"value per axis of input {x.name} {x.shape}")
        if any(int(s) == 0 for s in op.attrs["strides"]):
            raise UnsupportedError(f"{where(op)}: strides {list(op.attrs['strides'])} of input "
                                   f"{x.name} must be non-zero")
        for key in MASKS:
            if not 0 <= int(op.attrs.get(key, 0)) < 1 << rank:
                raise UnsupportedError(f"{where(op)}: {key} {op.attrs[key]} has bits beyond the "
                                       f"{rank} axes of input {x.name}")
        for k, w in enumerate(axis_walks(x.shape, op.attrs)):
            begin = int(op.attrs["begin"][k])
            if w.shrink and w.stride < 0:
                raise UnsupportedError(f"{where(op)}: axis {k} of input {x.name} is shrunk with "
                                       f"stride {w.stride}; only positive strides can shrink")
            if w.shrink and not -x.shape[k] <= begin < x.shape[k]:
                raise UnsupportedError(f"{where(op)}: begin {begin} of shrunk axis {k} is out of "
                                       f"range for input {x.name} {x.shape}")
            if w.count == 0:
                raise UnsupportedError(
                    f"{where(op)}: begin {begin}, end {op.attrs['end'][k]}, stride {w.stride} "
                    f"select no element of axis {k} of input {x.name} {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        return [tuple(w.count for w in axis_walks(x.shape, op.attrs) if not w.shrink)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        walks = axis_walks(x.shape, op.attrs)
        index = np.ix_(*[np.arange(w.count) * w.stride + w.start for w in walks])
        out = graph.tensor(op.outputs[0]).shape
        return [np.ascontiguousarray(x[index]).reshape(out)]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_strided_slice_{mover_types(graph, op)[1]}"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x = graph.tensor(op.inputs[0])
        walks = axis_walks(x.shape, op.attrs)
        stride = strides_of(x.shape)
        counts, steps = gather_plan([w.count for w in walks],
                                    [w.stride * s for w, s in zip(walks, stride)])
        ctype = mover_types(graph, op)[0]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_strided_slice_params_t",
            params={"count": counts, "step": steps,
                    "offset": sum(w.start * s for w, s in zip(walks, stride)),
                    "input_size": x.size},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=["te_common.h", "te_gather.h", "te_strided_slice.h", "te_strided_slice.c"],
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "StridedSliceOptions")
        attrs: dict[str, Any] = {
            key: tuple(int(v) for v in tflite_const(inputs, i, f"STRIDED_SLICE {key}").ravel())
            for i, key in ((1, "begin"), (2, "end"), (3, "strides"))}
        if o is not None:
            if o.EllipsisMask() or o.NewAxisMask():
                raise UnsupportedError("STRIDED_SLICE with ellipsis_mask or new_axis_mask is not "
                                       "supported (TFLM ignores them)")
            if hasattr(o, "Offset") and o.Offset():
                raise UnsupportedError("STRIDED_SLICE with offset=true is not supported (TFLM "
                                       "ignores it)")
            attrs.update(begin_mask=int(o.BeginMask()), end_mask=int(o.EndMask()),
                         shrink_axis_mask=int(o.ShrinkAxisMask()))
        return TfliteImport(attrs, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.StridedSliceOptionsT()
        o.beginMask = int(op.attrs.get("begin_mask", 0))
        o.endMask = int(op.attrs.get("end_mask", 0))
        o.shrinkAxisMask = int(op.attrs.get("shrink_axis_mask", 0))
        return TfliteLowering("StridedSliceOptions", o, extra_inputs=[
            np.array(op.attrs[key], np.int32) for key in ("begin", "end", "strides")])

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        """ONNX Slice with constant starts/ends/axes/steps: SLICE where every step is 1, else
        STRIDED_SLICE. ONNX clamps as TFLite does, except that an end before the first element
        of a reversed axis is -1 there and needs end_mask here."""
        from ..frontend import onnx_ops as ox

        x = b.activation(node.input[0])
        shape = b.shape(x)
        rank = len(shape)
        ir_shape = ox.nhwc(shape)

        def const(pos: int, what: str) -> list[int] | None:
            if len(node.input) <= pos or not node.input[pos]:
                return None
            b.const(node.input[pos], what)  # refuses a non-constant
            # The integers themselves: ends of INT64_MAX do not survive b.const's float64.
            return [int(v) for v in np.asarray(b.consts[b.name(node.input[pos])]).ravel()]

        if b.opset < 10:
            a = ox.node_attrs(node)
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
        else:
            starts, ends = const(1, "starts"), const(2, "ends")
            axes, steps = const(3, "axes"), const(4, "steps")
        assert starts is not None and ends is not None
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        begin, end, stride = [0] * rank, list(ir_shape), [1] * rank
        end_mask = 0
        for a_onnx, s0, e0, st in zip(axes, starts, ends, steps, strict=True):
            if st == 0:
                raise ox.Unsupported("a step of 0")
            k = onnx_axis_to_ir(int(a_onnx), rank)
            n = ir_shape[k]
            s0, e0 = s0 + n if s0 < 0 else s0, e0 + n if e0 < 0 else e0
            if st > 0:
                s0, e0 = _clamp(s0, 0, n), _clamp(e0, 0, n)
            else:
                s0, e0 = _clamp(s0, 0, n - 1), _clamp(e0, -1, n - 1)
            if len(range(s0, e0, st)) == 0:
                raise ox.Unsupported(f"it selects no element of axis {a_onnx}")
            begin[k], end[k], stride[k] = s0, e0, st
            if e0 < 0:  # -1 before index 0 of a reversed axis
                end[k], end_mask = 0, end_mask | 1 << k
        if all(s == 1 for s in stride):
            b.emit("SLICE", node, [x], node.output[0], {"begin": tuple(begin)})
        else:
            b.emit("STRIDED_SLICE", node, [x], node.output[0],
                   {"begin": tuple(begin), "end": tuple(end), "strides": tuple(stride),
                    "begin_mask": 0, "end_mask": end_mask, "shrink_axis_mask": 0})

    def to_qdq(self, b: Any, op: Op) -> str:
        x, out = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.outputs[0])
        rank = len(x.shape)
        walks = axis_walks(x.shape, op.attrs)
        starts, ends, axes, steps = [], [], [], []
        for k, w in enumerate(walks):
            last = w.start + (w.count - 1) * w.stride
            starts.append(w.start)
            # One past the last element taken; before index 0 needs INT64_MIN (ONNX reads -1
            # as the last element).
            ends.append(last + 1 if w.stride > 0 else (last - 1 if last > 0 else -(1 << 63)))
            axes.append(ir_axis_to_onnx(k, rank))
            steps.append(w.stride)
        v = b.node("Slice", [b.dequantized(x.name)] + [
            b.const(name, np.array(vals, np.int64))
            for name, vals in (("starts", starts), ("ends", ends), ("axes", axes),
                               ("steps", steps))], op.name)
        if len(out.shape) != rank:  # shrunk axes: reshape in the IR's (NHWC) order
            if rank == 4:
                v = b.node("Transpose", [v], op.name, perm=list(IR_TO_ONNX))
            v = b.node("Reshape", [v, b.shape_const(out.shape)], op.name)
            if len(out.shape) == 4:
                v = b.node("Transpose", [v], op.name, perm=[0, 3, 1, 2])
        return str(v)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])
