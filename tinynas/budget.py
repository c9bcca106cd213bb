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

Latency (a budget with a board and `latency_ms`) is tinyengine's fast estimate
(tinyengine/target/latency.py: per-op cycles from tables measured with `bench`, plus the board's
flash wait states) of the graph as the deploy schedules it, whole tensors or patches as the
verdict says: a table lookup per op, priced from the features the memory plan's schedule already
holds, so the search pays no emulator run per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from tinyengine.cost import Cost, with_placeholders
from tinyengine.errors import TinyEngineError
from tinyengine.memory.patch import PatchSchedule, total_macs
from tinyengine.memory.schedule import schedule
from tinyengine.target.boards import Board, resolve_board
from tinyengine.target.latency import OpTerms, op_terms, price_terms

from .arch import Arch
from .errors import TinyNASError
from .flexarch import FlexArch
from .resources import build_graph, check_patch_search, quick_summary


@dataclass(frozen=True)
class Budget:
    sram: int  # bytes
    flash: int  # bytes
    macs: int | None = None
    latency_ms: float | None = None  # needs a board with a clock
    board: str | None = None  # a tinyengine board preset (tinyengine/target/boards.py)
    # What --sram/--flash bound: "model" (weights and parameters; the arena), as the NAS papers
    # count, or "firmware" (everything linked: code, runtime, stack; tinynas/firmware.py) on
    # the board's core (cortex-m4 without a board) at -`opt`.
    flash_scope: str = "model"
    opt: str = "O2"

    def __post_init__(self) -> None:
        if self.flash_scope not in ("model", "firmware") or self.opt not in ("O2", "Os"):
            raise TinyNASError(f"flash scope {self.flash_scope!r} / -{self.opt}: choose "
                               "--flash-scope model or firmware, --opt O2 or Os")
        if self.flash_scope == "firmware":
            from .firmware import has_table, table_cores

            if not has_table(self.core, self.opt):
                raise TinyNASError(f"--flash-scope firmware: no code-size table for {self.core} "
                                   f"at -{self.opt} (measured: {', '.join(table_cores())}); "
                                   "use --flash-scope model")
        if self.latency_ms is not None and not (self.latency_ms > 0 and
                                                self.latency_ms < float("inf")):
            raise TinyNASError(f"latency limit {self.latency_ms!r} ms: give a positive number "
                               "of milliseconds, e.g. --latency-ms 5")
        if self.board is not None:
            b = board_preset(self.board)
            if self.latency_ms is not None and not b.clock_hz:
                raise TinyNASError(f"board {b.name} has no clock, so no milliseconds: a latency "
                                   f"limit needs one of {', '.join(clocked_boards())}")
        elif self.latency_ms is not None:
            raise TinyNASError("a latency limit needs a board to price it on: add --board "
                               f"(one of {', '.join(clocked_boards())})")

    @property
    def core(self) -> str:
        return board_preset(self.board).core if self.board else "cortex-m4"

    def describe(self) -> str:
        s = f"SRAM {fmt_bytes(self.sram)}, flash {fmt_bytes(self.flash)}"
        if self.flash_scope == "firmware":
            s += f" (whole firmware, {self.core} -{self.opt})"
        s += f", MACs {fmt_count(self.macs)}" if self.macs else ""
        if self.latency_ms is not None:
            s += f", latency {self.latency_ms:g} ms on {self.board}"
        return s


def board_preset(name: str) -> Board:
    """The tinyengine board (or core) `name`, as a TinyNASError naming the choices if unknown."""
    try:
        return resolve_board(name)
    except TinyEngineError as e:
        raise TinyNASError(str(e)) from None


def clocked_boards() -> list[str]:
    from tinyengine.target.boards import BOARDS

    return [n for n, b in BOARDS.items() if b.clock_hz]


@dataclass(frozen=True)
class Verdict:
    fits: bool
    flash: int
    peak_sram: int | None  # None when rejected before planning
    macs: int | None
    reason: str  # "" when it fits, else "flash", "sram", "macs" or "latency"
    patched: bool = False  # fits only with patch-based inference (deploy with patch="auto")
    latency_ms: float | None = None  # the estimate on the budget's board, where it has one
    firmware_flash: int | None = None  # the whole firmware's, where the budget's scope is it
    firmware_ram: int | None = None


