"""Execution order for DAGs: the topological order with the lowest peak of live activation bytes.

muNAS (Liberis et al.) showed that for graphs with branches the op order alone changes peak SRAM:
running a branch to its end keeps the branch point's tensor alive while the branch grows, and
interleaving the branches can free it sooner. This module searches the orders with the same
lifetime rule as `plan.buffer_infos`, so what it promises is what the arena planner sees.

Lifetime rule. After a set S of ops has run, the *resident* tensors are the non-constant ones that
exist (graph inputs, outputs of ops in S) and are still needed (a graph output, or read by an op
not in S; an unread graph input counts only before the first op, as in buffer_infos). Running op
o from S then needs `resident(S) + outputs(o)` bytes (plus o's scratch, if given): o's inputs are
resident because o is not in S, and its outputs exist while it runs. The peak of an order is the
largest such step; it equals `live_lower_bound(buffer_infos(graph_in_that_order))` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph
from .plan import _aligned

DEFAULT_EXACT_LIMIT = 20_000  # done-sets the exact search may visit before it gives up
DEFAULT_BEAM_WIDTH = 32


@dataclass(frozen=True)
class TensorUse:
    """One arena tensor as ordering sees it."""

    nbytes: int  # aligned
    producer: int  # op index, or -1 for a graph input
    readers: int  # bitmask of the ops that read it
    is_output: bool


@dataclass(frozen=True)
class OrderProblem:
    """A graph reduced to what ordering needs: op indices, bitmasks and aligned byte counts."""

    names: list[str]  # op names in file order; indices below refer to this list
    preds: list[int]  # bitmask of the ops whose outputs op i reads
    succs: list[list[int]]  # ops that read an output of op i, ascending
    out_bytes: list[int]  # aligned bytes op i writes, plus its scratch
    tensors: list[TensorUse]
    writes: list[list[TensorUse]]  # per op, the tensors it produces
    reads: list[list[TensorUse]]  # per op, the distinct arena tensors it reads

    @property
    def size(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class OrderSearch:
    order: list[str]
    peak: int
    exact: bool  # True when the exhaustive search finished: no order has a lower peak
    states: int  # done-sets visited (exact search) or partial orders expanded (beam search)


def order_problem(graph: Graph, scratch: dict[str, int] | None = None) -> OrderProblem:
    scratch = scratch or {}
    if len({op.name for op in graph.ops}) != len(graph.ops):
        raise ValueError(f"graph {graph.name}: op names must be unique to be ordered")
    producer: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            producer.setdefault(t, i)
    readers: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t and graph.tensor(t).in_arena:
                readers[t] = readers.get(t, 0) | 1 << i
    outputs = set(graph.outputs)
    uses = {t: TensorUse(_aligned(graph.tensor(t).nbytes),
                         -1 if t in graph.inputs else producer[t], readers.get(t, 0), t in outputs)
            for t in dict.fromkeys(list(graph.inputs) + list(producer))}
    n = len(graph.ops)
    preds = [0] * n
    writes: list[list[TensorUse]] = [[] for _ in range(n)]
    reads: list[list[TensorUse]] = [[] for _ in range(n)]
    for use in uses.values():
        if use.producer >= 0:
            writes[use.producer].append(use)
    for i, op in enumerate(graph.ops):
        for t in dict.fromkeys(t for t in op.inputs if t in uses):
            reads[i].append(uses[t])
            if uses[t].producer >= 0 and uses[t].producer != i:
                preds[i] |= 1 << uses[t].producer
    # Ops that share a state tensor (a variable read and then assigned) keep their order: each
    # sees the state the previous one left.
    last_user: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in dict.fromkeys(t for t in op.inputs if t and graph.tensor(t).variable):
            if t in last_user:
                preds[i] |= 1 << last_user[t]
            last_user[t] = i
    succs: list[list[int]] = [[] for _ in range(n)]
    for j in range(n):
        for i in _bits(preds[j]):
            succs[i].append(j)
    out_bytes = [sum(u.nbytes for u in writes[i]) + _aligned(scratch.get(op.name, 0))
                 for i, op in enumerate(graph.ops)]
    return OrderProblem([op.name for op in graph.ops], preds, succs, out_bytes,
                        list(uses.values()), writes, reads)


def _resident(p: OrderProblem, done: int) -> int:
    """Bytes of tensors that exist and are still needed once the ops in `done` have run."""
    total = 0
    for u in p.tensors:
        exists = u.producer < 0 or done >> u.producer & 1
        needed = u.is_output or u.readers & ~done or (u.producer < 0 and done == 0)
        if exists and needed:
            total += u.nbytes
    return total


def _resident_after(p: OrderProblem, before: int, s: int, o: int) -> int:
    """resident(s + {o}) from resident(s): add o's outputs still needed, drop what o read last."""
    t = s | 1 << o
    if s == 0:
        return _resident(p, t)  # the unread-input rule only applies to the empty set
    after = before
    for u in p.writes[o]:
        if u.is_output or u.readers & ~t:
            after += u.nbytes
    for u in p.reads[o]:
        if not u.is_output and not u.readers & ~t:
            after -= u.nbytes
    return after


