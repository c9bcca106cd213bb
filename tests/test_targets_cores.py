"""The cores added beside the M4/M7/M55: Cortex-M0+ and M3 (no FPU, no DSP: soft-float and the
portable kernels), Cortex-M33 (DSP and FPU, booting Secure on the AN505) and Cortex-M0 on the
micro:bit. Every shared model runs under QEMU with the host's outputs bit for bit; the flags pick
a real newlib multilib and claim DSP only where the compiler has it; the micro:bit's M0 really
refuses ARMv7-M code, so passing there means the build is ARMv6-M; instruction counts work.

Needs arm-none-eabi-gcc (with newlib) and qemu-system-arm: skipped with the reason where they
are missing, a failure under CI=true.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError
from tinyengine.inputs import random_inputs
from tinyengine.runtime import HostModel
from tinyengine.target import CORES, TARGETS, bench, resolve_board, run_on_target, run_records
from tinyengine.target.boards import KIB, MIB

from .conftest import MODEL_FILES, compiled_models, require
from .test_targets import _assert_same, _require_qemu, _require_toolchain

NEW_CORES = ["cortex-m0plus", "cortex-m3", "cortex-m33"]
# The shared models whose arena, stack and heap fit the micro:bit's 16 KiB of SRAM (the others
# are refused by check_fits, which tests/test_targets.py covers).
MICROBIT_MODELS = ["tiny_kws_ref_model.tflite", "tflm_micro_speech_quantized.tflite",
                   "tflm_hello_world_int8.tflite", "tflm_keyword_scrambled.tflite",
                   "tflm_seanet_conv0.tflite", "tflm_seanet_transpose_conv0.tflite"]


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Each shared model compiled once for the module: name -> (graph, project directory)."""
    return compiled_models(tmp_path_factory, "cores")


def _compare(name: str, target, projects, n_records: int = 2) -> None:
    graph, project = projects(name)
    rng = np.random.default_rng(7)
    records = [random_inputs(graph, rng) for _ in range(n_records)]
    host = HostModel(project)
    run = run_records(project, records, target)
    _assert_same([host.invoke(r) for r in records], run.outputs)
    board = resolve_board(target)
    assert 0 < run.stack_used < board.stack_bytes
    assert 0 < run.heap_used <= board.heap_bytes


# --- presets (no toolchain needed) ------------------------------------------------------------

def test_new_core_presets():
    expected = {"cortex-m0": ("microbit", "microbit", False),
                "cortex-m0plus": ("mps2-an385-m0plus", "mps2-an385", False),
                "cortex-m3": ("mps2-an385", "mps2-an385", False),
                "cortex-m33": ("mps2-an505", "mps2-an505", True)}
    for core, (board_name, machine, dsp) in expected.items():
        board = resolve_board(core)
        assert (TARGETS[core], board.name, board.core, board.qemu_machine) == \
            (board_name, board_name, core, machine)
        assert board.cpu.has_dsp is dsp
        assert f"-mcpu={core}" in board.cpu.cflags and "-mthumb" in board.cpu.cflags
        # No FPU on the M0, M0+ and M3: soft-float; the M33's single-precision FPU: hard-float.
        assert ("-mfloat-abi=hard" if core == "cortex-m33" else "-mfloat-abi=soft") \
            in board.cpu.cflags
    # The M33 boots Secure: its code and data sit in the Secure aliases (address bit 28 set),
    # the code where the AN505 reads its secure vector table at reset.
    an505 = resolve_board("cortex-m33")
    assert (an505.flash.origin, an505.ram.origin) == (0x10000000, 0x38000000)
    assert an505.flash.length == an505.ram.length == 4 * MIB
    microbit = resolve_board("cortex-m0")
    assert (microbit.flash.origin, microbit.flash.length) == (0, 256 * KIB)
    assert (microbit.ram.origin, microbit.ram.length) == (0x20000000, 16 * KIB)


