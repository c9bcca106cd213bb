"""Whole-firmware flash and RAM (issue 16, points 1 and 2): the bare runtime a user ships.

The linked figures come from arm-none-eabi-size; their parts from the linker's map file
(tinyengine/target/sizes.py). What is checked here against something independent:
- the parts the map gives add up to size's totals with at most a few bytes of alignment left,
  and the weights the linker placed are the bytes the code generator counted (report.json);
- the bare firmware links no stdio, semihosting or heap code;
- its stack reserve is the deepest call path, and each frame of GCC's -fstack-usage on it;
- the digits 2 KB / 8 KB network fits 24 KB of flash and 4 KB of RAM at -Os on a Cortex-M4
  and a Cortex-M0+.

Needs arm-none-eabi-gcc (with newlib): skipped with the reason where it is missing, a failure
under CI=true.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.target import build_firmware, resolve_board
from tinyengine.target.build import firmware_key

from .conftest import MODEL_FILES, MODELS, require

ROOT = Path(__file__).resolve().parents[1]
# Symbols of the semihosting harness and newlib's stdio: none may be in a shipped firmware.
HARNESS_SYMBOLS = ("fopen", "fread", "fwrite", "fputs", "initialise_monitor_handles", "_sbrk",
                   "malloc", "exit", "setvbuf")


def _require_toolchain() -> None:
    require(shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc is not installed (apt-get install --no-install-recommends "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)")


def _totals(project: Path, board: str, opt: str, simd: bool = True) -> dict:
    report = json.loads((project / "report.json").read_text())
    return report["firmware_totals"][firmware_key(resolve_board(board), simd, opt, "bare")]


def _check_parts(project: Path, elf: Path, totals: dict) -> None:
    report = json.loads((project / "report.json").read_text())
    f, r = totals["flash_parts"], totals["ram_parts"]
    assert sum(f.values()) == totals["flash"] and sum(r.values()) == totals["ram"]
    # What is left after the sections the map names is the linker's alignment padding.
    assert 0 <= f["alignment"] < 64 and 0 <= r["alignment"] < 16, (f, r)
    assert f["weights"] == report["flash_bytes"]  # the code generator's count, independently
    assert r["arena"] >= report["arena_bytes"] and r["arena"] - report["arena_bytes"] < 8
    assert f["params"] > 0 and f["kernel_code"] > 0 and f["model_code"] > 0
    assert sum(totals["kernel_code_by_file"].values()) == f["kernel_code"]
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    stack_section = next(int(line.split()[1]) for line in out.splitlines()
                         if line.startswith(".stack "))
    assert r["stack"] <= stack_section < r["stack"] + 8  # the reserve the linker script got
    assert r["stack"] >= sum(p["frame"] for p in totals["stack_path"])
    assert r["stack"] - sum(p["frame"] for p in totals["stack_path"]) < 8
    assert totals["stack_path"][0]["function"] == "Reset_Handler"
    assert r["heap"] == 0
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not set(HARNESS_SYMBOLS) & set(symbols)


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    out = tmp_path_factory.mktemp("totals") / "hello"
    compile_graph(load_tflite(MODELS / "tflm_hello_world_int8.tflite"), out, prefix="hello")
    return out


@pytest.mark.parametrize("opt", ["O2", "Os"])
def test_bare_firmware_parts_add_up(hello, opt):
    _require_toolchain()
    elf = build_firmware(hello, "cortex-m4", opt=opt, runtime="bare")
    _check_parts(hello, elf, _totals(hello, "cortex-m4", opt))


def test_os_is_smaller_than_o2_and_bare_smaller_than_the_harness(hello):
    _require_toolchain()
    build_firmware(hello, "cortex-m4", opt="O2", runtime="bare")
    build_firmware(hello, "cortex-m4", opt="Os", runtime="bare")
    harness = build_firmware(hello, "cortex-m4")
    o2, os_ = _totals(hello, "cortex-m4", "O2"), _totals(hello, "cortex-m4", "Os")
    assert os_["flash_parts"]["kernel_code"] < o2["flash_parts"]["kernel_code"]
    report = json.loads((hello / "report.json").read_text())
    full = report["firmware"]["mps2-an386"]["sizes"]
    assert harness.is_file() and o2["flash"] < full["flash"] - 8 * 1024


def test_unknown_opt_and_runtime_are_refused(hello):
    with pytest.raises(TinyEngineError, match="optimisation level 'O3'"):
        build_firmware(hello, "cortex-m4", opt="O3", runtime="bare")
    with pytest.raises(TinyEngineError, match="runtime 'newlib'"):
        build_firmware(hello, "cortex-m4", runtime="newlib")


def _digits_project(out: Path) -> Path:
    """The network the README's main job (`tinynas pipeline --sram 2KB --flash 8KB`) found,
    benchmarks/figures/pipeline-digits-results.json, with untrained weights: no figure here
    depends on the weights' values."""
    torch = pytest.importorskip("torch")
    from tinyengine.convert import compile_torch
    from tinynas.arch import Arch
    from tinynas.data import load_digits, resize_numpy
    from tinynas.subnet import SubNet

    runs = json.loads((ROOT / "benchmarks/figures/pipeline-digits-results.json").read_text())
    arch = Arch.from_dict(next(r for r in runs if r["run"] == "default")["pipeline"]["arch"])
    torch.manual_seed(0)
    x = resize_numpy(load_digits().x[:64], arch.resolution)
    compile_torch(SubNet(arch).eval(), torch.from_numpy(x[:1]), x, out, prefix="model")
    return out


@pytest.mark.parametrize("board", ["stm32f412", "cortex-m0plus"])
def test_digits_project_fits_24k_flash_4k_ram_at_os(tmp_path, board):
    """Acceptance line of issue 16 on a Cortex-M4 board and the Cortex-M0+ (portable kernels:
    the M4's SIMD ones are larger; see benchmarks/RESULTS.md for every variant)."""
    _require_toolchain()
    project = _digits_project(tmp_path / "digits")
    elf = build_firmware(project, board, opt="Os", runtime="bare", simd=False)
    totals = _totals(project, board, "Os", simd=False)
    _check_parts(project, elf, totals)
    assert totals["flash"] <= 24 * 1024 and totals["ram"] <= 4 * 1024, totals


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_FILES)
def test_every_shared_model_links_bare_at_o2_and_os(tmp_path, name):
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    _require_toolchain()
    project = tmp_path / "p"
    compile_graph(load_tflite(MODELS / name), project, prefix="m")
    for opt in ("O2", "Os"):
        elf = build_firmware(project, "cortex-m4", opt=opt, runtime="bare")
        _check_parts(project, elf, _totals(project, "cortex-m4", opt))
