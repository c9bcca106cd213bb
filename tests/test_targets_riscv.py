"""The RISC-V target: RV32IMC on QEMU's virt board (riscv64-unknown-elf-gcc with picolibc,
semihosting). Every shared model and the digits CNN (float in and out, soft-float) run with the
host's outputs bit for bit; a trap is reported in plain words, not a hang; instruction counts
work as on the Cortex-M cores.

Needs gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-riscv32 (Debian's
qemu-system-misc): skipped with the reason where they are missing, a failure under CI=true.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError
from tinyengine.inputs import random_inputs
from tinyengine.runtime import HostModel
from tinyengine.target import (
    CORES,
    TARGETS,
    bench,
    find_qemu,
    resolve_board,
    run_on_target,
    run_records,
)
from tinyengine.target.build import find_toolchain, target_files

from .conftest import MODEL_FILES, compiled_models, require
from .test_targets import _assert_same


def _require_riscv() -> None:
    gcc = shutil.which("riscv64-unknown-elf-gcc")
    require(gcc is not None, "riscv64-unknown-elf-gcc is not installed (apt-get install "
                             "--no-install-recommends gcc-riscv64-unknown-elf)")
    specs = subprocess.run([str(gcc), "-print-file-name=picolibc.specs"], capture_output=True,
                           text=True).stdout.strip()
    require(Path(specs).is_file(), "picolibc for riscv64-unknown-elf is not installed (apt-get "
                                   "install --no-install-recommends picolibc-riscv64-unknown-elf)")
    require(shutil.which("qemu-system-riscv32") is not None,
            "qemu-system-riscv32 is not installed (apt-get install --no-install-recommends "
            "qemu-system-misc)")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Each shared model compiled once for the module: name -> (graph, project directory)."""
    return compiled_models(tmp_path_factory, "riscv")


def test_rv32imc_preset(monkeypatch):
    board = resolve_board("rv32imc")
    assert (TARGETS["rv32imc"], board.core, board.qemu_machine) == \
        ("riscv32-virt", "rv32imc", "virt")
    assert board.cpu.arch == "riscv32" and not board.cpu.has_dsp
    assert {"-march=rv32imc", "-mabi=ilp32"} <= set(board.cpu.cflags)
    # The code region starts at the base of virt's DRAM, where QEMU's reset code jumps.
    assert board.flash.origin == 0x80000000
    assert board.ram.origin >= board.flash.origin + board.flash.length
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TinyEngineError, match="riscv64-unknown-elf-gcc.* not found; install the "
                                              "riscv32 toolchain: apt-get install"):
        find_toolchain("riscv32")
    with pytest.raises(TinyEngineError, match="qemu-system-riscv32 not found; install QEMU: "
                                              "apt-get install --no-install-recommends "
                                              "qemu-system-misc"):
        find_qemu("riscv32")


def test_rv32imc_multilib():
    """-march=rv32imc -mabi=ilp32 selects the toolchain's rv32im/ilp32 libraries (the C
    extension only changes code size), not the default rv64 ones."""
    _require_riscv()
    got = subprocess.run(["riscv64-unknown-elf-gcc", *CORES["rv32imc"].cflags,
                          "-print-multi-directory"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert got == "rv32im/ilp32"


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_on_rv32imc_equals_host(name, projects):
    _require_riscv()
    graph, project = projects(name)
    rng = np.random.default_rng(7)
    records = [random_inputs(graph, rng) for _ in range(2)]
    host = HostModel(project)
    run = run_records(project, records, "rv32imc")
    _assert_same([host.invoke(r) for r in records], run.outputs)
    board = resolve_board("rv32imc")
    assert 0 < run.stack_used < board.stack_bytes
    assert 0 < run.heap_used <= board.heap_bytes


def test_digits_cnn_float_io_on_rv32imc(tmp_path):
    """QUANTIZE and DEQUANTIZE in soft-float (libgcc) on a core without an FPU."""
    _require_riscv()
    torch = pytest.importorskip("torch")
    from digits_cnn import digits_split, small_cnn

    from tinyengine.convert import compile_torch

    x_train, _, x_test, _ = digits_split(0)
    torch.manual_seed(0)
    model = small_cnn().eval()
    report = compile_torch(model, torch.from_numpy(x_test[:1]), [x_train[:64]], tmp_path / "d",
                           prefix="digits")
    assert report["inputs"][0]["dtype"] == "float32"
    host = HostModel(tmp_path / "d")
    records = [[x_test[i].reshape(report["inputs"][0]["shape"])] for i in range(3)]
    _assert_same([host.invoke(r) for r in records],
                 run_records(tmp_path / "d", records, "rv32imc").outputs)


def test_trap_is_reported_not_hung(projects):
    """The same firmware on a hart without the M extension: the first multiply traps, and the
    trap handler names the cause (2, illegal instruction) and exits."""
    _require_riscv()
    graph, project = projects("tflm_hello_world_int8.tflite")
    no_m = dataclasses.replace(resolve_board("rv32imc"), name="virt-no-m",
                               qemu_args=("-bios", "none", "-cpu",
                                          "rv32,m=false,a=false,f=false,d=false"))
    with pytest.raises(TinyEngineError, match="QEMU exited with status 3: trap, mcause "
                                              "0x00000002"):
        run_on_target(project, random_inputs(graph, np.random.default_rng(0)), no_m,
                      timeout_s=60)


def test_rv32imc_project_files(projects):
    """compile --target rv32imc gets the firmware's sources and linker script; the Makefile
    fragment and CMake files are for the Arm toolchain and are left out."""
    _, project = projects("tflm_hello_world_int8.tflite")
    report = json.loads((project / "report.json").read_text())
    files = target_files(report, "rv32imc", ["te_fc.c"])
    assert sorted(files) == ["firmware.ld", "firmware_main.c", "firmware_startup.c"]
    assert b"ORIGIN = 0x80000000" in files["firmware.ld"]
    assert b"_start" in files["firmware_startup.c"]


def test_instruction_counts_on_rv32imc(projects):
    _require_riscv()
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None,
            "a host C compiler is needed for the QEMU plugin")
    _, project = projects("tflm_micro_speech_quantized.tflite")
    first = bench(project, "rv32imc")
    assert bench(project, "rv32imc") == first  # deterministic
    assert (first.core, first.board) == ("rv32imc", "riscv32-virt")
    assert sum(o.instructions for o in first.per_op) == first.total_instructions
    assert all(o.instructions > 0 for o in first.per_op)
    assert 1 < first.instructions_per_mac < 100
    # No SIMD kernels on RV32IMC: the portable build is the same program.
    assert bench(project, "rv32imc", simd=False).total_instructions == first.total_instructions
