"""Memory scheduling, the whole pipeline: patches -> in-place marks -> arena plan.

    schedule(graph, patch="auto") -> Schedule(graph to emit, its MemoryPlan, PatchSchedule)

This is what the code generator runs and what the search asks for SRAM figures, so the two can
never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TinyEngineError
from ..ir import Graph, Op
from ..ops import get_op
from .fuse import block_name, fusable_blocks, fuse_blocks
from .inplace import is_slow_inplace, mark_inplace, mark_views
from .order import best_order, reorder
from .patch import PatchSchedule, parse_patch_spec, patch_graph, search_patches
from .plan import MemoryPlan, buffer_infos, live_bytes, live_lower_bound, plan_memory

DEFAULT_MAX_MAC_OVERHEAD = 0.2


@dataclass
class Schedule:
    graph: Graph  # the graph to emit: patched and marked for in-place execution
    plan: MemoryPlan
    patches: PatchSchedule | None


def scratch_sizes(graph: Graph) -> dict[str, int]:
    return {op.name: get_op(op.kind).scratch_bytes(graph, op) for op in graph.ops}


def plan_graph(graph: Graph, inplace: bool = True, planner: str = "auto",
                external: frozenset[str] = frozenset()) -> tuple[Graph, MemoryPlan]:
    """In-place marks, concatenation views, then arena placement, for a graph in its final op
    order. Views are kept unless they make the arena larger (they also save the copies).

    Two kinds of in-place choice cost speed and are kept only where they make the arena
    smaller: running an op with its input at an offset (a convolution band by band,
    ops/rows_inplace.py: a kernel call per band, and its group can rule out a concatenation
    view), and an in-place kernel slower than its out-of-place twin (ops' `inplace_speed`,
    measured by benchmarks/inplace_speed.py: the depthwise ring path is 1.07-1.14x). See
    _fewest; the offset choices are settled first, then the slow kernels."""
    if not inplace:
        return graph, plan_memory(graph, scratch_sizes(graph), planner, external)

    def offset_marked(g: Graph, op: Op) -> bool:
        return op.attrs.get("inplace_offset") is not None

    offsets, first = _fewest(lambda allowed: mark_inplace(graph, offsets=allowed),
                             offset_marked, planner, external)
    # `first` was planned with every slow kernel allowed: it is the second call's "every".
    _, best = _fewest(lambda allowed: mark_inplace(graph, offsets=offsets, slow=allowed),
                      is_slow_inplace, planner, external, every=first)
    return best


def plan_fused(graph: Graph, inplace: bool = True, planner: str = "auto",
               external: frozenset[str] = frozenset(),
               fuse: bool = True) -> tuple[Graph, MemoryPlan]:
    """plan_graph, with inverted-residual blocks fused (memory/fuse.py) where that makes the
    arena smaller. A fused block runs slower (a row copy and member-kernel calls per output
    row), so as with _fewest: every block fused; none; and, where none gives a larger arena,
    only the blocks with a step whose live bytes (planned unfused) exceed the arena found with
    them all. Ties go to fewer fused blocks."""
    plain = plan_graph(graph, inplace, planner, external)
    blocks = fusable_blocks(graph) if fuse else []
    if not inplace or not blocks:
        return plain
    every = plan_graph(fuse_blocks(graph, True), inplace, planner, external)
    if every[1].arena_bytes >= plain[1].arena_bytes:
        return plain
    live = dict(zip((op.name for op in plain[0].ops), live_bytes(plain[1].buffers)))
    needed = {block_name(c) for c in blocks
              if any(live[op.name] > every[1].arena_bytes for op in c)}
    if len(needed) == len(blocks):
        return every
    some = plan_graph(fuse_blocks(graph, needed), inplace, planner, external)
    return some if some[1].arena_bytes <= every[1].arena_bytes else every


def fused_lower_bound(graph: Graph, inplace: bool = True, fuse: bool = True) -> int:
    """The live-set lower bound over the plans plan_fused compares: the lower of the unfused
    graph's and the all-fused graph's. A plan with only some blocks fused is taken only where it
    is no larger than the all-fused one, so the search's pruning by this bound is a heuristic
    there, not a proof."""
    fused = fuse_blocks(graph, inplace and fuse)
    bound = lower_bound(graph, inplace)
    return bound if fused is graph else min(bound, lower_bound(fused, inplace))


def _fewest(mark: Callable[[bool | set[str]], Graph], marked: Callable[[Graph, Op], bool],
            planner: str, external: frozenset[str],
            every: tuple[Graph, MemoryPlan] | None = None
            ) -> tuple[bool | set[str], tuple[Graph, MemoryPlan]]:
    """The plan with the fewest `marked` ops that has the smallest arena, tried three ways:
    every such choice allowed; none; and, where none gives a larger arena, only the ops at the
    steps whose live bytes (planned without them) exceed the arena found with them all. Ties go
    to fewer marks. Returns what `mark` was given for it, and the plan. `every`: the plan of
    mark(True), where the caller has it already."""
    if every is None:
        every = _with_views(mark(True), planner, external)
    if not any(marked(every[0], op) for op in every[0].ops):
        return True, every
    plain = _with_views(mark(False), planner, external)
    if plain[1].arena_bytes <= every[1].arena_bytes:
        return False, plain
    live = live_bytes(plain[1].buffers)
    needed = {op.name for op, n in zip(plain[0].ops, live) if n > every[1].arena_bytes}
    some = _with_views(mark(needed), planner, external)
    return (needed, some) if some[1].arena_bytes <= every[1].arena_bytes else (True, every)


def _with_views(graph: Graph, planner: str,
                external: frozenset[str]) -> tuple[Graph, MemoryPlan]:
    plan = plan_memory(graph, scratch_sizes(graph), planner, external)
    viewed = mark_views(graph)
    if viewed is not graph:
        with_views = plan_memory(viewed, scratch_sizes(viewed), planner, external)
        if with_views.arena_bytes <= plan.arena_bytes:
            return viewed, with_views
    return graph, plan


def lower_bound(graph: Graph, inplace: bool = True) -> int:
    """The live-set lower bound of the arena: what any placement needs at the busiest step."""
    if inplace:
        graph = mark_inplace(graph)
    return live_lower_bound(buffer_infos(graph, scratch_sizes(graph)))


def streamable_inputs(graph: Graph) -> frozenset[str]:
    """Graph inputs read only through SLICE windows: the C code can read those windows straight
    from the caller's buffer, so the input needs no room in the arena."""
    readers: dict[str, set[str]] = {}
    for op in graph.ops:
        for n in op.inputs:
            readers.setdefault(n, set()).add(op.kind)
    return frozenset(n for n in graph.inputs
                     if readers.get(n) == {"SLICE"} and n not in graph.outputs)


