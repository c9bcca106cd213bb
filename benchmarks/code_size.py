"""Whole-firmware flash and RAM of the digits 2 KB / 8 KB network, linked, part by part.

    .venv/bin/python benchmarks/code_size.py [-o out/code_size] [--json FILE]

The network is the one the README's main job (`tinynas pipeline --sram 2KB --flash 8KB`) found
(benchmarks/figures/pipeline-digits-results.json, run "default"), compiled with untrained weights:
no size depends on the weights' values. Each row is a bare firmware (tinyengine/target/sizes.py:
vector table, startup, a main that runs init and invoke, the model, the kernels it calls and the
libgcc/libc routines those call; no stdio, no heap; stack reserve = deepest call path) linked for
a core at -O2 or -Os, with SIMD kernels where the core has them and with the portable ones. The
last row is the semihosting QEMU harness at -O2, what `build_firmware` reported before.
Prints a markdown table; at most two compilers run at a time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tinyengine.convert import compile_torch
from tinyengine.target import build_firmware, resolve_board
from tinyengine.target.build import firmware_key
from tinynas.arch import Arch
from tinynas.data import load_digits, resize_numpy
from tinynas.subnet import SubNet

ROOT = Path(__file__).resolve().parents[1]
ROWS = [("stm32f412", "cortex-m4", True), ("stm32f412", "cortex-m4", False),
        ("mps2-an385-m0plus", "cortex-m0plus", False)]


def digits_project(out: Path) -> Path:
    runs = json.loads((ROOT / "benchmarks/figures/pipeline-digits-results.json").read_text())
    arch = Arch.from_dict(next(r for r in runs if r["run"] == "default")["pipeline"]["arch"])
    torch.manual_seed(0)
    x = resize_numpy(load_digits().x[:64], arch.resolution)
    compile_torch(SubNet(arch).eval(), torch.from_numpy(x[:1]), x, out, prefix="model")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("out/code_size"))
    ap.add_argument("--json", type=Path, help="also write every row's totals here")
    args = ap.parse_args(argv)
    project = digits_project(args.output / "digits")
    rows = []
    for board, core, simd in ROWS:
        for opt in ("Os", "O2"):
            build_firmware(project, board, opt=opt, runtime="bare", simd=simd)
            report = json.loads((project / "report.json").read_text())
            key = firmware_key(resolve_board(board), simd, opt, "bare")
            rows.append((core, "SIMD" if simd else "portable", opt, report["firmware_totals"][key]))
    harness = build_firmware(project, "stm32f412")
    full = json.loads((project / "report.json").read_text())["firmware"]["stm32f412"]["sizes"]
    print("| core | kernels | opt | flash | weights | params | model code | kernel code | "
          "runtime | libgcc/libc | align | RAM | arena | stack |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for core, kernels, opt, t in rows:
        f, r = t["flash_parts"], t["ram_parts"]
        print(f"| {core} | {kernels} | -{opt} | {t['flash']:,} | {f['weights']:,} | "
              f"{f['params']:,} | {f['model_code']:,} | {f['kernel_code']:,} | {f['runtime']:,} | "
              f"{f['library']:,} | {f['alignment']} | {t['ram']:,} | {r['arena']:,} | "
              f"{r['stack']:,} |")
    print(f"| cortex-m4 (QEMU harness, semihosting + newlib stdio) | SIMD | -O2 | "
          f"{full['flash']:,} | {full['weights']:,} | {full['params']:,} | "
          f"{full['code_and_runtime']:,} (all code) | | | | | {full['ram']:,} | {full['arena']:,} "
          f"| 2,048 + 3,072 heap |")
    if args.json:
        args.json.write_text(json.dumps([{"core": c, "kernels": k, "opt": o, **t}
                                         for c, k, o, t in rows], indent=1))
    assert harness.is_file()


if __name__ == "__main__":
    main()
