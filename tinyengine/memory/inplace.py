"""In-place execution: let an op's output take over the buffer of an input that dies there.

A pass over the graph in execution order. Buffers form alias groups (union-find): an op may
write into the group of input k (k from the op's `inplace_inputs`) when no member of that group
is read after this op, none is a graph output, and the output fits in the group's buffer as it
is; a view op (RESHAPE) may join its input's group regardless, since it changes no byte. The
size rule matters because a group's buffer lives from its first member's birth: growing it for
an expanding layer (a pointwise conv to more channels) would charge the larger size at steps
before that layer, which can raise the peak it was meant to lower. The decision is recorded as
`op.attrs["inplace"] = k`, which the planner turns into one shared buffer and the op's emitter
into its in-place kernel.
"""

from __future__ import annotations

import copy

from ..ir import Graph
from ..ops import get_op


def alias_groups(graph: Graph) -> dict[str, str]:
    """Tensor -> the name of its alias group's root, from the ops' `inplace` marks."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    for op in graph.ops:
        k = op.attrs.get("inplace")
        if k is not None:
            parent[find(op.outputs[0])] = find(op.inputs[k])
    return {t.name: find(t.name) for t in graph.activations()}


def mark_inplace(graph: Graph) -> Graph:
    """A copy of `graph` whose ops carry `inplace` marks wherever running in place is safe."""
    last_read: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for n in op.inputs:
            if n:
                last_read[n] = i
    ops = [copy.copy(op) for op in graph.ops]
    members: dict[str, list[str]] = {}  # group root -> member tensors
    root: dict[str, str] = {}
    outputs = set(graph.outputs)
    for i, op in enumerate(ops):
        op.attrs = {k: v for k, v in op.attrs.items() if k != "inplace"}
        opdef = get_op(op.kind)
        for k in opdef.inplace_inputs(graph, op):
            src = op.inputs[k]
            group = members.setdefault(root.setdefault(src, src), [src])
            dies_here = all(last_read.get(m, -1) <= i and m not in outputs for m in group)
            fits = graph.tensor(op.outputs[0]).nbytes <= max(graph.tensor(m).nbytes
                                                             for m in group)
            if opdef.is_view or (dies_here and fits):
                op.attrs["inplace"] = k
                out = op.outputs[0]
                root[out] = root[src]
                group.append(out)
                break
    return Graph(graph.tensors, ops, graph.inputs, graph.outputs, graph.name)
