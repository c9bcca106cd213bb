"""Arena planning: analysis (buffer lifetimes) -> algorithm (offsets) -> apply (a MemoryPlan).

Every activation tensor, the graph's inputs and outputs included, and every op's scratch buffer
get a byte range in one static arena. Placement algorithms are pure functions from buffer infos
to offsets, registered by name in PLANNERS, so a better scheduler can replace them without
touching the code generator. "auto" runs them all and keeps the smallest arena (ties go to the
first registered, so the result is deterministic).
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
    size: int  # bytes, before alignment
    first: int  # index of the first op that touches it (writes it, or reads a graph input)
    last: int  # index of the last op that reads it; len(order) for graph outputs

    def overlaps_in_time(self, other: BufferInfo) -> bool:
        return self.first <= other.last and other.first <= self.last


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
    span: dict[str, tuple[int, int, int]] = {}
    for n in first:
        if n in external:
            continue
        g, off = layout.get(n, (n, 0))
        f, la, size = span.get(g, (first[n], last[n], 0))
        span[g] = (min(f, first[n]), max(la, last[n]), max(size, off + graph.tensor(n).nbytes))
    infos = [BufferInfo(g, size, f, la) for g, (f, la, size) in span.items()]
    for i, op in enumerate(graph.ops):
        if scratch.get(op.name, 0) > 0:
            infos.append(BufferInfo(scratch_name(op.name), scratch[op.name], i, i))
    return sorted(infos, key=lambda b: (b.first, b.name))


def arena_size(buffers: list[BufferInfo], offsets: dict[str, int]) -> int:
    return max((offsets[b.name] + _aligned(b.size) for b in buffers), default=0)


def live_bytes(buffers: list[BufferInfo]) -> list[int]:
    """Total aligned size of the buffers live at each step (a sweep over birth/death events)."""
    if not buffers:
        return []
    steps = max(b.last for b in buffers) + 1
    delta = [0] * (steps + 1)
    for b in buffers:
        delta[b.first] += _aligned(b.size)
        delta[b.last + 1] -= _aligned(b.size)
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
    by_step: dict[int, list[tuple[int, int, str]]] = {}
    offsets: dict[str, int] = {}
    for b in ordered:
        clash: dict[str, tuple[int, int]] = {}
        for s in range(b.first, b.last + 1):
            for start, end, name in by_step.get(s, ()):
                clash[name] = (start, end)
        busy = sorted(clash.values())
        offset = 0
        for start, end in busy:
            if offset + _aligned(b.size) <= start:
                break
            offset = max(offset, end)
        offsets[b.name] = offset
        for s in range(b.first, b.last + 1):
            by_step.setdefault(s, []).append((offset, offset + _aligned(b.size), b.name))
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
