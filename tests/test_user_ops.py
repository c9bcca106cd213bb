"""A user-defined op registered from a file outside the package (examples/custom_op/): a TFLite
CUSTOM operator compiles with `--ops`, its C runs bit-exact against the op's own reference, and
without the file the refusal names the op and says how to register one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "custom_op"
CLI = [sys.executable, "-m", "tinyengine.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_custom_op_compiles_and_matches_its_reference(tmp_path):
    model = tmp_path / "square.tflite"
    made = _run([sys.executable, str(EXAMPLE / "make_model.py"), str(model)], tmp_path)
    assert made.returncode == 0, made.stderr

    refused = _run([*CLI, "compile", str(model), "-o", str(tmp_path / "no")], tmp_path)
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert "\n" not in line and "CUSTOM(UserSquare) (op 1)" in line and "--ops" in line
    assert not (tmp_path / "no").exists()

    ops = str(EXAMPLE / "square_op.py")
    built = _run([*CLI, "compile", str(model), "--ops", ops, "-o", str(tmp_path / "p")], tmp_path)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "p" / "kernels" / "user_square.c").is_file()

    checked = _run([*CLI, "verify", str(model), "--ops", ops, "--no-tflm", "--random", "6"],
                   tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "bit-exact" in checked.stdout


def test_custom_op_in_process(tmp_path):
    """Python API: load_op_library, then the IR graph compiles, and C == reference; the user's
    table is recomputed here independently of the op's code."""
    from tinyengine.codegen import compile_graph
    from tinyengine.ops import REGISTRY, load_op_library
    from tinyengine.reference import run_reference
    from tinyengine.runtime import HostModel

    load_op_library(EXAMPLE / "square_op.py")
    assert "USER_SQUARE" in REGISTRY
    sys.path.insert(0, str(EXAMPLE))
    try:
        from make_model import square_model
    finally:
        sys.path.remove(str(EXAMPLE))
    graph = square_model()
    compile_graph(graph, tmp_path / "p", prefix="sq")
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.integers(-128, 128, (1, 8, 8, 4), dtype=np.int8)
        np.testing.assert_array_equal(host.invoke([x])[0], run_reference(graph, [x])[0])
    # The op's semantics, independently: square the dequantised value, requantise, clamp.
    op = next(o for o in graph.ops if o.kind == "USER_SQUARE")
    xt, yt = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    q = np.arange(-128, 128)
    real = [(xt.scale * (int(v) - xt.zero_point)) ** 2 for v in q]
    want = [max(-128, min(127, int(np.floor(r / yt.scale + yt.zero_point + 0.5)))) for r in real]
    got = REGISTRY["USER_SQUARE"].reference(graph, op, [q.astype(np.int8)])[0]
    assert got.tolist() == want


def test_bad_op_library_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad_ops.py"
    bad.write_text("raise RuntimeError('broken on purpose')\n")
    r = _run([*CLI, "compile", str(tmp_path / "m.tflite"), "--ops", str(bad), "-o",
              str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2
    assert "bad_ops.py" in r.stderr and "broken on purpose" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
