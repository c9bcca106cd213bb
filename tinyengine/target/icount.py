"""Instruction counts on the emulated core: per inference and per op, exact and repeatable.

A small QEMU TCG plugin (plugin/insn_count.c, built here with the host C compiler) counts every
executed instruction and logs each translation block that starts inside <prefix>_invoke, with
the count so far. A call ends a block, so the instructions between two logged blocks of invoke
are exactly those of the kernel called in between; the i-th call is op i (the generated invoke
calls one kernel per op, in order). Nothing in the generated project changes for this: the
invoke address range comes from the ELF's symbol table.

Per op, the count is everything from the end of the previous op's call to the end of this op's
call: the argument set-up and status check in invoke, and the kernel with all it calls. The last
op also gets invoke's return. So the per-op counts add up to the per-inference total exactly.

On Cortex-M the plugin also sorts the instructions into classes (loads, stores, multiplies,
branches taken and not, ...; plugin/thumb_classes.h), which cycles.py weighs with the core's
documented timings into cycles, and, for a board preset with a clock (`--board stm32f746`: its
core runs on the QEMU board of the same core), into milliseconds with the flash wait states.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import TinyEngineError
from ..ir import DTYPES
from ..runtime.host import load_project_report
from .boards import BOARDS, CORES, TARGETS, Board, emulated_board, resolve_board
from .build import build_firmware, symbol_sizes
from .cycles import CLASSES, CORE_TIMINGS, board_cycles
from .qemu import DEFAULT_TIMEOUT_S, find_qemu, run_firmware

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_SOURCES = ("insn_count.c", "qemu_plugin_api.h", "thumb_classes.h")


class OpCount(NamedTuple):
    name: str
    kernel: str
    instructions: int
    macs: int
    classes: dict[str, int] = {}  # the plugin's class counts (cycles.CLASSES); {} on RISC-V
    cycles: int | None = None  # cycles.py's estimate, with the preset's flash wait states


@dataclass(frozen=True)
class BenchResult:
    """Instruction counts, and estimated cycles, of one inference on an emulated board."""

    board: str
    core: str
    simd: bool
    total_instructions: int  # one inference: invoke and every kernel it calls
    per_op: list[OpCount]
    macs: int
    program_instructions: int  # the whole run: startup, semihosting file I/O, the inference
    classes: dict[str, int] | None = None  # one inference, by class
    total_cycles: int | None = None  # None where the core has no cycle model (RISC-V)
    preset: str | None = None  # the board the cycles are for (clock, flash wait states)
    clock_hz: int | None = None
    flash_wait_states: int = 0

    @property
    def instructions_per_mac(self) -> float:
        return self.total_instructions / self.macs if self.macs else float("nan")

    @property
    def ms(self) -> float | None:
        """Estimated milliseconds per inference at the preset's clock."""
        if self.total_cycles is None or not self.clock_hz:
            return None
        return 1000.0 * self.total_cycles / self.clock_hz

    def to_json(self) -> dict[str, Any]:
        return {"board": self.board, "core": self.core, "simd": self.simd,
                "total_instructions": self.total_instructions, "macs": self.macs,
                "instructions_per_mac": self.instructions_per_mac,
                "program_instructions": self.program_instructions,
                "preset": self.preset, "clock_hz": self.clock_hz,
                "flash_wait_states": self.flash_wait_states,
                "total_cycles": self.total_cycles, "ms": self.ms, "classes": self.classes,
                "per_op": [op._asdict() for op in self.per_op]}