@lru_cache(maxsize=1 << 15)
def _plan(arch: Arch, patch: str, int8_input: bool
          ) -> tuple[int, int, PatchSchedule | None, tuple[OpTerms, ...]]:
    """Arena bytes, MACs, patches, and the latency features of each op, of the schedule."""
    check_patch_search(arch, patch)
    sched = schedule(with_placeholders(build_graph(arch, int8_input)), patch)
    terms = tuple(op_terms(sched.graph, op) for op in sched.graph.ops)
    return sched.plan.arena_bytes, total_macs(sched.graph), sched.patches, terms


def arch_latency_ms(arch: Arch | FlexArch, board: str, patch: str = "off",
                    int8_input: bool = False) -> float:
    """tinyengine's latency estimate (ms) of the deployed graph on `board`: patch "off" for whole
    tensors, "auto" for the patches the deploy would choose."""
    b = board_preset(board)
    if not b.clock_hz:
        raise TinyNASError(f"board {b.name} has no clock, so no milliseconds; choose one of "
                           f"{', '.join(clocked_boards())}")
    if not isinstance(arch, Arch):
        from .flexcost import flex_latency_ms
        return flex_latency_ms(arch, board, patch, int8_input)
    cycles, _ = price_terms(_plan(arch, patch, int8_input)[3], b)
    return 1000.0 * cycles / b.clock_hz


def arch_cost(arch: Arch | FlexArch, patch: str = "off", int8_input: bool = False) -> Cost:
    """estimate(build_graph(arch, int8_input), patch), computed faster (see above)."""
    if not isinstance(arch, Arch):
        from .flexcost import flex_cost
        return flex_cost(arch, patch, int8_input)
    peak, macs, patches, _ = _plan(arch, patch, int8_input)
    flash, _ = quick_summary(arch, int8_input)
    return Cost(peak, flash, macs, patches)


def check_budget(arch: Arch | FlexArch, budget: Budget, patch: str = "off",
                 int8_input: bool = False) -> Verdict:
    """Whether `arch` fits, testing the cheap figures first. The figures of a fitting
    candidate are estimate()'s.

    patch="auto" asks for patch-based inference only where whole tensors do not fit (as
    MCUNetV2 deploys it: patches cost recomputed MACs), and planning with patches is about a
    hundred times slower, so whole tensors are always tried first; `patched` in the verdict says
    which one fits, and so how to deploy.

    With the firmware scope, the model's flash and arena (lower bounds of the firmware's) are
    checked first, then the whole firmware's estimate (tinynas/firmware.py)."""
    if not isinstance(arch, Arch):  # a network of the flexible space (tinynas/flexcost.py)
        from .flexcost import check_flex_budget
        v = check_flex_budget(arch, budget, patch, int8_input)
    else:
        v = _check_model(arch, budget, patch, int8_input)
    if not v.fits or budget.flash_scope != "firmware":
        return v
    from .firmware import firmware_figures

    flash, ram = firmware_figures(arch, budget.core, budget.opt,
                                  "auto" if v.patched else "off", int8_input)
    reason = "flash" if flash > budget.flash else "sram" if ram > budget.sram else ""
    return replace(v, fits=not reason, reason=reason, firmware_flash=flash, firmware_ram=ram)


def _check_model(arch: Arch, budget: Budget, patch: str, int8_input: bool) -> Verdict:
    """check_budget in the model scope, for MCUNet's MBConv networks."""
    flash, biggest = quick_summary(arch, int8_input)
    if flash > budget.flash:
        return Verdict(False, flash, None, None, "flash")
    # Patches hold a stage's tensors a window at a time, so the bound holds only without them.
    patched = biggest > budget.sram
    if patched and patch == "off":
        return Verdict(False, flash, None, None, "sram")
    if not patched:
        peak, macs, _, _ = _plan(arch, "off", int8_input)
        patched = peak > budget.sram and patch == "auto"
    if patched:
        peak, macs, _, _ = _plan(arch, "auto", int8_input)
    if peak > budget.sram:
        return Verdict(False, flash, peak, macs, "sram", patched)
    if budget.macs is not None and macs > budget.macs:
        return Verdict(False, flash, peak, macs, "macs", patched)
    ms = None
    if budget.board is not None and board_preset(budget.board).clock_hz:
        ms = arch_latency_ms(arch, budget.board, "auto" if patched else "off", int8_input)
        if budget.latency_ms is not None and ms > budget.latency_ms:
            return Verdict(False, flash, peak, macs, "latency", patched, ms)
    return Verdict(True, flash, peak, macs, "", patched, ms)


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
