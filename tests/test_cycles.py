"""The cycle model (issue 16, point 3): the plugin's instruction classes, the cycle arithmetic per
core, and `bench` with cycles and milliseconds for a board preset.

The classifier is checked on instructions assembled by arm-none-eabi-as, each with the class the
ARMv7-M Architecture Reference Manual gives it (written here by hand, not taken from the code);
the cycle arithmetic on counts whose cycles are worked out from the TRM tables in the comments.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.target import BOARDS, bench, format_bench
from tinyengine.target.cycles import (
    CLASSES,
    PRIMARY,
    board_cycles,
    core_cycles,
    flash_stall_per_access,
)
from tinyengine.target.icount import PLUGIN_DIR, record_bench

from .conftest import MODELS, require

# (instruction, class, words moved, writes the PC, literal load, IT length)
THUMB_CASES = [
    ("adds r0, r1, r2", "alu", 0, 0, 0, 0),
    ("mov pc, lr", "alu", 0, 1, 0, 0),
    ("cmp r8, r9", "alu", 0, 0, 0, 0),
    ("ldr r0, [r1, #4]", "load", 0, 0, 0, 0),
    ("ldr r0, [pc, #8]", "load", 0, 0, 1, 0),
    ("ldr.w r0, [pc, #256]", "load", 0, 0, 1, 0),
    ("ldr.w r3, [r1], #4", "load", 0, 0, 0, 0),
    ("ldrsh.w r0, [r1, #2]", "load", 0, 0, 0, 0),
    ("ldr.w pc, [r0, #4]", "load", 0, 1, 0, 0),
    ("strb r0, [r1, r2]", "store", 0, 0, 0, 0),
    ("str.w r0, [r1, #-4]", "store", 0, 0, 0, 0),
    ("push {r4, r5, r6, r7, lr}", "load_store_multiple", 5, 0, 0, 0),
    ("pop {r4, pc}", "load_store_multiple", 2, 1, 0, 0),
    ("ldmia.w r0!, {r1, r2, r3, r4, r8}", "load_store_multiple", 5, 0, 0, 0),
    ("stmia r0!, {r1, r2}", "load_store_multiple", 2, 0, 0, 0),
    ("ldrd r0, r1, [r2, #8]", "load_store_multiple", 2, 0, 0, 0),
    ("muls r0, r1, r0", "mul", 0, 0, 0, 0),
    ("mul r0, r1, r2", "mul", 0, 0, 0, 0),
    ("mla r0, r1, r2, r3", "mla", 0, 0, 0, 0),
    ("mls r0, r1, r2, r3", "mla", 0, 0, 0, 0),
    ("smull r0, r1, r2, r3", "long_mul", 0, 0, 0, 0),
    ("umlal r0, r1, r2, r3", "long_mul", 0, 0, 0, 0),
    ("smlad r0, r1, r2, r3", "dsp_mac", 0, 0, 0, 0),
    ("smlabb r0, r1, r2, r3", "dsp_mac", 0, 0, 0, 0),
    ("smmul r0, r1, r2", "dsp_mac", 0, 0, 0, 0),
    ("sxtab16 r0, r1, r2", "simd", 0, 0, 0, 0),
    ("sxtb16 r0, r1", "simd", 0, 0, 0, 0),
    ("sadd16 r0, r1, r2", "simd", 0, 0, 0, 0),
    ("uqsub8 r0, r1, r2", "simd", 0, 0, 0, 0),
    ("qadd r0, r1, r2", "simd", 0, 0, 0, 0),
    ("sel r0, r1, r2", "simd", 0, 0, 0, 0),
    ("usada8 r0, r1, r2, r3", "simd", 0, 0, 0, 0),
    ("rbit r0, r1", "alu", 0, 0, 0, 0),
    ("clz r0, r1", "alu", 0, 0, 0, 0),
    ("lsl.w r0, r1, r2", "alu", 0, 0, 0, 0),
    ("uxtb r0, r1", "alu", 0, 0, 0, 0),
    ("ssat r0, #8, r1", "alu", 0, 0, 0, 0),
    ("sdiv r0, r1, r2", "div", 0, 0, 0, 0),
    ("udiv r0, r1, r2", "div", 0, 0, 0, 0),
    ("b.n end", "branch", 0, 0, 0, 0),
    ("b.w end", "branch", 0, 0, 0, 0),
    ("bl end", "branch", 0, 0, 0, 0),
    ("bx lr", "branch", 0, 0, 0, 0),
    ("tbb [r0, r1]", "branch", 0, 0, 0, 0),
    ("beq.n end", "cond_branch", 0, 0, 0, 0),
    ("bne.w end", "cond_branch", 0, 0, 0, 0),
    ("cbz r0, end", "cond_branch", 0, 0, 0, 0),
    ("dmb", "alu", 0, 0, 0, 0),
    ("nop", "alu", 0, 0, 0, 0),
    ("vadd.f32 s0, s1, s2", "fp", 0, 0, 0, 0),
    ("vmov r0, s0", "fp", 0, 0, 0, 0),
    ("vldr s0, [r0, #4]", "load", 0, 0, 0, 0),
    ("vpush {s16, s17, s18, s19}", "load_store_multiple", 4, 0, 0, 0),
    ("itte ne", "alu", 0, 0, 0, 3),
    ("addne r0, r1", "alu", 0, 0, 0, 0),
    ("subne r0, #1", "alu", 0, 0, 0, 0),
    ("moveq r0, #1", "alu", 0, 0, 0, 0),
]

DRIVER = r"""
#include <stdio.h>
#include "thumb_classes.h"
int main(void)
{
    unsigned hw1, hw2;
    int n;
    while ((n = scanf("%x %x", &hw1, &hw2)) == 2) {
        struct thumb_insn c = hw2 == 0x10000u ? classify_16(hw1) : classify_32(hw1, hw2);
        printf("%d %d %d %d %d\n", c.cls, c.words, c.pc_write, c.literal, c.it_length);
    }
    return 0;
}
"""


def _toolchain() -> None:
    require(shutil.which("arm-none-eabi-as") is not None
            and shutil.which("arm-none-eabi-objdump") is not None,
            "arm-none-eabi binutils are not installed (apt-get install binutils-arm-none-eabi)")
    require(shutil.which("cc") is not None, "a host C compiler (cc) is needed")


def _encodings(lines: list[str], tmp_path, march: str) -> list[tuple[int, int]]:
    """Assemble the instructions; (hw1, hw2 or 0x10000 for a 16-bit one) each, in order."""
    src = tmp_path / "insns.s"
    src.write_text(".syntax unified\n.thumb\n.p2align 2\n" + "".join(f"{x}\n" for x in lines)
                   + "end:\n nop\n")
    obj = tmp_path / "insns.o"
    subprocess.run(["arm-none-eabi-as", f"-march={march}", "-o", str(obj), str(src)],
                   check=True, capture_output=True)
    dump = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], check=True,
                          capture_output=True, text=True).stdout
    out = []
    for line in dump.splitlines():
        m = re.match(r"\s+[0-9a-f]+:\s+([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s", line)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16) if m.group(2) else 0x10000))
    return out[:len(lines)]


def _classify(encodings: list[tuple[int, int]], tmp_path) -> list[tuple[int, ...]]:
    exe = tmp_path / "classify"
    (tmp_path / "driver.c").write_text(DRIVER)
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{PLUGIN_DIR}", "-o",
                    str(exe), str(tmp_path / "driver.c")], check=True, capture_output=True)
    text = "".join(f"{a:x} {b:x}\n" for a, b in encodings)
    result = subprocess.run([str(exe)], input=text, check=True, capture_output=True, text=True)
    return [tuple(int(v) for v in line.split()) for line in result.stdout.splitlines()]


def test_class_names_follow_the_plugin_enum():
    header = (PLUGIN_DIR / "thumb_classes.h").read_text()
    body = header[header.index("enum insn_class {"):header.index("K_COUNT")]
    names = re.findall(r"^\s+(K_[A-Z0-9_]+)", body, re.M)
    assert [n[2:].lower() for n in names if n != "K_PRIMARY"] == [
        "lsm" if c == "load_store_multiple" else c for c in CLASSES]
    assert names.index("K_PRIMARY") == len(PRIMARY)


def test_thumb_classes_match_the_architecture_manual(tmp_path):
    _toolchain()
    lines = [c[0] for c in THUMB_CASES]
    got = _classify(_encodings(lines, tmp_path, "armv7e-m+fp"), tmp_path)
    want = [(CLASSES.index(cls), words, pc, lit, it) for _, cls, words, pc, lit, it in THUMB_CASES]
    wrong = [(line, CLASSES[g[0]], CLASSES[w[0]], g, w)
             for line, g, w in zip(lines, got, want) if g != w]
    assert not wrong


def test_mve_instructions_are_vector_and_armv6m_code_is_classified(tmp_path):
    _toolchain()
    mve = ["vadd.i8 q0, q1, q2", "vldrb.u8 q0, [r0]", "vmladava.s8 r0, q0, q1"]
    try:
        enc = _encodings(mve, tmp_path, "armv8.1-m.main+mve")
    except subprocess.CalledProcessError:
        enc = []
    require(bool(enc), "this arm-none-eabi-as does not know MVE (binutils 2.34 or newer does)")
    assert [CLASSES[c[0]] for c in _classify(enc, tmp_path)] == ["vector"] * 3
    v6m = ["ldr r0, [r1, #4]", "muls r0, r1, r0", "bne.n end", "pop {r4, pc}"]
    got = _classify(_encodings(v6m, tmp_path, "armv6s-m"), tmp_path)
    assert [CLASSES[c[0]] for c in got] == ["load", "mul", "cond_branch",
                                           "load_store_multiple"]


def test_cycle_arithmetic_follows_the_trm_tables():
    counts = {"alu": 10, "load": 5, "ls_pipelined": 3, "load_store_multiple": 1, "lsm_words": 4,
              "mla": 2, "long_mul": 1, "branch": 2, "cond_branch": 3, "cond_taken": 1,
              "pc_write": 1}
    # Cortex-M4 Table 3-1: ALU 1; LDR 2, three of them pipelined with the one before (-1 each);
    # LDM 1+N; MLA 1; SMULL 1; B 1+P (P=2); B<cond> 1, +P when taken; POP {pc} refill P.
    assert core_cycles(counts, "cortex-m4") == 10 + (10 - 3) + 5 + 2 + 1 + 6 + (3 + 2) + 2
    # Cortex-M3: MLA 2 and long multiplies 5 (of 3 to 7).
    assert core_cycles(counts, "cortex-m3") == 10 + (10 - 3) + 5 + 4 + 5 + 6 + (3 + 2) + 2
    # Cortex-M0+: no load pipelining, refill 1, POP {pc} 3+N = (1+N) + 2.
    m0p = core_cycles({"load": 4, "ls_pipelined": 3, "branch": 1, "load_store_multiple": 1,
                       "lsm_words": 2, "pc_write": 1}, "cortex-m0plus")
    assert m0p == 8 + 2 + (1 + 2 + 2)
    # Cortex-M7 (assumed single issue, two words a cycle for LDM), M55 (MVE two beats a cycle).
    assert core_cycles({"load_store_multiple": 2, "lsm_words": 8}, "cortex-m7") == 2 + 4
    assert core_cycles({"vector": 5, "alu": 1}, "cortex-m55") == 11


def test_flash_wait_states_per_board():
    assert flash_stall_per_access(BOARDS["stm32f746"]) == 7
    assert flash_stall_per_access(BOARDS["stm32f412"]) == 3
    # The H743's flash runs at half the core clock: (4 + 1) flash cycles = 10 core cycles.
    assert flash_stall_per_access(BOARDS["stm32h743"]) == 9
    assert flash_stall_per_access(BOARDS["mps2-an500"]) == 0
    counts = {"alu": 100, "lines16": 20, "lines32": 11, "literal": 2}
    assert board_cycles(counts, "cortex-m7", BOARDS["stm32f746"]) == 100 + 7 * (11 + 2)
    assert board_cycles(counts, "cortex-m4", BOARDS["stm32f412"]) == 100 + 3 * (20 + 2)
    assert board_cycles(counts, "cortex-m4", None) == 100


@pytest.fixture(scope="module")
def kws_project(tmp_path_factory):
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    out = tmp_path_factory.mktemp("cycles") / "kws"
    compile_graph(load_tflite(MODELS / "tiny_kws_ref_model.tflite"), out, prefix="m")
    return out


def _require_qemu() -> None:
    _toolchain()
    require(shutil.which("arm-none-eabi-gcc") is not None
            and shutil.which("qemu-system-arm") is not None,
            "arm-none-eabi-gcc and qemu-system-arm are needed (apt-get install "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


def test_bench_on_a_board_preset_gives_cycles_and_milliseconds(kws_project, capsys):
    _require_qemu()
    preset = bench(kws_project, "stm32f746")
    plain = bench(kws_project, "cortex-m7")  # the same core and QEMU board, no wait states
    assert (preset.board, preset.core, preset.preset) == ("mps2-an500", "cortex-m7", "stm32f746")
    assert plain.preset is None and plain.ms is None
    assert preset.total_instructions == plain.total_instructions
    for op in preset.per_op:  # every instruction has exactly one primary class
        assert sum(op.classes[k] for k in PRIMARY) == op.instructions
        assert op.cycles is not None and op.cycles >= op.instructions > 0
    assert sum(op.cycles or 0 for op in preset.per_op) == preset.total_cycles
    c = preset.classes or {}
    assert c["dsp_mac"] > 0 and c["simd"] > 0 and c["cond_taken"] <= c["cond_branch"]
    # The preset adds 7 wait states per 32-byte line fetched and per literal load, per op.
    for a, b in zip(preset.per_op, plain.per_op):
        stall = 7 * (a.classes["lines32"] + a.classes["literal"])
        assert abs((a.cycles or 0) - (b.cycles or 0) - stall) <= 1  # rounding per op
    assert preset.ms == pytest.approx(1000 * (preset.total_cycles or 0) / 216e6)
    text = format_bench(preset)
    assert f"{preset.total_cycles:,} cycles = {preset.ms:.3f} ms at 216 MHz" in text
    record_bench(kws_project, preset)
    entry = json.loads((kws_project / "report.json").read_text())["bench"]["stm32f746"]
    assert entry["total_cycles"] == preset.total_cycles and entry["clock_hz"] == 216_000_000
    assert [o["cycles"] for o in entry["per_op"]] == [o.cycles for o in preset.per_op]


def test_portable_kernels_on_the_m0plus_have_no_dsp_instructions(kws_project):
    _require_qemu()
    r = bench(kws_project, "cortex-m0plus")
    c = r.classes or {}
    assert c["dsp_mac"] == c["simd"] == c["div"] == c["long_mul"] == c["fp"] == 0
    assert c["mul"] > 0 and r.total_cycles is not None and r.ms is None
