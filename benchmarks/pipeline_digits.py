"""The pipeline on digits at the default and the tight budget, against its two baselines.

    .venv/bin/python benchmarks/pipeline_digits.py [--runs default tight] [--seeds 0 1 2]
                                                    [--jobs 2] [-o out/bench_pipeline]

Runs (every one with the README's pipeline defaults):
- default: `tinynas pipeline` at 2 KB SRAM / 8 KB flash, seed 0;
- tight: 1 KB SRAM / 4 KB flash, one run per seed, each with two baselines under the same
  budget and the same held-out test split:
  * random search: the same supernet, the same number of evaluated subnets, its winner
    fine-tuned, quantised and run as C exactly like evolution's;
  * hand-scaled MobileNetV2: the MobileNetV2 block pattern (3x3 depthwise, every stage at its
    deepest) at each expand ratio of {2, 4, 6}, scaled by width multiplier and resolution to
    the largest MAC count that fits (how MobileNets are sized by hand), each trained from
    scratch for as many epochs as the supernet; the best of the three on val is deployed
    (calibration chosen on val, as the pipeline does); "best on val" is the search's fitness,
    the distorted val views.
Prints one table (int8 accuracy = the generated C on the 360 test images) and, for the tight
runs, the paired count of test images only evolution's C or only random search's C gets right
with an exact two-sided sign test (McNemar) over the seeds pooled; writes DIR/results.json.
Each run's project, plots and summary.json are in DIR/<run>-s<seed>/. `--report` prints the
tables again from DIR without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinynas.arch import Arch
from tinynas.budget import Budget, check_budget
from tinynas.data import distorted, load_dataset, split
from tinynas.finish import deploy, finetune
from tinynas.pipeline import PipelineConfig, dataset_space, finish, run_pipeline
from tinynas.space import SearchSpace
from tinynas.subnet import SubNet
from tinynas.train import accuracy

KB = 1 << 10
BUDGETS = {"default": Budget(2 * KB, 8 * KB), "tight": Budget(1 * KB, 4 * KB)}
WIDTHS = tuple(np.round(np.arange(0.125, 1.0001, 0.0625), 4))
RESOLUTIONS = (8, 10, 12, 14, 16)


def mobilenet_v2(space: SearchSpace, budget: Budget, expand: int) -> Arch | None:
    """The largest-MAC MobileNetV2-pattern network (3x3, deepest stages, one expand ratio)
    over a fine width x resolution grid that fits the budget."""
    best: tuple[int, Arch] | None = None
    for w in WIDTHS:
        for r in RESOLUTIONS:
            depths = [max(space.depth_choices(s)) for s in range(len(space.stage_bases))]
            arch = space.build(float(w), r, depths, [[3] * d for d in depths],
                               [[expand] * d for d in depths], name=f"mbv2-e{expand}")
            v = check_budget(arch, budget, "auto")
            if v.fits and v.macs is not None and (best is None or v.macs > best[0]):
                best = (v.macs, arch)
    return None if best is None else best[1]


def hand_scaled_baseline(cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    data = load_dataset(cfg.dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    space = dataset_space(data, cfg.space)
    budget = Budget(cfg.sram, cfg.flash, cfg.macs)
    trained = []
    for e in (2, 4, 6):
        arch = mobilenet_v2(space, budget, e)
        if arch is None:
            continue
        torch.manual_seed(cfg.seed)
        net = finetune(SubNet(arch), arch, parts.train, cfg.largest_epochs + cfg.epochs, cfg.lr,
                       cfg.seed)
        fit = distorted(parts.val, arch.resolution, cfg.fitness_views)  # the search's measure
        trained.append((accuracy(net, fit, arch.resolution), e, arch, net))
    val, e, arch, net = max(trained, key=lambda t: (t[0], -t[1]))
    v = check_budget(arch, budget, "auto")
    d = deploy(net, arch, parts.train, parts.test, out / "mbv2_project",
               calib_images=cfg.calib_images, method=cfg.quant,
               patch="auto" if v.patched else "off", val=parts.val)
    return {"val_accuracy": val, "expand": e, "arch": arch.summary(),
            "candidates": {f"e{t[1]}": t[0] for t in trained}, **d.to_dict()}


def random_winner(cfg: PipelineConfig, out: Path, supernet: Any, baseline: Any) -> dict[str, Any]:
    data = load_dataset(cfg.dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    best = baseline.best
    d, tuning = finish(supernet, best.arch, parts, out / "random_project", cfg,
                       "auto" if best.patched else "off", False)
    return {"val_accuracy": best.accuracy, "arch": best.arch.summary(), **d.to_dict(),
            "finetune": tuning}


def one_run(task: tuple[str, int, str]) -> dict[str, Any]:
    name, seed, root = task
    b = BUDGETS[name]
    cfg = PipelineConfig(sram=b.sram, flash=b.flash, seed=seed)
    out = Path(root) / f"{name}-s{seed}"
    t = time.perf_counter()
    result = run_pipeline(cfg, out, progress=False)
    row: dict[str, Any] = {"run": name, "seed": seed, "pipeline": result.summary,
                           "pipeline_seconds": time.perf_counter() - t}
    if name == "tight":
        from tinynas.train import supernet_from_checkpoint

        supernet, _, _ = supernet_from_checkpoint(out / "supernet.pt")
        row["random"] = random_winner(cfg, out, supernet, result.baseline)
        row["mbv2"] = hand_scaled_baseline(cfg, out)
    (out / "bench.json").write_text(json.dumps(row, indent=1, default=str))
    return row


def paired(root: Path, rows: list[dict[str, Any]]) -> str:
    """Evolution's C against random search's C, image by image on the test split."""
    from tinynas.finish import c_predictions

    only_evo = only_rnd = 0
    lines = []
    for r in rows:
        if r["run"] != "tight":
            continue
        cfg = r["pipeline"]["config"]
        test = split(load_dataset(cfg["dataset"]), cfg["test"], cfg["val"],
                     cfg["split_seed"]).test
        run = root / f"tight-s{r['seed']}"
        search = json.loads((run / "search.json").read_text())
        right = {}
        for name, project in (("evolution", "project"), ("random", "random_project")):
            arch = Arch.from_dict(search[name]["best"]["arch"])
            right[name] = c_predictions(run / project, arch, test) == test.y
        e = int(np.sum(right["evolution"] & ~right["random"]))
        n = int(np.sum(right["random"] & ~right["evolution"]))
        only_evo, only_rnd = only_evo + e, only_rnd + n
        lines.append(f"seed {r['seed']}: {e} test image(s) only evolution's C gets right, {n} only "
                     "random search's")
    if not lines:
        return ""
    n = only_evo + only_rnd  # exact two-sided sign test: under no difference, each side 1/2
    p = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(only_evo, only_rnd) + 1)) / 2 ** n)
    lines.append(f"pooled: {only_evo} vs {only_rnd}, two-sided sign test p = {p:.2f}")
    lines += coverage(root, [r for r in rows if r["run"] == "tight"])
    return "\n".join(lines)


def coverage(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """How much of what fits the random search saw: its admission rate times the subnets at
    the searched (w, resolutions) estimates the admitted subnets."""
    lines = []
    for r in rows:
        s = r["pipeline"]
        space = SearchSpace.from_dict(json.loads((root / f"tight-s{r['seed']}" / "stage1.json")
                                                 .read_text())["space"])
        per_stage = [sum((len(space.kernels) * len(space.expands)) ** d
                         for d in space.depth_choices(i)) for i in range(len(space.stage_bases))]
        total = int(np.prod(per_stage)) * len(s["resolutions"])
        rnd = json.loads((root / f"tight-s{r['seed']}" / "search.json").read_text())["random"]
        rate = rnd["evaluations"] / (rnd["evaluations"] + rnd["rejected"])
        lines.append(f"seed {r['seed']}: {total:,} subnets at w{s['width_mult']:g}, r "
                     f"{s['resolutions']}; random sampling admitted {100 * rate:.1f}%, about "
                     f"{rate * total:,.0f} subnets, of which {rnd['evaluations']} evaluations "
                     f"are {100 * rnd['evaluations'] / (rate * total):.0f}%")
    return lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | seed | int8 acc (C) | float acc | SRAM B | flash B | MACs | time s | "
             "random search int8 | MBv2 hand-scaled int8 |", "|---" * 10 + "|"]
    for r in rows:
        s = r["pipeline"]
        rnd, mb = r.get("random"), r.get("mbv2")
        lines.append(
            f"| {r['run']} | {r['seed']} | {_pct(s['int8_accuracy'])} | "
            f"{_pct(s['float_accuracy'])} | {s['sram_bytes']} | {s['flash_bytes']} | "
            f"{s['macs']:,} | {s['seconds']:.0f} | "
            f"{_pct(rnd['int8_accuracy']) if rnd else '-'} | "
            f"{_pct(mb['int8_accuracy']) + ' (e' + str(mb['expand']) + ')' if mb else '-'} |")
    tight = [r for r in rows if r["run"] == "tight"]
    if tight:
        mean = {k: float(np.mean([(r["pipeline"] if k == "evolution" else r[k])["int8_accuracy"]
                                  for r in tight])) for k in ("evolution", "random", "mbv2")}
        lines.append(f"\ntight budget, mean int8 accuracy over {len(tight)} seeds: evolution "
                     f"{_pct(mean['evolution'])}, random search {_pct(mean['random'])}, "
                     f"hand-scaled MobileNetV2 {_pct(mean['mbv2'])}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["default", "tight"], choices=list(BUDGETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                    help="seeds of the tight runs (the default run uses seed 0)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    ap.add_argument("-o", "--output", type=Path, default=Path("out/bench_pipeline"))
    ap.add_argument("--report", action="store_true",
                    help="print the tables from DIR/results.json; run nothing")
    args = ap.parse_args()
    if args.report:
        rows = json.loads((args.output / "results.json").read_text())
        print(table(rows) + "\n\n" + paired(args.output, rows))
        return
    tasks = [(name, seed, str(args.output)) for name in args.runs
             for seed in (args.seeds if name == "tight" else [0])]
    args.output.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        rows = pool.map(one_run, tasks, chunksize=1)
    (args.output / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(table(rows) + "\n\n" + paired(args.output, rows))


if __name__ == "__main__":
    main()
