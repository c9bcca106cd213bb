"""SPLIT and SPLIT_V: an int8 or int16 tensor cut along one axis into consecutive pieces, one output
each (SPLIT: equal pieces, their number the op's output count; SPLIT_V: the sizes listed).

Reference semantics: TFLM's split.cc / split_v.cc copy, for each index of the axes outside the
split axis, each output's piece in turn. TFLite's converter gives every output the input's
quantisation; TFLM's SplitImpl runs int16 as int8. Our C kernel takes up to TE_SPLIT_MAX_OUTPUTS
(8) outputs.

The split axis is an attr (TFLite's axis input, a constant, is folded); SPLIT_V's sizes too,
with TFLite's one -1 ("the rest") resolved on import. ONNX Split becomes SPLIT where the pieces
are equal and SPLIT_V otherwise.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import tflite_const, tflite_options
from .transpose import (
    MOVER_DTYPES,
    check_moves_bytes,
    ir_axis_to_onnx,
    mover_types,
    onnx_axis_to_ir,
    where,
)

MAX_OUTPUTS = 8  # TE_SPLIT_MAX_OUTPUTS
SOURCES = ["te_common.h", "te_split.h", "te_split.c"]


def split_axis(graph: Graph, op: Op) -> int:
    x = graph.tensor(op.inputs[0])
    a = int(op.attrs["axis"])
    k = a + len(x.shape) if a < 0 else a
    if not 0 <= k < len(x.shape):
        raise UnsupportedError(f"{where(op)}: axis {a} is not an axis of input {x.name} "
                               f"{x.shape}")
    return k


def emit_multi(b: Any, kind: str, node: Any, inputs: list[str], outputs: list[str],
               attrs: dict[str, Any]) -> Op:
    """b.emit for an op with several outputs (the ONNX outputs, NHWC where 4-D): append the op
    after checking that its shape rule gives the shapes ONNX inferred."""
    from ..frontend import onnx_ops as ox

    shapes = [ox.nhwc(b.shape(o)) for o in outputs]
    for n in inputs:
        if n and n not in b.tensors:
            b.tensors[n] = Tensor(n, ox.nhwc(b.shape(n)), "float32")
    base = re.sub(r"[^A-Za-z0-9_./:-]", "_", node.name or f"{node.op_type}_{len(b.ops)}")
    names = {o.name for o in b.ops}
    op_name, k = base, 1
    while op_name in names:
        op_name, k = f"{base}_{k}", k + 1
    for o, shape in zip(outputs, shapes):
        b.tensors[o] = Tensor(o, shape, "float32")
    op = Op(op_name, kind, inputs, list(outputs), attrs)
    computed = [tuple(s) for s in get_op_shapes(b, op)]
    if computed != shapes:
        raise ox.Unsupported(f"as {kind} it computes shapes {computed}, ONNX says {shapes}")
    b.ops.append(op)
    return op


def get_op_shapes(b: Any, op: Op) -> list[tuple[int, ...]]:
    from . import get_op

    view = Graph(b.tensors, b.ops, [], [])
    return get_op(op.kind).infer_shapes(view, op)


class _Split(OpDef):
    dtypes = MOVER_DTYPES
    patch = "none"
    not_applicable = frozenset({"window"})

    def sizes(self, graph: Graph, op: Op) -> list[int]:
        raise NotImplementedError

    def split_axis_offsets(self, graph: Graph, op: Op) -> list[int] | None:
        """Byte offset of each output in the input when each output is one contiguous range of
        it (every input dim before the axis is 1), so the planner may place the outputs there
        as views; None otherwise."""
        x = graph.tensor(op.inputs[0])
        k = split_axis(graph, op)
        if any(d != 1 for d in x.shape[:k]):
            return None
        inner = int(np.prod(x.shape[k + 1:], dtype=np.int64)) * x.nbytes // x.size
        starts = np.cumsum([0, *self.sizes(graph, op)])[:-1]
        return [int(s) * inner for s in starts]

    def check(self, graph: Graph, op: Op) -> None:
        check_moves_bytes(graph, op)
        x = graph.tensor(op.inputs[0])
        if not 1 <= len(op.outputs) <= MAX_OUTPUTS:
            raise UnsupportedError(f"{where(op)}: {len(op.outputs)} outputs of input {x.name}; "
                                   f"1 to {MAX_OUTPUTS} are supported")
        k = split_axis(graph, op)
        sizes = self.sizes(graph, op)
        if len(sizes) != len(op.outputs) or min(sizes) < 1 or sum(sizes) != x.shape[k]:
            raise UnsupportedError(f"{where(op)}: split sizes {sizes} for {len(op.outputs)} "
                                   f"outputs must be positive and sum to {x.shape[k]}, axis {k} "
                                   f"of input {x.name} {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        k = split_axis(graph, op)
        return [x.shape[:k] + (n,) + x.shape[k + 1:] for n in self.sizes(graph, op)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        k = split_axis(graph, op)
        cuts = np.cumsum(self.sizes(graph, op))[:-1]
        return [np.ascontiguousarray(p) for p in np.split(inputs[0], cuts, axis=k)]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_split_{mover_types(graph, op)[1]}"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x = graph.tensor(op.inputs[0])
        k = split_axis(graph, op)
        outer = int(np.prod(x.shape[:k], dtype=np.int64))
        inner = int(np.prod(x.shape[k + 1:], dtype=np.int64))
        sizes = self.sizes(graph, op)
        chunk = [n * inner for n in sizes] + [0] * (MAX_OUTPUTS - len(sizes))
        ctype = mover_types(graph, op)[0]
        outs = [Arg("tensor", n, ctype) for n in op.outputs]
        outs += [Arg("const", "", ctype)] * (MAX_OUTPUTS - len(outs))  # NULL
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_split_params_t",
            params={"outer": outer, "num_outputs": len(sizes), "chunk": chunk},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"), *outs],
            sources=list(SOURCES),
        )

    def to_qdq(self, b: Any, op: Op) -> list[str]:
        """One ONNX Split node; its outputs, in order, for the exporter to quantise."""
        from onnx import helper

        x = b.graph.tensor(op.inputs[0])
        axis = ir_axis_to_onnx(split_axis(b.graph, op), len(x.shape))
        sizes = b.const("split", np.array(self.sizes(b.graph, op), np.int64))
        outs = [b.fresh(f"{op.name}/split{i}") for i in range(len(op.outputs))]
        b.nodes.append(helper.make_node("Split", [b.dequantized(x.name), sizes], outs,
                                        name=b.fresh(f"{op.name}/Split"), axis=axis))
        return outs

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], y) for y in op.outputs])


@register
class Split(_Split):
    kind = "SPLIT"
    onnx_types = ("Split",)

    def sizes(self, graph: Graph, op: Op) -> list[int]:
        n = graph.tensor(op.inputs[0]).shape[split_axis(graph, op)]
        m = len(op.outputs)
        if m < 1 or n % m:
            raise UnsupportedError(f"{where(op)}: axis {op.attrs['axis']} of input "
                                   f"{op.inputs[0]} has {n} elements, which do not split into "
                                   f"{m} equal pieces")
        return [n // m] * m

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        axis = tflite_const(inputs, 0, "SPLIT axis").ravel()
        if axis.size != 1:
            raise UnsupportedError(f"SPLIT axis must be one value, got {axis.tolist()}")
        return TfliteImport({"axis": int(axis[0])}, [1])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.SplitOptionsT()
        o.numSplits = len(op.outputs)
        return TfliteLowering("SplitOptions", o,
                              leading_inputs=[np.array(int(op.attrs["axis"]), np.int32)])

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        """ONNX Split with constant sizes (input, attribute or num_outputs): SPLIT for equal
        pieces, SPLIT_V otherwise."""
        from ..frontend import onnx_ops as ox

        x = b.activation(node.input[0])
        shape = b.shape(x)
        a = ox.node_attrs(node)
        axis_onnx = int(a.get("axis", 0))
        k = onnx_axis_to_ir(axis_onnx, len(shape))
        n = ox.nhwc(shape)[k]
        if len(node.input) > 1 and node.input[1]:
            sizes = [int(v) for v in b.const(node.input[1], "split sizes").ravel()]
        elif "split" in a:
            sizes = [int(v) for v in a["split"]]
        else:  # num_outputs pieces, the last one smaller if they do not divide evenly
            m = len(node.output)
            piece = -(-n // m)
            sizes = [piece] * (m - 1) + [n - piece * (m - 1)]
        if len(sizes) != len(node.output) or sum(sizes) != n or min(sizes) < 1:
            raise ox.Unsupported(f"split sizes {sizes} for {len(node.output)} outputs do not "
                                 f"sum to {n}, axis {axis_onnx} of {x} {shape}")
        outputs = [str(o) for o in node.output]
        if len(set(sizes)) == 1:
            emit_multi(b, "SPLIT", node, [x], outputs, {"axis": k})
        else:
            emit_multi(b, "SPLIT_V", node, [x], outputs, {"axis": k, "sizes": tuple(sizes)})


@register
class SplitV(_Split):
    kind = "SPLIT_V"
    # ONNX Split is converted by SPLIT's from_onnx, which emits SPLIT_V for unequal pieces.
    not_applicable = frozenset({"window", "from_onnx"})

    def sizes(self, graph: Graph, op: Op) -> list[int]:
        return [int(n) for n in op.attrs["sizes"]]

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        sizes = [int(v) for v in tflite_const(inputs, 1, "SPLIT_V size_splits").ravel()]
        axis = tflite_const(inputs, 2, "SPLIT_V axis").ravel()
        if axis.size != 1:
            raise UnsupportedError(f"SPLIT_V axis must be one value, got {axis.tolist()}")
        shape = inputs[0].shape
        k = int(axis[0]) + len(shape) if int(axis[0]) < 0 else int(axis[0])
        if sizes.count(-1) > 1 or not 0 <= k < len(shape):
            raise UnsupportedError(f"SPLIT_V size_splits {sizes} on axis {int(axis[0])} of "
                                   f"input {inputs[0].name} {shape}: at most one -1, and the "
                                   "axis must exist")
        if -1 in sizes:
            sizes[sizes.index(-1)] = shape[k] - (sum(sizes) + 1)
        opts = tflite_options(operator, "SplitVOptions")
        if opts is not None and opts.NumSplits() not in (0, len(sizes)):
            raise UnsupportedError(f"SPLIT_V num_splits {opts.NumSplits()} differs from the "
                                   f"{len(sizes)} size_splits")
        return TfliteImport({"axis": int(axis[0]), "sizes": tuple(sizes)}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.SplitVOptionsT()
        o.numSplits = len(op.outputs)
        return TfliteLowering("SplitVOptions", o, extra_inputs=[
            np.array(self.sizes(graph, op), np.int32),
            np.array(int(op.attrs["axis"]), np.int32)])
