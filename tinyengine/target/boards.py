"""Cortex-M cores and boards: compiler flags and the memory regions a firmware is linked into.

A *core* says how to compile (the -mcpu/-mfpu flags); a *board* says where the firmware goes: one
flash region for the vector table, code, weights and the parameter structs, one RAM region for
the arena, the other static data, the heap and the stack. The linker script is written from these
numbers, so a model that does not fit fails to link, and `check_fits` says so earlier.

The STM32 boards are for sizing and linking only (QEMU does not model them); the three Arm MPS
boards are the machines qemu-system-arm 7.2 emulates, with the regions as QEMU maps them
(checked with the monitor's `info mtree -f`):

- mps2-an386 (Cortex-M4) and mps2-an500 (Cortex-M7): ZBT SSRAM1, 4 MiB at 0x00000000, holds the
  code as the FPGA images do; ZBT SSRAM2/3, 4 MiB at 0x20000000, is the data RAM. (PSRAM, 16 MiB,
  sits at 0x21000000 on the AN386 and 0x60000000 on the AN500; we leave it unused.)
- mps3-an547 (Cortex-M55, SSE-300): ITCM 512 KiB and DTCM 512 KiB, used through their Secure
  aliases 0x10000000 and 0x30000000 because the core boots Secure and the IDAU makes the
  0x0xxxxxxx/0x2xxxxxxx aliases Non-secure (a Secure fetch from there faults).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import TinyEngineError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Core:
    """How to compile for one Cortex-M core with arm-none-eabi-gcc."""

    name: str
    cflags: tuple[str, ...]
    has_dsp: bool  # __ARM_FEATURE_DSP: the SIMD kernels of issue 7 item 4 apply


# The kernels use float only in QUANTIZE/DEQUANTIZE, and only single precision, so the
# single-precision FPU of every core below is enough; hard-float keeps those ops in FPU
# registers. Each flag set selects one of the toolchain's newlib multilibs
# (arm-none-eabi-gcc -print-multi-lib): v7e-m+fp/hard for the M4 and M7, v8-m.main+dp/hard for
# the M55 (MVE is on with -mcpu=cortex-m55 and needs the same CPACR enable as the FPU).
CORES: dict[str, Core] = {
    "cortex-m4": Core("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                    "-mfpu=fpv4-sp-d16"), True),
    "cortex-m7": Core("cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                    "-mfpu=fpv5-sp-d16"), True),
    "cortex-m55": Core("cortex-m55", ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), True),
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
    description: str = ""
    stack_bytes: int = 2 * KIB
    heap_bytes: int = 3 * KIB

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
          description="STM32F746 (e.g. 32F746G-DISCO): 1 MB flash, 320 KB SRAM"),
    Board("stm32f412", "cortex-m4", Region("flash", 0x08000000, 1 * MIB),
          Region("SRAM", 0x20000000, 256 * KIB),
          description="STM32F412 (e.g. NUCLEO-F412ZG): 1 MB flash, 256 KB SRAM"),
    # The H743's 1 MB of SRAM is in five blocks; the largest contiguous one (AXI SRAM) is what a
    # single arena can use.
    Board("stm32h743", "cortex-m7", Region("flash", 0x08000000, 2 * MIB),
          Region("AXI SRAM", 0x24000000, 512 * KIB),
          description="STM32H743 (e.g. NUCLEO-H743ZI): 2 MB flash, 512 KB AXI SRAM"),
    Board("mps2-an386", "cortex-m4", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an386",
          description="Arm MPS2+ AN386 (QEMU): Cortex-M4, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    Board("mps2-an500", "cortex-m7", Region("ZBT SSRAM1", 0x00000000, 4 * MIB),
          Region("ZBT SSRAM2/3", 0x20000000, 4 * MIB), qemu_machine="mps2-an500",
          description="Arm MPS2+ AN500 (QEMU): Cortex-M7, 4 MiB code SSRAM, 4 MiB data SSRAM"),
    Board("mps3-an547", "cortex-m55", Region("ITCM", 0x10000000, 512 * KIB),
          Region("DTCM", 0x30000000, 512 * KIB), qemu_machine="mps3-an547",
          description="Arm MPS3 AN547 (QEMU): Cortex-M55, 512 KiB ITCM, 512 KiB DTCM"),
]}

# `--target CORE`: the QEMU board each core runs on. "host" is the cffi build, not a firmware.
TARGETS: dict[str, str | None] = {"cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500",
                                  "cortex-m55": "mps3-an547", "host": None}


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
