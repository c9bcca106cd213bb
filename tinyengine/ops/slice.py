"""SLICE (TFLite's: a box of a tensor, begin per axis, size from the output's shape) and
UPDATE_SLICE (a box written into a tensor), the data movement of patch-based inference too.

SLICE reference semantics: TFLM's slice.cc -> reference_ops::Slice: output[i] = input[begin + i]
per axis, inputs of up to 5 dimensions; TFLite's size -1 ("to the end") is resolved on import.
TFLM does not check that the box fits the input; `check` does. TFLite's converter gives input
and output one quantisation.

The patch pass (memory/patch.py) cuts each patch's input window out of a whole tensor with SLICE
and assembles the stage output with a chain of UPDATE_SLICE ops, each writing one patch into the
tensor built so far (in place, since that tensor dies at the next write). Both only move bytes,
so they work on int8 and int16 activations and float32 inputs alike (TFLM's SLICE instantiates
Slice<int16_t> too; its Prepare has no type-specific rule). UPDATE_SLICE is internal to the
engine (TFLite's DYNAMIC_UPDATE_SLICE takes its start as a tensor and needs a canvas).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import DTYPES, Graph, Op, Tensor
from .base import (
    Arg,
    CValue,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import require_inputs, tflite_const
from .transpose import MAX_DIMS, check_moves_bytes, gather_plan, ir_axis_to_onnx, strides_of

SOURCES = ["te_common.h", "te_slice.h", "te_slice.c"]
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "float32": "float"}


def _begin(op: Op) -> tuple[int, ...]:
    return tuple(int(b) for b in op.attrs["begin"])


def _check_box(op: Op, whole: Tensor, box: Tensor) -> None:
    """The box (`box`'s shape at attrs["begin"]) lies inside `whole`; both one movable dtype."""
    where = f"op {op.name} ({op.kind})"
    if whole.dtype not in _CTYPE or box.dtype != whole.dtype:
        raise UnsupportedError(f"{where}: tensors {whole.name} ({whole.dtype}) and {box.name} "
                               f"({box.dtype}) must both be int8, both int16 or both float32")
    begin = _begin(op)
    rank = len(whole.shape)
    if not 1 <= rank <= MAX_DIMS or len(box.shape) != rank or len(begin) != rank:
        raise UnsupportedError(f"{where}: begin {list(begin)}, {whole.name} {whole.shape} and "
                               f"{box.name} {box.shape} must have one rank, 1 to {MAX_DIMS}")
    for k, (b, n, size) in enumerate(zip(begin, box.shape, whole.shape)):
        if not 0 <= b <= size - n:
            raise UnsupportedError(f"{where}: begin {b} of axis {k} is out of range: a box of "
                                   f"{n} there must start in [0, {size - n}] of {whole.name} "
                                   f"{whole.shape}")


def _box_params(op: Op, whole: Tensor, box: Tensor) -> dict[str, CValue]:
    stride = strides_of(whole.shape)
    counts, steps = gather_plan(box.shape, stride, keep_inner=True)
    return {"count": counts, "step": steps,
            "offset": sum(b * s for b, s in zip(_begin(op), stride)),
            "whole_size": whole.size, "elem_bytes": int(np.dtype(DTYPES[whole.dtype]).itemsize)}


def _window(begin: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(b, b + n) for b, n in zip(begin, shape))


@register
class Slice(OpDef):
    kind = "SLICE"
    dtypes = ("int8", "int16", "float32")
    patch = "none"
    # ONNX Slice is converted by STRIDED_SLICE's from_onnx, which emits SLICE for unit steps.
    not_applicable = frozenset({"window", "from_onnx"})

    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        _check_box(op, x, y)
        if x.dtype != "float32":
            check_moves_bytes(graph, op)
        size = op.attrs.get("size")
        if size is not None and tuple(int(s) for s in size) != y.shape:
            raise UnsupportedError(f"op {op.name} (SLICE): size {list(size)} differs from the "
                                   f"shape {y.shape} of output {y.name}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.outputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        y = graph.tensor(op.outputs[0])
        return [np.ascontiguousarray(inputs[0][_window(_begin(op), y.shape)])]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_slice"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def split_axis_offsets(self, graph: Graph, op: Op) -> list[int] | None:
        """The output's byte offset in the input when the box is one contiguous range of it:
        every axis before some axis k has size 1 in the box, every axis after k is whole."""
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        begin = _begin(op)
        k = next((i for i, n in enumerate(y.shape) if n != 1), len(y.shape) - 1)
        if any(y.shape[i] != x.shape[i] for i in range(k + 1, len(x.shape))):
            return None
        strides = [int(np.prod(x.shape[i + 1:], dtype=np.int64)) for i in range(len(x.shape))]
        element = sum(b * st for b, st in zip(begin, strides))
        return [element * x.nbytes // x.size]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        ctype = _CTYPE[x.dtype]
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_slice_params_t",
            params=_box_params(op, x, y),
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=list(SOURCES))

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        begin = [int(v) for v in tflite_const(inputs, 1, "SLICE begin").ravel()]
        size = [int(v) for v in tflite_const(inputs, 2, "SLICE size").ravel()]
        shape = inputs[0].shape
        if len(begin) != len(shape) or len(size) != len(shape):
            raise UnsupportedError(f"SLICE begin {begin} and size {size} must give one value per "
                                   f"axis of input {inputs[0].name} {shape}")
        size = [n - b if s == -1 else s for b, s, n in zip(begin, size, shape)]
        return TfliteImport({"begin": tuple(begin), "size": tuple(size)}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        y = graph.tensor(op.outputs[0])
        return TfliteLowering("SliceOptions", fb.SliceOptionsT(), extra_inputs=[
            np.array(_begin(op), np.int32), np.array(y.shape, np.int32)])

    def to_qdq(self, b: Any, op: Op) -> str:
        y = b.graph.tensor(op.outputs[0])
        rank = len(y.shape)
        begin = _begin(op)
        ends = [s + n for s, n in zip(begin, y.shape)]
        axes = [ir_axis_to_onnx(k, rank) for k in range(rank)]
        return str(b.node("Slice", [
            b.dequantized(op.inputs[0]), b.const("starts", np.array(begin, np.int64)),
            b.const("ends", np.array(ends, np.int64)), b.const("axes", np.array(axes, np.int64))],
            op.name))

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])


@register
class UpdateSlice(OpDef):
    kind = "UPDATE_SLICE"
    dtypes = ("int8", "int16", "float32")
    patch = "none"
    # Internal to the patch pass: no model file holds one, and no model file is written with one.
    not_applicable = frozenset({"window", "from_tflite", "to_tflite", "from_onnx", "to_qdq"})

    def check(self, graph: Graph, op: Op) -> None:
        if len(op.inputs) != 2 or not op.inputs[1]:
            raise UnsupportedError(f"op {op.name} ({op.kind}): takes inputs (canvas or absent, "
                                   f"update), got {op.inputs}")
        out, update = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
        _check_box(op, out, update)
        if op.inputs[0]:
            canvas = graph.tensor(op.inputs[0])
            if canvas.shape != out.shape or canvas.dtype != out.dtype:
                raise UnsupportedError(f"op {op.name} ({op.kind}): canvas {canvas.name} and "
                                       f"output {out.name} differ in shape or dtype")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(op.attrs["shape"])]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0] if op.inputs[0] else []

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        canvas, update = inputs
        out = graph.tensor(op.outputs[0])
        # Where nothing has been written yet the C buffer holds whatever was there; zeros here.
        y = np.zeros(out.shape, DTYPES[out.dtype]) if canvas is None else canvas.copy()
        y[_window(_begin(op), update.shape)] = update
        return [y]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_update_slice"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        out, update = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
        ctype = _CTYPE[out.dtype]
        canvas = Arg("tensor", op.inputs[0], f"const {ctype}") if op.inputs[0] else \
            Arg("const", "", f"const {ctype}")
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_update_slice_params_t",
            params=_box_params(op, out, update),
            args=[canvas, Arg("tensor", op.inputs[1], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=list(SOURCES))

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        share = [(op.inputs[1], op.outputs[0])]
        if op.inputs[0]:
            share.append((op.inputs[0], op.outputs[0]))
        return QuantRule(share=share)
