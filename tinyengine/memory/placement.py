"""Arena placement algorithms that beat greedy-by-size: best of many first-fit orders, and an exact
branch-and-bound search for small problems.

Both are pure functions `list[BufferInfo] -> {name: offset}` registered in plan.PLANNERS when this
module is imported. Offsets are multiples of ALIGN and sizes are rounded up with plan._aligned, as
the other planners do. A placement whose arena equals `live_lower_bound` is optimal: at the step
where the most bytes are live they all need distinct bytes, so `is_optimal` is a proof, not a
guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .plan import (
    PLANNERS,
    BufferInfo,
    _aligned,
    arena_size,
    live_lower_bound,
    lowest_free_offset,
    pair_sizes,
)

EXACT_MAX_BUFFERS = 12  # the exact search runs only on problems this small...
EXACT_NODE_LIMIT = 5_000  # ...and gives up (keeping the best found) after this many nodes
PROMOTIONS = 8  # rounds of "move the buffer on top to the front" after the fixed orders


@dataclass(frozen=True)
class _Problem:
    """Buffers with aligned sizes and, per buffer, the indices of those live at the same time.
    pairs[i] lists (j, what i needs, what j needs) over the steps they share (plan.pair_sizes):
    first-fit keeps those apart; the exact search keeps whole sizes apart, which is stricter
    where a buffer grows (an op widening its output in place), so it stays valid."""

    buffers: list[BufferInfo]
    sizes: list[int]
    neighbours: list[list[int]]
    pairs: list[list[tuple[int, int, int]]]


def _problem(buffers: list[BufferInfo]) -> _Problem:
    n = len(buffers)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    by_first = sorted(range(n), key=lambda i: buffers[i].first)
    for k, i in enumerate(by_first):
        for j in by_first[k + 1:]:
            if buffers[j].first > buffers[i].last:
                break
            neighbours[i].append(j)
            neighbours[j].append(i)
    pairs: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for i in range(n):
        for j in neighbours[i]:
            need, other = pair_sizes(buffers[i], buffers[j])
            pairs[i].append((j, need, other))
    return _Problem(buffers, [_aligned(b.size) for b in buffers], neighbours, pairs)


def _first_fit(p: _Problem, order: list[int]) -> list[int]:
    """Place buffers in `order`, each at the lowest offset free for its whole lifetime."""
    offsets = [-1] * len(p.buffers)
    for i in order:
        offsets[i] = lowest_free_offset([(offsets[j], offsets[j] + other, need)
                                         for j, need, other in p.pairs[i] if offsets[j] >= 0])
    return offsets


def _top(p: _Problem, offsets: list[int]) -> int:
    return max((o + s for o, s in zip(offsets, p.sizes)), default=0)


def _orders(p: _Problem) -> list[list[int]]:
    """The fixed first-fit orders tried, most often best first. Each names a reason a buffer
    should be placed early: it is big, it lives long, it is big for long, it collides with many
    bytes (TVM USMP's greedy_by_conflicts), or it starts early (the lifetime order)."""
    b, s = p.buffers, p.sizes
    span = [x.last - x.first + 1 for x in b]
    conflict = [s[i] + sum(s[j] for j in p.neighbours[i]) for i in range(len(b))]
    keys: list[Callable[[int], tuple]] = [
        lambda i: (-s[i], b[i].first, b[i].name),
        lambda i: (-s[i] * span[i], -s[i], b[i].name),
        lambda i: (-conflict[i], -s[i], b[i].name),
        lambda i: (-span[i], -s[i], b[i].name),
        lambda i: (b[i].first, -span[i], -s[i], b[i].name),
        lambda i: (-b[i].last, -s[i], b[i].name),
    ]
    return [sorted(range(len(b)), key=key) for key in keys]


# Best of many first-fit orders. First-fit is only as good as its order, and which order wins
# depends on the shape of the problem (sizes spread, long-lived inputs, branches), so we try a
# handful of orders and keep the smallest arena. Then a short local search: the buffer whose end
# sets the arena top moves to the front of the best order and first-fit runs again; a placed
# buffer can only be pushed up by buffers placed before it, so this is the move that can lower
# the top. Everything stops as soon as the arena equals the live lower bound, which is optimal.
def _best_first_fit(p: _Problem, bound: int) -> list[int]:
    runs = []
    for order in _orders(p):
        offsets = _first_fit(p, order)
        runs.append((_top(p, offsets), order, offsets))
        if runs[-1][0] == bound:
            return offsets
    best_top, order, best = min(runs, key=lambda r: r[0])
    offsets = best
    for _ in range(PROMOTIONS):
        current = offsets
        top = max(order, key=lambda i: (current[i] + p.sizes[i], -i))
        if order[0] == top:
            break
        order = [top] + [i for i in order if i != top]
        offsets = _first_fit(p, order)
        if _top(p, offsets) < best_top:
            best_top, best = _top(p, offsets), offsets
        if best_top == bound:
            break
    return best


def plan_best_fit_orders(buffers: list[BufferInfo]) -> dict[str, int]:
    """The smallest of several first-fit placements (sizes, lifetimes, conflicts), improved by
    promoting the buffer on top; stops at the live lower bound."""
    if not buffers:
        return {}
    p = _problem(buffers)
    offsets = _best_first_fit(p, live_lower_bound(buffers))
    return {b.name: o for b, o in zip(buffers, offsets)}


@dataclass(frozen=True)
class ExactResult:
    offsets: dict[str, int]
    arena_bytes: int
    proven_optimal: bool  # the search finished, or the arena equals the live lower bound
    nodes: int


# Exact placement by branch and bound. Push every buffer of an optimal placement down as far as
# it goes: each then sits at offset 0 or on top of a buffer that is live at the same time, and
# the arena is no larger. Listing the buffers of such a placement by (offset, index) gives a
# sequence in which each offset is 0 or the end of an earlier, time-overlapping buffer, and
# offsets never decrease. The search builds exactly such sequences, so it finds an optimum.
# Pruning: all buffers still to place go at or above the current offset, so at every time step
# the bytes above that floor (unplaced buffers live then, and the parts of placed ones that
# reach above it) bound the arena from below. It starts from the best heuristic placement and
# stops at the live lower bound.
def exact_placement(buffers: list[BufferInfo],
                    node_limit: int = EXACT_NODE_LIMIT) -> ExactResult:
    p = _problem(buffers)
    bound = live_lower_bound(buffers)
    start = _best_first_fit(p, bound) if buffers else []
    search = _BranchAndBound(p, bound, start, node_limit)
    if _top(p, start) > bound:
        search.run()
    offsets = {b.name: o for b, o in zip(buffers, search.best)}
    arena = _top(p, search.best)
    return ExactResult(offsets, arena, arena == bound or not search.gave_up, search.nodes)


class _BranchAndBound:
    def __init__(self, p: _Problem, bound: int, start: list[int], node_limit: int):
        self.p, self.bound, self.node_limit = p, bound, node_limit
        self.best, self.best_top = list(start), _top(p, start)
        self.offsets = [-1] * len(p.buffers)
        self.steps = sorted({b.first for b in p.buffers})
        self.live_at = [[i for i, b in enumerate(p.buffers) if b.first <= s <= b.last]
                        for s in self.steps]
        self.nodes, self.gave_up = 0, False

    def run(self) -> None:
        self._extend(0, -1, 0)

    def _floor_bound(self, floor: int, top: int) -> int:
        lb = top
        for live in self.live_at:
            above = floor
            for i in live:
                o = self.offsets[i]
                if o < 0:
                    above += self.p.sizes[i]
                else:
                    above += max(0, o + self.p.sizes[i] - max(o, floor))
            lb = max(lb, above)
        return lb

    def _candidates(self, floor: int, last: int) -> list[tuple[int, int]]:
        """(offset, buffer) pairs that may come next in the canonical sequence."""
        p, out = self.p, []
        for i, o in enumerate(self.offsets):
            if o >= 0:
                continue
            spots = {p.sizes[j] + self.offsets[j] for j in p.neighbours[i] if self.offsets[j] >= 0}
            spots.add(0)
            for s in spots:
                if (s, i) <= (floor, last):
                    continue
                if all(self.offsets[j] < 0 or self.offsets[j] + p.sizes[j] <= s
                       or s + p.sizes[i] <= self.offsets[j] for j in p.neighbours[i]):
                    out.append((s, i))
        return sorted(out, key=lambda c: (c[0], -p.sizes[c[1]], c[1]))

    def _extend(self, placed: int, last: int, floor: int) -> None:
        if self.best_top == self.bound or self.gave_up:
            return
        self.nodes += 1
        if self.nodes > self.node_limit:
            self.gave_up = True
            return
        top = max((o + s for o, s in zip(self.offsets, self.p.sizes) if o >= 0), default=0)
        if placed == len(self.offsets):
            if top < self.best_top:
                self.best, self.best_top = list(self.offsets), top
            return
        if self._floor_bound(floor, top) >= self.best_top:
            return
        for offset, i in self._candidates(floor, last):
            if offset + self.p.sizes[i] >= self.best_top:
                continue
            self.offsets[i] = offset
            self._extend(placed + 1, i, offset)
            self.offsets[i] = -1


def plan_exact(buffers: list[BufferInfo]) -> dict[str, int]:
    """Optimal placement for up to EXACT_MAX_BUFFERS buffers (within the node limit); larger
    problems get plan_best_fit_orders."""
    if len(buffers) > EXACT_MAX_BUFFERS:
        return plan_best_fit_orders(buffers)
    return exact_placement(buffers).offsets


def is_optimal(buffers: list[BufferInfo], offsets: dict[str, int]) -> bool:
    """True when the arena equals the live lower bound: then no placement can be smaller."""
    return arena_size(buffers, offsets) == live_lower_bound(buffers)


PLANNERS["best_fit_orders"] = plan_best_fit_orders
PLANNERS["exact"] = plan_exact
