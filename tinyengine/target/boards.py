"""Cores and boards (Cortex-M, and one RISC-V): compiler flags and the memory regions a firmware
is linked into.

A *core* says how to compile (the -mcpu/-mfpu flags); a *board* says where the firmware goes: one
flash region for the vector table, code, weights and the parameter structs, one RAM region for
the arena, the other static data, the heap and the stack. The linker script is written from these
numbers, so a model that does not fit fails to link, and `check_fits` says so earlier.

The STM32 boards are for sizing and linking only (QEMU does not model them); the Arm MPS boards
and the micro:bit are machines qemu-system-arm 7.2 emulates, with the regions as QEMU maps them
(checked with the monitor's `info mtree -f`):

- mps2-an385 (Cortex-M3), mps2-an386 (Cortex-M4) and mps2-an500 (Cortex-M7): ZBT SSRAM1, 4 MiB
  at 0x00000000, holds the code as the FPGA images do; ZBT SSRAM2/3, 4 MiB at 0x20000000, is the
  data RAM. (PSRAM, 16 MiB, sits at 0x21000000 on the AN385/AN386 and 0x60000000 on the AN500;
  we leave it unused.)
- mps2-an505 (Cortex-M33, IoTKit/SSE-200) and mps3-an547 (Cortex-M55, SSE-300) boot Secure, and
  their IDAU makes an address Secure when bit 28 is set: a Secure fetch from the Non-secure
  aliases (0x0xxxxxxx, 0x2xxxxxxx) faults, so the firmware uses the Secure ones. The AN505's
  SSRAM1 (4 MiB, code) is at 0x10000000, where its secure vector table is read at reset, and its
  SSRAM2 and SSRAM3 (2 MiB each, adjacent) at 0x38000000 (their memory protection controllers
  reset to all blocks Secure). The AN547 has ITCM 512 KiB and DTCM 512 KiB at 0x10000000 and
  0x30000000.
- QEMU 7.2 models no Cortex-M0+, and its one Cortex-M0 machine, the micro:bit (nRF51822: 256 KiB
  flash at 0x00000000, 16 KiB SRAM at 0x20000000), is too small for most models. So the M0+
  build (ARMv6-M code, which every ARMv7-M core executes: ARMv6-M is a subset of it) runs on the
  AN385's Cortex-M3 with that board's memory, and the "cortex-m0" target runs the same ARMv6-M
  code on the micro:bit, where QEMU's M0 refuses any instruction outside ARMv6-M. Instruction
  counts are the program's, so they hold on the M0+ itself; its cycle timings do not come from
  the emulator.
- virt (qemu-system-riscv32) for RV32IMC: 128 MiB of DRAM at 0x80000000, where QEMU's reset code
  jumps in machine mode with -bios none; we link the code into its first 4 MiB and the data into
  the next 4 MiB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import TinyEngineError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Arch:
    """What an instruction set brings besides compiler flags: the cross toolchain (by its
    prefix), the C library's link flags, the firmware's startup code and linker script (templates
    in codegen_templates/target/), the QEMU binary, and the Debian packages that hold them."""

    name: str
    cross: str  # arm-none-eabi-gcc, -size, -nm
    ldflags: tuple[str, ...]
    startup_template: str
    linker_template: str
    qemu: str
    toolchain_packages: str
    qemu_package: str


# Arm: newlib-nano, semihosting system calls (librdimon) and our own startup instead of crt0.
# RISC-V: Debian ships picolibc (not newlib) for riscv64-unknown-elf, with semihosting system
# calls in libsemihost (--oslib=semihost); again our own startup instead of its crt0. Its
# --specs=picolibc.specs is in the core's flags: the compiler needs it too, for the headers.
ARCHES: dict[str, Arch] = {
    "arm": Arch("arm", "arm-none-eabi-", ("--specs=nano.specs", "--specs=rdimon.specs",
                                          "-nostartfiles", "-Wl,--gc-sections"),
                "firmware_startup.c.j2", "firmware.ld.j2", "qemu-system-arm",
                "gcc-arm-none-eabi libnewlib-arm-none-eabi", "qemu-system-arm"),
    "riscv32": Arch("riscv32", "riscv64-unknown-elf-", ("--oslib=semihost", "-nostartfiles",
                                                        "-Wl,--gc-sections"),
                    "firmware_startup_riscv.c.j2", "firmware_riscv.ld.j2", "qemu-system-riscv32",
                    "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf", "qemu-system-misc"),
}


@dataclass(frozen=True)
class Core:
    """How to compile for one core: Cortex-M with arm-none-eabi-gcc, RISC-V with
    riscv64-unknown-elf-gcc."""

    name: str
    cflags: tuple[str, ...]
    has_dsp: bool  # __ARM_FEATURE_DSP: the SIMD kernels of issue 7 item 4 apply
    arch: str = "arm"

    @property
    def tools(self) -> Arch:
        return ARCHES[self.arch]


# The kernels use float only in QUANTIZE/DEQUANTIZE, and only single precision, so a
# single-precision FPU is enough; hard-float keeps those ops in FPU registers. The M0, M0+ and M3
# have no FPU: soft-float, where libgcc's IEEE single-precision routines round as the host's FPU
# does, so the outputs stay bit-exact. Each flag set selects one of the toolchain's newlib
# multilibs (arm-none-eabi-gcc -print-multi-lib): v6-m/nofp for the M0 and M0+, v7-m/nofp for
# the M3, v7e-m+fp/hard for the M4 and M7, v8-m.main+fp/hard for the M33, v8-m.main+dp/hard for
# the M55 (MVE is on with -mcpu=cortex-m55 and needs the same CPACR enable as the FPU). The M0,
# M0+ and M3 lack the DSP extension, so the kernels take their portable loops there (TE_SIMD is
# 0 without __ARM_FEATURE_DSP); the M33 has it (-mcpu=cortex-m33 includes +dsp).
CORES: dict[str, Core] = {
    "cortex-m0": Core("cortex-m0", ("-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"), False),
    "cortex-m0plus": Core("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb",
                                            "-mfloat-abi=soft"), False),
    "cortex-m3": Core("cortex-m3", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), False),
    "cortex-m4": Core("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                    "-mfpu=fpv4-sp-d16"), True),
    "cortex-m7": Core("cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                    "-mfpu=fpv5-sp-d16"), True),
    "cortex-m33": Core("cortex-m33", ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard",
                                      "-mfpu=fpv5-sp-d16"), True),
    "cortex-m55": Core("cortex-m55", ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), True),
    # RV32IMC: integer multiply/divide and compressed instructions, no FPU (soft-float, ilp32);
    # the toolchain's rv32im/ilp32 multilib serves it (C only changes code size).
    "rv32imc": Core("rv32imc", ("-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"),
                    False, arch="riscv32"),
}


@dataclass(frozen=True)
class Region:
    """One linker memory region."""

    name: str  # what the hardware calls it, for messages
    origin: int
    length: int


@dataclass(frozen=True)
class Board:
    """A board the firmware is linked for. stack_bytes and heap_bytes are reserved in RAM by the
    linker script. The firmware's measured high-water marks are about 0.3 KB of stack (newlib's
    stdio dominates; no kernel frame is over 140 B) and 1.9 KB of heap (newlib's FILE
    structures for the semihosting files), so the reserves leave a wide margin."""

    name: str
    core: str
    flash: Region
    ram: Region
    qemu_machine: str | None = None
    qemu_args: tuple[str, ...] = ()  # besides -M: the CPU model, no firmware of QEMU's own
    description: str = ""
    stack_bytes: int = 2 * KIB
    heap_bytes: int = 3 * KIB
    # For milliseconds (tinyengine/target/cycles.py): the core clock, and the flash's wait
    # states at that clock as the reference manual's table gives them, the width of one flash
    # read, and the flash's own clock where it is slower than the core's (None: the same).
    clock_hz: int | None = None
    flash_wait_states: int = 0
    flash_line_bytes: int = 16
    flash_clock_hz: int | None = None

    @property
    def cpu(self) -> Core:
        return CORES[self.core]

    def with_memory(self, flash_bytes: int | None = None, ram_bytes: int | None = None,
                    name: str | None = None) -> Board:
        """The same board with other flash/RAM sizes (a smaller part of a family, a test)."""
        flash = self.flash if flash_bytes is None else dataclasses.replace(self.flash,
                                                                           length=flash_bytes)
        ram = self.ram if ram_bytes is None else dataclasses.replace(self.ram, length=ram_bytes)
        return dataclasses.replace(self, flash=flash, ram=ram, name=name or self.name)


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("stm32f746", "cortex-m7", Region("flash", 0x08000000, 1 * MIB),
          Region("SRAM (DTCM+SRAM1+SRAM2)", 0x20000000, 320 * KIB),
          description="STM32F746 (e.g. 32F746G-DISCO): 1 MB flash, 320 KB SRAM",
          # RM0385, "Number of wait states according to CPU clock (HCLK) frequency": 7 at
          # 210-216 MHz (2.7-3.6 V); the flash is read 256 bits at a time.
          clock_hz=216_000_000, flash_wait_states=7, flash_line_bytes=32),
    Board("stm32f412", "cortex-m4", Region("flash", 0x08000000, 1 * MIB),
          Region("SRAM", 0x20000000, 256 * KIB),
          description="STM32F412 (e.g. NUCLEO-F412ZG): 1 MB flash, 256 KB SRAM",
          # RM0402, "Number of wait states according to CPU clock (HCLK) frequency": 3 at
          # 90-100 MHz (2.7-3.6 V); the flash is read 128 bits at a time.
          clock_hz=100_000_000, flash_wait_states=3, flash_line_bytes=16),
    # The H743's 1 MB of SRAM is in five blocks; the largest contiguous one (AXI SRAM) is what a
    # single arena can use.
    Board("stm32h743", "cortex-m7", Region("flash", 0x08000000, 2 * MIB),
          Region("AXI SRAM", 0x24000000, 512 * KIB),
          description="STM32H743 (e.g. NUCLEO-H743ZI): 2 MB flash, 512 KB AXI SRAM",
          # RM0433, "FLASH recommended number of wait states and programming delay": 4 wait
          # states at VOS0 for the flash's 240 MHz AXI clock, half the 480 MHz core clock;
          # 256-bit flash words.
          clock_hz=480_000_000, flash_wait_states=4, flash_line_bytes=32,
          flash_clock_hz=240_000_000),
    Board("mps2-an385", "cortex-m3", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an385",
          description="Arm MPS2+ AN385 (QEMU): Cortex-M3, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    # The M0+ build on the AN385 (see the module's note): ARMv6-M code on QEMU's Cortex-M3.
    Board("mps2-an385-m0plus", "cortex-m0plus", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an385",
          description="Cortex-M0+ (ARMv6-M) firmware run on QEMU's MPS2+ AN385 (a Cortex-M3, "
                      "which executes ARMv6-M code): 4 MiB code SSRAM, 4 MiB data SSRAM"),
    Board("microbit", "cortex-m0", Region("flash", 0x00000000, 256 * KIB),
          Region("SRAM", 0x20000000, 16 * KIB), qemu_machine="microbit",
          description="BBC micro:bit (QEMU): nRF51822, Cortex-M0, 256 KiB flash, 16 KiB SRAM"),
    Board("mps2-an386", "cortex-m4", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an386",
          description="Arm MPS2+ AN386 (QEMU): Cortex-M4, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    Board("mps2-an500", "cortex-m7", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an500",
          description="Arm MPS2+ AN500 (QEMU): Cortex-M7, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    Board("mps2-an505", "cortex-m33", Region("SSRAM1 (Secure alias)", 0x10000000, 4 * MIB),
          Region("SSRAM2/3 (Secure alias)", 0x38000000, 4 * MIB), qemu_machine="mps2-an505",
          description="Arm MPS2+ AN505 (QEMU): Cortex-M33, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    # QEMU's virt board with an RV32IMC hart (the A, F and D extensions of its default CPU
    # turned off, so an instruction outside RV32IMC traps), starting in machine mode at the
    # base of its DRAM (128 MiB at 0x80000000): -bios none, no OpenSBI.
    Board("riscv32-virt", "rv32imc", Region("DRAM (code)", 0x80000000, 4 * MIB),
          Region("DRAM (data)", 0x80400000, 4 * MIB), qemu_machine="virt",
          qemu_args=("-bios", "none", "-cpu", "rv32,a=false,f=false,d=false"),
          description="QEMU virt (riscv32): RV32IMC hart in machine mode, 4 MiB of its DRAM for "
                      "code, 4 MiB for data"),
    Board("mps3-an547", "cortex-m55", Region("ITCM", 0x10000000, 512 * KIB),
          Region("DTCM", 0x30000000, 512 * KIB), qemu_machine="mps3-an547",
          description="Arm MPS3 AN547 (QEMU): Cortex-M55, 512 KiB ITCM, 512 KiB DTCM"),
]}

# `--target CORE`: the QEMU board each core runs on. "host" is the cffi build, not a firmware.
TARGETS: dict[str, str | None] = {"cortex-m0": "microbit", "cortex-m0plus": "mps2-an385-m0plus",
                                  "cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386",
                                  "cortex-m7": "mps2-an500", "cortex-m33": "mps2-an505",
                                  "cortex-m55": "mps3-an547", "rv32imc": "riscv32-virt",
                                  "host": None}


def resolve_board(target: str | Board) -> Board:
    """A Board from a board name, a core name (`--target cortex-m4`) or a Board."""
    if isinstance(target, Board):
        return target
    key = target.lower()
    if key in BOARDS:
        return BOARDS[key]
    if key in TARGETS:
        board = TARGETS[key]
        if board is None:
            raise TinyEngineError("target 'host' is the cffi build on this machine, not a "
                                  "firmware; use `tinyengine run` without --target")
        return BOARDS[board]
    raise TinyEngineError(f"unknown target or board {target!r}; choose one of "
                          f"{', '.join([*TARGETS, *BOARDS])}")


def emulated_board(target: str | Board) -> Board:
    """The board to run under QEMU: one QEMU models, or an error naming the one to use."""
    board = resolve_board(target)
    if board.qemu_machine is None:
        instead = next(k for k, v in TARGETS.items() if v and BOARDS[v].core == board.core)
        raise TinyEngineError(f"board {board.name} is for building only: QEMU does not model it; "
                              f"run with --target {instead} ({TARGETS[instead]}, the same core)")
    return board


def board_table() -> list[dict[str, object]]:
    """One row per board, for the README and `--help`."""
    return [{"board": b.name, "core": b.core, "flash": f"{b.flash.length // KIB} KiB",
             "ram": f"{b.ram.length // KIB} KiB", "qemu": b.qemu_machine or "-"}
            for b in BOARDS.values()]