def choose_order(graph: Graph, inplace: bool = True, planner: str = "auto") -> Graph:
    """muNAS's execution order search: the topological order with the lowest peak of live
    bytes, kept only where the real plan (in-place marks included, which the order search does
    not model) beats the file order."""
    order = best_order(graph)
    if order == [op.name for op in graph.ops]:
        return graph
    reordered = reorder(graph, order)
    if (plan_graph(reordered, inplace, planner)[1].arena_bytes
            < plan_graph(graph, inplace, planner)[1].arena_bytes):
        return reordered
    return graph


def schedule(graph: Graph, patch: str = "off", inplace: bool = True, planner: str = "auto",
             max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
             stream_input: bool = False, fuse: bool = True) -> Schedule:
    """patch: "off", "auto" (search split and grid within `max_mac_overhead`), or "RxC@N".

    stream_input: an explicit, labelled choice, never the default: with patches, the input is
    read window by window from the caller's buffer and the arena does not hold it.
    fuse: let the planner run inverted-residual blocks row by row where the arena needs it
    (plan_fused); False plans every op on its own, as before fusion existed.
    """
    if max_mac_overhead < 0:
        raise TinyEngineError("the MAC overhead budget must be >= 0")
    graph = choose_order(graph, inplace, planner)
    patches = None
    if patch == "auto":
        found = search_patches(graph, lambda g: fused_lower_bound(g, inplace, fuse),
                               lambda g: plan_fused(g, inplace, planner, fuse=fuse)[1]
                               .arena_bytes,
                               max_mac_overhead)
        if found is not None:
            graph, patches = found
    elif patch != "off":
        spec = parse_patch_spec(patch)
        assert spec is not None
        graph, patches = patch_graph(graph, spec[1], spec[0])
    external: frozenset[str] = frozenset()
    if stream_input:
        external = streamable_inputs(graph)
        if not external:
            raise TinyEngineError("input streaming needs patch-based inference that reads the "
                                  "input window by window; use --patch auto or RxC@N (and check "
                                  "that patches were chosen)")
    graph, plan = plan_fused(graph, inplace, planner, external, fuse)
    return Schedule(graph, plan, patches)