def plugin_path() -> Path:
    """The instruction-count plugin, built once per source version into a cache directory."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise TinyEngineError("a host C compiler (cc) is needed to build the QEMU plugin; "
                              "apt-get install gcc")
    h = hashlib.sha256()
    for name in PLUGIN_SOURCES:
        h.update((PLUGIN_DIR / name).read_bytes())
    cache = Path(os.environ.get("TINYENGINE_CACHE", Path.home() / ".cache" / "tinyengine"))
    so = cache / f"insn_count-{h.hexdigest()[:16]}.so"
    if so.is_file():
        return so
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = Path(tempfile.gettempdir())
        so = cache / so.name
    fd, tmp = tempfile.mkstemp(prefix=".insn_count.", suffix=".so", dir=cache)
    os.close(fd)
    cmd = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
           "-fvisibility=hidden", "-o", tmp, str(PLUGIN_DIR / "insn_count.c")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        raise TinyEngineError(f"building the QEMU plugin failed:\n{result.stderr[-2000:]}")
    os.replace(tmp, so)  # atomic: parallel builds of the same source agree
    return so


def invoke_range(elf: Path, prefix: str) -> tuple[int, int]:
    addr, size = symbol_sizes(elf).get(f"{prefix}_invoke", (0, 0))
    if size == 0:
        raise TinyEngineError(f"{elf}: no {prefix}_invoke symbol to count instructions in")
    addr &= ~1  # Thumb functions carry bit 0 in the symbol table, not in the PC (RISC-V: 0)
    return addr, addr + size


class Block(NamedTuple):
    """One logged block of invoke: its address, the instructions executed before it and in it,
    and the class counts before it (cumulative) and of its own instructions."""

    pc: int
    before: int
    n: int
    classes_before: tuple[int, ...] = ()
    classes_own: tuple[int, ...] = ()


def parse_trace(text: str) -> tuple[list[Block], int]:
    """The logged blocks; and the total instructions of the run."""
    events, total = [], -1
    for line in text.splitlines():
        parts = line.split()
        if parts[0] == "total":
            total = int(parts[1])
        else:
            counts = tuple(int(p) for p in parts[3:])
            half = len(counts) // 2
            events.append(Block(int(parts[0], 16), int(parts[1]), int(parts[2]),
                                counts[:half], counts[half:]))
    if total < 0:
        raise TinyEngineError("the QEMU plugin's trace has no total: QEMU did not exit cleanly")
    return events, total


def _diff(a: tuple[int, ...], b: tuple[int, ...]) -> dict[str, int]:
    return {name: y - x for name, x, y in zip(CLASSES, a, b)}


def split_invocations(events: list[Block], entry: int, n_ops: int
                      ) -> list[tuple[int, list[int], list[dict[str, int]]]]:
    """Per invoke call: (total instructions, per-op instructions, per-op class counts) from
    the block log. A block's conditional branch is settled when the next block starts, so
    the outcome of the last one in invoke (none in practice) would not be counted."""
    starts = [i for i, e in enumerate(events) if e.pc == entry]
    result = []
    for k, s in enumerate(starts):
        ev = events[s:starts[k + 1] if k + 1 < len(starts) else len(events)]
        begin, end = ev[0].before, ev[-1].before + ev[-1].n
        # A gap between two blocks of invoke is a kernel call; its end is the next block.
        ends = [j + 1 for j in range(len(ev) - 1) if ev[j + 1].before > ev[j].before + ev[j].n]
        if len(ends) != n_ops:
            raise TinyEngineError(f"the instruction trace shows {len(ends)} kernel calls "
                                  f"in one invoke; the model has {n_ops} ops")
        bounds = [begin, *[ev[j].before for j in ends[:-1]], end]
        last = ev[-1]
        end_classes = tuple(a + b for a, b in zip(last.classes_before, last.classes_own))
        class_bounds = [ev[0].classes_before, *[ev[j].classes_before for j in ends[:-1]],
                        end_classes]
        result.append((end - begin, [b - a for a, b in zip(bounds, bounds[1:])],
                       [_diff(a, b) for a, b in zip(class_bounds, class_bounds[1:])]))
    return result


def bench_inputs(report: dict[str, Any], seed: int = 0) -> list[np.ndarray]:
    """Seeded random inputs from the project's input specs: the full int8 range, or for float
    inputs the range their quantisation can represent."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in report["inputs"]:
        dtype = np.dtype(DTYPES[spec["dtype"]])
        if dtype.kind == "f":
            scale, zp = spec.get("scale"), spec.get("zero_point")
            lo, hi = ((-128 - zp) * scale, (127 - zp) * scale) if scale else (-1.0, 1.0)
            out.append(rng.uniform(lo, hi, spec["shape"]).astype(dtype))
        else:
            info = np.iinfo(dtype)  # type: ignore[type-var]
            out.append(rng.integers(info.min, info.max + 1, spec["shape"]).astype(dtype))
    return out


def bench_boards(target: str | Board) -> tuple[Board, Board | None]:
    """The QEMU board to run on, and the board preset the cycles are for: a preset that QEMU
    does not model (stm32f746) runs on the QEMU board of its core (mps2-an500)."""
    board = resolve_board(target)
    if board.qemu_machine is not None:
        return board, board if board.clock_hz else None
    core_board = TARGETS.get(board.core)
    if board.clock_hz and core_board is not None:
        return BOARDS[core_board], board
    return emulated_board(board), None  # an error naming the board to use


