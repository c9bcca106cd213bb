"""Firmware flash and RAM estimated without a toolchain (target/code_size.py) against the linker.

For every shared model the suite claims, the digits pipeline's project and a few random graphs
(every op kind, so every kernel and argument count the generator emits for them), on cortex-m4
at -O2 and -Os, the bare firmware is linked (report.json "firmware_totals", from the map file and
arm-none-eabi-size) and estimated from tinyengine/target/code_sizes.json. Every part of flash
and RAM must be equal, the stack's call path too, and each total within ALIGN bytes.

The linking tests need arm-none-eabi-gcc with newlib (skipped with the reason where it is
missing, a failure under CI=true); the table tests need nothing.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.target import build_firmware, resolve_board
from tinyengine.target.build import firmware_key
from tinyengine.target.code_size import (
    TABLE,
    estimate_firmware,
    estimate_phrase,
    load_table,
    source_hash,
)

from .conftest import MODEL_FILES, MODELS, require

OPTS = ("O2", "Os")
CORES = ("cortex-m4", "cortex-m7")  # the cores code_sizes.json measures
ALIGN = 8  # the largest section alignment in play: one section's padding
RANDOM_SEEDS = (7, 11, 13)  # random graphs besides the shared models (tests/random_graphs.py)


def test_table_is_measured_from_these_kernels():
    table = load_table()
    assert table["source_hash"] == source_hash(), (
        "csrc/ changed since the code-size table was measured: re-run "
        "`.venv/bin/python benchmarks/code_sizes.py --write` and commit "
        f"{TABLE.relative_to(TABLE.parents[2])}")


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    out = tmp_path_factory.mktemp("estimate") / "hello"
    compile_graph(load_tflite(MODELS / "tflm_hello_world_int8.tflite"), out, prefix="hello")
    return out


@pytest.mark.parametrize("opt", OPTS)
def test_estimate_is_deterministic_and_its_parts_add_up(hello, opt):
    a = estimate_firmware(hello, "cortex-m4", opt)
    b = estimate_firmware(hello, "cortex-m4", opt)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    f, r = a["flash_parts"], a["ram_parts"]
    assert sum(f.values()) == a["flash"] and sum(r.values()) == a["ram"]
    assert 0 <= f["alignment"] < 64 and 0 <= r["alignment"] < 16
    report = json.loads((hello / "report.json").read_text())
    assert f["weights"] == report["flash_bytes"]  # the code generator's own count
    assert report["arena_bytes"] <= r["arena"] < report["arena_bytes"] + 8
    assert a["stack_path"][0]["function"] == "Reset_Handler"
    assert r["stack"] >= sum(p["frame"] for p in a["stack_path"])


def test_unknown_entry_is_refused(hello):
    from tinyengine.errors import TinyEngineError

    with pytest.raises(TinyEngineError, match="no entry cortex-m0plus-O3"):
        estimate_firmware(hello, "cortex-m0plus", "O3")


@pytest.fixture(scope="session")
def linked_and_estimated(tmp_path_factory):
    """(name and core, opt, estimate, linked) for every shared model, the digits project and a
    few random graphs: one link per model, core and level, all in one fixture."""
    require(shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc is not installed (apt-get install --no-install-recommends "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    root = tmp_path_factory.mktemp("code_size")
    projects = []
    for name in MODEL_FILES:
        out = root / name.removesuffix(".tflite")
        compile_graph(load_tflite(MODELS / name), out, prefix="m")
        projects.append((name, out))
    from .random_graphs import ALL_KINDS, random_graph
    from .test_firmware_totals import _digits_project

    projects.append(("digits", _digits_project(root / "digits")))
    for seed in RANDOM_SEEDS:
        out = root / f"random{seed}"
        compile_graph(random_graph(np.random.default_rng(seed), ALL_KINDS), out, prefix="m")
        projects.append((f"random graph {seed}", out))
    rows = []
    for core in CORES:
        board = resolve_board(core)
        for name, project in projects:
            for opt in OPTS:
                build_firmware(project, board, opt=opt, runtime="bare")
                report = json.loads((project / "report.json").read_text())
                linked = report["firmware_totals"][firmware_key(board, True, opt, "bare")]
                rows.append((f"{name} {core}", opt, estimate_firmware(project, core, opt),
                             linked))
    return rows


def test_estimate_equals_linked(linked_and_estimated):
    bad = []
    for name, opt, est, linked in linked_and_estimated:
        for parts in ("flash_parts", "ram_parts"):
            for part, value in linked[parts].items():
                if est[parts].get(part) != value:
                    bad.append((name, opt, part, est[parts].get(part), value))
        for total in ("flash", "ram"):
            if abs(est[total] - linked[total]) > ALIGN:
                bad.append((name, opt, total, est[total], linked[total]))
        # The deepest path is the linker's, function by function and frame by frame.
        if est["stack_path"] != linked["stack_path"]:
            bad.append((name, opt, "stack path", est["stack_path"], linked["stack_path"]))
    assert not bad, bad


def test_every_compile_reports_the_estimate(hello, tmp_path):
    """report.json "firmware_estimate" is estimate_firmware's figure for both levels, and a
    model the table cannot price says why instead of failing the compile."""
    report = json.loads((hello / "report.json").read_text())
    for opt in OPTS:
        want = estimate_firmware(hello, "cortex-m4", opt)
        assert report["firmware_estimate"][f"cortex-m4-{opt}"] == {
            k: want[k] for k in ("flash", "ram", "flash_parts", "ram_parts")}
    assert estimate_phrase(report).startswith(
        f", firmware est. {report['firmware_estimate']['cortex-m4-O2']['flash']:,} B flash")
    streamed = compile_graph(load_tflite(MODELS / "tflm_person_detect.tflite"),
                             tmp_path / "streamed", prefix="m", stream_input=True, patch="auto")
    for opt in OPTS:
        assert "streamed inputs" in streamed["firmware_estimate"][f"cortex-m4-{opt}"][
            "unavailable"]
    assert estimate_phrase(streamed) == ""
