"""tinynas: find the most accurate network that fits a microcontroller (MCUNet's TinyNAS).

The layout is the pipeline:
    arch.py       an architecture description (plain data, JSON)
    space.py      search spaces and their presets (imagenet, vww, digits); sampling, mutation
    layers.py, subnet.py   a standalone PyTorch network for an architecture
    supernet.py   the once-for-all supernet: elastic kernel, expand ratio, depth; extraction
    resources.py  architecture -> the engine's IR -> tinyengine.cost.estimate
    budget.py     the same figures, fast, and the fits-the-budget test stage one asks
    stage1.py     search-space optimisation: choose width multiplier and resolution
    stage1_report.py, cli.py   tables, plots, the `tinynas` command
    zoo.py        MCUNet's released models as descriptions
    blocks/       block kinds of the flexible space (conv, dwsep, mbconv, pooling, dense head):
                  each owns its choices, elastic module, extraction and engine graph
    flexarch.py, flexspace.py, flexnet.py, flexcost.py   the flexible space (muNAS-style,
                  1-D and 2-D): networks (tinynas-arch/2), the space, supernet, costs
    pareto.py     multi-objective search: the front of accuracy vs SRAM, flash, MACs
    baselines.py  hand-written CNNs fitted to a budget, and the McNemar paired test
    data.py       datasets (digits, MNIST-1D, CIFAR-10, ImageFolder), splits, augmentation
    arrays.py     the user's own arrays (.npz / .npy), validated
    train.py      supernet training: largest first, then the sandwich with distillation;
                  checkpoints, exact resume, DDP
    evolve.py     stage two: evolution under the budget, and random search with the same budget
    finish.py     fine-tune, quantise, compile, run the C over the test split
    pipeline.py, commands.py, search_report.py   the one-command pipeline, CLI, plots

The Python API (tinynas/api.py; each name is imported on first use):

    run_pipeline(PipelineConfig(...), out_dir)      the whole path, as `tinynas pipeline`
    run_stage_one(space, budget)                    stage one: width multiplier and resolution
    train_supernet(space, train, val, TrainConfig(...), out_dir)
    search(supernet_path, budget, config)           stage two: evolution under the budget
    deploy(supernet_path, arch, output, config)     fine-tune, quantise, compile, measure
    estimate_arch(arch, patch="off")                SRAM, flash and MACs, from the engine
    flex_cost(flex_arch, patch="off")               the same for a flexible-space network
    Arch, FlexArch, FlexSpace, Budget, SearchSpace, get_space, PipelineConfig, TrainConfig,
    TinyNASError
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "search": ".api", "deploy": ".api",
    "run_pipeline": ".pipeline", "PipelineConfig": ".pipeline", "PipelineResult": ".pipeline",
    "run_stage_one": ".stage1",
    "train_supernet": ".train", "TrainConfig": ".train",
    "estimate_arch": ".resources", "flex_cost": ".flexcost",
    "FlexArch": ".flexarch", "FlexSpace": ".flexspace",
    "Arch": ".arch", "Budget": ".budget", "SearchSpace": ".space", "get_space": ".space",
    "TinyNASError": ".errors",
}

__all__ = [
    "__version__", "search", "deploy", "run_pipeline", "PipelineConfig", "PipelineResult",
    "run_stage_one", "train_supernet", "TrainConfig", "estimate_arch", "flex_cost", "Arch",
    "FlexArch", "FlexSpace", "Budget", "SearchSpace", "get_space", "TinyNASError",
]

if TYPE_CHECKING:
    from .api import deploy, search
    from .arch import Arch
    from .budget import Budget
    from .errors import TinyNASError
    from .flexarch import FlexArch
    from .flexcost import flex_cost
    from .flexspace import FlexSpace
    from .pipeline import PipelineConfig, PipelineResult, run_pipeline
    from .resources import estimate_arch
    from .space import SearchSpace, get_space
    from .stage1 import run_stage_one
    from .train import TrainConfig, train_supernet


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tinynas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
