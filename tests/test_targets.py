"""Cortex-M targets: every shared model (and the digits CNN, float in and out) builds for the
Cortex-M4 and M7 and runs under QEMU with the host's outputs bit for bit; a model too large for
its board is refused in plain words and by the linker; the firmware's true size lands in
report.json; the instruction counter is exact, per op, and repeatable.

Needs arm-none-eabi-gcc (with newlib) and qemu-system-arm: skipped with the reason where they
are missing, a failure under CI=true.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError
from tinyengine.inputs import random_inputs
from tinyengine.runtime import HostModel
from tinyengine.target import (
    BOARDS,
    TARGETS,
    bench,
    build_firmware,
    check_fits,
    estimate_fit,
    format_bench,
    resolve_board,
    run_on_target,
    run_records,
    target_files,
)
from tinyengine.target.boards import KIB, MIB, emulated_board
from tinyengine.target.build import RUNTIME_FLASH_FLOOR, model_sources

from .conftest import MODEL_FILES, compiled_models, require


def _require_toolchain() -> None:
    require(shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc is not installed (apt-get install --no-install-recommends "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)")


def _require_qemu() -> None:
    _require_toolchain()
    require(shutil.which("qemu-system-arm") is not None,
            "qemu-system-arm is not installed (apt-get install --no-install-recommends "
            "qemu-system-arm)")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Each shared model compiled once for the module: name -> (graph, project directory)."""
    return compiled_models(tmp_path_factory, "targets")


def _assert_same(host_outputs, target_outputs) -> None:
    assert len(host_outputs) == len(target_outputs)
    for want, got in zip(host_outputs, target_outputs):
        assert len(want) == len(got)
        for w, g in zip(want, got):
            assert w.dtype == g.dtype and w.shape == g.shape
            np.testing.assert_array_equal(g, w)


# --- boards (no toolchain needed) -------------------------------------------------------------

def test_board_presets_and_targets():
    assert {k: (b.flash.length, b.ram.length, b.core) for k, b in BOARDS.items()
            if k.startswith("stm32")} == {
        "stm32f746": (1 * MIB, 320 * KIB, "cortex-m7"),
        "stm32f412": (1 * MIB, 256 * KIB, "cortex-m4"),
        "stm32h743": (2 * MIB, 512 * KIB, "cortex-m7")}
    for core in ("cortex-m4", "cortex-m7", "cortex-m55"):
        board = resolve_board(core)
        assert board.core == core and board.qemu_machine == TARGETS[core]
        assert f"-mcpu={core}" in board.cpu.cflags and "-mthumb" in board.cpu.cflags
    with pytest.raises(TinyEngineError, match="not a firmware"):
        resolve_board("host")
    with pytest.raises(TinyEngineError, match="unknown target or board 'cortex-a53'"):
        resolve_board("cortex-a53")
    with pytest.raises(TinyEngineError, match="QEMU does not model it; run with --target "
                                              "cortex-m7"):
        emulated_board("stm32f746")


def test_too_large_model_is_refused_in_plain_words(projects):
    graph, project = projects("tflm_person_detect.tflite")
    report = json.loads((project / "report.json").read_text())
    tiny = resolve_board("stm32f412").with_memory(ram_bytes=8 * KIB, name="tiny8k")
    need = estimate_fit(report, tiny).ram_needed
    assert need > report["arena_bytes"]
    with pytest.raises(TinyEngineError) as e:
        check_fits(report, tiny)
    assert str(e.value).startswith(f"model needs {need} B of SRAM, board tiny8k has 8192 B: "
                                   f"over by {need - 8192} B")
    small_flash = resolve_board("stm32f412").with_memory(flash_bytes=128 * KIB, name="f128")
    need = report["flash_bytes"] + RUNTIME_FLASH_FLOOR
    with pytest.raises(TinyEngineError, match=f"model needs {need} B of flash, board f128 has "
                                              f"131072 B: over by {need - 131072} B"):
        check_fits(report, small_flash)
    with pytest.raises(TinyEngineError, match="of SRAM, board tiny8k"):
        build_firmware(project, tiny)  # the check comes before any compiler is looked for
    for name in ("stm32f746", "stm32f412", "stm32h743"):
        check_fits(report, name)


# --- builds and QEMU runs -------------------------------------------------------------------

