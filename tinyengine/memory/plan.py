"""Arena planning: analysis (buffer lifetimes) -> algorithm (offsets) -> apply (a MemoryPlan).

Every activation tensor, the graph's inputs and outputs included, and every op's scratch buffer
get a byte range in one static arena. Placement algorithms are pure functions from buffer infos
to offsets, registered by name in PLANNERS, so a better scheduler can replace them without
touching the code generator. "auto" runs them all and keeps the smallest arena (ties go to the
first registered, so the result is deterministic).

A buffer that ops run in place on need not be one rectangle in (time, bytes): a pointwise
convolution that widens 8 channels to 24 in place needs the 8-channel bytes before it runs and
the 24-channel bytes from then on, both from the buffer's start. So a buffer carries a profile,
the bytes it needs from its start at each step (BufferInfo.size_at). Two buffers placed at o1 and
o2 must then keep apart only at the steps both live: [o1, o1 + size_at(s)) and [o2, o2 +
size_at(s)) disjoint for each such s. Every such interval contains its buffer's start, so for a
pair this is exactly "rectangles of their largest sizes over the steps they share" (pair_sizes),
and first-fit stays first-fit. TinyEngine sizes such a buffer at its largest from its birth;
that costs mcunet-in3 the 8-to-24 widening's extra 16 channels during its stem convolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import TinyEngineError
from ..ir import Graph
from .inplace import alias_layout, tensor_lifetimes

ALIGN = 4  # every buffer starts on a 4-byte boundary: float32 I/O and int32 loads stay aligned


@dataclass(frozen=True)
class BufferInfo:
    name: str
    size: int  # bytes, before alignment: the most it needs at any step
    first: int  # index of the first op that touches it (writes it, or reads a graph input)
    last: int  # index of the last op that reads it; len(order) for graph outputs
    # (step, bytes) pairs, steps ascending from `first`: from each step on (to the next pair) the
    # buffer needs that many bytes from its start. Empty: `size` at every step.
    profile: tuple[tuple[int, int], ...] = ()

    def overlaps_in_time(self, other: BufferInfo) -> bool:
        return self.first <= other.last and other.first <= self.last

    def size_at(self, step: int) -> int:
        """Bytes needed from the buffer's start at `step` (0 outside its lifetime)."""
        if not self.first <= step <= self.last:
            return 0
        need = self.size
        for s, n in self.profile:
            if s > step:
                break
            need = n
        return need

    def pieces(self) -> list[tuple[int, int, int]]:
        """(first, last, bytes) spans of constant need covering the lifetime."""
        if not self.profile:
            return [(self.first, self.last, self.size)]
        starts = [s for s, _ in self.profile] + [self.last + 1]
        return [(s, e - 1, n) for (s, n), e in zip(self.profile, starts[1:])]


def pair_sizes(a: BufferInfo, b: BufferInfo) -> tuple[int, int]:
    """Aligned bytes a and b need from their starts at the steps both live: a placement keeps
    them apart exactly when it keeps rectangles of these sizes apart (see the module's
    docstring). Rectangles: their own sizes."""
    if not a.profile and not b.profile:
        return _aligned(a.size), _aligned(b.size)
    lo, hi = max(a.first, b.first), min(a.last, b.last)
    return (max((_aligned(n) for f, la, n in a.pieces() if f <= hi and la >= lo), default=0),
            max((_aligned(n) for f, la, n in b.pieces() if f <= hi and la >= lo), default=0))


def lowest_free_offset(clashes: list[tuple[int, int, int]]) -> int:
    """The lowest offset o with o >= end or o + need <= start for every (start, end, need).

    Moving o up to `end` past a clash skips only offsets that clash too (o < end and o + need >
    start hold for every offset between), so the first offset that clears every clash is the
    lowest; with one need for all (rectangles), one pass in order of start finds it."""
    busy = sorted(clashes)
    offset, moved = 0, True
    while moved:
        moved = False
        for start, end, need in busy:
            if offset < end and offset + need > start:
                offset, moved = end, True
    return offset


@dataclass
class MemoryPlan:
    algorithm: str
    arena_bytes: int
    offsets: dict[str, int]
    buffers: list[BufferInfo]
    order: list[str]  # op names in execution order
    external: list[str] = field(default_factory=list)  # tensors outside the arena (streamed)
    # Persistent state (variable tensors): offsets in a region of its own that lives across
    # invocations, so no arena tensor ever reuses it.
    state_offsets: dict[str, int] = field(default_factory=dict)
    state_bytes: int = 0

    def to_json(self) -> dict:
        return {"algorithm": self.algorithm, "arena_bytes": self.arena_bytes,
                "state_bytes": self.state_bytes, "state_offsets": self.state_offsets,
                "order": self.order, "external": self.external,
                "buffers": [dict(asdict(b), offset=self.offsets[b.name]) for b in self.buffers]}


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def scratch_name(op_name: str) -> str:
    return f"{op_name}:scratch"


def buffer_infos(graph: Graph, scratch: dict[str, int] | None = None,
                 external: frozenset[str] = frozenset()) -> list[BufferInfo]:
    """Lifetimes of arena buffers for the graph's op order (inputs live from op 0).

    Tensors that ops run in place on (alias groups, see memory/inplace.py) share one buffer
    named after the group's root, live from the first member's birth to the last one's death.
    `external` tensors live in the caller's memory (a streamed input) and get no buffer.
    """
    scratch = scratch or {}
    first, last = tensor_lifetimes(graph)
    layout = alias_layout(graph)
    members: dict[str, list[tuple[int, int, int]]] = {}  # group -> (first, last, end offset)
    for n in first:
        if n in external:
            continue
        g, off = layout.get(n, (n, 0))
        members.setdefault(g, []).append((first[n], last[n], off + graph.tensor(n).nbytes))
    infos = [_group_info(g, ms) for g, ms in members.items()]
    for i, op in enumerate(graph.ops):
        if scratch.get(op.name, 0) > 0:
            infos.append(BufferInfo(scratch_name(op.name), scratch[op.name], i, i))
    return sorted(infos, key=lambda b: (b.first, b.name))


