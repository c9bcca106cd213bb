"""A cycle model per core: executed instructions, by class, weighted by the core's documented
instruction timings, plus the flash wait states of a board.

The QEMU plugin (plugin/insn_count.c, plugin/thumb_classes.h) sorts every executed instruction
into one primary class (ALU, load, store, load/store multiple, multiply, ..., branch, conditional
branch) and counts a few events besides: words moved by load/store multiples, PC writes by loads
(POP {pc}), single loads/stores that pipeline with the one before, conditional branches taken,
the 16- and 32-byte lines of code executed blocks span, and PC-relative (literal pool) loads.
Here each count gets a weight in cycles from the core's Technical Reference Manual, so

    cycles = sum(weight[class] * count[class]) + refill * (branches + taken + PC writes)
             + flash_stall * (code lines fetched + literal loads)

These are estimates from an emulator, at zero wait states unless a board adds them. They leave
out caches (the M7's and M55's), the flash accelerators and prefetch buffers of the STM32 parts
(ART), wait states on weight reads from flash (QEMU 7.2's memory callbacks miss most accesses,
so loads are not followed to their addresses), bus contention, result-use interlocks,
early-terminating multiplies and divides beyond a fixed middle value, and the M7's dual issue
and branch prediction. Where a TRM gives a range (the
pipeline refill P is 1 to 3 cycles on the M3/M4), the middle or typical value is used and the
comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import TinyEngineError
from .boards import Board

# The plugin's classes, in the order of enum insn_class (plugin/thumb_classes.h): the first
# PRIMARY are one per instruction, the rest are extra counts. A test holds the two lists equal.
CLASSES = ("alu", "load", "store", "load_store_multiple", "mul", "mla", "long_mul", "dsp_mac",
           "simd", "div", "branch", "cond_branch", "fp", "vector",
           "lsm_words", "pc_write", "ls_pipelined", "cond_taken", "lines16", "lines32",
           "literal")
PRIMARY = CLASSES[:CLASSES.index("vector") + 1]


@dataclass(frozen=True)
class CoreTimings:
    """Cycles per instruction class on one core, at zero wait states."""

    core: str
    source: str  # the manual and table the weights come from
    weights: Mapping[str, float]  # primary classes, and lsm_words / ls_pipelined per count
    refill: float  # pipeline refill P, added per taken branch and per PC write
    notes: str = ""
    overrides: Mapping[str, float] = field(default_factory=dict)


def _weights(**changes: float) -> dict[str, float]:
    """One cycle per instruction, one per word moved by LDM/STM, and the changes."""
    w = {name: 1.0 for name in PRIMARY}
    w.update(lsm_words=1.0, ls_pipelined=0.0)
    w.update(changes)
    return w


# Cortex-M3 TRM r2p1 (Arm DDI 0337I), 3.3 "Processor instruction timings", Table 3-1 "Cortex-M3
# instruction set summary" (cycle counts at zero wait states): data processing 1; LDR/STR 2, and
# neighbouring single loads/stores pipeline (N + 1 cycles for N of them: the saving below); LDM,
# STM, PUSH, POP 1+N; MUL 1, MLA/MLS 2; SMULL/UMULL 3-5 and SMLAL/UMLAL 4-7 (early termination:
# 5 taken here); SDIV/UDIV 2-12 (7); B/BL/BX 1+P, B<cond> 1 or 1+P, P = 1-3 (2).
_M3 = _weights(load=2, store=2, mla=2, long_mul=5, div=7, branch=1, ls_pipelined=-1)

CORE_TIMINGS: dict[str, CoreTimings] = {t.core: t for t in [
    # Cortex-M0+ TRM r0p1 (Arm DDI 0484C), 3.3 "Instruction set summary", Table 3-1: data
    # processing 1, loads and stores 2 (no pipelining of neighbours), LDM/STM/PUSH 1+N, POP with
    # PC 3+N, MULS 1 (the single-cycle multiplier that STM32 parts implement), B taken 2, not
    # taken 1, BL 3, BX 2: a two-stage pipeline, refill 1. No divide, DSP or FP instructions:
    # the compiler calls library routines, whose instructions are counted as they run.
    CoreTimings("cortex-m0plus", "Cortex-M0+ TRM (DDI 0484C) 3.3, Table 3-1",
                _weights(load=2, store=2), refill=1.0, overrides={"pc_write": 2.0}),
    # Cortex-M0 TRM r0p0 (Arm DDI 0432C), 3.3 "Instruction set summary", Table 3-1: loads and
    # stores 2, LDM/STM 1+N, POP with PC 4+N, MULS 1 (fast multiplier), B taken 3, not taken 1,
    # BL 4, BX 3: a three-stage pipeline, refill 2.
    CoreTimings("cortex-m0", "Cortex-M0 TRM (DDI 0432C) 3.3, Table 3-1",
                _weights(load=2, store=2), refill=2.0, overrides={"pc_write": 3.0}),
    CoreTimings("cortex-m3", "Cortex-M3 TRM (DDI 0337I) 3.3, Table 3-1", _M3, refill=2.0),
    # Cortex-M4 TRM r0p1 (Arm DDI 0439B / 100166), 3.3.1 "Table of processor instructions",
    # Table 3-1 and 3.3.2 "Load/store timings": as the M3, but MUL, MLA, MLS, the long multiplies
    # and every DSP multiply-accumulate (SMLAD, SMLAL, ...) take 1 cycle, SIMD and saturating
    # instructions 1; FPU (7.2.3, Table 7-1): VADD/VSUB/VMUL/VCVT 1, VLDR 2 (counted as a load).
    CoreTimings("cortex-m4", "Cortex-M4 TRM (DDI 0439B) 3.3.1 Table 3-1, 3.3.2",
                _weights(load=2, store=2, div=7, ls_pipelined=-1), refill=2.0),
    # Cortex-M7 TRM r1p2 (Arm DDI 0489F) gives no per-instruction cycle table; 1.2 "Features"
    # describes a six-stage, in-order, dual-issue pipeline with branch prediction and 64-bit
    # instruction and data buses. Modelled as single issue (dual issue NOT modelled: real code
    # often runs faster), one cycle per instruction, load/store multiples moving two words a
    # cycle on the 64-bit bus, a divide 7 (as the M4's middle), and a refill of 1 per taken
    # branch for the predicted case (mispredictions not modelled).
    CoreTimings("cortex-m7", "Cortex-M7 TRM (DDI 0489F) 1.2: no cycle table; assumptions in the "
                "comment", _weights(lsm_words=0.5, div=7), refill=1.0,
                notes="dual issue, branch prediction and caches not modelled"),
    # Cortex-M33 TRM r0p4 (Arm 100230) has no per-instruction cycle table; its 3-stage ARMv8-M
    # Mainline pipeline is taken to time instructions as the M4's Table 3-1 does.
    CoreTimings("cortex-m33", "Cortex-M33 TRM (100230): no cycle table; the M4's Table 3-1",
                _weights(load=2, store=2, div=7, ls_pipelined=-1), refill=2.0),
    # Arm Cortex-M55 Software Optimization Guide, its instruction characteristics tables:
    # scalar instructions single issue, loads 1 cycle of issue on the 64-bit data path (the
    # latency is hidden when the result is not used at once, assumed here), load/store multiple
    # two words a cycle, MVE instructions two beats a cycle, so a 128-bit (four-beat) vector
    # instruction issues in 2 cycles, overlap between vector instructions not modelled.
    CoreTimings("cortex-m55", "Cortex-M55 Software Optimization Guide",
                _weights(lsm_words=0.5, div=7, vector=2), refill=2.0,
                notes="MVE beat overlap and the caches not modelled"),
]}


def timings(core: str) -> CoreTimings:
    if core not in CORE_TIMINGS:
        raise TinyEngineError(f"no cycle model for core {core!r}; the Cortex-M cores have one: "
                              f"{', '.join(CORE_TIMINGS)}")
    return CORE_TIMINGS[core]


def core_cycles(counts: Mapping[str, int], core: str) -> float:
    """Cycles at zero wait states for the class counts of some executed code."""
    t = timings(core)
    cycles = sum(t.weights.get(k, 1.0) * counts.get(k, 0) for k in PRIMARY)
    cycles += t.weights["lsm_words"] * counts.get("lsm_words", 0)
    cycles += t.weights["ls_pipelined"] * counts.get("ls_pipelined", 0)
    refills = counts.get("branch", 0) + counts.get("cond_taken", 0)
    cycles += t.refill * refills
    cycles += t.overrides.get("pc_write", t.refill) * counts.get("pc_write", 0)
    return cycles


def flash_stall_per_access(board: Board) -> float:
    """CPU cycles a flash access waits beyond the one it would take at zero wait states.

    A read takes wait_states + 1 cycles of the flash's clock; where the flash runs slower than
    the core (the H743's flash sits on the AXI bus at half the CPU clock) each of those is
    several CPU cycles."""
    if not board.flash_wait_states or not board.clock_hz:
        return 0.0
    ratio = board.clock_hz / (board.flash_clock_hz or board.clock_hz)
    return (board.flash_wait_states + 1) * ratio - 1


def flash_accesses(counts: Mapping[str, int], board: Board) -> int:
    """Code line fetches (one per line of the flash's read width an executed block spans; no
    prefetch buffer or accelerator) plus literal-pool loads."""
    lines = counts.get("lines32" if board.flash_line_bytes >= 32 else "lines16", 0)
    return lines + counts.get("literal", 0)


def board_cycles(counts: Mapping[str, int], core: str, board: Board | None) -> float:
    """Core cycles plus the board's flash wait states."""
    cycles = core_cycles(counts, core)
    if board is not None:
        cycles += flash_stall_per_access(board) * flash_accesses(counts, board)
    return cycles
