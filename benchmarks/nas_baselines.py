"""The search against every baseline of issue 14 point 5, on MNIST-1D (or digits), per budget
and seed, with paired tests on the test split.

    .venv/bin/python benchmarks/nas_baselines.py [--dataset mnist1d] [--budgets 512B:2KB ...]
        [--seeds 0 1 2] [--jobs 2] [--fitness auto|inherited|scratch [--fitness-epochs 6]]
        [-o out/nas_baselines]   (--report: tables from DIR again)

Per (budget, seed), every model's int8 accuracy is the generated C's on the test split (MNIST-1D:
the package's 2,400 test examples), every one under the same budget check (tinyengine.cost) and
trained with the same recipe (the pipeline's epochs, learning rate, augmentation; calibration
chosen on val):
- search: `tinynas pipeline` on the flexible space (the dataset's default), its winner, scored
  by short trainings from scratch (the pipeline's "auto" on the flexible space) or
  (--fitness inherited) by inherited supernet weights;
- random: random search over the same space with the same fitness and number of evaluations,
  its winner fine-tuned and deployed like the search's;
- mbconv: the pipeline on the MBConv-only space (MCUNet's block in the same positions);
- plain / dwsep / vgg: hand-written CNNs (tinynas/baselines.py: strided, depthwise-separable
  and VGG's conv + max pool) scaled to the widest that fits,
  trained from scratch for as many epochs as the supernet (largest + sandwich phases), the head
  (global pooling or flatten) chosen on val.
Paired tests: exact McNemar of the search's C against each baseline's, per seed and pooled over
seeds (the test examples of every seed concatenated). With --distill (every row trained by
distillation from the same teachers, kept in DIR/teachers), the report ends with the teachers'
ensemble, float and far over any budget, against every row on the same test: the ceiling the
rows learn towards, and how much room it leaves between them. Writes DIR/results.json and each
run's outputs under DIR/<budget>-s<seed>/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinyengine.cli_common import run_command
from tinynas.baselines import dwsep_cnn, fit_to_budget, mcnemar, plain_cnn, vgg_cnn
from tinynas.budget import Budget, arch_cost, check_budget
from tinynas.cli import parse_bytes
from tinynas.data import Dataset, load_dataset, split
from tinynas.distill import Ensemble, data_tag, teacher_arch
from tinynas.errors import TinyNASError
from tinynas.finish import deploy, from_scratch
from tinynas.flexarch import FlexArch
from tinynas.pipeline import QUICK, PipelineConfig, distill_teachers, run_pipeline
from tinynas.train import accuracy

BASELINES = ("random", "mbconv", "plain", "dwsep", "vgg")
HAND_WRITTEN = {"plain": plain_cnn, "dwsep": dwsep_cnn, "vgg": vgg_cnn}


def hand_written_arch(kind: str, data: Dataset, budget: Budget, head: str) -> FlexArch:
    """The hand-written network of `kind` with `head`, at the widest width that fits."""
    dims = 1 if data.kind == "sequence" else 2
    return fit_to_budget(lambda w: HAND_WRITTEN[kind](
        w, data.native_resolution, data.in_channels, data.num_classes, dims, head), budget)


def hand_written(kind: str, cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    data = load_dataset(cfg.dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    budget = Budget(cfg.sram, cfg.flash)
    r = data.native_resolution
    teacher = None
    if cfg.distill:  # the pipeline's teachers, trained by main before the rows
        assert cfg.teachers is not None
        teacher = distill_teachers(cfg, data, parts.train, cfg.teachers)
    tried = []
    for head in ("avg", "flatten"):
        arch = hand_written_arch(kind, data, budget, head)
        net = from_scratch(arch, parts.train, cfg.largest_epochs + cfg.epochs, cfg.lr,
                           cfg.seed, teacher=teacher, kd=cfg.distill_alpha,
                           temperature=cfg.temperature)
        tried.append((accuracy(net, parts.val, r), head, arch, net))
    val, head, arch, net = max(tried, key=lambda t: t[0])
    v = check_budget(arch, budget)
    d = deploy(net, arch, parts.train, parts.test, out / f"{kind}_project",
               calib_images=cfg.calib_images, method=cfg.quant,
               patch="auto" if v.patched else "off", val=parts.val)
    return {"val_accuracy": val, "arch": arch.summary(), "head": head,
            "heads": {t[1]: t[0] for t in tried}, **d.to_dict(), "predictions": d.predictions}


def one_run(task: tuple[str, str, int, str, bool, tuple[str, ...], str | None, dict[str, Any]]
            ) -> dict[str, Any]:
    """One budget and seed; each model's row is kept in DIR/<budget>-s<seed>/<model>.json as it
    finishes, so an interrupted run resumes where it stopped. `fitness`: PipelineConfig's
    fitness settings for the searches (search, random, mbconv)."""
    dataset, budget, seed, root, quick, models, space, fitness = task
    # --quick wins over --fitness-epochs: a smoke run trains nothing at full length
    extra: dict[str, Any] = {**fitness, **(QUICK if quick else {})}
    sram, flash = (parse_bytes(x, "budget") for x in budget.split(":"))
    out = Path(root) / f"{budget.replace(':', '-')}-s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    cfg = PipelineConfig(dataset=dataset, sram=sram, flash=flash, seed=seed, space=space,
                         deploy_random=True, **extra)
    row: dict[str, Any] = {"budget": budget, "seed": seed}
    for model in ("search",) + tuple(m for m in models if m != "random"):
        part = out / f"{model}.json"
        if not part.exists():
            part.write_text(json.dumps(_model(model, dataset, cfg, out, extra)))
    # every model's row in the directory, those an earlier run with other --models left too
    for model in ("search",) + BASELINES:
        if (out / f"{model}.json").exists():
            row.update(json.loads((out / f"{model}.json").read_text()))
    (out / "bench.json").write_text(json.dumps(row))
    return row


def _model(model: str, dataset: str, cfg: PipelineConfig, out: Path,
           extra: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    if model == "search":
        result = run_pipeline(cfg, out / "search", progress=False)
        preds = json.loads((out / "search" / "predictions.json").read_text())
        return {"labels": preds["labels"],
                "search": {**_short(result.summary), "predictions": preds["evolution"],
                           "seconds": time.perf_counter() - t},
                "random": {**result.summary["random_search_deployed"],
                           "predictions": preds["random"]}}
    if model == "mbconv":
        mb_space = "mnist1d-mbconv" if dataset == "mnist1d" else "digits"
        mb_cfg = replace(cfg, space=mb_space, random_baseline=False, deploy_random=False)
        try:
            mb = run_pipeline(mb_cfg, out / "mbconv", progress=False)
        except TinyNASError as e:
            # At 512 B / 2 KB a few MBConv subnets fit, and stage one's samples per
            # configuration can all miss them (seeds 1 and 2 did): the baseline is the best
            # subnet of the space, so it gets ten times the samples the error asks for.
            if "no sampled subnet fits" not in str(e):
                raise
            mb_cfg = replace(mb_cfg, stage1_samples=10 * mb_cfg.stage1_samples)
            mb = run_pipeline(mb_cfg, out / "mbconv", progress=False)
        return {"mbconv": {**_short(mb.summary), "predictions": json.loads(
            (out / "mbconv" / "predictions.json").read_text())["evolution"],
            "stage1_samples": mb_cfg.stage1_samples, "seconds": time.perf_counter() - t}}
    return {model: {**hand_written(model, cfg, out), "seconds": time.perf_counter() - t}}


def _short(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("int8_accuracy", "float_accuracy", "sram_bytes", "flash_bytes", "macs",
            "evaluations", "random_search_evaluations", "search_val_accuracy", "seconds",
            "fitness", "fitness_epochs", "search_seconds", "random_search_seconds")
    arch = summary["arch"]
    s = FlexArch.from_dict(arch).summary() if arch.get("format") == "tinynas-arch/2" else ""
    return {**{k: summary.get(k) for k in keys}, "arch": s}


def _budgets(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' budgets, smallest SRAM first."""
    return sorted({r["budget"] for r in rows},
                  key=lambda b: parse_bytes(b.split(":")[0], "budget"))


