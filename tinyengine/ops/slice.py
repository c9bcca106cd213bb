"""SLICE and UPDATE_SLICE on NHWC windows: the data movement of patch-based inference.

The patch pass (memory/patch.py) cuts each patch's input window out of a whole tensor with
SLICE and assembles the stage output with a chain of UPDATE_SLICE ops, each writing one patch
into the tensor built so far (in place, since that tensor dies at the next write). Both only
move bytes, so they work on int8 activations and float32 inputs alike. Unlike TFLite's SLICE the
window here covers whole batches and channels: begin is (row, column).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import DTYPES, Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, register
from .common import dims4

SOURCES = ["te_common.h", "te_slice.h", "te_slice.c"]
_CTYPE = {"int8": "int8_t", "float32": "float"}


def _check_window(op: Op, whole: Tensor, window: Tensor) -> None:
    bh, bw = op.attrs["begin"]
    ok = (len(whole.shape) == 4 and len(window.shape) == 4 and whole.dtype == window.dtype
          and whole.dtype in _CTYPE and window.shape[0] == whole.shape[0]
          and window.shape[3] == whole.shape[3] and bh >= 0 and bw >= 0
          and bh + window.shape[1] <= whole.shape[1] and bw + window.shape[2] <= whole.shape[2])
    if not ok:
        raise UnsupportedError(f"op {op.name} ({op.kind}): window {window.shape} at {(bh, bw)} "
                               f"does not fit {whole.name} {whole.shape}")


def _elem_bytes(t: Tensor) -> int:
    return int(np.dtype(DTYPES[t.dtype]).itemsize)


@register
class Slice(OpDef):
    kind = "SLICE"
    dtypes = ("int8", "float32")
    patch = "none"
    # The patch pass's window cut; TFLite's SLICE is not this op yet.
    not_applicable = frozenset({"macs", "scratch_bytes", "from_tflite", "to_tflite", "from_onnx",
                                "to_qdq", "quant_rule", "window"})

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_slice"

    def check(self, graph: Graph, op: Op) -> None:
        _check_window(op, graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0]))

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.outputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        _, h, w, _ = graph.tensor(op.outputs[0]).shape
        bh, bw = op.attrs["begin"]
        return [np.ascontiguousarray(inputs[0][:, bh:bh + h, bw:bw + w, :])]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        bh, bw = op.attrs["begin"]
        ctype = _CTYPE[x.dtype]
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_slice_params_t",
            params={"input": dims4(x.shape), "output": dims4(y.shape), "begin_h": bh,
                    "begin_w": bw, "elem_bytes": _elem_bytes(x)},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=SOURCES)


@register
class UpdateSlice(OpDef):
    kind = "UPDATE_SLICE"
    dtypes = ("int8", "float32")
    patch = "none"
    # Internal to the patch pass: no file format has it.
    not_applicable = frozenset({"macs", "scratch_bytes", "from_tflite", "to_tflite", "from_onnx",
                                "to_qdq", "quant_rule", "window"})

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_update_slice"

    def check(self, graph: Graph, op: Op) -> None:
        out, update = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
        _check_window(op, out, update)
        if op.inputs[0] and graph.tensor(op.inputs[0]).shape != out.shape:
            raise UnsupportedError(f"op {op.name} ({op.kind}): canvas and output differ in shape")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(op.attrs["shape"])]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0] if op.inputs[0] else []

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        canvas, update = inputs
        out = graph.tensor(op.outputs[0])
        # Where nothing has been written yet the C buffer holds whatever was there; zeros here.
        y = np.zeros(out.shape, DTYPES[out.dtype]) if canvas is None else canvas.copy()
        bh, bw = op.attrs["begin"]
        y[:, bh:bh + update.shape[1], bw:bw + update.shape[2], :] = update
        return [y]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        out, update = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
        bh, bw = op.attrs["begin"]
        ctype = _CTYPE[out.dtype]
        canvas = Arg("tensor", op.inputs[0], f"const {ctype}") if op.inputs[0] else \
            Arg("const", "", f"const {ctype}")
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_update_slice_params_t",
            params={"output": dims4(out.shape), "update": dims4(update.shape), "begin_h": bh,
                    "begin_w": bw, "elem_bytes": _elem_bytes(out)},
            args=[canvas, Arg("tensor", op.inputs[1], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=SOURCES)
