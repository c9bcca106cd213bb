"""The main job: a dataset and a microcontroller's budget in, a verified C project out.

    data -> stage one (width multiplier from the MAC distribution of subnets that fit)
         -> supernet training (checkpointed; a rerun resumes)
         -> evolutionary search under every constraint (and a random-search baseline with the
            same number of evaluations), scored by inherited weights
            or, with fitness "scratch" (the default on the flexible space: FITNESS_AUTO), by a
            short training of each candidate from scratch (scratch_fitness.py; the supernet is
            then not trained at all)
         -> fine-tune the winner -> int8 quantisation -> C project -> the C run over the test split
         -> summary.json, search.json, evolution.png, pareto.png, project/

The test split (fraction `test`, fixed by `split_seed`) is held out from everything but the
final report: training, the search's fitness, BN recalibration and quantisation calibration all
use the train and val splits.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .arch import parse_json, read_text
from .budget import Budget, arch_latency_ms, fmt_bytes, fmt_count
from .data import Dataset, Splits, distorted, load_dataset, split
from .distill import Ensemble, teachers
from .errors import TinyNASError
from .evolve import (
    Candidate,
    Evaluator,
    SearchResult,
    evolutionary_search,
    inherited,
    random_search,
)
from .finish import Deployment, deploy, finetune, from_scratch
from .firmware import default_scope
from .flexspace import FLEX_PRESETS, FlexSpace
from .rerank import rerank
from .scratch_fitness import ScratchEvaluator
from .space import PRESETS, SearchSpace, get_space
from .train import (
    AnySpace,
    AnySupernet,
    TrainConfig,
    accuracy,
    build_supernet,
    progress_bar,
    space_from_dict,
    train_supernet,
)
from .train_pool import POOL


@dataclass(frozen=True)
class PipelineConfig:
    dataset: str = "digits"
    sram: int = 2048
    flash: int = 8192
    macs: int | None = None
    latency_ms: float | None = None  # on `board`: tinyengine's estimate of the deployed graph
    board: str | None = None  # a tinyengine board preset (its core and clock price latency)
    flash_scope: str | None = None  # model or firmware; None: firmware with a board (budget.py)
    opt: str = "O2"  # the firmware scope's optimisation level
    seed: int = 0  # training, search and fine-tuning
    split_seed: int = 0  # the data split: fixed, so every run reports on the same test images
    test: float = 0.2
    val: float = 0.15
    space: str | None = None  # a SearchSpace JSON; default: the dataset's preset
    width_mult: float | None = None  # default: stage one's choice
    stage1_samples: int = 300
    largest_epochs: int = 50
    epochs: int = 120
    lr: float = 1e-2
    subnets: int = 2
    kd: float = 0.7
    # None: the fitness mode's default (SEARCH_SHAPE): a scratch-trained candidate costs
    # seconds, an inherited one milliseconds.
    population: int | None = None
    generations: int | None = None
    # "inherited" (the supernet's weights), "scratch" (each candidate trained `fitness_epochs`
    # epochs) or "auto": scratch on the flexible space, inherited on MCUNet's (FITNESS_AUTO).
    fitness: str = "auto"
    fitness_epochs: int = 6
    fitness_views: int = 8  # distorted copies of each val image the fitness measures; 0: clean
    # Processes that train scratch-fitness candidates (None: one per core). The search is the
    # same for any number: only its time changes.
    workers: int | None = None
    random_baseline: bool = True
    deploy_random: bool = False  # also fine-tune and deploy random search's best (benchmarks)
    finetune_epochs: int = 30
    finetune_lr: float = 1e-3
    # The winner also trained from scratch with the supernet's epochs and learning rate (the
    # recipe the hand-written baselines get); None: largest_epochs + epochs, 0: off.
    scratch_epochs: int | None = None
    calib_images: int = 256
    quant: str = "auto"  # or minmax, percentile, mse; auto keeps the best C on val
    # Supernet training samples subnets that fit the budget (train_pool.py); False: uniform.
    budget_sampling: bool = True
    budget_pool: int = POOL  # fitting subnets per resolution it samples from
    # The search's best `rerank` subnets trained `rerank_epochs` from scratch, the best on val
    # deployed (rerank.py); 1 or 0: the search's best as it is.
    rerank: int = 6
    rerank_epochs: int = 30
    # The winner's from-scratch training distilled from this many teachers (distill.py: the
    # VGG shape at `teacher_width`, seeds 0, 1, ..., trained with the recipe above; their
    # averaged logits at `temperature`, weight `distill_alpha`); 0: off. `teachers`: the
    # directory they are kept in and reused from (default: the run's DIR/teachers).
    distill: int = 0
    teacher_width: int = 16
    temperature: float = 4.0
    distill_alpha: float = 0.9
    teachers: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolve(self, space: AnySpace) -> PipelineConfig:
        """The settings with "auto" fitness made the space's own (FITNESS_AUTO), checked."""
        cfg = self
        if self.fitness == "auto":
            cfg = replace(self, fitness="scratch" if isinstance(space, FlexSpace)
                          else "inherited")
        cfg.check()
        return cfg

    def search_shape(self) -> tuple[int, int]:
        """(population, generations) of the evolution: the given ones, else the mode's."""
        if self.fitness not in SEARCH_SHAPE:
            raise TinyNASError(f"fitness {self.fitness!r}: resolve it for a space first")
        population, generations = SEARCH_SHAPE[self.fitness]
        return (self.population if self.population is not None else population,
                self.generations if self.generations is not None else generations)

    def worker_count(self) -> int:
        return self.workers if self.workers is not None else max(1, os.cpu_count() or 1)

    def check(self) -> None:
        """Raise on settings no run can use, before any work or output."""
        if self.workers is not None and (isinstance(self.workers, bool) or
                                         not isinstance(self.workers, int) or self.workers < 1):
            raise TinyNASError(f"workers {self.workers!r}: give a whole number >= 1")
        if self.fitness_views < 0:
            raise TinyNASError(f"fitness views {self.fitness_views}: give 0 (the clean val "
                               "images) or more")
        if self.fitness not in FITNESS_KINDS:
            raise TinyNASError(f"fitness {self.fitness!r}: give one of "
                               f"{', '.join(FITNESS_KINDS)}")
        if self.fitness == "scratch" and self.fitness_epochs < 1:
            raise TinyNASError(f"fitness epochs {self.fitness_epochs}: scratch fitness trains "
                               "each candidate at least 1 epoch")
        if self.fitness == "scratch" and self.scratch_epochs == 0:
            raise TinyNASError("scratch fitness deploys the winner trained from scratch: give "
                               "--scratch-epochs above 0 (or leave it out)")
        if self.distill < 0 or self.teacher_width < 1 or not self.temperature > 0 \
                or not 0 <= self.distill_alpha <= 1:
            raise TinyNASError(f"distillation: --distill {self.distill} (teachers, 0 for none),"
                               f" --teacher-width {self.teacher_width}, --temperature "
                               f"{self.temperature:g}, --distill-alpha {self.distill_alpha:g}:"
                               " give teachers >= 0, a width >= 1, a temperature above 0 and"
                               " an alpha within [0, 1]")
        if self.distill and self.scratch_epochs == 0:
            raise TinyNASError("--distill distils the winner's training from scratch: give "
                               "--scratch-epochs above 0 (or leave it out)")


