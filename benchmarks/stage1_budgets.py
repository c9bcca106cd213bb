"""Stage one on the budgets of issue 5 (and the digits budgets of issue 6).

    .venv/bin/python benchmarks/stage1_budgets.py [--samples N] [--workers W] [-o DIR]
                                                   [--only NAME ...]

For each run: the choice, the table of the best configurations, the time, and the JSON + PNG in
DIR/NAME/. A budget nothing fits prints the one-line message the CLI would print.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinynas.budget import Budget
from tinynas.errors import TinyNASError
from tinynas.space import PRESETS
from tinynas.stage1 import run_stage_one
from tinynas.stage1_report import summary, table, write

KB, MB = 1 << 10, 1 << 20
# name: (dataset, budget, int8 input)
RUNS: dict[str, tuple[str, Budget, bool]] = {
    "vww-16KB-64KB": ("vww", Budget(16 * KB, 64 * KB), False),
    "vww-16KB-64KB-int8in": ("vww", Budget(16 * KB, 64 * KB), True),
    "imagenet-16KB-64KB": ("imagenet", Budget(16 * KB, 64 * KB), False),
    "imagenet-64KB-256KB": ("imagenet", Budget(64 * KB, 256 * KB), False),
    "imagenet-320KB-1MB": ("imagenet", Budget(320 * KB, 1 * MB), False),
    "imagenet-320KB-1MB-int8in": ("imagenet", Budget(320 * KB, 1 * MB), True),
    # One resource at a time: more SRAM alone, then more flash alone.
    "imagenet-320KB-256KB": ("imagenet", Budget(320 * KB, 256 * KB), False),
    "imagenet-64KB-1MB": ("imagenet", Budget(64 * KB, 1 * MB), False),
    "digits-2KB-8KB": ("digits", Budget(2 * KB, 8 * KB), False),
    "digits-1KB-4KB": ("digits", Budget(1 * KB, 4 * KB), False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("-o", "--output", default="out/stage1")
    ap.add_argument("--only", nargs="*", choices=list(RUNS), help="run only these")
    args = ap.parse_args()
    for name in args.only or list(RUNS):
        dataset, budget, int8_input = RUNS[name]
        print(f"## {name}: {dataset}, {budget.describe()}"
              + (", int8 input" if int8_input else ", float32 input (as compiled from PyTorch)"))
        t0 = time.perf_counter()
        try:
            r = run_stage_one(PRESETS[dataset], budget, args.samples, seed=0,
                              workers=args.workers, int8_input=int8_input)
        except TinyNASError as e:
            print(f"tinynas: error: {e}\n")
            continue
        js, png = write(r, Path(args.output) / name)
        print(table(r, top=6))
        print(summary(r))
        print(f"{r.evaluations} subnets, {r.plans} memory plans, {time.perf_counter() - t0:.1f} "
              f"s ({r.evaluations / r.seconds:.0f}/s); {png}\n")


if __name__ == "__main__":
    main()
