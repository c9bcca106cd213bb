"""FUSED_BLOCK: an inverted-residual block (pointwise expand -> depthwise -> pointwise project,
optionally + the block's input) run band by band, so that the expanded tensor only ever exists
as a window of a few rows (csrc/te_fused_block.h).

No frontend produces this op: the memory planner (memory/fuse.py) puts it in place of the chain
where that makes the arena smaller. Its semantics are its members' own: `reference` runs the
original ops in turn (attrs["block"], with their intermediate tensors in attrs["inner"]), so a
fused graph is checked bit-exact against the unfused reference. The C kernel calls the members'
own kernels (te_conv2d_1x1_s8, te_depthwise_conv_wrapper_s8, te_add_s8) on rows, with their
whole-tensor parameter structs as the members' emit hooks give them.

Inputs: x, then the filter and bias of expand, depthwise and project ("" for an absent bias).
Output: the project's output, or the ADD's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, ConstArray, CValue, OpDef, OpEmission, get_op, register
from .common import window_padding
from .conv import is_pointwise

ALIGN = 4  # each part of the scratch starts on a word (memory/plan.py's ALIGN)
MEMBER_PREFIX = ("e", "d", "p", "a")  # const name prefixes of expand, depthwise, project, add


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def member_graph(graph: Graph, op: Op) -> Graph:
    """The graph the members run in: `graph`'s tensors plus the block's intermediate ones."""
    inner: dict[str, Tensor] = op.attrs["inner"]
    return Graph({**graph.tensors, **inner}, list(op.attrs["block"]), graph.inputs,
                 graph.outputs, graph.name)


def members(op: Op) -> tuple[Op, Op, Op, Op | None]:
    block = op.attrs["block"]
    return block[0], block[1], block[2], (block[3] if len(block) > 3 else None)


def ring_rows(g: Graph, dw: Op) -> int:
    """Rows of the expanded tensor one depthwise output row reads: (fh - 1) * dilation_h + 1."""
    fh = g.tensor(dw.inputs[1]).shape[1]
    return (fh - 1) * int(dw.attrs.get("dilation", (1, 1))[0]) + 1


def block_scratch(g: Graph, expand: Op, dw: Op, project: Op, add: Op | None) -> int:
    """te_fused_block_get_buffer_size: the window of expanded rows, one depthwise output row
    and, with the residual add, one projected row; each part word-aligned."""
    e, d, p = (g.tensor(o.outputs[0]) for o in (expand, dw, project))
    ring = ring_rows(g, dw) * e.shape[2] * e.shape[3]
    row = d.shape[2] * d.shape[3]
    proj = p.shape[2] * p.shape[3] if add is not None else 0
    return _aligned(ring) + _aligned(row) + _aligned(proj)


def chain_problem(g: Graph, expand: Op, dw: Op, project: Op, add: Op | None) -> str | None:
    """Why these ops cannot run as one block (None: they can). The domain of te_fused_block_s8:
    int8; expand and project pointwise (1x1, stride 1, no padding); the depthwise reads the
    expansion, the project the depthwise; its top padding within its window (every output
    row's window reaches the image); the add, if any, sums the projection and the block's input
    at one shape, with no broadcasting."""
    x = expand.inputs[0]
    if any(g.tensor(o.outputs[0]).dtype != "int8" for o in (expand, dw, project)):
        return "not int8"
    if expand.kind != "CONV_2D" or not is_pointwise(g, expand):
        return "the expansion is not a pointwise convolution"
    if dw.kind != "DEPTHWISE_CONV_2D" or dw.inputs[0] != expand.outputs[0]:
        return "the depthwise convolution does not read the expansion"
    if project.kind != "CONV_2D" or project.inputs[0] != dw.outputs[0]:
        return "the projection does not read the depthwise convolution"
    if not is_pointwise(g, project):
        return "the projection is not a pointwise convolution"
    xt, w = g.tensor(dw.inputs[0]), g.tensor(dw.inputs[1])
    oh, _, ph, _ = window_padding(dw, xt.shape[1], xt.shape[2], w.shape[1], w.shape[2])
    sh = int(dw.attrs["stride"][0])
    if ph < 0 or ph > ring_rows(g, dw) - 1 or (oh - 1) * sh - ph >= xt.shape[1]:
        return "a depthwise window lies in the padding alone"
    if add is not None:
        a, b = add.inputs
        if add.kind != "ADD" or sorted((a, b)) != sorted((x, project.outputs[0])) or a == b:
            return "the add does not sum the projection and the block's input"
        out = g.tensor(add.outputs[0])
        if (g.tensor(x).shape != out.shape or g.tensor(project.outputs[0]).shape != out.shape
                or out.dtype != "int8" or g.tensor(x).dtype != "int8"):
            return "the add's operands and output differ in shape or type"
    return None


@register
class FusedBlock(OpDef):
    kind = "FUSED_BLOCK"
    dtypes = ("int8",)
    patch = "none"  # made after the patch pass, from ops beyond its stage
    # A schedule choice of the memory planner, never read from or written to a model file.
    not_applicable = frozenset({"from_tflite", "to_tflite", "from_onnx", "to_qdq", "quant_rule",
                                "window"})

    def check(self, graph: Graph, op: Op) -> None:
        g = member_graph(graph, op)
        expand, dw, project, add = members(op)
        problem = chain_problem(g, expand, dw, project, add)
        if problem is not None:
            raise UnsupportedError(f"op {op.name} ({op.kind}): {problem}; run the ops unfused")
        for m in (expand, dw, project) + ((add,) if add is not None else ()):
            get_op(m.kind).check(g, m)
        want = [expand.inputs[0]] + [n for m in (expand, dw, project)
                                     for n in (m.inputs[1:3] + [""])[:2]]
        if list(op.inputs) != want or op.outputs != [(add or project).outputs[0]]:
            raise UnsupportedError(f"op {op.name} ({op.kind}): inputs or outputs differ from "
                                   "its members'; rebuild it with memory/fuse.py")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        last = op.attrs["block"][-1]
        return [get_op(last.kind).infer_shapes(member_graph(graph, op), last)[0]]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        g = member_graph(graph, op)
        values: dict[str, Any] = {n: v for n, v in zip(op.inputs, inputs) if n}
        for m in op.attrs["block"]:
            args: list[Any] = [values.get(n, g.tensor(n).data) if n else None
                               for n in m.inputs]
            values[m.outputs[0]] = get_op(m.kind).reference(g, m, args)[0]
        return [values[op.outputs[0]]]

    def macs(self, graph: Graph, op: Op) -> int:
        g = member_graph(graph, op)
        return sum(get_op(m.kind).macs(g, m) for m in op.attrs["block"])

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_fused_block_s8"

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # The output may take over x's buffer when an output row is no longer than an input
        # row: output row t then lands on input rows <= t, all expanded already, and the
        # residual reads input row t just before row t is written (te_fused_block.h).
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return [0] if y.shape[2] * y.shape[3] <= x.shape[2] * x.shape[3] else []

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return block_scratch(member_graph(graph, op), *members(op))

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        g = member_graph(graph, op)
        expand, dw, project, add = members(op)
        params: dict[str, CValue] = {}
        consts: list[ConstArray] = []
        # te_fused_block.c calls te_add_s8 whether or not this block has an add.
        sources = ["te_fused_block.h", "te_fused_block.c", "te_add.h", "te_add.c"]
        for prefix, field, m in zip(MEMBER_PREFIX, ("expand", "dw", "project", "add"),
                                    (expand, dw, project, add)):
            if m is None:  # no residual: an add struct of zeros the kernel never reads
                dims: list[CValue] = [0, 0, 0, 0]
                params[field] = [[dims, 0, 0, 0], [dims, 0, 0, 0], dims, 0, 0, 0, 0, 0, 0]
                continue
            em = get_op(m.kind).emit(g, m)
            # The member's struct, positionally (emit gives its fields in order), its
            # constants renamed apart from the other members'.
            params[field] = [_renamed(v, prefix) for v in em.params.values()]
            consts += [ConstArray(f"{prefix}_{c.name}", c.ctype, c.values, c.shared)
                       for c in em.consts]
            sources += [s for s in em.sources if s not in sources]
        params["residual"] = 0 if add is None else (1 if add.inputs[0] == op.inputs[0] else 2)
        names = {c.name for c in consts}
        args = [Arg("tensor", op.inputs[0], "const int8_t")]
        for prefix in MEMBER_PREFIX[:3]:
            args += [Arg("const", f"{prefix}_filter", "const int8_t"),
                     Arg("const", f"{prefix}_bias" if f"{prefix}_bias" in names else "",
                         "const int32_t")]
        args += [Arg("tensor", op.outputs[0], "int8_t"), Arg("scratch", "", "int8_t")]
        return OpEmission(kernel=self.kernel(graph, op), params_type="te_fused_block_params_t",
                          params=params, args=args, consts=consts, sources=sources,
                          scratch_bytes=self.scratch_bytes(graph, op))


def _renamed(value: CValue, prefix: str) -> CValue:
    """A member's parameter with its "@const" references renamed to the block's names."""
    if isinstance(value, str):
        return f"@{prefix}_{value[1:]}" if value.startswith("@") else value
    if isinstance(value, (list, tuple)):
        return [_renamed(v, prefix) for v in value]
    return value