# --quick (tinynas pipeline, benchmarks/nas_baselines.py): a few epochs and evaluations, a smoke
# test of the whole path in seconds; its figures mean nothing.
QUICK = dict(largest_epochs=2, epochs=2, population=6, generations=2, finetune_epochs=1,
             scratch_epochs=1, rerank=2, rerank_epochs=1, budget_pool=16, fitness_epochs=1,
             stage1_samples=40, calib_images=32)


# Evolution's (population, generations) per fitness. Inherited: MCUNet's 40 x 15 (~460
# evaluations, a few minutes). Scratch: 24 x 8, 150 evaluations (the parents' quarter kept each
# generation); on MNIST-1D at 512 B / 2 KB a 6-epoch candidate trains in ~2-3 s on one core, so
# evolution and its random baseline (300 trainings at most) take ~6 minutes with a worker per
# core on 2 cores. 12 x 5 (48 evaluations) stopped at its first generation's best and lost to
# inherited fitness (RESULTS, session 7); 24 x 8 beat it (session 9).
SEARCH_SHAPE = {"inherited": (40, 15), "scratch": (24, 8)}
FITNESS_KINDS = ("auto", *SEARCH_SHAPE)
# FITNESS_AUTO: why "auto" trains candidates from scratch on the flexible space. There a slot's
# shared weights serve inputs from every kind the slot before may be (a pooled copy of the
# earlier channels, or a convolution's new ones), and inherited fitness does not rank kinds
# against each other: on MNIST-1D at 512 B / 2 KB (seed 0), over 12 subnets (4 of
# convolution-and-pooling, 4 of strided convolutions, the search's 4 best), its Spearman
# correlation with the accuracy once trained was -0.92; the search's best scored 0.55-0.57 and
# reached 92.2% trained, the strided ones 0.10-0.32 and 96.6% (6 epochs from scratch: 0.41;
# benchmarks/fitness_families.py, RESULTS "Session 9"). MCUNet's space has one kind, for which
# once-for-all's weight sharing was made, and keeps the supernet.