def _correct(rs: list[dict[str, Any]], model: str) -> np.ndarray:
    """Per test example of every row in turn, whether `model`'s C got it right."""
    return np.concatenate([np.asarray(r[model]["predictions"]) == np.asarray(r["labels"])
                           for r in rs])


def report(rows: list[dict[str, Any]]) -> str:
    lines = []
    for budget in _budgets(rows):
        rs = sorted((r for r in rows if r["budget"] == budget), key=lambda r: r["seed"])
        lines.append(f"\n### {budget} (SRAM:flash), seeds {[r['seed'] for r in rs]}\n")
        lines.append("| model | int8 accuracy per seed | mean | SRAM B | flash B | paired vs "
                     "search (search only / baseline only, pooled p) |")
        lines.append("|---|---|---|---|---|---|")
        labels = np.concatenate([np.asarray(r["labels"]) for r in rs])
        ran = [m for m in ("search",) + BASELINES if all(m in r for r in rs)]
        right = {m: _correct(rs, m) for m in ran}
        for m in ran:
            accs = [r[m]["int8_accuracy"] for r in rs]
            pair = ""
            if m != "search":
                t = mcnemar(right["search"], right[m])
                pair = f"{t.a_only} / {t.b_only}, p = {t.p_value:.3g}"
            lines.append(f"| {m} | {', '.join(f'{a:.4f}' for a in accs)} | "
                         f"{np.mean(accs):.4f} | {max(r[m]['sram_bytes'] for r in rs)} | "
                         f"{max(r[m]['flash_bytes'] for r in rs)} | {pair} |")
        missing = [m for m in BASELINES if m not in ran]
        if missing:
            lines.append(f"\nnot run: {', '.join(missing)}")
        lines.append(f"\n{len(labels)} paired test examples; search winners: " + "; ".join(
            f"s{r['seed']} {r['search']['arch']} ({r['search']['seconds']:.0f} s, "
            f"{r['search']['evaluations']} evaluations, fitness "
            f"{r['search'].get('fitness') or 'inherited'})" for r in rs))
    return "\n".join(lines)


