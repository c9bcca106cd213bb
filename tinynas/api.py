"""The Python API a user reaches for, re-exported by the package (`import tinynas`): the same
steps as `tinynas search` and `tinynas deploy`, returning results instead of writing files.

    result = tinynas.run_pipeline(tinynas.PipelineConfig(sram=2048, flash=8192), "out/run")
    search, random = tinynas.search("out/run/supernet.pt", tinynas.Budget(2048, 8192))
    deployment, tuning = tinynas.deploy("out/run/supernet.pt", search.best.arch, "out/project")
    cost = tinynas.estimate_arch(tinynas.Arch.load("arch.json"), patch="auto")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arch import Arch
from .budget import Budget
from .data import Splits, load_dataset, split
from .evolve import SearchResult
from .finish import Deployment, check_input
from .flexarch import FlexArch, load_any
from .pipeline import PipelineConfig, finish, search_supernet
from .train import supernet_from_checkpoint


def _splits(config: PipelineConfig) -> tuple[Any, Splits]:
    data = load_dataset(config.dataset)
    return data, split(data, config.test, config.val, config.split_seed)


def search(supernet: str | Path, budget: Budget, config: PipelineConfig | None = None,
           progress: bool = False) -> tuple[SearchResult, SearchResult | None]:
    """Evolutionary search of a trained supernet (a `tinynas train` checkpoint) under `budget`,
    and the random-search baseline with as many evaluations (None if config.random_baseline
    is off). config: dataset, split, population, generations, fitness and its views, and seed
    (by default the supernet's inherited weights score the candidates)."""
    config = config or PipelineConfig(fitness="inherited")
    net, tcfg, _ = supernet_from_checkpoint(supernet)
    _, parts = _splits(config)
    return search_supernet(net, parts, budget, tcfg.resolutions, config, progress)


def deploy(supernet: str | Path, arch: Arch | FlexArch | str | Path, output: str | Path,
           config: PipelineConfig | None = None, patch: str = "auto",
           progress: bool = False) -> tuple[Deployment, dict[str, Any]]:
    """Fine-tune `arch` (an Arch or its JSON file) from the supernet, quantise it, compile the C
    project into `output` and measure it on the test split. config: dataset, split,
    fine-tuning epochs, calibration images and method, seed."""
    config = config or PipelineConfig()
    net, _, _ = supernet_from_checkpoint(supernet)
    arch = arch if isinstance(arch, (Arch, FlexArch)) else load_any(arch)
    net.check(arch)
    data, parts = _splits(config)
    check_input(data, arch)
    return finish(net, arch, parts, Path(output), config, patch, progress)
