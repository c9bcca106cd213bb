"""Build a generated project's example program under AddressSanitizer and UBSan with its own
Makefile, run it on input records, and compare every output byte with the reference."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tinyengine.ir import Graph
from tinyengine.reference import ReferenceSession

SAN = "-fsanitize=address,undefined -fno-sanitize-recover=all"


def check_sanitized_demo(project: Path, prefix: str, graph: Graph,
                         cases: list[list[np.ndarray]]) -> None:
    """`cases`: one list of input arrays per inference, run as one stream (the demo inits once,
    so a stateful model carries its state from record to record, as the reference session
    here). Fails on a sanitizer report, a non-zero exit or any output byte that differs from
    the reference."""
    subprocess.run(["make", "-s", "-C", str(project),
                    f"CFLAGS=-std=c99 -O1 -g -Wall -Wextra -Werror {SAN}", f"LDFLAGS={SAN}"],
                   check=True, capture_output=True, text=True)
    data_in, data_out = project / "sanitized_in.bin", project / "sanitized_out.bin"
    data_in.write_bytes(b"".join(x.tobytes() for case in cases for x in case))
    run = subprocess.run([str(project / f"{prefix}_demo"), str(data_in), str(data_out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    session = ReferenceSession(graph)
    want = b"".join(y.tobytes() for case in cases for y in session.invoke(case))
    got = data_out.read_bytes()
    assert len(got) == len(want)
    np.testing.assert_array_equal(np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8))
