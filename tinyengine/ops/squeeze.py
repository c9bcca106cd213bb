"""SQUEEZE and EXPAND_DIMS: unit axes removed or inserted; the bytes do not change (int8 and
int16 alike: TFLM copies any type's bytes).

Reference semantics: TFLM's squeeze.cc and expand_dims.cc copy the input's bytes unchanged.
SQUEEZE drops the listed axes (each of size 1; negative ones count from the end) or, with none
listed, every axis of size 1; TFLM takes inputs of up to 8 dimensions. A squeeze of every axis
gives a scalar, which the engine holds as shape (1,) as the TFLite reader does. EXPAND_DIMS
inserts a unit axis at `axis` in [-rank - 1, rank]. Both are views: the output may share the
input's buffer (the C kernel then does nothing). ONNX Squeeze and Unsqueeze become RESHAPE in
the ONNX frontend, so neither op has an ONNX converter.
"""

from __future__ import annotations

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
    ONNX_TO_IR,
    check_moves_bytes,
    mover_types,
    where,
)

SQUEEZE_MAX_DIMS = 8  # TFLM's SqueezePrepare


def squeezed_axes(shape: tuple[int, ...], op: Op) -> list[int]:
    """The axes SQUEEZE drops, non-negative and sorted; raises if one is not a unit axis."""
    axes = [int(a) for a in op.attrs.get("axes", ())]
    if not axes:
        return [k for k, n in enumerate(shape) if n == 1]
    out = set()
    for a in axes:
        k = a + len(shape) if a < 0 else a
        if not 0 <= k < len(shape) or shape[k] != 1:
            raise UnsupportedError(f"{where(op)}: axis {a} of input {op.inputs[0]} {shape} is "
                                   "not an axis of size 1")
        out.add(k)
    return sorted(out)


def expand_axis(rank: int, op: Op) -> int:
    a = int(op.attrs["axis"])
    k = a + rank + 1 if a < 0 else a
    if not 0 <= k <= rank:
        raise UnsupportedError(f"{where(op)}: axis {a} is outside [{-rank - 1}, {rank}] for input "
                               f"{op.inputs[0]} of rank {rank}")
    return k


class _View(OpDef):
    """The bytes of the input under the output's shape."""

    dtypes = MOVER_DTYPES
    patch = "none"
    is_view = True  # te_squeeze_s8/_s16 do nothing when output == input
    not_applicable = frozenset({"window", "from_onnx"})

    def check(self, graph: Graph, op: Op) -> None:
        check_moves_bytes(graph, op)

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0].reshape(graph.tensor(op.outputs[0]).shape)]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_squeeze_{mover_types(graph, op)[1]}"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        ctype = mover_types(graph, op)[0]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_squeeze_params_t",
            params={"size": graph.tensor(op.outputs[0]).nbytes},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=["te_common.h", "te_squeeze.h", "te_squeeze.c"],
        )

    def to_qdq(self, b: Any, op: Op) -> str:
        """A Reshape in the IR's order, between NCHW <-> NHWC transposes for 4-D tensors."""
        x, out = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.outputs[0])
        v = b.dequantized(x.name)
        if len(x.shape) == 4:
            v = b.node("Transpose", [v], op.name, perm=list(IR_TO_ONNX))
        v = b.node("Reshape", [v, b.shape_const(out.shape)], op.name)
        if len(out.shape) == 4:
            v = b.node("Transpose", [v], op.name, perm=list(ONNX_TO_IR))
        return str(v)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])


@register
class Squeeze(_View):
    kind = "SQUEEZE"

    def check(self, graph: Graph, op: Op) -> None:
        super().check(graph, op)
        x = graph.tensor(op.inputs[0])
        if len(x.shape) > SQUEEZE_MAX_DIMS:
            raise UnsupportedError(f"{where(op)}: input {x.name} has rank {len(x.shape)}; TFLM's "
                                   f"SQUEEZE takes at most {SQUEEZE_MAX_DIMS} dimensions")
        squeezed_axes(x.shape, op)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        drop = set(squeezed_axes(x.shape, op))
        return [tuple(n for k, n in enumerate(x.shape) if k not in drop) or (1,)]

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "SqueezeOptions")
        axes = () if o is None or o.SqueezeDimsLength() == 0 else \
            tuple(int(a) for a in o.SqueezeDimsAsNumpy())
        return TfliteImport({"axes": axes}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.SqueezeOptionsT()
        o.squeezeDims = [int(a) for a in op.attrs.get("axes", ())]
        return TfliteLowering("SqueezeOptions", o)


@register
class ExpandDims(_View):
    kind = "EXPAND_DIMS"

    def check(self, graph: Graph, op: Op) -> None:
        super().check(graph, op)
        expand_axis(len(graph.tensor(op.inputs[0]).shape), op)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        shape = graph.tensor(op.inputs[0]).shape
        k = expand_axis(len(shape), op)
        return [tuple(shape[:k]) + (1,) + tuple(shape[k:])]

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        axis = tflite_const(inputs, 1, "EXPAND_DIMS axis").ravel()
        if axis.size != 1:
            raise UnsupportedError(f"EXPAND_DIMS axis must be one value, got {axis.tolist()}")
        return TfliteImport({"axis": int(axis[0])}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("ExpandDimsOptions", fb.ExpandDimsOptionsT(),
                              extra_inputs=[np.array([int(op.attrs["axis"])], np.int32)])
