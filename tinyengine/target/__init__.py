"""Cortex-M (and RISC-V rv32imc) targets: board presets, firmware builds with arm-none-eabi-gcc
(riscv64-unknown-elf-gcc), runs under QEMU and instruction counts from a QEMU plugin.

    board = resolve_board("cortex-m4")                       # -> the mps2-an386 QEMU board
    elf = build_firmware("build/kws", "cortex-m4")           # true size lands in report.json
    outputs = run_on_target("build/kws", [x], "cortex-m4")   # == HostModel(...).invoke([x])
    print(format_bench(bench("build/kws", "cortex-m4")))
"""

from .boards import (
    ARCHES,
    BOARDS,
    CORES,
    TARGETS,
    Arch,
    Board,
    Core,
    Region,
    board_table,
    emulated_board,
    resolve_board,
)
from .build import (
    FitEstimate,
    build_firmware,
    check_fits,
    estimate_fit,
    find_toolchain,
    size_report,
    target_files,
)
from .icount import BenchResult, OpCount, bench, format_bench
from .qemu import TargetRun, find_qemu, run_on_target, run_records

__all__ = ["ARCHES", "Arch", "BOARDS", "CORES", "TARGETS", "Board", "Core", "Region", "board_table",
           "emulated_board", "resolve_board", "FitEstimate", "build_firmware", "check_fits",
           "estimate_fit", "find_toolchain", "size_report", "target_files", "BenchResult",
           "OpCount", "bench", "format_bench", "TargetRun", "find_qemu", "run_on_target",
           "run_records"]
