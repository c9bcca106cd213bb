"""Firmware flash and RAM estimated without a toolchain (target/code_size.py) against the linker.

For every shared model the suite claims and the digits pipeline's project, on cortex-m4 at -O2
and -Os, the bare firmware is linked (report.json "firmware_totals", from the map file and
arm-none-eabi-size) and estimated from tinyengine/target/code_sizes.json. Everything except the
model's own code (init and invoke) and the frame of invoke must agree within the alignment of
one section; those two are a fit per call site (see code_size.py) and are held to the error the
fit was measured at (benchmarks/RESULTS.md, "Firmware size estimate").

The linking tests need arm-none-eabi-gcc with newlib (skipped with the reason where it is
missing, a failure under CI=true); the table tests need nothing.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.target import build_firmware, resolve_board
from tinyengine.target.build import firmware_key
from tinyengine.target.code_size import TABLE, estimate_firmware, load_table, source_hash

from .conftest import MODEL_FILES, MODELS, require

OPTS = ("O2", "Os")
ALIGN = 8  # the largest section alignment in play: one section's padding
# Measured error of the model-code fit on these models (benchmarks/code_sizes.py): at most 5%
# of the model's code, or 64 B on a small one; the invoke frame within 32 B.
MODEL_CODE_REL, MODEL_CODE_ABS, FRAME_ABS = 0.05, 64, 32


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
    """(name, opt, estimate, linked) for every shared model and the digits project: one link
    per model and level, all in one fixture."""
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
    from .test_firmware_totals import _digits_project

    projects.append(("digits", _digits_project(root / "digits")))
    board = resolve_board("cortex-m4")
    rows = []
    for name, project in projects:
        for opt in OPTS:
            build_firmware(project, board, opt=opt, runtime="bare")
            report = json.loads((project / "report.json").read_text())
            linked = report["firmware_totals"][firmware_key(board, True, opt, "bare")]
            rows.append((name, opt, estimate_firmware(project, "cortex-m4", opt), linked))
    return rows


def test_estimate_equals_linked_except_the_model_code(linked_and_estimated):
    bad = []
    for name, opt, est, linked in linked_and_estimated:
        ef, lf = est["flash_parts"], linked["flash_parts"]
        for part in ("weights", "params", "kernel_code", "runtime", "library"):
            if ef[part] != lf[part]:
                bad.append((name, opt, part, ef[part], lf[part]))
        rest_est = est["flash"] - ef["model_code"]
        rest_linked = linked["flash"] - lf["model_code"]
        if abs(rest_est - rest_linked) > ALIGN:
            bad.append((name, opt, "flash besides model code", rest_est, rest_linked))
        er, lr = est["ram_parts"], linked["ram_parts"]
        for part in ("arena", "state", "static_data", "heap"):
            if er[part] != lr[part]:
                bad.append((name, opt, part, er[part], lr[part]))
        if abs((est["ram"] - er["stack"]) - (linked["ram"] - lr["stack"])) > ALIGN:
            bad.append((name, opt, "ram besides stack", est["ram"], linked["ram"]))
        # The deepest path is the linker's: the same functions, only invoke's frame fitted.
        if [p["function"] for p in est["stack_path"]] != \
                [p["function"] for p in linked["stack_path"]]:
            bad.append((name, opt, "stack path", est["stack_path"], linked["stack_path"]))
    assert not bad, bad


def test_model_code_and_stack_within_the_fits_error(linked_and_estimated):
    bad = []
    for name, opt, est, linked in linked_and_estimated:
        e, g = est["flash_parts"]["model_code"], linked["flash_parts"]["model_code"]
        if abs(e - g) > max(MODEL_CODE_ABS, MODEL_CODE_REL * g):
            bad.append((name, opt, "model code", e, g))
        if abs(est["ram_parts"]["stack"] - linked["ram_parts"]["stack"]) > FRAME_ABS:
            bad.append((name, opt, "stack", est["ram_parts"]["stack"],
                        linked["ram_parts"]["stack"]))
    assert not bad, bad