def _ready_after(p: OrderProblem, ready: tuple[int, ...], s: int, o: int) -> tuple[int, ...]:
    """Ops ready after s + {o}, from the ops ready after s."""
    t = s | 1 << o
    fresh = [j for j in p.succs[o] if not p.preds[j] & ~t]
    return tuple(sorted([j for j in ready if j != o] + fresh))


def _peak(p: OrderProblem, order: list[int]) -> int:
    done, resident = 0, _resident(p, 0)
    peak = resident if not order else 0  # no ops: the inputs alone, as buffer_infos has them
    for o in order:
        peak = max(peak, resident + p.out_bytes[o])
        resident = _resident_after(p, resident, done, o)
        done |= 1 << o
    return peak


def peak_of_order(graph: Graph, order: list[str], scratch: dict[str, int] | None = None) -> int:
    """Peak live bytes when the graph's ops run in `order` (same rule as plan.buffer_infos)."""
    p = order_problem(graph, scratch)
    index = {n: i for i, n in enumerate(p.names)}
    return _peak(p, [index[n] for n in order])


def is_topological(graph: Graph, order: list[str]) -> bool:
    p = order_problem(graph)
    if sorted(order) != sorted(p.names):
        return False
    index, done = {n: i for i, n in enumerate(p.names)}, 0
    for n in order:
        if p.preds[index[n]] & ~done:
            return False
        done |= 1 << index[n]
    return True


def reorder(graph: Graph, order: list[str]) -> Graph:
    """The same graph (tensors shared) with its ops listed in `order`."""
    if not is_topological(graph, order):
        raise ValueError(f"{order} is not a topological order of the ops of {graph.name}")
    by_name = {op.name: op for op in graph.ops}
    return Graph(dict(graph.tensors), [by_name[n] for n in order], list(graph.inputs),
                 list(graph.outputs), graph.name)


def _has_one_order(p: OrderProblem) -> bool:
    """A file order in which every op reads its predecessor's output is the only order."""
    return all(p.preds[i] >> (i - 1) & 1 for i in range(1, p.size))