@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m7"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_on_qemu_equals_host(name, core, projects):
    _require_qemu()
    graph, project = projects(name)
    rng = np.random.default_rng(7)
    records = [random_inputs(graph, rng) for _ in range(2)]
    host = HostModel(project)
    run = run_records(project, records, core)
    _assert_same([host.invoke(r) for r in records], run.outputs)
    assert 0 < run.stack_used < resolve_board(core).stack_bytes
    assert 0 < run.heap_used <= resolve_board(core).heap_bytes


def test_digits_cnn_float_io_on_qemu(tmp_path):
    """The digits CNN from the float pipeline: float32 in (QUANTIZE) and out (DEQUANTIZE), the
    only float arithmetic of the kernels, on every Cortex-M core: the FPUs of the M4, M7, M33
    and M55, and libgcc's soft-float on the M0, M0+ and M3 (RISC-V: test_targets_riscv.py)."""
    _require_qemu()
    torch = pytest.importorskip("torch")
    from digits_cnn import digits_split, small_cnn

    from tinyengine.convert import compile_torch

    x_train, _, x_test, _ = digits_split(0)
    torch.manual_seed(0)
    model = small_cnn().eval()  # untrained: equality with the host does not need accuracy
    report = compile_torch(model, torch.from_numpy(x_test[:1]), [x_train[:64]], tmp_path / "d",
                           prefix="digits")
    assert report["inputs"][0]["dtype"] == "float32"
    host = HostModel(tmp_path / "d")
    records = [[x_test[i].reshape(report["inputs"][0]["shape"])] for i in range(3)]
    want = [host.invoke(r) for r in records]
    for core in (t for t, board in TARGETS.items() if board and BOARDS[board].cpu.arch == "arm"):
        _assert_same(want, run_records(tmp_path / "d", records, core).outputs)


def test_cortex_m55_and_portable_kernels(projects):
    _require_qemu()
    graph, project = projects("tiny_kws_ref_model.tflite")
    x = random_inputs(graph, np.random.default_rng(3))
    want = HostModel(project).invoke(x)
    _assert_same([want], [run_on_target(project, x, "cortex-m55")])
    _assert_same([want], [run_on_target(project, x, "cortex-m4", simd=False)])


def test_true_size_in_report_json(projects):
    _require_toolchain()
    graph, project = projects("tflm_person_detect.tflite")
    for name in ("stm32f746", "stm32f412", "stm32h743"):  # it fits all three: it links
        build_firmware(project, name)
    report = json.loads((project / "report.json").read_text())
    for name in ("stm32f746", "stm32f412", "stm32h743"):
        entry = report["firmware"][name]
        s = entry["sizes"]
        assert s["flash"] == s["text"] + s["data"] and s["ram"] == s["data"] + s["bss"]
        assert s["weights"] == report["flash_bytes"]  # every weight array, once
        assert s["arena"] == (report["arena_bytes"] + 3) // 4 * 4 + 4
        assert s["ram"] > s["arena"] + entry["stack_reserve_bytes"] + entry["heap_reserve_bytes"]
        assert 0 < entry["runtime_static_ram_bytes"] < 2 * KIB
        assert s["flash"] <= BOARDS[name].flash.length and s["ram"] <= BOARDS[name].ram.length


def test_linker_refuses_what_the_estimate_lets_through(projects):
    """The estimate is a lower bound; at exactly its figure the real firmware is a few bytes
    larger, and the linker's own message says by how much."""
    _require_toolchain()
    _, project = projects("tiny_kws_ref_model.tflite")
    report = json.loads((project / "report.json").read_text())
    base = resolve_board("cortex-m4")
    tight = base.with_memory(ram_bytes=estimate_fit(report, base).ram_needed, name="tight")
    check_fits(report, tight)
    with pytest.raises(TinyEngineError, match=r"does not fit tight \(RAM = ZBT SSRAM2/3, \d+ B;"
                                              r".* the linker says: .*region `RAM' overflowed "
                                              r"by \d+ bytes"):
        build_firmware(project, tight)


def test_build_is_cached(projects):
    _require_toolchain()
    _, project = projects("tflm_hello_world_int8.tflite")
    elf = build_firmware(project, "cortex-m4")
    stamp = elf.stat().st_mtime_ns
    assert build_firmware(project, "cortex-m4") == elf and elf.stat().st_mtime_ns == stamp
    assert build_firmware(project, "cortex-m4", simd=False) != elf