def teachers_line(root: Path, dataset: str, rows: list[dict[str, Any]]) -> str:
    """Where DIR/teachers holds a distilled table's teachers: their ensemble's float accuracy
    on the test split and its paired test against every row (pooled over the seeds, whose
    test examples are the same split). How far the rows are from what they learn from: a row
    the ensemble itself is barely above leaves no room for a significant win over it."""
    directory = root / "teachers"
    if not rows or not directory.is_dir():
        return ""
    cfg = PipelineConfig(dataset=dataset)
    data = load_dataset(dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    groups: dict[tuple[str, int], list[Path]] = {}  # tinynas.distill.teachers' file names
    tag = data_tag(data, parts.train)
    for f in sorted(directory.glob("*.pt")):
        name = re.fullmatch(re.escape(tag) + r"(-w(\d+)-e\d+-lr[^-]+)-s\d+\.pt", f.name)
        if name:  # this data's teachers, grouped by recipe
            groups.setdefault((name[1], int(name[2])), []).append(f)
    lines = []
    for (recipe, width), paths in groups.items():
        arch = teacher_arch(data, width)
        ens = Ensemble(arch, paths)
        pred = ens(torch.from_numpy(parts.test.x)).argmax(1).numpy()
        flash = arch_cost(arch).flash_bytes
        lines.append(f"\n\nteachers {tag}{recipe} ({len(paths)} x {arch.summary()}, {flash} B "
                     f"flash each, float): right on {np.mean(pred == parts.test.y):.4f} of the "
                     "test split; against each row, pooled (teachers only / row only, p):")
        for budget in _budgets(rows):
            rs = [r for r in rows if r["budget"] == budget]
            if any(np.asarray(r["labels"]).tolist() != parts.test.y.tolist() for r in rs):
                continue  # not this split's test examples
            right = np.tile(pred == parts.test.y, len(rs))
            cells = []
            for m in ("search",) + BASELINES:
                if all(m in r for r in rs):
                    t = mcnemar(right, _correct(rs, m))
                    cells.append(f"{m} {t.a_only} / {t.b_only}, p = {t.p_value:.3g}")
            lines.append(f"{budget}: " + "; ".join(cells))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist1d")
    ap.add_argument("--budgets", nargs="+", default=["512B:2KB", "1KB:4KB", "2KB:8KB"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--space", help="the search's space (default: the dataset's; digits: give "
                    "digits-flex for the flexible space)")
    ap.add_argument("--fitness", choices=["auto", "inherited", "scratch"], default="auto",
                    help="the searches' fitness (tinynas pipeline --fitness; auto: scratch on "
                         "the flexible space)")
    ap.add_argument("--fitness-epochs", type=int, default=PipelineConfig.fitness_epochs,
                    help="--fitness scratch: epochs per candidate")
    ap.add_argument("--distill", type=int, default=0, metavar="N",
                    help="every row's network trained by distillation from N wider networks "
                    "(tinynas pipeline --distill; 0: off)")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--quick", action="store_true", help="the pipeline's smoke-test settings")
    ap.add_argument("--models", nargs="+", default=list(BASELINES), choices=BASELINES,
                    help="the baselines to run beside the search (all)")
    ap.add_argument("-o", "--output", default="out/nas_baselines")
    args = ap.parse_args()
    root = Path(args.output)
    if args.report:
        rows = [json.loads(p.read_text()) for p in sorted(root.glob("*/bench.json"))]
        for d in sorted(root.glob("*-s*")):  # rows an interrupted run left in parts
            if not (d / "bench.json").exists() and (d / "search.json").exists():
                row: dict[str, Any] = {}
                for part in sorted(d.glob("*.json")):
                    if part.stem in ("search",) + BASELINES:
                        row.update(json.loads(part.read_text()))
                budget, seed = d.name.rsplit("-s", 1)
                rows.append({"budget": budget.replace("-", ":", 1), "seed": int(seed), **row})
    else:
        root.mkdir(parents=True, exist_ok=True)
        fitness: dict[str, Any] = {"fitness": args.fitness,
                                   "fitness_epochs": args.fitness_epochs}
        if args.jobs > 1:
            # The jobs take the cores (and a pool's workers may not start processes of their
            # own): scratch-fitness candidates are trained in each job's own process.
            fitness["workers"] = 1
        if args.distill:
            # Trained here, once, before the jobs: every row then finds them in DIR/teachers
            # (two jobs training the same missing teacher would write the same file).
            fitness.update(distill=args.distill, teachers=str(root / "teachers"))
            settings: dict[str, Any] = {**fitness, **(QUICK if args.quick else {})}
            cfg = PipelineConfig(dataset=args.dataset, **settings)  # as one_run's
            data = load_dataset(args.dataset)
            distill_teachers(cfg, data, split(data, cfg.test, cfg.val, cfg.split_seed).train,
                             root / "teachers", args.jobs, print)
        tasks = [(args.dataset, b, s, str(root), args.quick, tuple(args.models), args.space,
                  fitness) for b in args.budgets for s in args.seeds]
        # A kill of this process alone (SIGTERM) would leave the workers training on: run_command
        # (below) turns it into an exception that leaves through the `with` below, or the
        # pipeline's `finally` (its scratch fitness's workers where --jobs 1), which stop them.
        if args.jobs == 1:
            rows = [one_run(t) for t in tasks]
        else:
            with mp.get_context("spawn").Pool(args.jobs) as pool:
                rows = list(pool.imap_unordered(one_run, tasks))
        (root / "results.json").write_text(json.dumps(rows))
    print(report(rows) + teachers_line(root, args.dataset, rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_command("nas_baselines", main))
