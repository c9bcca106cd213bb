"""PACK and UNPACK: int8 or int16 tensors stacked along a new axis, and a tensor split into its
slices.

Reference semantics: TFLM's pack.cc and unpack.cc, which copy bytes: with `outer` the product of
the packed tensor's dims before the axis and `copy_size` the product of those after it, the
packed tensor is `outer` rows of n blocks of `copy_size` elements, block i of each row belonging
to tensor i (numpy's stack / the slices along the axis). TFLM does not look at quantisation, so
the copy is exact only because TFLite gives the packed tensor and its parts one scale and zero
point (TFLite's own int8 Pack/Unpack kernels require it); we require it too, and `quant_rule`
shares every pair. TFLM instantiates both for int16 as well (PackImpl<int16_t>), the same copy.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import CTYPE, SUFFIX, check_io, io_dtype, tflite_options
from .concatenation import check_same_quant

if TYPE_CHECKING:
    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_pack.h", "te_pack.c"]
NHWC_FROM_NCHW = (0, 2, 3, 1)
NCHW_FROM_NHWC = (0, 3, 1, 2)


def pack_geometry(packed: tuple[int, ...], axis: int) -> tuple[int, int]:
    """(outer, copy_size) of the packed tensor's shape around `axis`."""
    return (int(np.prod(packed[:axis], dtype=np.int64)),
            int(np.prod(packed[axis + 1:], dtype=np.int64)))


def _axis_attr(op: Op, rank: int, what: str) -> int:
    """The op's axis, which must be an int in [0, rank) of the packed tensor."""
    axis = op.attrs.get("axis")
    if not isinstance(axis, (int, np.integer)) or not 0 <= axis < rank:
        raise UnsupportedError(f"op {op.name} ({op.kind}): axis {axis} is out of range for the "
                               f"{what} of rank {rank} (allowed: 0 .. {rank - 1} after "
                               "normalising)")
    return int(axis)


def _tflite_axis(kind: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise UnsupportedError(f"{kind} axis {axis} is out of range for rank {rank}")
    return axis % rank


def _ir_layout(b: QdqBuilder, name: str) -> str:
    """The QDQ export's float value of `name` in the IR's layout (4-D tensors are NCHW there)."""
    v = b.dequantized(name)
    if len(b.graph.tensor(name).shape) == 4:
        v = b.node("Transpose", [v], name, perm=list(NHWC_FROM_NCHW))
    return str(v)


def _onnx_layout(b: QdqBuilder, v: str, rank: int, base: str) -> str:
    if rank == 4:
        v = b.node("Transpose", [v], base, perm=list(NCHW_FROM_NHWC))
    return str(v)


class _PackFamily(OpDef):
    dtypes = ("int8", "int16")
    patch = "none"
    not_applicable = frozenset({"scratch_bytes", "window", "from_onnx"})

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # a copy

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        packed, parts = self._packed_and_parts(op)
        return QuantRule(share=[(n, packed) for n in parts])

    def _packed_and_parts(self, op: Op) -> tuple[str, list[str]]:
        raise NotImplementedError


@register
class Pack(_PackFamily):
    kind = "PACK"

    def _packed_and_parts(self, op: Op) -> tuple[str, list[str]]:
        return op.outputs[0], list(op.inputs)

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if not op.inputs or not all(op.inputs) or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs one or more inputs and one output, got "
                                   f"inputs {op.inputs} and outputs {op.outputs}")
        const = [n for n in op.inputs if graph.tensor(n).is_const]
        if const:
            raise UnsupportedError(f"{where}: input {const[0]} is a constant; only activations "
                                   "can be packed")
        check_io(graph, op, len(op.inputs), self.dtypes)
        first = graph.tensor(op.inputs[0])
        _axis_attr(op, len(first.shape) + 1, "output")
        for n in op.inputs[1:]:
            if graph.tensor(n).shape != first.shape:
                raise UnsupportedError(f"{where}: input {n} {graph.tensor(n).shape} differs from "
                                       f"input {first.name} {first.shape}; PACK needs inputs of "
                                       "one shape")
        check_same_quant(graph, op, list(op.inputs), op.outputs[0])

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        shape = graph.tensor(op.inputs[0]).shape
        axis = int(op.attrs["axis"])
        return [(*shape[:axis], len(op.inputs), *shape[axis:])]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.stack(inputs, axis=int(op.attrs["axis"]))]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_pack_{SUFFIX[io_dtype(graph, op)]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        outer, copy = pack_geometry(graph.tensor(op.outputs[0]).shape, int(op.attrs["axis"]))
        ctype = CTYPE[io_dtype(graph, op)]
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_pack_params_t",
            params={"count": len(op.inputs), "outer": outer, "copy_size": copy},
            args=[*(Arg("tensor", n, f"const {ctype}") for n in op.inputs),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=list(SOURCES))

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "PackOptions")
        if any(t is None for t in inputs):
            raise UnsupportedError("PACK with an absent input")
        if o is not None and o.ValuesCount() != len(inputs):
            raise UnsupportedError(f"PACK says values_count {o.ValuesCount()} but has "
                                   f"{len(inputs)} inputs")
        axis = _tflite_axis("PACK", int(o.Axis()) if o else 0, len(inputs[0].shape) + 1)
        return TfliteImport({"axis": axis}, list(range(len(inputs))))

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.PackOptionsT()
        o.valuesCount = len(op.inputs)
        o.axis = int(op.attrs["axis"])
        return TfliteLowering("PackOptions", o)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        # Stack in the IR's layout: unsqueeze every input at the axis, concatenate there.
        axis = int(op.attrs["axis"])
        axes = b.const("axes", np.array([axis], np.int64))
        parts = [b.node("Unsqueeze", [_ir_layout(b, n), axes], op.name) for n in op.inputs]
        y = b.node("Concat", parts, op.name, axis=axis)
        return _onnx_layout(b, y, len(b.graph.tensor(op.outputs[0]).shape), op.name)