def test_project_makefile_and_cmake_build_the_firmware(projects, tmp_path):
    """The files compile_graph(target=...) adds: `make -f firmware.mk` and CMake with the
    toolchain file build the same firmware, which runs in QEMU."""
    _require_qemu()
    graph, compiled = projects("tiny_kws_ref_model.tflite")
    project = tmp_path / "p"
    shutil.copytree(compiled, project, ignore=shutil.ignore_patterns(".target", ".host"))
    report = json.loads((project / "report.json").read_text())
    kernels = [s.removeprefix("kernels/") for s in model_sources(report, project)[2:]]
    for name, data in target_files(report, "cortex-m4", kernels).items():
        (project / name).write_bytes(data)
    x = random_inputs(graph, np.random.default_rng(1))
    (project / "input.bin").write_bytes(b"".join(a.tobytes() for a in x))
    want = HostModel(compiled).invoke(x)[0].tobytes()

    make = shutil.which("make")
    require(make is not None, "make is needed")
    subprocess.run([make, "-s", "-f", "firmware.mk", "-j2"], cwd=project, check=True,
                   capture_output=True)
    subprocess.run([make, "-s", "-f", "firmware.mk", "run"], cwd=project, check=True,
                   capture_output=True, timeout=60)
    assert (project / "output.bin").read_bytes() == want

    cmake = shutil.which("cmake")
    require(cmake is not None, "cmake is needed")
    wrapper = tmp_path / "cm"
    wrapper.mkdir()
    (wrapper / "CMakeLists.txt").write_text(
        f"cmake_minimum_required(VERSION 3.13)\nproject(fw C)\nset(CMAKE_C_STANDARD 99)\n"
        f"include({project}/firmware.cmake)\n")
    subprocess.run([cmake, "-S", str(wrapper), "-B", str(wrapper / "b"),
                    f"-DCMAKE_TOOLCHAIN_FILE={project}/arm-none-eabi.cmake",
                    "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(wrapper / "b")], check=True, capture_output=True)
    (project / "output.bin").unlink()
    subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                    "-semihosting-config", "enable=on,target=native", "-kernel",
                    str(wrapper / "b" / "m_firmware.elf")], cwd=project, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert (project / "output.bin").read_bytes() == want


# --- errors -----------------------------------------------------------------------------------

def test_missing_tools_and_timeouts_are_clear(projects, monkeypatch):
    _require_qemu()
    graph, project = projects("tflm_hello_world_int8.tflite")
    x = random_inputs(graph, np.random.default_rng(0))
    with pytest.raises(TinyEngineError, match="took longer than|did not finish within"):
        run_on_target(project, x, "cortex-m4", timeout_s=0.001)
    with pytest.raises(TinyEngineError, match="not a compiled tinyengine project"):
        run_on_target(project / "kernels", x, "cortex-m4")
    with pytest.raises(TinyEngineError, match="not a firmware build directory"):
        build_firmware(project, "cortex-m4", build_dir=project)  # never wipes a project
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TinyEngineError, match="arm-none-eabi-gcc.* not found; install"):
        build_firmware(project, "cortex-m7", build_dir=project / "never")


def test_stack_overflow_is_detected(projects):
    """A stack reserve smaller than the firmware's need: the painted stack is gone, and the run
    is refused rather than trusted."""
    _require_qemu()
    graph, project = projects("tflm_hello_world_int8.tflite")
    small = dataclasses.replace(resolve_board("cortex-m4"), name="small-stack", stack_bytes=128)
    with pytest.raises(TinyEngineError, match="stack|QEMU exited"):
        run_on_target(project, random_inputs(graph, np.random.default_rng(0)), small)


# --- instruction counts -----------------------------------------------------------------------

def test_instruction_counts_are_exact_per_op_and_repeatable(projects):
    _require_qemu()
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None,
            "a host C compiler is needed for the QEMU plugin")
    graph, project = projects("tiny_kws_ref_model.tflite")
    report = json.loads((project / "report.json").read_text())
    first = bench(project, "cortex-m4")
    assert bench(project, "cortex-m4") == first  # deterministic, to the instruction
    assert [(o.name, o.kernel, o.macs) for o in first.per_op] == \
        [(o["name"], o["kernel"], o["macs"]) for o in report["ops"]]
    assert sum(o.instructions for o in first.per_op) == first.total_instructions  # exactly
    assert all(o.instructions > 0 for o in first.per_op)
    assert first.total_instructions < first.program_instructions
    # Every MAC costs at least one instruction, and the portable kernels stay below 100.
    assert 1 < first.instructions_per_mac < 100
    text = format_bench(first)
    assert len(text.splitlines()) == len(report["ops"]) + 2
    assert text.splitlines()[-1].startswith(f"total: {first.total_instructions:,} instructions "
                                            f"per inference, {report['macs']:,} MACs")