def _group_info(name: str, members: list[tuple[int, int, int]]) -> BufferInfo:
    """One buffer for an alias group: at each step it needs the bytes up to the end of its
    furthest member live then, so a member that widens the group only costs from its birth."""
    f, la = min(m[0] for m in members), max(m[1] for m in members)
    need = [max((end for mf, ml, end in members if mf <= s <= ml), default=0)
            for s in range(f, la + 1)]
    size = max(need)
    profile = tuple((f + i, n) for i, n in enumerate(need) if i == 0 or need[i - 1] != n)
    return BufferInfo(name, size, f, la, profile if len(profile) > 1 else ())


def arena_size(buffers: list[BufferInfo], offsets: dict[str, int]) -> int:
    return max((offsets[b.name] + _aligned(b.size) for b in buffers), default=0)


def live_bytes(buffers: list[BufferInfo]) -> list[int]:
    """Total aligned size of the buffers live at each step (a sweep over birth/death events)."""
    if not buffers:
        return []
    steps = max(b.last for b in buffers) + 1
    delta = [0] * (steps + 1)
    for b in buffers:
        for f, la, n in b.pieces():
            delta[f] += _aligned(n)
            delta[la + 1] -= _aligned(n)
    live, total = [], 0
    for d in delta[:steps]:
        total += d
        live.append(total)
    return live


def live_lower_bound(buffers: list[BufferInfo]) -> int:
    """Largest total size of buffers live at one step: no placement can do better."""
    return max(live_bytes(buffers), default=0)


def plan_linear(buffers: list[BufferInfo]) -> dict[str, int]:
    """Baseline: every buffer gets its own range (TFLM's LinearMemoryPlanner)."""
    offsets, cursor = {}, 0
    for b in buffers:
        offsets[b.name] = cursor
        cursor += _aligned(b.size)
    return offsets


def _first_fit(ordered: list[BufferInfo]) -> dict[str, int]:
    """Place buffers in the given order, each at the lowest offset free for its whole lifetime."""
    # Placed buffers are indexed by the steps they live in, so finding the ones that clash with
    # a buffer costs its lifetime, not the number of buffers placed (patch graphs have many).
    by_step: dict[int, list[BufferInfo]] = {}
    offsets: dict[str, int] = {}
    for b in ordered:
        clash: dict[str, BufferInfo] = {}
        for s in range(b.first, b.last + 1):
            for c in by_step.get(s, ()):
                clash[c.name] = c
        busy = []
        for c in clash.values():
            need, other = pair_sizes(b, c)
            busy.append((offsets[c.name], offsets[c.name] + other, need))
        offsets[b.name] = lowest_free_offset(busy)
        for s in range(b.first, b.last + 1):
            by_step.setdefault(s, []).append(b)
    return offsets


def plan_greedy_by_size(buffers: list[BufferInfo]) -> dict[str, int]:
    """Largest buffer first (TFLM's GreedyMemoryPlanner and TinyEngine's scheme): big buffers fix
    the layout and small ones fill the gaps between them."""
    return _first_fit(sorted(buffers, key=lambda b: (-b.size, b.first, b.name)))


def plan_greedy_by_lifetime(buffers: list[BufferInfo]) -> dict[str, int]:
    """First use first, longest-lived first: wins on long chains where sizes mislead."""
    return _first_fit(sorted(buffers, key=lambda b: (b.first, -(b.last - b.first), -b.size,
                                                     b.name)))


PLANNERS: dict[str, Callable[[list[BufferInfo]], dict[str, int]]] = {
    "greedy_by_size": plan_greedy_by_size,
    "greedy_by_lifetime": plan_greedy_by_lifetime,
    "linear": plan_linear,
}


def plan_state(graph: Graph) -> tuple[dict[str, int], int]:
    """Offsets of the variable tensors in the state region, in the graph's tensor order, each
    aligned; and the region's size."""
    offsets: dict[str, int] = {}
    end = 0
    for t in graph.state():
        offsets[t.name] = end
        end += _aligned(t.nbytes)
    return offsets, end


def plan_memory(graph: Graph, scratch: dict[str, int] | None = None,
                algorithm: str = "auto", external: frozenset[str] = frozenset()) -> MemoryPlan:
    if algorithm != "auto" and algorithm not in PLANNERS:
        raise TinyEngineError(f"unknown arena planner {algorithm!r}; choose auto or one of "
                              f"{', '.join(PLANNERS)}")
    buffers = buffer_infos(graph, scratch, external)
    names = list(PLANNERS) if algorithm == "auto" else [algorithm]
    layout = alias_layout(graph)
    best: MemoryPlan | None = None
    for name in names:
        offsets = PLANNERS[name](buffers)
        offsets.update({t: offsets[g] + off for t, (g, off) in layout.items()
                        if t != g and g in offsets})
        plan = MemoryPlan(name, arena_size(buffers, offsets), offsets, buffers,
                          [op.name for op in graph.ops], sorted(external), *plan_state(graph))
        if best is None or plan.arena_bytes < best.arena_bytes:
            best = plan
    assert best is not None
    return best


from . import placement  # noqa: E402,F401  (registers its planners in PLANNERS)
