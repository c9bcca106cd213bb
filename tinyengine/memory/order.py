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

DEFAULT_EXACT_LIMIT = 50_000  # done-sets the exact search may visit before it gives up
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
            if t and not graph.tensor(t).is_const:
                readers[t] = readers.get(t, 0) | 1 << i
    outputs = set(graph.outputs)
    uses = {t: TensorUse(_aligned(graph.tensor(t).nbytes),
                         -1 if t in graph.inputs else producer[t], readers.get(t, 0), t in outputs)
            for t in dict.fromkeys(list(graph.inputs) + list(producer))}
    n = len(graph.ops)
    preds, succs = [0] * n, [[] for _ in range(n)]  # type: tuple[list[int], list[list[int]]]
    writes: list[list[TensorUse]] = [[] for _ in range(n)]
    reads: list[list[TensorUse]] = [[] for _ in range(n)]
    for t, use in uses.items():
        if use.producer >= 0:
            writes[use.producer].append(use)
        for i in range(n):
            if use.readers >> i & 1:
                reads[i].append(use)
                if use.producer >= 0 and use.producer != i:
                    preds[i] |= 1 << use.producer
    for i in range(n):
        succs[i] = [j for j in range(n) if preds[j] >> i & 1]
    out_bytes = [sum(u.nbytes for u in writes[i]) + scratch.get(op.name, 0)
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


def _step_costs(p: OrderProblem, order: list[int]) -> list[int]:
    done, costs = 0, []
    for i in order:
        costs.append(_resident(p, done) + p.out_bytes[i])
        done |= 1 << i
    return costs


def peak_of_order(graph: Graph, order: list[str], scratch: dict[str, int] | None = None) -> int:
    """Peak live bytes when the graph's ops run in `order` (same rule as plan.buffer_infos)."""
    p = order_problem(graph, scratch)
    index = {n: i for i, n in enumerate(p.names)}
    return max(_step_costs(p, [index[n] for n in order]), default=0)


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
#     best(S) = min over ready ops o of max(resident(S) + out_bytes(o), best(S | {o})),
# a dynamic programme over the downsets of the DAG (muNAS memoises the same recurrence). We
# enumerate downsets level by level (|S| = 0, 1, ...), give up when their number passes the
# limit, then solve backwards. Walking forward from the empty set and taking, at each step, the
# lowest-index op that keeps the optimum gives the lexicographically smallest optimal order, so
# the file order wins every tie it is part of.
def _exact(p: OrderProblem, limit: int) -> tuple[list[int], int, int] | None:
    full = (1 << p.size) - 1
    resident: dict[int, int] = {0: _resident(p, 0)}
    ready: dict[int, tuple[int, ...]] = {0: tuple(i for i in range(p.size) if p.preds[i] == 0)}
    levels = [[0]]
    for _ in range(p.size):
        nxt: dict[int, None] = {}
        for s in levels[-1]:
            for o in ready[s]:
                t = s | 1 << o
                if t in ready:
                    continue
                ready[t] = _ready_after(p, s, t, o, ready[s])
                resident[t] = _resident_after(p, resident[s], s, t, o)
                nxt[t] = None
                if len(ready) > limit:
                    return None
        levels.append(list(nxt))
    best: dict[int, int] = {full: 0}
    for level in reversed(levels[:-1]):
        for s in level:
            best[s] = min(max(resident[s] + p.out_bytes[o], best[s | 1 << o]) for o in ready[s])
    order, s = [], 0
    while s != full:
        o = next(o for o in ready[s]
                 if max(resident[s] + p.out_bytes[o], best[s | 1 << o]) == best[s])
        order.append(o)
        s |= 1 << o
    return order, best[0], len(ready)


def _ready_after(p: OrderProblem, s: int, t: int, o: int, ready_s: tuple[int, ...]) -> tuple:
    fresh = [j for j in p.succs[o] if not p.preds[j] & ~t and not t >> j & 1]
    return tuple(sorted([j for j in ready_s if j != o] + fresh))


def _resident_after(p: OrderProblem, before: int, s: int, t: int, o: int) -> int:
    """resident(t) from resident(s), t = s + {o}: add o's kept outputs, drop what o read last."""
    if s == 0:
        return _resident(p, t)  # the unread-input rule only applies to the empty set
    after = before
    for nbytes, prod, readers, is_output in p.tensors:
        if prod == o and (is_output or readers & ~t):
            after += nbytes
        elif readers >> o & 1 and not is_output and not readers & ~t:
            after -= nbytes
    return after


# Heuristic search for graphs with too many downsets. A beam keeps, level by level, the `width`
# partial orders with the lowest (peak so far, resident bytes); partial orders that ran the same
# set of ops have the same future, so only the best of them is kept. Width 1 is the greedy rule
# "run the ready op that keeps the peak and then the live bytes lowest". Ties go to the lower op
# indices, and the file order is returned whenever the beam does not beat it.
def _beam(p: OrderProblem, width: int) -> tuple[list[int], int, int]:
    beam: list[tuple[int, int, list[int], int, tuple[int, ...]]] = [
        (0, _resident(p, 0), [], 0, tuple(i for i in range(p.size) if p.preds[i] == 0))]
    expanded = 0
    for _ in range(p.size):
        children: dict[int, tuple[int, int, list[int], int, tuple[int, ...]]] = {}
        for peak, res, order, s, ready in beam:
            for o in ready:
                t = s | 1 << o
                child = (max(peak, res + p.out_bytes[o]), _resident_after(p, res, s, t, o),
                         order + [o], t, ())
                if t not in children or child[:3] < children[t][:3]:
                    children[t] = child
                expanded += 1
        kept = sorted(children.values(), key=lambda c: c[:3])[:width]
        beam = [(pk, res, order, t, _ready_after(p, t & ~(1 << order[-1]), t, order[-1],
                                                 _ready_of(p, t & ~(1 << order[-1]))))
                for pk, res, order, t, _ in kept]
    peak, _, order, _, _ = beam[0]
    return order, peak, expanded


def _ready_of(p: OrderProblem, s: int) -> tuple[int, ...]:
    return tuple(i for i in range(p.size) if not s >> i & 1 and not p.preds[i] & ~s)


def search_order(graph: Graph, exact_limit: int = DEFAULT_EXACT_LIMIT,
                 beam_width: int = DEFAULT_BEAM_WIDTH,
                 scratch: dict[str, int] | None = None) -> OrderSearch:
    """The lowest-peak order found, with its peak and whether it is proven optimal."""
    p = order_problem(graph, scratch)
    file_order = list(range(p.size))
    if _has_one_order(p):
        return OrderSearch(list(p.names), max(_step_costs(p, file_order), default=0), True, 1)
    found = _exact(p, exact_limit)
    if found is not None:
        order, peak, states = found
        return OrderSearch([p.names[i] for i in order], peak, True, states)
    order, peak, states = _beam(p, beam_width)
    file_peak = max(_step_costs(p, file_order))
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
