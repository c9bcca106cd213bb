"""The stage-two commands of `tinynas`: train, search, deploy and pipeline.

    tinynas pipeline --sram 2KB --flash 8KB -o DIR      everything, on digits by default
    tinynas train --width 0.5 -o DIR                    the supernet (torchrun-aware)
    tinynas search --supernet DIR/supernet.pt --sram 2KB --flash 8KB -o DIR
    tinynas pipeline ... --fitness scratch              candidates scored by short trainings
                                                        from scratch; no supernet trained
    tinynas deploy --supernet DIR/supernet.pt --arch DIR/arch.json -o DIR
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import TinyNASError
from .pipeline import PipelineConfig

_DEFAULT = PipelineConfig()


def _parse_budget(args: argparse.Namespace, sram: str | None = None,
                  flash: str | None = None) -> Any:
    from .cli import parse_budget

    return parse_budget(args, sram, flash)


def _data(args: argparse.Namespace) -> Any:
    from .data import load_dataset, split

    data = load_dataset(args.dataset)
    return data, split(data, args.test, args.val, args.split_seed)


def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise TinyNASError(f"{out}: exists and is not a directory")
    return out


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline

    budget = _parse_budget(args, "2KB", "8KB")
    names = {f.name for f in fields(PipelineConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    overrides.update(sram=budget.sram, flash=budget.flash, macs=budget.macs,
                     latency_ms=budget.latency_ms, board=budget.board,
                     flash_scope=budget.flash_scope, opt=budget.opt)
    if args.quick:
        overrides.update(_quick(overrides))
    cfg = PipelineConfig(**overrides)
    result = run_pipeline(cfg, _out_dir(args.output), progress=not args.quiet,
                          resume=not args.no_resume)
    s = result.summary
    print(f"int8 accuracy (generated C, {s['images']['test']} test images) "
          f"{100 * s['int8_accuracy']:.2f}%, float {100 * s['float_accuracy']:.2f}%; "
          f"SRAM {s['sram_bytes']} B, flash {s['flash_bytes']} B, {s['macs']:,} MACs"
          + (f", {s['latency_ms']:.3f} ms on {s['budget']['board']} (estimate)"
             if s.get("latency_ms") is not None else "")
          + "".join(f"; firmware {k}: flash {v['flash_bytes']} B, RAM {v['ram_bytes']} B"
                    for k, v in s.get("firmware", {}).items())
          + f"; {s['seconds']:.0f} s; wrote {Path(args.output) / 'summary.json'}")
    return 0


def _quick(given: dict[str, Any]) -> dict[str, Any]:
    """--quick: pipeline.QUICK, except where the command line gave a setting of its own."""
    from .pipeline import QUICK

    return {k: v for k, v in QUICK.items() if k not in given or given[k] == getattr(_DEFAULT, k)}


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .pipeline import dataset_space
    from .train import TrainConfig, init_distributed, train_supernet, world

    torch.set_num_threads(1)
    distributed = init_distributed()
    data, parts = _data(args)
    space = dataset_space(data, args.space)
    if args.width not in space.width_mults:
        raise TinyNASError(f"--width {args.width:g} is not a width of the {space.name} space "
                           f"({', '.join(f'{w:g}' for w in space.width_mults)})")
    res = tuple(int(r) for r in args.resolutions.split(",")) if args.resolutions \
        else space.resolutions
    cfg = TrainConfig(args.width, res, args.largest_epochs, args.epochs, args.batch, args.lr,
                      subnets=args.subnets, kd=args.kd, seed=args.seed)
    out = _out_dir(args.output)
    result = train_supernet(space, parts.train, parts.val, cfg, out, resume=not args.no_resume,
                            progress=not args.quiet, stop_after=args.stop_after)
    rank, size = world()
    if rank == 0:
        last = result.history[-1] if result.history else None
        (out / "train.json").write_text(json.dumps(
            {"config": cfg.to_dict(), "processes": size, "resumed_from": result.resumed_from,
             "replicas_identical": result.replicas_identical,
             "history": [vars(h) for h in result.history]}, indent=1))
        print(f"supernet: {len(result.history)} of {cfg.total_epochs} epochs on {size} "
              f"process(es)" + (f", resumed from {out / 'supernet.pt'} after epoch "
                                f"{result.resumed_from}" if result.resumed_from else "") +
              (f"; val accuracy of the largest subnet {last.val_largest:.4f}" if last else "") +
              f"; wrote {out / 'supernet.pt'}")
    if distributed:
        import torch.distributed as dist

        # Every rank reaches this point before any tears its group down: a rank that destroyed
        # the group (and exited) while rank 0 was still writing could abort gloo's threads in
        # the other ("terminate called without an active exception", seen under load in CI).
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import torch

    from .pipeline import search_supernet
    from .search_report import plot_evolution, plot_pareto
    from .train import supernet_from_checkpoint

    torch.set_num_threads(1)
    budget = _parse_budget(args)
    supernet, tcfg, _ = supernet_from_checkpoint(args.supernet)
    _, parts = _data(args)
    cfg = PipelineConfig(population=args.population, generations=args.generations,
                         fitness_views=args.fitness_views, seed=args.seed,
                         random_baseline=not args.no_random, fitness=args.fitness,
                         fitness_epochs=args.fitness_epochs, lr=tcfg.lr, workers=args.workers)
    cfg = cfg.resolve(supernet.space)
    if args.pareto:
        return _pareto(args, supernet, parts, budget, tcfg.resolutions, cfg)
    search, baseline = search_supernet(supernet, parts, budget, tcfg.resolutions, cfg,
                                       not args.quiet)
    out = _out_dir(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(
        {"evolution": search.to_dict(),
         "random": baseline.to_dict() if baseline is not None else None}, indent=1))
    search.best.arch.save(out / "arch.json")
    plot_evolution(search, baseline, out / "evolution.png")
    plot_pareto(search, budget, out / "pareto.png", baseline)
    b = search.best
    ms = f", {b.latency_ms:.3f} ms on {budget.board}" if b.latency_ms is not None else ""
    print(f"best: val fitness {b.accuracy:.4f}, SRAM {b.sram} B, flash {b.flash} B, "
          f"{b.macs:,} MACs{ms}{' (patched)' if b.patched else ''}; {search.evaluations} "
          f"evaluations" + (f"; random search {baseline.best.accuracy:.4f} in "
                            f"{baseline.evaluations}" if baseline else "")
          + f"; wrote {out / 'arch.json'}")
    return 0


def _pareto(args: argparse.Namespace, supernet: Any, parts: Any, budget: Any,
            resolutions: tuple[int, ...], cfg: PipelineConfig) -> int:
    from .pareto import pareto_search, save_front
    from .pipeline import fitness_evaluator
    from .train import progress_bar

    ev = fitness_evaluator(supernet, parts, budget, cfg)
    bar = progress_bar(not args.quiet, args.evaluations, "pareto", "subnet")

    def tick(done: int, size: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)
            bar.set_postfix(front=size)

    try:
        result = pareto_search(supernet, ev, resolutions, args.evaluations,
                               population=cfg.search_shape()[0], seed=args.seed, progress=tick)
    finally:
        ev.close()
    if bar is not None:
        bar.close()
    js, png = save_front(result, budget, _out_dir(args.output))
    print(f"{len(result.front)} points on the front of {result.evaluations} evaluated subnets "
          f"({result.seconds:.0f} s); wrote {js} and {png}")
    for i, c in enumerate(result.front):
        print(f"  {i:3d}: val fitness {c.accuracy:.4f}, SRAM {c.sram} B, flash {c.flash} B, "
              f"{c.macs:,} MACs  {c.arch.summary()}")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    import torch

    from .finish import check_input
    from .flexarch import load_any
    from .pipeline import finish
    from .train import supernet_from_checkpoint

    torch.set_num_threads(1)
    if (args.arch is None) == (args.front is None):
        raise TinyNASError("give --arch FILE, or --front FILE with --pick N")
    point = None
    if args.front is not None:
        from .pareto import load_point

        point = load_point(args.front, args.pick)
        arch = point.arch
    else:
        arch = load_any(args.arch)
    supernet, _, _ = supernet_from_checkpoint(args.supernet)
    supernet.check(arch)
    data, parts = _data(args)
    check_input(data, arch)
    cfg = PipelineConfig(finetune_epochs=args.finetune_epochs, seed=args.seed,
                         scratch_epochs=args.scratch_epochs,
                         calib_images=args.calib_images, quant=args.quant)
    out = _out_dir(args.output)
    patch = args.patch if point is None else ("auto" if point.patched else "off")
    d, tuning = finish(supernet, arch, parts, out / "project", cfg, patch, not args.quiet)
    promised = None
    if point is not None:
        promised = {"point": point.index, "sram_bytes": point.sram,
                     "flash_bytes": point.flash, "macs": point.macs,
                     "as_promised": (d.sram_bytes, d.flash_bytes) == (point.sram, point.flash)}
        print(f"point {point.index}: SRAM {d.sram_bytes} B (promised {point.sram}), flash "
              f"{d.flash_bytes} B (promised {point.flash})")
    (out / "deploy.json").write_text(json.dumps({**d.to_dict(), "finetune": tuning,
                                                 "front_point": promised}, indent=1))
    print(f"wrote {out / 'project'} and {out / 'deploy.json'}")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits",
                   help="digits (default, bundled), mnist1d (generated locally), your arrays "
                        "(a .npz with x and y, or a directory with x.npy and y.npy; layout in "
                        "tinynas/arrays.py), a CIFAR-10 python directory or an ImageFolder "
                        "directory")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--test", type=float, default=_DEFAULT.test,
                   help="test fraction (0.2; not used where the dataset fixes its test part: "
                        "mnist1d, arrays with x_test)")
    p.add_argument("--val", type=float, default=_DEFAULT.val, help="val fraction (0.15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _budget_args(p: argparse.ArgumentParser, required: bool) -> None:
    from .cli import add_board_args

    need = " (required without --board)" if required else " (default 2KB; --board: its RAM)"
    p.add_argument("--sram", help="SRAM budget: arena incl. input, output and scratch" + need)
    p.add_argument("--flash", help="flash budget" + (need if required else
                                                     " (default 8KB; --board: its flash)"))
    p.add_argument("--macs", help="optional MAC budget, e.g. 200K")
    add_board_args(p)


def _fitness_args(p: argparse.ArgumentParser, d: PipelineConfig | None) -> None:
    """The search's fitness and size. Defaults None in the pipeline (PipelineConfig's apply:
    fitness auto); in `search`, which has a trained supernet, inherited fitness."""
    from .pipeline import FITNESS_KINDS, SEARCH_SHAPE

    shapes = "; ".join(f"{k}: {v[0]} x {v[1]}" for k, v in SEARCH_SHAPE.items())
    p.add_argument("--population", type=int,
                   help=f"evolution population (by fitness, population x generations: {shapes})")
    p.add_argument("--generations", type=int, help="generations (see --population)")
    p.add_argument("--fitness", choices=list(FITNESS_KINDS),
                   default=None if d is None else "inherited",
                   help="how candidates are scored: inherited supernet weights, or a short "
                        "training of each from scratch (muNAS; the pipeline then trains no "
                        "supernet); auto: scratch on the flexible space, inherited on "
                        "MCUNet's (the pipeline's default; search: inherited)")
    p.add_argument("--fitness-epochs", type=int, default=None if d is None else d.fitness_epochs,
                   help=f"--fitness scratch: epochs per candidate ({_DEFAULT.fitness_epochs})")
    p.add_argument("--workers", type=int, default=None,
                   help="--fitness scratch: processes training candidates (one per core); "
                        "the search is the same for any number")


def add_commands(sub: Any) -> None:
    d = _DEFAULT
    pp = sub.add_parser("pipeline", help="stage one, supernet, evolution, fine-tune, int8 C")
    _budget_args(pp, False)
    _data_args(pp)
    pp.add_argument("--space", help="a search space JSON instead of the dataset's preset")
    pp.add_argument("--width-mult", type=float, help="skip stage one's choice of width")
    pp.add_argument("--largest-epochs", type=int, help=f"phase one epochs ({d.largest_epochs})")
    pp.add_argument("--epochs", type=int, help=f"supernet epochs ({d.epochs})")
    _fitness_args(pp, None)
    pp.add_argument("--fitness-views", type=int, help="distorted copies of each val image the "
                    f"fitness measures, 0 for the clean images ({d.fitness_views})")
    pp.add_argument("--finetune-epochs", type=int, help=f"({d.finetune_epochs})")
    pp.add_argument("--scratch-epochs", type=int, help="the winner trained from scratch too, "
                    "best on val deployed (default: the supernet's epochs; 0: off)")
    pp.add_argument("--rerank", type=int, help="the search's best N trained briefly from "
                    f"scratch, the best on val deployed; 1: off ({d.rerank})")
    pp.add_argument("--rerank-epochs", type=int, help=f"their epochs ({d.rerank_epochs})")
    pp.add_argument("--distill", type=int, metavar="N", help="train the winner from scratch "
                    "by distillation from N wider networks (VGG-shaped CNNs, trained first; "
                    "0: off, the default); lifts a budget's accuracy where the recipe, not the "
                    "network, is the limit (benchmarks/RESULTS.md, session 12)")
    pp.add_argument("--teacher-width", type=int, help=f"the teachers' width ({d.teacher_width})")
    pp.add_argument("--temperature", type=float,
                    help=f"the distillation's temperature ({d.temperature:g})")
    pp.add_argument("--distill-alpha", type=float,
                    help=f"the distillation loss's weight ({d.distill_alpha:g})")
    pp.add_argument("--teachers", metavar="DIR", help="where the teachers are kept and reused "
                    "(default: OUTPUT/teachers)")
    pp.add_argument("--uniform-sampling", dest="budget_sampling", action="store_false",
                    default=None, help="train the supernet on subnets drawn from the whole "
                    "space, not only those that fit the budget")
    pp.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    pp.add_argument("--no-resume", action="store_true",
                    help="refuse to continue an interrupted run in DIR")
    pp.add_argument("-o", "--output", required=True, help="output directory")
    pp.set_defaults(func=_cmd_pipeline)

    tp = sub.add_parser("train", help="train a supernet (runs under torchrun for DDP)")
    _data_args(tp)
    tp.add_argument("--space", help="a search space JSON instead of the dataset's preset")
    tp.add_argument("--width", type=float, required=True, help="width multiplier")
    tp.add_argument("--resolutions", help="comma-separated, default: the space's")
    tp.add_argument("--largest-epochs", type=int, default=d.largest_epochs)
    tp.add_argument("--epochs", type=int, default=d.epochs)
    tp.add_argument("--batch", type=int, default=64, help="global batch")
    tp.add_argument("--lr", type=float, default=d.lr)
    tp.add_argument("--subnets", type=int, default=d.subnets)
    tp.add_argument("--kd", type=float, default=d.kd)
    tp.add_argument("--stop-after", type=int, help="stop after this many epochs (resumable)")
    tp.add_argument("--no-resume", action="store_true")
    tp.add_argument("-o", "--output", required=True)
    tp.set_defaults(func=_cmd_train)

    sp = sub.add_parser("search", help="evolutionary search of a trained supernet")
    sp.add_argument("--supernet", required=True, help="supernet.pt from `tinynas train` "
                    "(--fitness scratch reads only its space, width and resolutions)")
    _budget_args(sp, True)
    _data_args(sp)
    _fitness_args(sp, d)
    sp.add_argument("--fitness-views", type=int, default=d.fitness_views,
                    help="distorted copies of each val image the fitness measures (0: clean)")
    sp.add_argument("--no-random", action="store_true", help="skip the random-search baseline")
    sp.add_argument("--pareto", action="store_true",
                    help="multi-objective: the front of accuracy against SRAM, flash and MACs "
                         "within the budget (front.json, front.png), instead of one winner")
    sp.add_argument("--evaluations", type=int, default=400,
                    help="--pareto: subnets to evaluate (400)")
    sp.add_argument("-o", "--output", required=True)
    sp.set_defaults(func=_cmd_search)

    dp = sub.add_parser("deploy", help="fine-tune, quantise and compile an architecture")
    dp.add_argument("--supernet", required=True)
    dp.add_argument("--arch", help="arch.json from `tinynas search`")
    dp.add_argument("--front", help="front.json from `tinynas search --pareto` (with --pick)")
    dp.add_argument("--pick", type=int, default=0, help="the front's point to deploy (0)")
    _data_args(dp)
    dp.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    dp.add_argument("--scratch-epochs", type=int, default=0,
                    help="also train from scratch for this many epochs (0: off)")
    dp.add_argument("--calib-images", type=int, default=d.calib_images)
    dp.add_argument("--quant", default=d.quant, choices=["auto", "minmax", "percentile", "mse"],
                    help="calibration: auto (default) keeps the most accurate C on val")
    dp.add_argument("--patch", choices=["off", "auto"], default="auto")
    dp.add_argument("-o", "--output", required=True)
    dp.set_defaults(func=_cmd_deploy)