@dataclass
class PipelineResult:
    summary: dict[str, Any]
    search: SearchResult
    baseline: SearchResult | None
    deployment: Deployment
    timings: dict[str, float] = field(default_factory=dict)


def dataset_space(data: Dataset, space: str | None) -> AnySpace:
    """The search space for a dataset: a preset name or a JSON file (either kind of space);
    else the flexible mnist1d space for sequences (1-D blocks, resolutions scaled to the
    dataset's length), the digits preset for digits and the VWW preset (MCUNet's small-image
    grid) for other images; always with the dataset's channels and classes."""
    if space is not None and space in FLEX_PRESETS:
        base: AnySpace = FLEX_PRESETS[space]
    elif space is not None and space in PRESETS:
        base = PRESETS[space]
    elif space is not None:
        base = load_space(space)
    elif data.kind == "sequence":
        base = FLEX_PRESETS["mnist1d"]
        n = data.native_resolution
        if data.name != "mnist1d":
            base = replace(base, resolutions=tuple(sorted({max(8, round(n * f))
                                                           for f in (0.6, 0.8, 1.0)})))
    else:
        base = get_space("digits" if data.name == "digits" else "vww")
    dims = 1 if data.kind == "sequence" else 2
    if isinstance(base, FlexSpace) and base.dims != dims:
        holds = "sequences" if base.dims == 1 else "images"
        raise TinyNASError(f"search space {base.name} is for {holds}; dataset {data.name} "
                           f"holds {data.kind}s")
    if isinstance(base, SearchSpace) and dims == 1:
        raise TinyNASError(f"search space {base.name} is MCUNet's image space; dataset "
                           f"{data.name} holds sequences: use the mnist1d space (the default) "
                           "or another 1-D flexible space")
    return replace(base, in_channels=data.in_channels, num_classes=data.num_classes)


def load_space(path: str | Path) -> AnySpace:
    """A search space JSON of either kind (the flexible one says its format)."""
    p = Path(path)
    return space_from_dict(parse_json(read_text(p, "a search space JSON"), str(p)), str(p))


def search_resolutions(space: AnySpace, fitting: list[int]) -> tuple[int, ...]:
    """The resolutions the supernet trains and the evolution searches: those where stage one
    found whole-tensor subnets that fit, and the next one up, which patch-based inference may
    admit (stage one prices whole tensors: planning patches is ~100x slower)."""
    if not fitting:
        return space.resolutions
    top = max(fitting)
    above = [r for r in space.resolutions if r > top]
    return tuple(r for r in space.resolutions if r <= top) + tuple(above[:1])


