"""Run a generated project on an emulated core: build the firmware, start qemu-system-arm (or
qemu-system-riscv32) with semihosting, feed input records through a file and read the outputs
back.

QEMU's semihosting (target=native) opens files relative to its working directory, so every run
gets a fresh temporary directory holding input.bin; the firmware writes output.bin there and
prints its stack and heap high-water marks on stdout. QEMU exits with the firmware's status.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TinyEngineError
from ..ir import DTYPES
from ..runtime.host import load_project_report
from .boards import ARCHES, Board, emulated_board
from .build import build_firmware, record_firmware_size, size_report

DEFAULT_TIMEOUT_S = 300.0


def find_qemu(arch: str = "arm") -> str:
    """The QEMU system emulator of an instruction set (boards.ARCHES)."""
    a = ARCHES[arch]
    path = shutil.which(a.qemu)
    if path is None:
        raise TinyEngineError(f"{a.qemu} not found; install QEMU: apt-get install "
                              f"--no-install-recommends {a.qemu_package}")
    return path


def qemu_command(board: Board, elf: Path, extra: Sequence[str] = ()) -> list[str]:
    assert board.qemu_machine is not None
    return [find_qemu(board.cpu.arch), "-M", board.qemu_machine, *board.qemu_args,
            "-nographic", "-monitor", "none", "-semihosting-config", "enable=on,target=native",
            *extra, "-kernel", str(elf)]


@dataclass
class TargetRun:
    """What one QEMU run gave: outputs per input record, and what the firmware measured."""

    outputs: list[list[np.ndarray]]
    board: str
    stack_used: int
    heap_used: int
    console: str = ""


def pack_records(report: dict[str, Any], records: Sequence[Sequence[np.ndarray]]) -> bytes:
    """Input records in the firmware's file format: each input's bytes, in order."""
    specs = report["inputs"]
    chunks = []
    for k, record in enumerate(records):
        if len(record) != len(specs):
            raise TinyEngineError(f"record {k}: the model takes {len(specs)} inputs, "
                                  f"got {len(record)}")
        for i, (x, spec) in enumerate(zip(record, specs)):
            x = np.ascontiguousarray(x, dtype=DTYPES[spec["dtype"]])
            if x.size != spec["size"]:
                raise TinyEngineError(f"record {k}, input {i}: expected shape {spec['shape']}, "
                                      f"got {x.shape}")
            chunks.append(x.astype(x.dtype.newbyteorder("<")).tobytes())  # little endian
    return b"".join(chunks)


def unpack_records(report: dict[str, Any], data: bytes, n: int) -> list[list[np.ndarray]]:
    specs = report["outputs"]
    per_record = sum(s["bytes"] for s in specs)
    if len(data) != per_record * n:
        raise TinyEngineError(f"the firmware wrote {len(data)} bytes of output; expected "
                              f"{n} records of {per_record}")
    out, pos = [], 0
    for _ in range(n):
        record = []
        for s in specs:
            dtype = np.dtype(DTYPES[s["dtype"]]).newbyteorder("<")
            chunk = np.frombuffer(data[pos:pos + s["bytes"]], dtype)
            record.append(chunk.astype(chunk.dtype.newbyteorder("=")).reshape(s["shape"]))
            pos += s["bytes"]
        out.append(record)
    return out


def run_firmware(elf: Path, board: Board, report: dict[str, Any],
                 records: Sequence[Sequence[np.ndarray]], timeout_s: float = DEFAULT_TIMEOUT_S,
                 qemu_args: Sequence[str] = (), label: str | None = None) -> TargetRun:
    """Run a built firmware on `records` in QEMU; `label` names it in errors."""
    what = f"{label or elf.name} on {board.name}"
    with tempfile.TemporaryDirectory(prefix="tinyengine-qemu-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(pack_records(report, records))
        cmd = qemu_command(board, elf, qemu_args)
        try:
            proc = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TinyEngineError(f"{what}: QEMU did not finish within {timeout_s:g} s (a hang, "
                                  "or pass a longer timeout)") from None
        console = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise TinyEngineError(_failure(what, report, proc.returncode, console))
        # newlib (Arm) writes stdout to QEMU's stdout; picolibc (RISC-V) writes it to the
        # semihosting console, which QEMU prints on stderr.
        marks = dict(line.split(": ", 1) for line in console.splitlines()
                     if line.startswith("tinyengine-"))
        ran = marks.get("tinyengine-records", "no")
        if ran != str(len(records)):
            raise TinyEngineError(f"{what}: the firmware ran {ran} records of {len(records)}:\n"
                                  f"{console[-2000:]}")
        outputs = unpack_records(report, (work / "output.bin").read_bytes(), len(records))
    stack_used = int(marks["tinyengine-stack-used"])
    if stack_used >= board.stack_bytes - 64:  # the paint is gone: the stack may have overflowed
        raise TinyEngineError(f"{what}: the stack used all of its {board.stack_bytes} B reserve; "
                              "the outputs cannot be trusted (give the board a larger "
                              "stack_bytes)")
    return TargetRun(outputs, board.name, stack_used, int(marks["tinyengine-heap-used"]),
                     console)


def _failure(what: str, report: dict[str, Any], code: int, console: str) -> str:
    lines = [ln for ln in console.splitlines() if ln.startswith("firmware: ")]
    op_line = next((ln for ln in lines if "invoke failed at op" in ln), None)
    if op_line is not None:
        index = int(op_line.rsplit(" ", 1)[1])
        op = report["ops"][index] if 0 <= index < len(report["ops"]) else {}
        status = next((ln.rsplit(" ", 1)[1] for ln in lines if "kernel status" in ln), "?")
        return (f"{what}: op {index} {op.get('name', '?')} "
                f"({op.get('kernel', '?')}) returned status {status}")
    detail = "; ".join(ln[len("firmware: "):] for ln in lines) or console.strip()[-2000:]
    return f"{what}: QEMU exited with status {code}: {detail}"


def run_records(project_dir: str | Path, records: Sequence[Sequence[np.ndarray]],
                target: str | Board, simd: bool = True,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> TargetRun:
    """Build (cached) and run many inferences in one QEMU start; one record = one input list.
    The stack and heap high-water marks go to report.json with the firmware's size."""
    project = Path(project_dir).resolve()
    board = emulated_board(target)
    report = load_project_report(project)
    find_qemu(board.cpu.arch)  # before a build it could not run
    elf = build_firmware(project, board, simd=simd)
    run = run_firmware(elf, board, report, records, timeout_s, label=str(project))
    record_firmware_size(project, board, simd, size_report(elf, report["prefix"]),
                         {"stack_used_bytes": run.stack_used, "heap_used_bytes": run.heap_used})
    return run


def run_on_target(project_dir: str | Path, inputs: list[np.ndarray], target: str | Board,
                  simd: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[np.ndarray]:
    """One inference on the emulated target: the counterpart of HostModel.invoke, bit for bit."""
    return run_records(project_dir, [inputs], target, simd, timeout_s).outputs[0]