def test_core_flags_pick_a_multilib_and_dsp_is_what_the_compiler_says():
    """Every core's flags select one of the toolchain's newlib multilibs (not the default "."
    one, which is ARMv4T code), and has_dsp matches __ARM_FEATURE_DSP, on which the kernels
    choose their SIMD paths."""
    _require_toolchain()
    multilib = {"cortex-m0": "thumb/v6-m/nofp", "cortex-m0plus": "thumb/v6-m/nofp",
                "cortex-m3": "thumb/v7-m/nofp", "cortex-m4": "thumb/v7e-m+fp/hard",
                "cortex-m7": "thumb/v7e-m+fp/hard", "cortex-m33": "thumb/v8-m.main+fp/hard",
                "cortex-m55": "thumb/v8-m.main+dp/hard"}
    arm = {name: core for name, core in CORES.items() if core.arch == "arm"}
    assert set(multilib) == set(arm)
    for name, core in arm.items():
        gcc = ["arm-none-eabi-gcc", *core.cflags]
        got = subprocess.run([*gcc, "-print-multi-directory"], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert got == multilib[name], name
        macros = subprocess.run([*gcc, "-dM", "-E", "-"], input="", capture_output=True,
                                text=True, check=True).stdout
        assert ("#define __ARM_FEATURE_DSP 1" in macros) is core.has_dsp, name


# --- QEMU runs --------------------------------------------------------------------------------

@pytest.mark.parametrize("core", NEW_CORES)
@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_on_new_core_equals_host(name, core, projects):
    _require_qemu()
    _compare(name, core, projects)


@pytest.mark.parametrize("name", MICROBIT_MODELS)
def test_model_on_cortex_m0_microbit_equals_host(name, projects):
    _require_qemu()
    _compare(name, "cortex-m0", projects)


def test_microbit_m0_refuses_armv7m_code(projects):
    """The same firmware built for the M3 (Thumb-2) faults on QEMU's Cortex-M0: a micro:bit
    run that passes shows the ARMv6-M build holds no instruction the M0 and M0+ lack."""
    _require_qemu()
    graph, project = projects("tflm_hello_world_int8.tflite")
    x = random_inputs(graph, np.random.default_rng(0))
    v7m = dataclasses.replace(resolve_board("microbit"), core="cortex-m3", name="microbit-v7m")
    with pytest.raises(TinyEngineError, match="HardFault"):
        run_on_target(project, x, v7m)
    _assert_same([HostModel(project).invoke(x)], [run_on_target(project, x, "cortex-m0")])


def test_new_cores_portable_build_equals_host(projects):
    """--portable on the M33 (which otherwise takes the SIMD paths)."""
    _require_qemu()
    graph, project = projects("tiny_kws_ref_model.tflite")
    x = random_inputs(graph, np.random.default_rng(3))
    want = HostModel(project).invoke(x)
    _assert_same([want], [run_on_target(project, x, "cortex-m33", simd=False)])


# --- instruction counts -----------------------------------------------------------------------

def test_instruction_counts_on_new_cores(projects):
    """The counter works on every new core; the M33 takes the SIMD kernels (far fewer
    instructions than its portable build), the M0+ and M3 have none to take (the two builds are
    the same program)."""
    _require_qemu()
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None,
            "a host C compiler is needed for the QEMU plugin")
    _, project = projects("tflm_micro_speech_quantized.tflite")
    for core in NEW_CORES:
        simd, portable = bench(project, core), bench(project, core, simd=False)
        assert simd.core == core and simd.board == TARGETS[core]
        assert sum(o.instructions for o in simd.per_op) == simd.total_instructions
        assert all(o.instructions > 0 for o in simd.per_op)
        if CORES[core].has_dsp:
            assert 2 * simd.total_instructions < portable.total_instructions
        else:
            assert simd.total_instructions == portable.total_instructions
