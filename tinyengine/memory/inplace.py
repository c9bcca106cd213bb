"""In-place execution: let an op's output take over the buffer of an input that dies there.

A pass over the graph in execution order. Buffers form alias groups (union-find): an op may
write into the group of input k (k from the op's `inplace_inputs`) when no member of that group
is read after this op and none is a graph output; a view op (RESHAPE) may join its input's group
regardless, since it changes no byte. A group's buffer lives from its first member's birth at
its largest member's size, so a merge can also cost bytes; mark_inplace takes a merge only when
it does not raise the peak. The decision is recorded as `op.attrs["inplace"] = k`, which the
planner turns into one shared buffer and the op's emitter into its in-place kernel.
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


def tensor_lifetimes(graph: Graph) -> tuple[dict[str, int], dict[str, int]]:
    """First and last step of every arena tensor: graph inputs live from step 0, outputs until
    after the last op (step len(ops)), everything else from its producer to its last reader."""
    first = {n: 0 for n in graph.inputs}
    last = {n: 0 for n in graph.inputs}
    for i, op in enumerate(graph.ops):
        for n in op.outputs:
            first.setdefault(n, i)
            last[n] = max(last.get(n, i), i)
        for n in op.inputs:
            if n and not graph.tensor(n).is_const:
                last[n] = max(last.get(n, i), i)
    for n in graph.outputs:
        last[n] = len(graph.ops)
    return first, last


def mark_inplace(graph: Graph) -> Graph:
    """A copy of `graph` whose ops carry `inplace` marks wherever running in place is safe and
    does not raise the peak.

    Merging output o into its input's group G at step i changes the live bytes (S = the larger
    of the two sizes): by S - size(G) before i, by S + scratch - size(G) - size(o) at i, by
    S - size(o) after. A profile of live bytes per step is kept up to date, and a merge is taken
    only if no step it touches rises above the current peak. So a merge that shrinks step i but
    widens the group (a pointwise conv to more channels) is taken exactly when it pays.
    """
    from .plan import _aligned

    first, last = tensor_lifetimes(graph)
    profile = [0] * (len(graph.ops) + 1)
    for n in first:
        for s in range(first[n], last[n] + 1):
            profile[s] += _aligned(graph.tensor(n).nbytes)
    peak = max(profile, default=0)
    ops = [copy.copy(op) for op in graph.ops]
    group: dict[str, list[int]] = {n: [first[n], last[n], _aligned(graph.tensor(n).nbytes)]
                                   for n in first}  # root -> [first, last, size]
    root: dict[str, str] = {n: n for n in first}
    members: dict[str, list[str]] = {n: [n] for n in first}
    outputs = set(graph.outputs)
    for i, op in enumerate(ops):
        op.attrs = {k: v for k, v in op.attrs.items() if k != "inplace"}
        opdef = get_op(op.kind)
        out = op.outputs[0]
        for k in opdef.inplace_inputs(graph, op):
            g = root[op.inputs[k]]
            g_first, g_last, g_size = group[g]
            o_last, o_size = last[out], _aligned(graph.tensor(out).nbytes)
            size = max(g_size, o_size)
            if opdef.is_view:
                scratch = 0
            elif g_last > i or any(m in outputs for m in members[g]):
                continue  # the group is still read later: writing over it would corrupt it
            else:
                op.attrs["inplace"] = k
                scratch = _aligned(opdef.scratch_bytes(graph, op))
            span = range(g_first, max(g_last, o_last) + 1)
            delta = [size - (g_size if s <= g_last else 0) - (o_size if s >= i else 0)
                     + (scratch if s == i else 0) for s in span]
            if not opdef.is_view and max(profile[s] + d for s, d in zip(span, delta)) > peak:
                del op.attrs["inplace"]
                continue
            op.attrs["inplace"] = k
            for s, d in zip(span, delta):
                profile[s] += d
            peak = max(profile)  # a merge that lowered the peak sets the bar for later ones
            group[g] = [g_first, max(g_last, o_last), size]
            root[out] = g
            members[g].append(out)
            break
    return Graph(graph.tensors, ops, graph.inputs, graph.outputs, graph.name)
