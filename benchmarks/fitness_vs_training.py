"""Which cheap fitness predicts how good a subnet is once trained? (issue 14)

    .venv/bin/python benchmarks/fitness_vs_training.py RUN_DIR [--subnets 14] [--epochs 60]
        [-o rows.json]        (--report rows.json: the table again)

RUN_DIR is a finished pipeline run (its search/supernet.pt and search/search.json; e.g. a
benchmarks/nas_baselines.py run's DIR/1KB-4KB-s0). Takes `--subnets` of the subnets evolution
evaluated, evenly spread over their fitness (those above 0.3), and measures on the val split:
- dist: the search's fitness (inherited weights on the distorted views, from search.json);
- clean: inherited weights (BatchNorm recalibrated) on the clean val examples;
- ft3: the inherited weights fine-tuned for 3 epochs (lr 1e-3);
- s5: trained from scratch for 5 epochs (lr 1e-2);
- flash, macs: the subnet's size;
and, as the truth to predict, the subnet trained from scratch for `--epochs` (its val and test
accuracy). Prints each row and the Spearman correlation of every signal with the truth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from tinynas.data import load_dataset, split
from tinynas.evolve import inherited
from tinynas.finish import finetune
from tinynas.flexarch import FlexArch
from tinynas.flexnet import FlexNet
from tinynas.train import accuracy, supernet_from_checkpoint

SIGNALS = ("dist", "clean", "ft3", "s5", "flash", "macs")


def measure(run: Path, n: int, full: int, out: Path | None) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    parts = split(load_dataset("mnist1d"), 0.2, 0.15, 0)
    ev = json.loads((run / "search" / "search.json").read_text())["evolution"]["evaluated"]
    ev = [c for c in sorted(ev, key=lambda c: c["accuracy"]) if c["accuracy"] > 0.3]
    sup, _, _ = supernet_from_checkpoint(run / "search" / "supernet.pt")
    rows: list[dict[str, Any]] = []
    for i in np.linspace(0, len(ev) - 1, n).round().astype(int):
        c = ev[i]
        a = FlexArch.from_dict(c["arch"])
        r = a.resolution
        t = time.time()
        net = inherited(sup, a, parts.train, 8)
        row: dict[str, Any] = {"arch": a.summary(), "dist": c["accuracy"],
                               "clean": accuracy(net, parts.val, r),
                               "flash": c["flash_bytes"], "sram": c["sram_bytes"],
                               "macs": c["macs"]}
        row["ft3"] = accuracy(finetune(net, a, parts.train, 3, 1e-3, 0), parts.val, r)
        for epochs in (5, full):
            torch.manual_seed(0)
            s = finetune(FlexNet(a), a, parts.train, epochs, 1e-2, 0)
            row[f"s{epochs}"] = accuracy(s, parts.val, r)
        row["test"] = accuracy(s, parts.test, r)
        row["sec"] = time.time() - t
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out is not None:
            out.write_text(json.dumps(rows))
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    full = next(k for k in rows[0] if k.startswith("s") and k not in ("s5", "sram", "sec"))
    lines = [f"| subnet | dist | clean | ft3 | s5 | {full} val | {full} test | flash B |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['dist']:.3f} | {r['clean']:.3f} | {r['ft3']:.3f} | "
                     f"{r['s5']:.3f} | {r[full]:.4f} | {r['test']:.4f} | {r['flash']} |")
    lines += ["", f"| signal | Spearman vs {full}-epoch val | vs its test |", "|---|---|---|"]
    for k in SIGNALS:
        xs = [r[k] for r in rows]
        lines.append(f"| {k} | {spearmanr(xs, [r[full] for r in rows])[0]:.2f} | "
                     f"{spearmanr(xs, [r['test'] for r in rows])[0]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--subnets", type=int, default=14)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("-o", "--output")
    ap.add_argument("--report")
    args = ap.parse_args()
    if args.report:
        rows = json.loads(Path(args.report).read_text())
    else:
        if args.run is None:
            ap.error("give a run directory (or --report rows.json)")
        rows = measure(Path(args.run), args.subnets, args.epochs,
                       Path(args.output) if args.output else None)
    print(report(rows))


if __name__ == "__main__":
    main()
