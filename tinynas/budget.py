"""Does an architecture fit a budget? The engine's figures, asked as cheaply as possible.

`arch_cost(arch)` equals `tinyengine.cost.estimate(build_graph(arch))` exactly (tests hold them
equal on random subnets, with and without patches). It differs only in how it gets there:
- flash bytes are summed from cached pieces (resources.segment_summary: the engine's own
  `flash_bytes` of the input/stem, of each block and of the head). In estimate(), emitting every
  constant, with one requantisation multiplier computed per output channel in Python, is about
  60% of the time, and it depends only on shapes;
- the graph, built by tinynas and verified by the tests, is not verified again on every call;
- the memory plan (tinyengine.memory.schedule) runs as estimate() runs it, memoised per
  architecture.
`check_budget` goes further for stage one: a candidate whose flash, or whose largest activation
(a lower bound of any arena), is over budget is rejected before any planning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tinyengine.cost import Cost, with_placeholders
from tinyengine.memory.patch import PatchSchedule, total_macs
from tinyengine.memory.schedule import schedule

from .arch import Arch
from .resources import build_graph, check_patch_search, quick_summary


@dataclass(frozen=True)
class Budget:
    sram: int  # bytes
    flash: int  # bytes
    macs: int | None = None

    def describe(self) -> str:
        s = f"SRAM {fmt_bytes(self.sram)}, flash {fmt_bytes(self.flash)}"
        return s + (f", MACs {fmt_count(self.macs)}" if self.macs else "")


@dataclass(frozen=True)
class Verdict:
    fits: bool
    flash: int
    peak_sram: int | None  # None when rejected before planning
    macs: int | None
    reason: str  # "" when it fits, else "flash", "sram" or "macs"
    patched: bool = False  # fits only with patch-based inference (deploy with patch="auto")


@lru_cache(maxsize=1 << 15)
def _plan(arch: Arch, patch: str, int8_input: bool) -> tuple[int, int, PatchSchedule | None]:
    check_patch_search(arch, patch)
    sched = schedule(with_placeholders(build_graph(arch, int8_input)), patch)
    return sched.plan.arena_bytes, total_macs(sched.graph), sched.patches


def arch_cost(arch: Arch, patch: str = "off", int8_input: bool = False) -> Cost:
    """estimate(build_graph(arch, int8_input), patch), computed faster (see above)."""
    peak, macs, patches = _plan(arch, patch, int8_input)
    flash, _ = quick_summary(arch, int8_input)
    return Cost(peak, flash, macs, patches)


def check_budget(arch: Arch, budget: Budget, patch: str = "off",
                 int8_input: bool = False) -> Verdict:
    """Whether `arch` fits, testing the cheap figures first. The figures of a fitting
    candidate are estimate()'s.

    patch="auto" asks for patch-based inference only where whole tensors do not fit (as
    MCUNetV2 deploys it: patches cost recomputed MACs), and planning with patches is about a
    hundred times slower, so whole tensors are always tried first; `patched` in the verdict says
    which one fits, and so how to deploy."""
    flash, biggest = quick_summary(arch, int8_input)
    if flash > budget.flash:
        return Verdict(False, flash, None, None, "flash")
    # Patches hold a stage's tensors a window at a time, so the bound holds only without them.
    patched = biggest > budget.sram
    if patched and patch == "off":
        return Verdict(False, flash, None, None, "sram")
    if not patched:
        peak, macs, _ = _plan(arch, "off", int8_input)
        patched = peak > budget.sram and patch == "auto"
    if patched:
        peak, macs, _ = _plan(arch, "auto", int8_input)
    if peak > budget.sram:
        return Verdict(False, flash, peak, macs, "sram", patched)
    if budget.macs is not None and macs > budget.macs:
        return Verdict(False, flash, peak, macs, "macs", patched)
    return Verdict(True, flash, peak, macs, "", patched)


def fmt_bytes(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KB"
    return f"{n} B"


def fmt_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"
