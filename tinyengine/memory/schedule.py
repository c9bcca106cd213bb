"""Memory scheduling, the whole pipeline: patches -> in-place marks -> arena plan.

    schedule(graph, patch="auto") -> Schedule(graph to emit, its MemoryPlan, PatchSchedule)

This is what the code generator runs and what the search asks for SRAM figures, so the two can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TinyEngineError
from ..ir import Graph
from ..ops import get_op
from .inplace import mark_inplace
from .patch import PatchSchedule, parse_patch_spec, patch_graph, search_patches
from .plan import MemoryPlan, buffer_infos, live_lower_bound, plan_memory

DEFAULT_MAX_MAC_OVERHEAD = 0.2


@dataclass
class Schedule:
    graph: Graph  # the graph to emit: patched and marked for in-place execution
    plan: MemoryPlan
    patches: PatchSchedule | None


def scratch_sizes(graph: Graph) -> dict[str, int]:
    return {op.name: get_op(op.kind).scratch_bytes(graph, op) for op in graph.ops}


def plan_graph(graph: Graph, inplace: bool = True, planner: str = "auto") -> tuple[Graph,
                                                                                   MemoryPlan]:
    """In-place marks then arena placement, for a graph in its final op order."""
    if inplace:
        graph = mark_inplace(graph)
    return graph, plan_memory(graph, scratch_sizes(graph), planner)


def lower_bound(graph: Graph, inplace: bool = True) -> int:
    """The live-set lower bound of the arena: what any placement needs at the busiest step."""
    if inplace:
        graph = mark_inplace(graph)
    return live_lower_bound(buffer_infos(graph, scratch_sizes(graph)))


def schedule(graph: Graph, patch: str = "off", inplace: bool = True, planner: str = "auto",
             max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD) -> Schedule:
    """patch: "off", "auto" (search split and grid within `max_mac_overhead`), or "RxC@N"."""
    patches = None
    if patch == "auto":
        found = search_patches(graph, lambda g: lower_bound(g, inplace),
                               lambda g: plan_graph(g, inplace, planner)[1].arena_bytes,
                               max_mac_overhead)
        if found is not None:
            graph, patches = found
    elif patch != "off":
        spec = parse_patch_spec(patch)
        assert spec is not None
        graph, patches = patch_graph(graph, spec[1], spec[0])
    elif max_mac_overhead < 0:
        raise TinyEngineError("the MAC overhead budget must be >= 0")
    graph, plan = plan_graph(graph, inplace, planner)
    return Schedule(graph, plan, patches)