def run_pipeline(cfg: PipelineConfig, out_dir: str | Path, progress: bool = True,
                 resume: bool = True) -> PipelineResult:
    from .stage1 import run_stage_one

    torch.set_num_threads(1)  # these networks are tiny: threads only contend
    cfg.check()  # before any work or output
    out = Path(out_dir)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    budget = Budget(cfg.sram, cfg.flash, cfg.macs, cfg.latency_ms, cfg.board,
                    default_scope(cfg.flash_scope, cfg.board, cfg.opt), cfg.opt)
    data = load_dataset(cfg.dataset)
    parts = split(data, cfg.test, cfg.val, cfg.split_seed)
    space = dataset_space(data, cfg.space)
    cfg = cfg.resolve(space)
    _say(progress, f"{data.name}: {len(parts.train)} train / {len(parts.val)} val / "
                   f"{len(parts.test)} test images; budget {budget.describe()}")

    t = time.perf_counter()
    stage1 = run_stage_one(space, budget, cfg.stage1_samples, cfg.seed, workers=1)
    choice = stage1.choice
    assert choice is not None  # run_stage_one raises when nothing fits
    width = cfg.width_mult if cfg.width_mult is not None else choice.width_mult
    resolutions = search_resolutions(space, [c.resolution for c in stage1.configs
                                             if c.width_mult == width and c.fits])
    timings["stage1"] = time.perf_counter() - t
    _say(progress, f"stage one: width {width:g}, resolutions {list(resolutions)} "
                   f"({choice.label}: the most MACs among subnets that fit, by the low end of "
                   "its 95% interval)")

    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    supernet: AnySupernet | None = None
    if cfg.fitness == "inherited":
        tcfg = TrainConfig(width, resolutions, cfg.largest_epochs, cfg.epochs, lr=cfg.lr,
                           subnets=cfg.subnets, kd=cfg.kd, seed=cfg.seed,
                           budget=asdict(budget) if cfg.budget_sampling else None,
                           pool=cfg.budget_pool)
        supernet = train_supernet(space, parts.train, parts.val, tcfg, out, resume=resume,
                                  progress=progress).supernet
        timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    # Scratch fitness reads no supernet weights: an untrained one is the space's sampler.
    sampler = supernet if supernet is not None else build_supernet(space, width)
    search, baseline = search_supernet(sampler, parts, budget, resolutions, cfg, progress)
    timings["search"] = time.perf_counter() - t

    t = time.perf_counter()
    chosen = rerank(search, parts.train, parts.val, cfg.rerank, cfg.rerank_epochs, cfg.lr,
                    cfg.seed, cfg.fitness_views, progress)
    timings["rerank"] = time.perf_counter() - t
    if chosen.rows:
        _say(progress, f"re-ranked the best {len(chosen.rows)} by {cfg.rerank_epochs} epochs "
                       f"from scratch: {chosen.best.arch.summary()}")
    teacher = None
    if cfg.distill:
        t = time.perf_counter()
        teacher = distill_teachers(cfg, data, parts.train, cfg.teachers or out / "teachers",
                                   cfg.worker_count(), lambda text: _say(progress, text))
        timings["teachers"] = time.perf_counter() - t
    t = time.perf_counter()
    best = chosen.best
    deployment, tuning = finish(supernet, best.arch, parts, out / "project", cfg,
                                "auto" if best.patched else "off", progress, teacher)
    timings["finish"] = time.perf_counter() - t

    predictions = {"labels": [int(v) for v in parts.test.y],
                   "evolution": deployment.predictions}
    random_deployed, random_arch = None, None
    if cfg.deploy_random and baseline is not None:
        t = time.perf_counter()
        random_chosen = rerank(baseline, parts.train, parts.val, cfg.rerank, cfg.rerank_epochs,
                               cfg.lr, cfg.seed, cfg.fitness_views, progress).best
        random_deployed, _ = finish(supernet, random_chosen.arch, parts,
                                    out / "random_project", cfg,
                                    "auto" if random_chosen.patched else "off", progress,
                                    teacher)
        predictions["random"] = random_deployed.predictions
        random_arch = random_chosen.arch
        timings["finish_random"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    summary = _summary(cfg, data, parts, space, budget, width, resolutions, best, search,
                       baseline, deployment, timings)
    summary["finetune"] = tuning
    summary["rerank"] = chosen.to_dict()
    if random_deployed is not None:
        summary["random_search_deployed"] = random_deployed.to_dict()
    # Per test example, what the generated C predicted: for paired tests between runs.
    (out / "predictions.json").write_text(json.dumps(predictions))
    (out / "search.json").write_text(json.dumps(
        {"evolution": search.to_dict(),
         "random": baseline.to_dict() if baseline is not None else None}, indent=1))
    (out / "stage1.json").write_text(json.dumps(stage1.to_dict(), indent=1))
    best.arch.save(out / "arch.json")
    if random_arch is not None:  # the deployed random-search network, as arch.json is ours
        random_arch.save(out / "random_arch.json")
    from .search_report import plot_evolution, plot_pareto

    plot_evolution(search, baseline, out / "evolution.png")
    plot_pareto(search, budget, out / "pareto.png", baseline)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return PipelineResult(summary, search, baseline, deployment, timings)


def fitness_evaluator(supernet: AnySupernet, parts: Splits, budget: Budget,
                      cfg: PipelineConfig, shared: Evaluator | None = None) -> Evaluator:
    """The Evaluator of `cfg.fitness`: inherited weights, or a short training from scratch."""
    cfg = cfg.resolve(supernet.space)
    if cfg.fitness == "scratch":
        assert shared is None or isinstance(shared, ScratchEvaluator)
        return ScratchEvaluator(supernet, parts.train, parts.val, budget, cfg.fitness_epochs,
                                cfg.lr, cfg.seed, views=cfg.fitness_views, shared=shared,
                                workers=cfg.worker_count())
    return Evaluator(supernet, parts.train, parts.val, budget, views=cfg.fitness_views,
                     shared=shared)


def search_supernet(supernet: AnySupernet, parts: Splits, budget: Budget,
                    resolutions: tuple[int, ...], cfg: PipelineConfig,
                    progress: bool) -> tuple[SearchResult, SearchResult | None]:
    """Evolution and, unless turned off, random search with as many evaluations, both scored
    by `cfg.fitness` (random search reuses evolution's values for the subnets both drew)."""
    cfg = cfg.resolve(supernet.space)
    population, generations = cfg.search_shape()
    ev = fitness_evaluator(supernet, parts, budget, cfg)
    bar = progress_bar(progress, generations, "evolution", "generation")

    def tick(generation: int, best: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(best=f"{best:.4f}", evaluated=len(ev.order))

    try:
        search = evolutionary_search(supernet, ev, resolutions, population=population,
                                     generations=generations, seed=cfg.seed, progress=tick)
        if bar is not None:
            bar.close()
        from .search_report import log_line

        _say(progress, log_line(search))
        baseline = None
        if cfg.random_baseline:
            rev = fitness_evaluator(supernet, parts, budget, cfg, shared=ev)
            rbar = progress_bar(progress, search.evaluations, "random search", "subnet")

            def rtick(done: int, best: float) -> None:
                if rbar is not None:
                    rbar.update(done - rbar.n)
                    rbar.set_postfix(best=f"{best:.4f}")

            baseline = random_search(supernet, rev, resolutions, search.evaluations,
                                     seed=cfg.seed + 1, progress=rtick)
            if rbar is not None:
                rbar.close()
            _say(progress, log_line(baseline, search))
    finally:
        ev.close()  # the scratch fitness's worker processes, on an interrupt too
    return search, baseline


def distill_teachers(cfg: PipelineConfig, data: Dataset, train: Dataset, directory: str | Path,
                     workers: int = 1, say: Callable[[str], None] | None = None) -> Ensemble:
    """The `cfg.distill` teachers of `cfg`'s width, trained with its recipe (the epochs and
    learning rate a hand-written network gets) where `directory` lacks them."""
    return teachers(data, train, cfg.distill, cfg.teacher_width, cfg.largest_epochs + cfg.epochs,
                    cfg.lr, directory, workers, say)


def finish(supernet: AnySupernet | None, arch: Any, parts: Splits, project: Path,
           cfg: PipelineConfig, patch: str, progress: bool, teacher: Ensemble | None = None
           ) -> tuple[Deployment, dict[str, Any]]:
    """Three sets of weights for the winner, the best on val (the search's fitness: the
    distorted views) deployed: inherited (BN recalibrated), fine-tuned from them, and trained
    from scratch with the supernet's epochs and learning rate. The inherited weights are what
    the search ranks by; they are rarely the best a small network can reach (on MNIST-1D at
    1 KB / 4 KB a winner's inherited-then-fine-tuned C reached 90.2%, the same architecture
    trained from scratch 97.8%), and a hand-written baseline trained from scratch must be beaten
    by the architecture, not by the recipe. Distillation from the supernet's largest subnet is
    not used: its BatchNorm statistics are the sandwich's mixture, and as a teacher it made the
    winner worse. Without a supernet (scratch fitness) only the from-scratch weights. With a
    `teacher` (an ensemble of wider networks, --distill) the from-scratch training is distilled
    from it."""
    fit = distorted(parts.val, arch.resolution, cfg.fitness_views)
    scores: dict[str, float] = {}
    nets: dict[str, torch.nn.Module] = {}
    if supernet is not None:
        nets["inherited"] = inherited(supernet, arch, parts.train, 8, seed=cfg.seed)
        scores["inherited"] = accuracy(nets["inherited"], fit, arch.resolution)
    if supernet is not None and cfg.finetune_epochs > 0:
        nets["fine-tuned"] = finetune(copy.deepcopy(nets["inherited"]), arch, parts.train,
                                      cfg.finetune_epochs, cfg.finetune_lr, cfg.seed,
                                      progress=progress)
        scores["fine-tuned"] = accuracy(nets["fine-tuned"], fit, arch.resolution)
    scratch = cfg.largest_epochs + cfg.epochs if cfg.scratch_epochs is None \
        else cfg.scratch_epochs
    if scratch > 0:
        nets["scratch"] = from_scratch(arch, parts.train, scratch, cfg.lr, cfg.seed,
                                       progress=progress, teacher=teacher,
                                       kd=cfg.distill_alpha, temperature=cfg.temperature)
        scores["scratch"] = accuracy(nets["scratch"], fit, arch.resolution)
    if not nets:
        raise TinyNASError("no weights to deploy: without a supernet the winner must be "
                           "trained from scratch (scratch epochs above 0)")
    kept = max(scores, key=lambda k: scores[k])  # ties: the first (inherited, fine-tuned)
    d = deploy(nets[kept], arch, parts.train, parts.test, project,
               calib_images=cfg.calib_images, method=cfg.quant, patch=patch, val=parts.val)
    vals = ", ".join(f"{v:.4f} {k}" for k, v in scores.items())
    _say(progress, f"deployed ({kept} weights; val {vals}): float {d.float_accuracy:.4f}, "
                   f"int8 (generated C) {d.int8_accuracy:.4f} on {d.test_images} test images "
                   f"({d.calibration} calibration); SRAM "
                   f"{fmt_bytes(d.sram_bytes)}, flash {fmt_bytes(d.flash_bytes)}, "
                   f"{fmt_count(d.macs)} MACs")
    return d, {"val_inherited": scores.get("inherited"),
               "val_finetuned": scores.get("fine-tuned"), "val_scratch": scores.get("scratch"),
               "kept": kept, "epochs": cfg.finetune_epochs if supernet is not None else 0,
               "scratch_epochs": scratch, "distilled": teacher is not None,
               "val_views": cfg.fitness_views}


def _summary(cfg: PipelineConfig, data: Dataset, parts: Splits, space: AnySpace,
             budget: Budget, width: float, resolutions: tuple[int, ...], best: Candidate,
             search: SearchResult, baseline: SearchResult | None, d: Deployment,
             timings: dict[str, float]) -> dict[str, Any]:
    latency = None
    if budget.board is not None and best.latency_ms is not None:
        # The deployed project, as compiled (whole tensors or the patches it fits with).
        latency = arch_latency_ms(best.arch, budget.board, "auto" if best.patched else "off")
    report = json.loads((Path(d.project) / "report.json").read_text())
    estimates = report.get("firmware_estimate", {})
    # The whole firmware beside the model's figures, whatever the budget bounded.
    firmware = {k: {"flash_bytes": v["flash"], "ram_bytes": v["ram"]}
                for k, v in estimates.items() if "flash" in v}
    return {
        "float_accuracy": d.float_accuracy, "int8_accuracy": d.int8_accuracy,
        "firmware": firmware, "flash_scope": budget.flash_scope,
        "latency_ms": latency,
        "agreement": d.agreement, "sram_bytes": d.sram_bytes, "flash_bytes": d.flash_bytes,
        "macs": d.macs, "patches": d.patches, "seconds": round(timings["total"], 1),
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "budget": {"sram_bytes": budget.sram, "flash_bytes": budget.flash, "macs": budget.macs,
                   "latency_ms": budget.latency_ms, "board": budget.board},
        "dataset": data.name, "images": {"train": len(parts.train), "val": len(parts.val),
                                         "test": len(parts.test)},
        "space": space.name, "width_mult": width, "resolutions": list(resolutions),
        "arch": best.arch.to_dict(), "search_val_accuracy": best.accuracy,
        "fitness": search.fitness, "fitness_epochs": search.fitness_epochs or None,
        "evaluations": search.evaluations, "search_seconds": round(search.seconds, 1),
        "random_search_seconds": round(baseline.seconds, 1) if baseline else None,
        "random_search_evaluations": baseline.evaluations if baseline else None,
        "random_search_val_accuracy": baseline.best.accuracy if baseline else None,
        "project": d.project, "config": cfg.to_dict(),
    }


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, flush=True)
