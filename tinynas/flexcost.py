"""What a flexible network costs, asked of the engine: FlexArch -> weightless graph ->
tinyengine.cost.estimate_schedule. The search owns no resource formula: every figure (peak SRAM
of the real planner, flash as the code generator lays it out, MACs, latency per board) is the
engine's, on the graph each block kind emits (tinynas/blocks/), which tests hold equal to what
the deploy compiles from the extracted PyTorch module.
"""

from __future__ import annotations

from functools import lru_cache

from tinyengine.cost import (
    Cost,
    arena_lower_bound,
    estimate_schedule,
    flash_bytes,
    with_placeholders,
)
from tinyengine.ir import Graph
from tinyengine.target.latency import op_terms, price_terms

from .blocks import HEAD, get_kind
from .blocks.graph import GraphBuilder
from .budget import Budget, Verdict, board_preset
from .errors import TinyNASError
from .flexarch import FlexArch


def build_graph(arch: FlexArch, int8_input: bool = False) -> Graph:
    """The int8 graph the engine compiles for `arch` (weights described, not given)."""
    g = GraphBuilder()
    r = arch.resolution
    shape = (1, r, r if arch.dims == 2 else 1, arch.in_channels)
    if int8_input:
        x = g.act("input", shape)
    else:
        x = g.op("input:quantize", "QUANTIZE", [g.act("input", shape, "float32")],
                 g.act("input:q", shape), {})
    for s in arch.steps():
        kind = get_kind(s.layer.kind)
        name = "head" if s.layer.kind == HEAD else f"l{s.index}"
        x = kind.emit(g, x, s.layer, name, arch.dims, arch.num_classes)
    out = g.op("output:dequantize", "DEQUANTIZE", [x],
               g.act("output", (1, arch.num_classes), "float32"), {})
    return g.graph(["input"], [out], arch.name or "subnet")


@lru_cache(maxsize=1 << 14)
def _priced(arch: FlexArch, patch: str, int8_input: bool
            ) -> tuple[Cost, tuple]:
    cost, sched = estimate_schedule(_graph(arch, int8_input), patch)
    return cost, tuple(op_terms(sched.graph, op) for op in sched.graph.ops)


def flex_cost(arch: FlexArch, patch: str = "off", int8_input: bool = False) -> Cost:
    """tinyengine.cost.estimate of the architecture's graph (memoised per architecture)."""
    return _priced(arch, patch, int8_input)[0]


def flex_latency_ms(arch: FlexArch, board: str, patch: str = "off",
                    int8_input: bool = False) -> float:
    b = board_preset(board)
    if not b.clock_hz:
        raise TinyNASError(f"board {b.name} has no clock, so no milliseconds")
    cycles, _ = price_terms(_priced(arch, patch, int8_input)[1], b)
    return 1000.0 * cycles / b.clock_hz


@lru_cache(maxsize=1 << 15)
def _bounds(arch: FlexArch, int8_input: bool) -> tuple[int, int]:
    """(flash bytes, largest activation bytes) of the graph, without planning it: the engine's
    flash figure, and a lower bound of any whole-tensor arena. A tenth of a plan's time, and a
    tight budget rejects most candidates on them."""
    graph = _graph(arch, int8_input)
    return flash_bytes(graph), arena_lower_bound(graph)


@lru_cache(maxsize=1 << 10)
def _graph(arch: FlexArch, int8_input: bool) -> Graph:
    """The graph with placeholder constants, built once for the bounds and the plan."""
    return with_placeholders(build_graph(arch, int8_input))


def check_flex_budget(arch: FlexArch, budget: Budget, patch: str = "off",
                      int8_input: bool = False) -> Verdict:
    """Whether `arch` fits: the unplanned figures first, then whole tensors, patches only where
    they do not fit."""
    flash, biggest = _bounds(arch, int8_input)
    if flash > budget.flash:
        return Verdict(False, flash, None, None, "flash")
    if biggest > budget.sram and patch == "off":
        return Verdict(False, flash, None, None, "sram")
    cost = flex_cost(arch, "off", int8_input)
    patched = False
    if cost.peak_sram > budget.sram and patch == "auto":
        cost, patched = flex_cost(arch, "auto", int8_input), True
    if cost.peak_sram > budget.sram:
        return Verdict(False, cost.flash_bytes, cost.peak_sram, cost.macs, "sram", patched)
    if budget.macs is not None and cost.macs > budget.macs:
        return Verdict(False, cost.flash_bytes, cost.peak_sram, cost.macs, "macs", patched)
    ms = None
    if budget.board is not None and board_preset(budget.board).clock_hz:
        ms = flex_latency_ms(arch, budget.board, "auto" if patched else "off", int8_input)
        if budget.latency_ms is not None and ms > budget.latency_ms:
            return Verdict(False, cost.flash_bytes, cost.peak_sram, cost.macs, "latency",
                           patched, ms)
    return Verdict(True, cost.flash_bytes, cost.peak_sram, cost.macs, "", patched, ms)
