"""Build a generated project's example program under AddressSanitizer with arena poisoning
(-DTE_ARENA_POISON, see codegen_templates/model.c.j2) through its own Makefile, run it on input
records and compare every output byte with the reference. The poisoning twin of sanitized.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tinyengine.ir import Graph
from tinyengine.reference import run_reference

from .sanitized import SAN

POISON = "-DTE_ARENA_POISON"


def build_demo(project: Path, poison: bool) -> None:
    """(Re)build the demo with ASan and UBSan, with or without arena poisoning. With it, checks
    that the poisoning is really compiled in: the model object calls ASan's poisoning
    interface (a guard that silently failed would make every poisoned run pass)."""
    flags = f"-std=c99 -O1 -g -Wall -Wextra -Werror {SAN}" + (f" {POISON}" if poison else "")
    subprocess.run(["make", "-B", "-s", "-C", str(project), f"CFLAGS={flags}", f"LDFLAGS={SAN}"],
                   check=True, capture_output=True, text=True)
    model_objects = [p for p in project.glob("*_model.o")]
    assert len(model_objects) == 1, model_objects
    symbols = subprocess.run(["nm", str(model_objects[0])], check=True, capture_output=True,
                             text=True).stdout
    assert ("__asan_poison_memory_region" in symbols) == poison, symbols


def run_demo(project: Path, prefix: str, cases: list[list[np.ndarray]]
             ) -> tuple[subprocess.CompletedProcess, bytes]:
    """Run the built demo on `cases` (one list of input arrays per inference): the process and
    the output bytes it wrote."""
    data_in, data_out = project / "poisoned_in.bin", project / "poisoned_out.bin"
    data_in.write_bytes(b"".join(x.tobytes() for case in cases for x in case))
    data_out.unlink(missing_ok=True)
    run = subprocess.run([str(project / f"{prefix}_demo"), str(data_in), str(data_out)],
                         capture_output=True, text=True)
    return run, data_out.read_bytes() if data_out.is_file() else b""


def check_poisoned_demo(project: Path, prefix: str, graph: Graph,
                        cases: list[list[np.ndarray]]) -> None:
    """Fails on a sanitizer report, a non-zero exit or any output byte that differs from the
    reference, with every arena byte outside the running op's operands poisoned."""
    build_demo(project, poison=True)
    run, got = run_demo(project, prefix, cases)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    want = b"".join(y.tobytes() for case in cases for y in run_reference(graph, case))
    assert len(got) == len(want)
    np.testing.assert_array_equal(np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8))
