"""In-place execution: let an op's output take over the buffer of an input that dies there.

A pass over the graph in execution order. Buffers form alias groups (union-find): an op may
write into the group of input k (k from the op's `inplace_inputs`) when no member of that group
is read after this op and none is a graph output; a view op (RESHAPE) may join its input's group
regardless, since it changes no byte. A group's buffer needs, at each step, the bytes up to the
end of its furthest member live then (plan.BufferInfo's profile): a pointwise convolution that
widens its input in place costs the wider size only from its own step on, not from the group's
first birth (TinyEngine's rule, which sizes the group at its largest member throughout). A merge
then never adds live bytes except the op's scratch at its step; mark_inplace takes it when that
does not raise the peak. The decision is recorded as `op.attrs["inplace"] = k`, which the
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
from collections.abc import Collection

from ..ir import Graph, Op
from ..ops import get_op


def alias_layout(graph: Graph) -> dict[str, tuple[str, int]]:
    """Tensor -> (its alias group's root, its byte offset in the root's buffer), from the ops'
    `inplace` marks (the output at the input's offset, or `inplace_offset` bytes before it) and
    CONCATENATION `views` (each input at its slice). Offsets start at 0 in every group, and the
    root is a tensor at offset 0 (the buffer is named after it)."""
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
                shift = int(op.attrs.get("inplace_offset", 0))
                parent[out_root] = (in_root, in_off - shift - out_off)
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
    layout = {t.name: find(t.name) for t in graph.activations()}
    # An output placed before its input (inplace_offset) leaves a negative offset: shift each
    # group to start at 0, rooted at its old root if that stays at 0, else its first tensor at 0.
    low: dict[str, int] = {}
    for root, off in layout.values():
        low[root] = min(low.get(root, off), off)
    if not any(low.values()):
        return layout
    new_root = {r: r for r, m in low.items() if layout.get(r, (r, 0))[1] == m}
    for t, (root, off) in layout.items():
        if off == low[root]:
            new_root.setdefault(root, t)
    return {t: (new_root[root], off - low[root]) for t, (root, off) in layout.items()}


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


def mark_inplace(graph: Graph, offsets: bool | Collection[str] = True,
                 slow: bool | Collection[str] = True) -> Graph:
    """A copy of `graph` whose ops carry `inplace` marks wherever running in place is safe and
    does not raise the peak.

    A group's buffer needs, at each step, the bytes from its start to the end of its furthest
    member live then. Merging output o (born at step i) into its input's group changes the live
    bytes at each step o lives by need'(s) - need(s) - size(o) (<= 0 at offset 0: the group
    needs the larger of the two there, not their sum), plus the op's scratch at step i. An op
    may also offer to run with its input `offset` bytes after its output's start (`inplace_offsets`,
    row by row: ops/rows_inplace.py); where that puts the output below the group's start, the
    group grows by the difference from its birth. A profile of live bytes per step is kept up to
    date, and a merge is taken only if no step rises above the current peak: the first of the
    op's `inplace_inputs` that passes, else the offset choice with the lowest local peak. A view
    op (RESHAPE) joins its input's group whenever it can: it writes nothing. `offsets` says
    which ops may take an offset choice (True: all, False: none, else the op names):
    schedule.plan_graph keeps them only where they make the arena smaller. `slow` says likewise
    which ops may take an in-place kernel slower than their out-of-place one (the op's
    `inplace_speed` above 1, measured by benchmarks/inplace_speed.py).
    """
    from .plan import _aligned

    first, last = tensor_lifetimes(graph)
    profile = [0] * (len(graph.ops) + 1)
    for n in first:
        for s in range(first[n], last[n] + 1):
            profile[s] += _aligned(graph.tensor(n).nbytes)
    ops = [copy.copy(op) for op in graph.ops]
    groups = _Groups(graph, first, last)
    for i, op in enumerate(ops):
        op.attrs = {k: v for k, v in op.attrs.items() if k not in ("inplace", "inplace_offset")}
        opdef = get_op(op.kind)
        peak = max(profile, default=0)
        if opdef.is_view:
            for k in opdef.inplace_inputs(graph, op):
                delta = groups.merge_delta(op.inputs[k], op.outputs[0], i, 0, 0)
                groups.take(delta, op.inputs[k], op.outputs[0], 0, profile)
                op.attrs["inplace"] = k
                break
            continue
        may_slow = slow if isinstance(slow, bool) else op.name in slow
        choices = [(k, 0, False) for k in opdef.inplace_inputs(graph, op)
                   if may_slow or not is_slow_inplace(graph, _marked(op, k, None))]
        allowed = offsets if isinstance(offsets, bool) else op.name in offsets
        offered = opdef.inplace_offsets(graph, op) if allowed else []
        choices += [(k, off, True) for k, off in offered]
        best: tuple[int, dict[int, int], int, int, bool] | None = None
        # Scratch the op needs out of place too (a fused block's window of rows) is no cost of
        # running in place: only what the in-place kernel needs beyond it counts.
        base = _aligned(opdef.scratch_bytes(graph, op)) if choices else 0
        for k, offset, rows in choices:
            if not groups.dies_at(op.inputs[k], i):
                continue  # the group is still read later: writing over it would corrupt it
            scratch = max(0, _aligned(opdef.scratch_bytes(
                graph, _marked(op, k, offset if rows else None))) - base)
            delta = groups.merge_delta(op.inputs[k], op.outputs[0], i, offset, scratch)
            top = max(profile[s] + d for s, d in delta.items())
            if top > peak or (best is not None and top >= best[0]):
                continue
            best = (top, delta, k, offset, rows)
            if not rows:
                break  # the op's own order of preference
        if best is not None:
            _, delta, k, offset, rows = best
            groups.take(delta, op.inputs[k], op.outputs[0], offset, profile)
            op.attrs["inplace"] = k
            if rows:
                op.attrs["inplace_offset"] = offset
    return Graph(graph.tensors, ops, graph.inputs, graph.outputs, graph.name)


def is_slow_inplace(graph: Graph, op: Op) -> bool:
    """Whether op, marked in place at offset 0, runs a kernel slower than its out-of-place one."""
    return (op.attrs.get("inplace") is not None and op.attrs.get("inplace_offset") is None
            and get_op(op.kind).inplace_speed(graph, op) > 1.0)


class _Groups:
    """mark_inplace's alias groups: per group the bytes its buffer needs at each step it lives,
    per tensor its group and its offset from the group's start."""

    def __init__(self, graph: Graph, first: dict[str, int], last: dict[str, int]) -> None:
        from .plan import _aligned

        self.graph, self.last = graph, last
        self.size = {n: _aligned(graph.tensor(n).nbytes) for n in first}
        self.need = {n: {s: self.size[n] for s in range(first[n], last[n] + 1)} for n in first}
        self.root = {n: n for n in first}
        self.offset = {n: 0 for n in first}
        self.members = {n: [n] for n in first}

    def dies_at(self, x: str, step: int) -> bool:
        g = self.root[x]
        return max(self.need[g]) <= step and not any(m in self.graph.outputs
                                                     for m in self.members[g])

    def _placed(self, x: str, offset: int) -> tuple[int, int]:
        """(shift of the group's start, the output's offset) for an output `offset` bytes
        before x."""
        out = self.offset[x] - offset
        return max(0, -out), max(0, out)

    def merge_delta(self, x: str, out: str, step: int, offset: int,
                    scratch: int) -> dict[int, int]:
        """Change of live bytes per step if `out` joins x's group `offset` bytes before x."""
        g = self.root[x]
        shift, at = self._placed(x, offset)
        end, o_last = at + self.size[out], self.last[out]
        delta = {s: shift for s in self.need[g]}
        for s in range(step, o_last + 1):
            old = self.need[g].get(s, 0)
            delta[s] = max(old + shift, end) - old - self.size[out]
        delta[step] += scratch
        return delta

    def take(self, delta: dict[int, int], x: str, out: str, offset: int,
             profile: list[int]) -> None:
        g = self.root[x]
        shift, at = self._placed(x, offset)
        for s, d in delta.items():
            profile[s] += d
        need = {s: n + shift for s, n in self.need[g].items()}
        for s in range(min(self.need[out]), self.last[out] + 1):
            need[s] = max(need.get(s, 0), at + self.size[out])
        self.need[g] = need
        del self.need[out]
        for m in self.members[g]:
            self.offset[m] += shift
        self.root[out], self.offset[out] = g, at
        self.members[g].append(out)


def _marked(op: Op, k: int, offset: int | None) -> Op:
    """`op` marked to run in place over input k (its scratch depends on the mark)."""
    marked = copy.copy(op)
    marked.attrs = dict(op.attrs, inplace=k)
    if offset is not None:
        marked.attrs["inplace_offset"] = offset
    return marked
