"""The same networks, a distilled recipe: issue 14's rows at a budget, trained again by
distillation from an ensemble of wider networks.

    .venv/bin/python benchmarks/distilled.py DIR [--budgets 2KB:8KB] [--seeds 0 1 2]
        [--models search vgg plain dwsep mbconv random] [--jobs 2] [--teacher-width 16]
        [--teachers 3] [--temperature 4] [--alpha 0.9] [--epochs N]

DIR is the output of benchmarks/nas_baselines.py. Per budget and seed, the networks its rows
deployed are trained again from scratch with their recipe (epochs, learning rate, seed,
augmentation) plus distillation (tinynas/distill.py): the search's, random search's and the
MBConv-only space's winners as their pipelines saved them, the hand-written CNNs rebuilt at the
head their row chose and the widest width that fits (tinynas.baselines.fit_to_budget, as
nas_baselines does). The search itself is not run again: its choice was made under the plain
recipe. Each network is compiled to int8 C and run over the test split; rows go to
DIR/<budget>-s<seed>/distilled/<model>.json as they finish (a stopped run resumes), and the
table is nas_baselines' (exact McNemar tests of the search against each baseline, pooled over
the seeds).

The teachers are the pipeline's (tinynas.distill.teachers: seeds 0, 1, ..., the rows'
recipe), trained once into DIR/teachers/ and reused from there.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tinyengine.cli_common import run_command
from tinynas.budget import Budget, check_budget
from tinynas.cli import parse_bytes
from tinynas.data import load_dataset, split
from tinynas.distill import Ensemble, teacher_arch, teachers
from tinynas.finish import deploy, from_scratch
from tinynas.flexarch import FlexArch
from tinynas.pipeline import PipelineConfig

sys.path.insert(0, str(Path(__file__).parent))
from nas_baselines import hand_written_arch, report  # noqa: E402

MODELS = ("search", "vgg", "plain", "dwsep", "mbconv", "random")
# the searched rows' networks, as their pipelines saved them (random_arch.json: runs since
# session 12; older rows have no record of random search's deployed network)
SAVED = {"search": "search/arch.json", "mbconv": "mbconv/arch.json",
         "random": "search/random_arch.json"}


def _arch(model: str, row_dir: Path, cfg: PipelineConfig) -> FlexArch:
    if model in SAVED:
        path = row_dir / SAVED[model]
        arch = json.loads(path.read_text())
        if arch.get("format") != "tinynas-arch/2":
            raise SystemExit(f"{path}: not a flexible-space network")
        return FlexArch.from_dict(arch)
    head = json.loads((row_dir / f"{model}.json").read_text())[model]["head"]
    return hand_written_arch(model, load_dataset(cfg.dataset), Budget(cfg.sram, cfg.flash), head)


def _one(task: tuple[str, str, int, str, str, tuple[str, ...], float, float, int, int | None]
         ) -> tuple[str, int, str, dict[str, Any]]:
    dataset, budget, seed, model, root, paths, temperature, alpha, tw, epochs = task
    torch.set_num_threads(1)
    row_dir = Path(root) / f"{budget.replace(':', '-')}-s{seed}"
    out = row_dir / "distilled" / f"{model}.json"
    if out.exists():
        return budget, seed, model, json.loads(out.read_text())
    sram, flash = (parse_bytes(x, "budget") for x in budget.split(":"))
    cfg = PipelineConfig(dataset=dataset, sram=sram, flash=flash, seed=seed)
    data = load_dataset(dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    arch = _arch(model, row_dir, cfg)
    t = time.perf_counter()
    net = from_scratch(arch, parts.train, epochs or cfg.largest_epochs + cfg.epochs, cfg.lr, seed,
                       teacher=Ensemble(teacher_arch(data, tw), paths), kd=alpha,
                       temperature=temperature)
    v = check_budget(arch, Budget(sram, flash))
    d = deploy(net, arch, parts.train, parts.test, row_dir / "distilled" / f"{model}_project",
               calib_images=cfg.calib_images, method=cfg.quant,
               patch="auto" if v.patched else "off", val=parts.val)
    res = {"arch": arch.summary(), **d.to_dict(), "predictions": d.predictions,
           "labels": [int(y) for y in parts.test.y], "seconds": time.perf_counter() - t}
    if model == "search":  # what the table's footer says of the search that chose it
        searched = json.loads((row_dir / "search.json").read_text())["search"]
        res.update(evaluations=searched["evaluations"], fitness=searched.get("fitness"))
    out.parent.mkdir(exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps(res))
    part.replace(out)
    return budget, seed, model, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="a benchmarks/nas_baselines.py output")
    ap.add_argument("--dataset", default="mnist1d")
    ap.add_argument("--budgets", nargs="+", default=["2KB:8KB"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS,
                    help="the rows to train again (all; a searched row without its saved "
                    "network is left out)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--teacher-width", type=int, default=16)
    ap.add_argument("--teachers", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--epochs", type=int, help="training epochs of teachers and rows (default: "
                    "the recipe's; fewer only to try the script, into a copy of DIR)")
    args = ap.parse_args()
    root = Path(args.dir)
    tw = args.teacher_width
    cfg = PipelineConfig(dataset=args.dataset)
    data = load_dataset(args.dataset)
    # the pipeline's own teachers (tinynas pipeline --distill), trained once into DIR/teachers
    paths = tuple(teachers(data, split(data, cfg.test, cfg.val, cfg.split_seed).train,
                           args.teachers, tw, args.epochs or cfg.largest_epochs + cfg.epochs,
                           cfg.lr, root / "teachers", args.jobs, print).paths)
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        # "search" first in every row: the table pairs every baseline with it
        tasks = [(args.dataset, b, s, m, str(root), paths, args.temperature, args.alpha, tw,
                  args.epochs)
                 for m in args.models for b in args.budgets for s in args.seeds
                 if m not in SAVED or (root / f"{b.replace(':', '-')}-s{s}" / SAVED[m]).exists()]
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for budget, seed, model, res in pool.imap_unordered(_one, tasks):
            print(f"{budget} seed {seed} {model}: int8 {res['int8_accuracy']:.4f} "
                  f"({res['seconds']:.0f} s) {res['arch']}", flush=True)
            row = rows.setdefault((budget, seed), {"budget": budget, "seed": seed,
                                                   "labels": res["labels"]})
            row[model] = res
    print(f"distilled from {args.teachers} x {teacher_arch(data, tw).summary()}, "
          f"temperature {args.temperature:g}, alpha {args.alpha:g}")
    print(report([r for r in rows.values() if "search" in r]))
    return 0


if __name__ == "__main__":
    sys.exit(run_command("distilled", main))