@register
class Unpack(_PackFamily):
    kind = "UNPACK"

    def _packed_and_parts(self, op: Op) -> tuple[str, list[str]]:
        return op.inputs[0], list(op.outputs)

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 1 or not op.inputs[0] or not op.outputs:
            raise UnsupportedError(f"{where}: needs one input and one or more outputs, got "
                                   f"inputs {op.inputs} and outputs {op.outputs}")
        check_io(graph, op, 1, self.dtypes)
        x = graph.tensor(op.inputs[0])
        if len(x.shape) < 2:
            raise UnsupportedError(f"{where}: input {x.name} {x.shape} has rank "
                                   f"{len(x.shape)}; unpacking into scalars is not supported "
                                   "(rank 2 or more)")
        axis = _axis_attr(op, len(x.shape), "input")
        if x.shape[axis] != len(op.outputs):
            raise UnsupportedError(f"{where}: input {x.name} {x.shape} has {x.shape[axis]} "
                                   f"slices along axis {axis} but the op has {len(op.outputs)} "
                                   "outputs; UNPACK gives one output per slice")
        check_same_quant(graph, op, list(op.outputs), op.inputs[0])

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        shape = graph.tensor(op.inputs[0]).shape
        axis = int(op.attrs["axis"])
        return [(*shape[:axis], *shape[axis + 1:])] * len(op.outputs)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, axis = inputs[0], int(op.attrs["axis"])
        return [np.ascontiguousarray(np.take(x, i, axis=axis)) for i in range(x.shape[axis])]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_unpack_{SUFFIX[io_dtype(graph, op)]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        outer, copy = pack_geometry(graph.tensor(op.inputs[0]).shape, int(op.attrs["axis"]))
        ctype = CTYPE[io_dtype(graph, op)]
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_pack_params_t",
            params={"count": len(op.outputs), "outer": outer, "copy_size": copy},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  *(Arg("tensor", n, ctype) for n in op.outputs)],
            sources=list(SOURCES))

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "UnpackOptions")
        if not inputs or inputs[0] is None:
            raise UnsupportedError("UNPACK without an input")
        rank = len(inputs[0].shape)
        axis = _tflite_axis("UNPACK", int(o.Axis()) if o else 0, rank)
        n_out = operator.OutputsLength()
        if o is not None and o.Num() != n_out:
            raise UnsupportedError(f"UNPACK says num {o.Num()} but has {n_out} outputs")
        return TfliteImport({"axis": axis}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.UnpackOptionsT()
        o.num = len(op.outputs)
        o.axis = int(op.attrs["axis"])
        return TfliteLowering("UnpackOptions", o)

    def to_qdq(self, b: QdqBuilder, op: Op) -> list[str]:
        """Each slice is a Gather of one index, which drops the axis."""
        axis = int(op.attrs["axis"])
        x = _ir_layout(b, op.inputs[0])
        rank = len(b.graph.tensor(op.outputs[0]).shape)
        values = []
        for i in range(len(op.outputs)):
            index = b.const("index", np.array(i, np.int64))
            v = b.node("Gather", [x, index], op.name, axis=axis)
            values.append(_onnx_layout(b, v, rank, op.name))
        return values
