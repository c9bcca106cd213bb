"""In-place execution: let an op's output take over the buffer of an input that dies there.

A pass over the graph in execution order. Buffers form alias groups (union-find): an op may
write into the group of input k (k from the op's `inplace_inputs`) when no member of that group
is read after this op and none is a graph output; a view op (RESHAPE) may join its input's group
regardless, since it changes no byte. A group's buffer lives from its first member's birth at
its largest member's size, so a merge can also cost bytes; mark_inplace takes a merge only when
it does not raise the peak. The decision is recorded as `op.attrs["inplace"] = k`, which the
planner turns into one shared buffer and the op's emitter into its in-place kernel.

Views at an offset (mark_views): a CONCATENATION whose inputs are contiguous byte ranges of its
output (every output dimension before the axis is 1) lets each input's group live inside the
output's buffer at that input's offset, so the producers write straight into their slice and
the concatenation copies nothing (its kernel skips an input already in place). TFLM allocates
the output separately and copies. A SPLIT or SLICE along an outer axis is the mirror image: each
output is its slice of the input's buffer.
"""

from __future__ import annotations

import copy

from ..ir import Graph, Op
from ..ops import get_op


def alias_layout(graph: Graph) -> dict[str, tuple[str, int]]:
    """Tensor -> (its alias group's root, its byte offset in the root's buffer), from the ops'
    `inplace` marks (offset 0) and CONCATENATION `views` (each input at its slice)."""
    parent: dict[str, tuple[str, int]] = {}

    def find(t: str) -> tuple[str, int]:
        offset = 0
        while t in parent:
            t, step = parent[t]
            offset += step
        return t, offset

    for op in graph.ops:
        k = op.attrs.get("inplace")
        if k is not None:
            out_root, out_off = find(op.outputs[0])
            in_root, in_off = find(op.inputs[k])
            if out_root != in_root:
                parent[out_root] = (in_root, in_off - out_off)
        for n, view in zip(op.inputs, op.attrs.get("views") or ()):
            in_root, in_off = find(n)
            out_root, out_off = find(op.outputs[0])
            if in_root != out_root:
                parent[in_root] = (out_root, out_off + view - in_off)
        for n, view in zip(op.outputs, op.attrs.get("output_views") or ()):
            in_root, in_off = find(op.inputs[0])
            out_root, out_off = find(n)
            if in_root != out_root:
                parent[out_root] = (in_root, in_off + view - out_off)
    return {t.name: find(t.name) for t in graph.activations()}


def alias_groups(graph: Graph) -> dict[str, str]:
    """Tensor -> the name of its alias group's root."""
    return {t: root for t, (root, _) in alias_layout(graph).items()}


def _outputs_can_be_views(graph: Graph, op: Op, step: int, last: dict[str, int],
                          offsets: list[int], groups: dict[str, str],
                          members: dict[str, list[str]], viewed: set[str]) -> bool:
    """Each output may be its slice of the input's buffer: aligned, alone in its group or with
    members no larger than the slice (an in-place op after it must not spill into the next
    slice), no graph output; the input dies here (an in-place op over an output writes into
    it) and is no graph input (the caller owns that buffer)."""
    from .plan import ALIGN

    x = op.inputs[0]
    gx = groups.get(x, x)
    # Every tensor in the input's buffer (a RESHAPE view of it, say) dies here: an op running
    # in place over an output later writes into that buffer.
    if gx in viewed or any(last[m] > step or m in graph.inputs or m in graph.outputs
                           for m in members[gx]):
        return False
    for n, off in zip(op.outputs, offsets):
        g = groups.get(n, n)
        slot = graph.tensor(n).nbytes
        if off % ALIGN or g in viewed or g == groups.get(x, x) or any(
                m in graph.outputs or graph.tensor(m).nbytes > slot for m in members[g]):
            return False
    return True


def mark_views(graph: Graph) -> Graph:
    """A copy of `graph` whose CONCATENATIONs carry `views` (each input's byte offset in the
    output) wherever the inputs can live inside the output's buffer: the concatenation is along
    an outer axis, every offset is aligned, and each input is produced by an op of this graph,
    read by this concatenation once, no graph output, and alone in its alias group (or with
    members no larger than its slice); and whose SPLITs along an outer axis carry
    `output_views` likewise. Returns `graph` itself when nothing qualifies."""
    from .plan import ALIGN, _aligned

    groups = alias_groups(graph)
    _, last = tensor_lifetimes(graph)
    members: dict[str, list[str]] = {}
    for name, g in groups.items():
        members.setdefault(g, []).append(name)
    produced = {n for op in graph.ops for n in op.outputs}
    ops: list[Op] = []
    changed, viewed = False, set[str]()
    for step, op in enumerate(graph.ops):
        views = get_op(op.kind).concat_axis_offsets(graph, op)
        ok = views is not None and len(set(op.inputs)) == len(op.inputs)
        if ok:
            assert views is not None
            taken: set[str] = set()  # two inputs in one buffer cannot sit in two slices
            for n, off in zip(op.inputs, views):
                tensor = graph.tensor(n)
                g = groups.get(n, n)
                if g in taken:
                    ok = False
                    break
                taken.add(g)
                slot = tensor.nbytes
                # Every member dies here: an in-place op over the joined buffer later writes
                # over the whole of it.
                if (off % ALIGN or tensor.is_const or n not in produced or n in graph.outputs
                        or any(last[m] > step for m in members[g])
                        or g in viewed or g == groups.get(op.outputs[0])
                        or any(m in graph.outputs or graph.tensor(m).nbytes > slot
                               or m in graph.inputs for m in members[g])
                        or _aligned(slot) != slot and n != op.inputs[-1]):
                    ok = False
                    break
        if ok:
            op = copy.copy(op)
            op.attrs = dict(op.attrs, views=list(views or ()))
            viewed.update(groups.get(n, n) for n in op.inputs)
            changed = True
        out_views = get_op(op.kind).split_axis_offsets(graph, op)
        if out_views is not None and _outputs_can_be_views(graph, op, step, last, out_views,
                                                           groups, members, viewed):
            op = copy.copy(op)
            op.attrs = dict(op.attrs, output_views=out_views)
            viewed.update(groups.get(n, n) for n in op.outputs)
            changed = True
        ops.append(op)
    return Graph(graph.tensors, ops, graph.inputs, graph.outputs, graph.name) if changed else graph


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
            if n and graph.tensor(n).in_arena:
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
