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
"""

from __future__ import annotations

import hashlib
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
from .boards import CORES, Board, emulated_board
from .build import build_firmware, symbol_sizes
from .qemu import DEFAULT_TIMEOUT_S, find_qemu, run_firmware

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_SOURCES = ("insn_count.c", "qemu_plugin_api.h")


class OpCount(NamedTuple):
    name: str
    kernel: str
    instructions: int
    macs: int


@dataclass(frozen=True)
class BenchResult:
    """Instruction counts of one inference on an emulated board."""

    board: str
    core: str
    simd: bool
    total_instructions: int  # one inference: invoke and every kernel it calls
    per_op: list[OpCount]
    macs: int
    program_instructions: int  # the whole run: startup, semihosting file I/O, the inference

    @property
    def instructions_per_mac(self) -> float:
        return self.total_instructions / self.macs if self.macs else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"board": self.board, "core": self.core, "simd": self.simd,
                "total_instructions": self.total_instructions, "macs": self.macs,
                "instructions_per_mac": self.instructions_per_mac,
                "program_instructions": self.program_instructions,
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


def parse_trace(text: str) -> tuple[list[tuple[int, int, int]], int]:
    """(pc, executed before this block, instructions in it) per logged block; and the total."""
    events, total = [], -1
    for line in text.splitlines():
        parts = line.split()
        if parts[0] == "total":
            total = int(parts[1])
        else:
            events.append((int(parts[0], 16), int(parts[1]), int(parts[2])))
    if total < 0:
        raise TinyEngineError("the QEMU plugin's trace has no total: QEMU did not exit cleanly")
    return events, total


def split_invocations(events: list[tuple[int, int, int]], entry: int, n_ops: int
                      ) -> list[tuple[int, list[int]]]:
    """Per invoke call: (total instructions, per-op instructions) from the block log."""
    starts = [i for i, e in enumerate(events) if e[0] == entry]
    result = []
    for k, s in enumerate(starts):
        ev = events[s:starts[k + 1] if k + 1 < len(starts) else len(events)]
        begin, end = ev[0][1], ev[-1][1] + ev[-1][2]
        # A gap between two blocks of invoke is a kernel call; its end is the next block.
        call_ends = [ev[j + 1][1] for j in range(len(ev) - 1)
                     if ev[j + 1][1] > ev[j][1] + ev[j][2]]
        if len(call_ends) != n_ops:
            raise TinyEngineError(f"the instruction trace shows {len(call_ends)} kernel calls "
                                  f"in one invoke; the model has {n_ops} ops")
        bounds = [begin, *call_ends[:-1], end]
        result.append((end - begin, [b - a for a, b in zip(bounds, bounds[1:])]))
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


def bench(project_dir: str | Path, target: str | Board, simd: bool = True,
          inputs: list[np.ndarray] | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> BenchResult:
    """Count the instructions of one inference of the project on an emulated board."""
    project = Path(project_dir).resolve()
    report = load_project_report(project)
    board = emulated_board(target)
    find_qemu(board.cpu.arch)
    elf = build_firmware(project, board, simd=simd)
    lo, hi = invoke_range(elf, report["prefix"])
    plugin = plugin_path()
    with tempfile.TemporaryDirectory(prefix="tinyengine-bench-") as tmp:
        trace = Path(tmp) / "trace.txt"
        arg = f"{plugin},lo={lo:#x},hi={hi:#x},out={trace}"
        run_firmware(elf, board, report, [inputs or bench_inputs(report)], timeout_s,
                     ["-plugin", arg], label=str(project))
        events, program = parse_trace(trace.read_text())
    ops = report["ops"]
    (total, per_op), = split_invocations(events, lo, len(ops))
    return BenchResult(board.name, board.core, simd, total,
                       [OpCount(o["name"], o["kernel"], n, o["macs"]) for o, n in zip(ops, per_op)],
                       report["macs"], program)


def format_bench(result: BenchResult, top: int | None = None) -> str:
    """The per-op table and a total line; `top` keeps only the most expensive ops."""
    rows = list(enumerate(result.per_op))
    if top is not None:
        rows = sorted(rows, key=lambda r: -r[1].instructions)[:top]
        rows.sort()
    name_w = max([len("op"), *(len(op.name) for _, op in rows)])
    kern_w = max([len("kernel"), *(len(op.kernel) for _, op in rows)])
    lines = [f"{'#':>4}  {'op':<{name_w}}  {'kernel':<{kern_w}}  {'instructions':>13}  "
             f"{'MACs':>11}  {'instr/MAC':>9}  {'share':>6}"]
    for i, op in rows:
        per_mac = f"{op.instructions / op.macs:.2f}" if op.macs else "-"
        share = 100.0 * op.instructions / result.total_instructions
        lines.append(f"{i:>4}  {op.name:<{name_w}}  {op.kernel:<{kern_w}}  "
                     f"{op.instructions:>13,}  {op.macs:>11,}  {per_mac:>9}  {share:>5.1f}%")
    core = CORES.get(result.core)
    if not result.simd:
        kernels = "portable kernels"
    elif core is not None and not core.has_dsp:
        kernels = "portable kernels: the core has no DSP extension"
    else:
        kernels = "SIMD kernels where the core has them"
    lines.append(f"total: {result.total_instructions:,} instructions per inference, "
                 f"{result.macs:,} MACs, {result.instructions_per_mac:.2f} instructions per MAC "
                 f"({result.core} on {result.board}, {kernels})")
    return "\n".join(lines)