def bench(project_dir: str | Path, target: str | Board, simd: bool = True,
          inputs: list[np.ndarray] | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> BenchResult:
    """Count the instructions of one inference of the project on an emulated board, and
    estimate its cycles (and milliseconds, for a board preset with a clock)."""
    project = Path(project_dir).resolve()
    report = load_project_report(project)
    board, preset = bench_boards(target)
    find_qemu(board.cpu.arch)
    elf = build_firmware(project, board, simd=simd)
    lo, hi = invoke_range(elf, report["prefix"])
    plugin = plugin_path()
    isa = "thumb" if board.cpu.arch == "arm" else "riscv"
    with tempfile.TemporaryDirectory(prefix="tinyengine-bench-") as tmp:
        trace = Path(tmp) / "trace.txt"
        arg = f"{plugin},lo={lo:#x},hi={hi:#x},out={trace},isa={isa}"
        run_firmware(elf, board, report, [inputs or bench_inputs(report)], timeout_s,
                     ["-plugin", arg], label=str(project))
        events, program = parse_trace(trace.read_text())
    ops = report["ops"]
    (total, per_op, per_op_classes), = split_invocations(events, lo, len(ops))
    modelled = isa == "thumb" and board.core in CORE_TIMINGS

    def cycles(classes: dict[str, int]) -> int | None:
        return round(board_cycles(classes, board.core, preset)) if modelled else None

    counts = [OpCount(o["name"], o["kernel"], n, o["macs"], c if modelled else {}, cycles(c))
              for o, n, c in zip(ops, per_op, per_op_classes)]
    classes = {k: sum(op.classes.get(k, 0) for op in counts) for k in CLASSES}
    return BenchResult(board.name, board.core, simd, total, counts, report["macs"], program,
                       classes if modelled else None,
                       sum(op.cycles or 0 for op in counts) if modelled else None,
                       preset.name if preset else None, preset.clock_hz if preset else None,
                       preset.flash_wait_states if preset else 0)


def record_bench(project_dir: str | Path, result: BenchResult) -> None:
    """Put the per-op and total cycles (and milliseconds) in report.json under "bench", keyed
    by the board (preset) and kernel choice; rewritten atomically."""
    project = Path(project_dir).resolve()
    path = project / "report.json"
    report = json.loads(path.read_text())
    key = result.preset or result.board
    key = key if result.simd else f"{key}-portable"
    entry = {k: v for k, v in result.to_json().items() if k not in ("per_op", "classes")}
    entry["per_op"] = [{"name": o.name, "kernel": o.kernel, "instructions": o.instructions,
                        "cycles": o.cycles, "macs": o.macs} for o in result.per_op]
    report["bench"] = {**report.get("bench", {}), key: entry}
    fd, tmp = tempfile.mkstemp(prefix=".report.", dir=project)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_bench(result: BenchResult, top: int | None = None) -> str:
    """The per-op table and a total line; `top` keeps only the most expensive ops."""
    rows = list(enumerate(result.per_op))
    if top is not None:
        rows = sorted(rows, key=lambda r: -r[1].instructions)[:top]
        rows.sort()
    name_w = max([len("op"), *(len(op.name) for _, op in rows)])
    kern_w = max([len("kernel"), *(len(op.kernel) for _, op in rows)])
    has_cycles = result.total_cycles is not None
    ms_col = has_cycles and result.ms is not None
    lines = [f"{'#':>4}  {'op':<{name_w}}  {'kernel':<{kern_w}}  {'instructions':>13}  "
             + (f"{'cycles':>13}  " if has_cycles else "") + (f"{'ms':>8}  " if ms_col else "")
             + f"{'MACs':>11}  {'instr/MAC':>9}  {'share':>6}"]
    for i, op in rows:
        per_mac = f"{op.instructions / op.macs:.2f}" if op.macs else "-"
        if has_cycles:  # the share of the time, where there is a cycle model
            share = 100.0 * (op.cycles or 0) / max(1, result.total_cycles or 0)
        else:
            share = 100.0 * op.instructions / result.total_instructions
        cyc = f"{op.cycles:>13,}  " if has_cycles else ""
        ms = f"{1000.0 * (op.cycles or 0) / (result.clock_hz or 1):>8.3f}  " if ms_col else ""
        lines.append(f"{i:>4}  {op.name:<{name_w}}  {op.kernel:<{kern_w}}  "
                     f"{op.instructions:>13,}  {cyc}{ms}{op.macs:>11,}  {per_mac:>9}  "
                     f"{share:>5.1f}%")
    core = CORES.get(result.core)
    if not result.simd:
        kernels = "portable kernels"
    elif core is not None and not core.has_dsp:
        kernels = "portable kernels: the core has no DSP extension"
    else:
        kernels = "SIMD kernels where the core has them"
    time = ""
    if result.total_cycles is not None:
        time = f", {result.total_cycles:,} cycles"
        if result.ms is not None and result.clock_hz:
            time += (f" = {result.ms:.3f} ms at {result.clock_hz / 1e6:g} MHz with "
                     f"{result.flash_wait_states} flash wait states on {result.preset}")
        time += " (estimated: see cycles.py for what it leaves out)"
    lines.append(f"total: {result.total_instructions:,} instructions per inference, "
                 f"{result.macs:,} MACs, {result.instructions_per_mac:.2f} instructions per MAC"
                 f"{time} ({result.core} on {result.board}, {kernels})")
    return "\n".join(lines)
