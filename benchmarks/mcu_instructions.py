"""Instructions per inference on an emulated Cortex-M, portable against SIMD kernels, and the
firmware's true flash and RAM against TFLM's arena, for the shared models.

    .venv/bin/python benchmarks/mcu_instructions.py [--patch off,auto] [--target cortex-m4]

For each model in ../shared/models and each patch mode, the generated project is built twice for
the target (tinyengine.target): with the SIMD kernels (the default; __ARM_FEATURE_DSP) and with
the portable ones (TE_NO_SIMD). Each firmware runs one inference on the same seeded random input
under QEMU with the instruction-counting plugin (tinyengine.target.bench: exact and repeatable,
per op), and its outputs are checked against the host build. Pointwise convolution is every op
whose kernel is a 1x1 convolution (te_conv2d_1x1_s8 and its in-place twin). Flash and static RAM
come from arm-none-eabi-size on the SIMD firmware (RAM includes the board's stack and heap
reserves); "arena" is the generated model's arena symbol; TFLM's head (activations) and total
(head + persistent tail) are measured with the tflite-micro package. Prints Markdown;
benchmarks/RESULTS.md records the output.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from tinyengine import tflm
from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.runtime import HostModel
from tinyengine.target import (
    BenchResult,
    bench,
    build_firmware,
    resolve_board,
    run_on_target,
    size_report,
)
from tinyengine.target.icount import bench_inputs

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"

# Kernel -> the row it is counted under in the per-kernel table.
KERNEL_GROUPS = {
    "te_conv2d_1x1_s8": "pointwise convolution",
    "te_conv2d_1x1_inplace_s8": "pointwise convolution, in place",
    "te_conv2d_s8": "convolution (generic)",
    "te_depthwise_conv_s8": "depthwise (generic)",
    "te_depthwise_conv_3x3_s8": "depthwise 3x3",
    "te_depthwise_conv_inplace_s8": "depthwise, in place",
    "te_fully_connected_s8": "fully connected",
}


def _per_mac(instructions: int, macs: int) -> str:
    return f"{instructions / macs:.2f}" if macs else "-"


def _pointwise(result: BenchResult) -> tuple[int, int]:
    ops = [op for op in result.per_op if op.kernel.startswith("te_conv2d_1x1")]
    return sum(op.instructions for op in ops), sum(op.macs for op in ops)


def _measure(graph, project: Path, patch: str, target: str) -> tuple[BenchResult, BenchResult]:
    """(portable, SIMD) counts of one inference; both firmwares' outputs checked against the
    host build on the same input."""
    report = compile_graph(graph, project, prefix="m", patch=patch)
    inputs = bench_inputs(report, seed=0)
    want = HostModel(project).invoke(inputs)
    results = []
    for simd in (False, True):
        results.append(bench(project, target, simd=simd, inputs=inputs))
        for w, g in zip(want, run_on_target(project, inputs, target, simd=simd)):
            np.testing.assert_array_equal(g, w)
    return results[0], results[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patch", default="off,auto",
                    help="comma-separated patch modes to build (default: off,auto)")
    ap.add_argument("--target", default="cortex-m4", help="emulated core (default: cortex-m4)")
    args = ap.parse_args()
    patches = [p for p in args.patch.split(",") if p]
    board = resolve_board(args.target)
    models = sorted(MODELS.glob("*.tflite"))

    speed_rows, size_rows = [], []
    by_kernel: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # portable, SIMD, MACs
    with tempfile.TemporaryDirectory(prefix="mcu-bench-") as tmp:
        for path in models:
            graph = load_tflite(path)
            name = path.stem
            arena = tflm.tflm_arena(path)
            for patch in patches:
                project = Path(tmp) / name / patch
                portable, simd = _measure(graph, project, patch, args.target)
                pw_p, pw_macs = _pointwise(portable)
                pw_s, _ = _pointwise(simd)
                speed_rows.append(
                    f"| {name} | {patch} | {simd.macs:,} | {portable.total_instructions:,} | "
                    f"{_per_mac(portable.total_instructions, portable.macs)} | "
                    f"{simd.total_instructions:,} | {_per_mac(simd.total_instructions, simd.macs)}"
                    f" | {portable.total_instructions / simd.total_instructions:.2f}x | "
                    f"{_per_mac(pw_s, pw_macs)} ({_per_mac(pw_p, pw_macs)}) |")
                for op_p, op_s in zip(portable.per_op, simd.per_op):
                    group = KERNEL_GROUPS.get(op_s.kernel)
                    if group and op_s.macs:
                        row = by_kernel[group]
                        row[0] += op_p.instructions
                        row[1] += op_s.instructions
                        row[2] += op_s.macs
                sizes = {}
                for flag in (True, False):
                    elf = build_firmware(project, board, simd=flag)
                    sizes[flag] = size_report(elf, "m")
                s = sizes[True]
                size_rows.append(
                    f"| {name} | {patch} | {s['flash']:,} ({sizes[False]['flash']:,}) | "
                    f"{s['weights']:,} | {s['ram']:,} | {s['arena']:,} | {arena['head']:,} | "
                    f"{arena['total']:,} |")

    print(f"Instructions per inference on {args.target} ({board.name} under QEMU, one seeded "
          "random input; exact counts from the QEMU plugin).\n")
    print("| model | patch | MACs | portable instr. | portable /MAC | SIMD instr. | SIMD /MAC | "
          "speed-up | pointwise conv /MAC SIMD (portable) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(speed_rows))
    print("\nPer kernel, all models and patch modes above together (instructions per MAC).\n")
    print("| kernel | MACs | portable /MAC | SIMD /MAC | speed-up |")
    print("|---|---|---|---|---|")
    for group in KERNEL_GROUPS.values():
        if group in by_kernel:
            p, s, m = by_kernel[group]
            print(f"| {group} | {m:,} | {p / m:.2f} | {s / m:.2f} | {p / s:.2f}x |")
    print(f"\nFirmware size from arm-none-eabi-size ({board.name}: flash = text + data, RAM = "
          "data + bss including the board's stack and heap reserves) against TFLM's arena, "
          "bytes.\n")
    print("| model | patch | flash SIMD (portable) | of which weights | static RAM | of which "
          "arena | TFLM arena head | TFLM arena total |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(size_rows))


if __name__ == "__main__":
    main()