# Exact search. The tensors resident after a set of ops has run depend only on that set, not on
# the order it ran in, so the best peak for finishing the graph from a done-set S is
#     best(S) = min over ready ops o of max(resident(S) + out_bytes(o), best(S + {o})),
# a dynamic programme over the downsets of the DAG (muNAS memoises the same recurrence). We
# enumerate downsets level by level (|S| = 0, 1, ...), give up when their number passes the
# limit, then solve backwards. Walking forward from the empty set and taking, at each step, the
# lowest-index op that can still finish within best(empty set) gives the lexicographically
# smallest optimal order, so the file order wins every tie it is part of.
def _exact(p: OrderProblem, limit: int) -> tuple[list[int], int, int] | None:
    full = (1 << p.size) - 1
    resident = {0: _resident(p, 0)}
    ready = {0: _initially_ready(p)}
    levels = [[0]]
    for _ in range(p.size):
        level: list[int] = []
        for s in levels[-1]:
            for o in ready[s]:
                t = s | 1 << o
                if t not in ready:
                    ready[t] = _ready_after(p, ready[s], s, o)
                    resident[t] = _resident_after(p, resident[s], s, o)
                    level.append(t)
            if len(ready) > limit:
                return None
        levels.append(level)
    best = {full: 0}
    for level in reversed(levels[:-1]):
        for s in level:
            best[s] = min(max(resident[s] + p.out_bytes[o], best[s | 1 << o]) for o in ready[s])
    order, s, peak = [], 0, 0
    while s != full:
        o = next(o for o in ready[s]
                 if max(peak, resident[s] + p.out_bytes[o], best[s | 1 << o]) == best[0])
        peak = max(peak, resident[s] + p.out_bytes[o])
        order.append(o)
        s |= 1 << o
    return order, best[0], len(ready)


@dataclass(frozen=True)
class _Partial:
    """A partial order in the beam; fields compare in this order, so ties go to lower indices."""

    peak: int
    resident: int
    order: tuple[int, ...]
    done: int
    ready: tuple[int, ...]


# Heuristic search for graphs with too many downsets. A beam keeps, level by level, the `width`
# partial orders with the lowest (peak so far, resident bytes); partial orders that ran the same
# set of ops have the same future, so only the best of them is kept. Width 1 is the greedy rule
# "run the ready op that keeps the peak, then the live bytes, lowest". Ties go to the lower op
# indices, and search_order returns the file order whenever the beam does not beat it.
def _beam(p: OrderProblem, width: int) -> tuple[list[int], int, int]:
    beam = [_Partial(0, _resident(p, 0), (), 0, _initially_ready(p))]
    expanded = 0
    for _ in range(p.size):
        children: dict[int, tuple[int, int, tuple[int, ...], _Partial]] = {}
        for b in beam:
            for o in b.ready:
                key = (max(b.peak, b.resident + p.out_bytes[o]),
                       _resident_after(p, b.resident, b.done, o), b.order + (o,), b)
                t = b.done | 1 << o
                if t not in children or key[:3] < children[t][:3]:
                    children[t] = key
                expanded += 1
        kept = sorted(children.values(), key=lambda c: c[:3])[:width]
        beam = [_Partial(peak, res, order, b.done | 1 << order[-1],
                         _ready_after(p, b.ready, b.done, order[-1]))
                for peak, res, order, b in kept]
    return list(beam[0].order), beam[0].peak, expanded


def _initially_ready(p: OrderProblem) -> tuple[int, ...]:
    return tuple(i for i in range(p.size) if p.preds[i] == 0)


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def search_order(graph: Graph, exact_limit: int = DEFAULT_EXACT_LIMIT,
                 beam_width: int = DEFAULT_BEAM_WIDTH,
                 scratch: dict[str, int] | None = None) -> OrderSearch:
    """The lowest-peak order found, with its peak and whether it is proven optimal."""
    p = order_problem(graph, scratch)
    file_order = list(range(p.size))
    if _has_one_order(p):
        return OrderSearch(list(p.names), _peak(p, file_order), True, 1)
    found = _exact(p, exact_limit)
    if found is not None:
        order, peak, states = found
        return OrderSearch([p.names[i] for i in order], peak, True, states)
    order, peak, states = _beam(p, beam_width)
    file_peak = _peak(p, file_order)
    if file_peak <= peak:
        order, peak = file_order, file_peak
    return OrderSearch([p.names[i] for i in order], peak, False, states)


def best_order(graph: Graph, exact_limit: int = DEFAULT_EXACT_LIMIT,
               scratch: dict[str, int] | None = None) -> list[str]:
    """Op names in the topological order with the lowest peak of live activation bytes.

    Exact while the graph has at most `exact_limit` downsets (sets of ops closed under
    predecessors), a beam search above that, never worse than the file order; deterministic.
    """
    return search_order(graph, exact_limit, scratch=scratch).order
