"""Does the search's fitness rank block kinds against each other? (issue 14, session 9)

    .venv/bin/python benchmarks/fitness_families.py RUN_DIR [--per-family 4] [--epochs 170]
        [--scratch-epochs 6] [-o rows.json]

RUN_DIR is a finished `tinynas pipeline` run with inherited fitness on the flexible space (its
supernet.pt and search.json; the dataset, budget and split from its summary.json). Draws
`--per-family` fitting subnets (seeded) of each family at the supernet's width and top
resolution:
- conv+pool: a convolution, then in every downsampling slot max pooling followed by a
  convolution in the optional slot after it (VGG's shape);
- strided: a convolution, then a stride-2 convolution in every downsampling slot and no
  optional slot (the hand-written plain CNN's shape);
- search: the search's own best by its fitness (search.json);
and measures each on the val split's distorted views (the search's fitness set):
- inherited: the supernet's weights, BatchNorm recalibrated (the default fitness);
- scratch: `--scratch-epochs` from scratch (tinynas --fitness scratch);
and, as the truth, the network trained from scratch with the deploy's recipe (`--epochs`, the
pipeline's learning rate): its float accuracy on the test split. Prints one row per subnet, the
mean of each family, and the Spearman correlation of each fitness with the truth.
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

from tinynas.blocks import HEAD, Layer
from tinynas.budget import Budget
from tinynas.data import load_dataset, split
from tinynas.evolve import Evaluator
from tinynas.finish import finetune
from tinynas.flexarch import FlexArch
from tinynas.flexnet import FlexNet
from tinynas.flexspace import FlexSpace
from tinynas.scratch_fitness import ScratchEvaluator
from tinynas.train import accuracy, supernet_from_checkpoint

FAMILIES = ("conv+pool", "strided", "search")


def family_member(kind: str, slots: Any, w: float, r: int, in_channels: int, classes: int,
                  dims: int, rng: np.random.Generator) -> FlexArch:
    def pick(choices: tuple[Any, ...]) -> Any:
        return choices[int(rng.integers(len(choices)))]

    layers, cin = [], in_channels
    for i, s in enumerate(slots):
        if HEAD in s.kinds:
            layers.append(Layer(HEAD, pick(s.channels), pool=pick(s.pools), slot=i))
            break
        if i == 0:
            layer = Layer("conv", pick(s.channels), pick(s.kernels), 1, slot=i)
        elif s.stride == 2:
            layer = Layer("maxpool", cin, 2, 2, slot=i) if kind == "conv+pool" else \
                Layer("conv", pick(s.channels), pick(s.kernels), 2, slot=i)
        elif kind == "conv+pool":
            layer = Layer("conv", pick(s.channels), pick(s.kernels), 1, slot=i)
        else:
            continue
        layers.append(layer)
        cin = layer.out
    return FlexArch(r, in_channels, classes, tuple(layers), dims, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--per-family", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=170)
    ap.add_argument("--scratch-epochs", type=int, default=6)
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    summary = json.loads((run / "summary.json").read_text())
    cfg = summary["config"]
    supernet, tcfg, space = supernet_from_checkpoint(run / "supernet.pt")
    if not isinstance(space, FlexSpace):
        raise SystemExit(f"{run}: a run on MCUNet's space; families need the flexible space")
    data = load_dataset(cfg["dataset"])
    parts = split(data, cfg["test"], cfg["val"], cfg["split_seed"])
    budget = Budget(cfg["sram"], cfg["flash"])
    views = cfg["fitness_views"]
    inh = Evaluator(supernet, parts.train, parts.val, budget, views=views)
    scr = ScratchEvaluator(supernet, parts.train, parts.val, budget, args.scratch_epochs,
                           cfg["lr"], cfg["seed"], views=views)
    w, r = tcfg.width_mult, max(tcfg.resolutions)
    slots = space.slots_at(w)
    rng = np.random.default_rng(0)
    picked: dict[str, list[FlexArch]] = {}
    for kind in FAMILIES[:2]:
        found: list[FlexArch] = []
        for _ in range(2000):
            a = family_member(kind, slots, w, r, space.in_channels, space.num_classes,
                              space.dims, rng)
            if a not in found and inh.admit(a).fits:
                found.append(a)
            if len(found) == args.per_family:
                break
        picked[kind] = found
    evaluated = json.loads((run / "search.json").read_text())["evolution"]["evaluated"]
    best = sorted(evaluated, key=lambda c: -c["accuracy"])[:args.per_family]
    picked["search"] = [FlexArch.from_dict(c["arch"]) for c in best]
    rows: list[dict[str, Any]] = []
    for family, archs in picked.items():
        for a in archs:
            t = time.perf_counter()
            torch.manual_seed(cfg["seed"])
            net = finetune(FlexNet(a), a, parts.train, args.epochs, cfg["lr"], cfg["seed"])
            row = {"family": family, "arch": a.summary(), "inherited": inh(a).accuracy,
                   "scratch": scr(a).accuracy, "flash_bytes": inh(a).flash,
                   "test": accuracy(net, parts.test, a.resolution),
                   "seconds": round(time.perf_counter() - t, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n| family | arch | inherited | scratch {args.scratch_epochs} ep | "
          f"trained {args.epochs} ep, test | flash B |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['family']} | {row['arch']} | {row['inherited']:.3f} | "
              f"{row['scratch']:.3f} | {row['test']:.4f} | {row['flash_bytes']} |")
    print("\n| family | n | inherited | scratch | trained test |\n|---|---|---|---|---|")
    for family in picked:
        f = [x for x in rows if x["family"] == family]
        if f:
            print(f"| {family} | {len(f)} | " + " | ".join(
                f"{np.mean([x[k] for x in f]):.4f}" for k in ("inherited", "scratch", "test"))
                + " |")
    truth = [x["test"] for x in rows]
    for k in ("inherited", "scratch", "flash_bytes"):
        rho = spearmanr([x[k] for x in rows], truth).statistic
        print(f"Spearman of {k} with the trained test accuracy: {rho:.2f}")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
