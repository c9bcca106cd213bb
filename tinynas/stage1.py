"""Stage one: search-space optimisation (MCUNet, section 3.1).

For every (width multiplier, resolution) of the space, sample m random subnets, ask the engine
whether each fits the SRAM and flash budget (and an optional MAC budget), and keep the MACs of
those that fit. MCUNet picks the configuration whose fitting subnets have the largest mean MACs:
more computation under the same memory tends to mean more accuracy. What the paper leaves open,
reported here: the fraction of the space that fits, a bootstrap 95% confidence interval of each
mean, and the bootstrap probability that each configuration is really the best one (near 50%
between two configurations means the choice is a coin toss; raise --samples).

Where a budget admits a sliver of the wider configurations, their means rest on a handful of
subnets: at 512 B / 2 KB on MNIST-1D, 2 of 300 at width 1 (mean 7,960 MACs) outranked 57 of
300 at width 0.5 (7,279), and the search then ran at a width where 18 of the 900 subnets
sampled fit. So the choice is the configuration with the highest low end of that interval,
among those with at least MIN_FITS fitting subnets (where any has that many); on a
well-sampled configuration the two rules agree (the digits budgets of the README pick the same
configurations either way).

Sampling is seeded per (configuration, chunk), so the result is the same for a seed whatever the
number of worker processes and however the chunks are scheduled.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arch import Arch
from .budget import Budget, arch_cost, check_budget, fmt_bytes, fmt_count
from .errors import TinyNASError
from .flexarch import FlexArch
from .flexspace import AnySpace, FlexSpace

CHUNK = 250  # samples per task: small enough for a smooth progress bar and load balance
BOOTSTRAP = 1000


# Fitting subnets a configuration needs before its mean MACs can make it the choice.
MIN_FITS = 5


@dataclass
class ConfigResult:
    width_mult: float
    resolution: int
    samples: int
    macs: list[int]  # MACs of the subnets that fit, in sampling order
    rejected: dict[str, int]  # reason ("flash", "sram", "macs") -> count
    # Resampling statistics of the fitting subnets found: the 95% interval of their mean MACs
    # and how often this configuration has the largest mean. With a handful of fitting
    # subnets they mean little (one subnet gives a zero-width interval); the report says so.
    ci: tuple[float, float] = (0.0, 0.0)
    p_best: float = 0.0

    @property
    def label(self) -> str:
        return f"w{self.width_mult:g}-r{self.resolution}"

    @property
    def fits(self) -> int:
        return len(self.macs)

    @property
    def fraction(self) -> float:
        return self.fits / self.samples if self.samples else 0.0

    @property
    def mean_macs(self) -> float:
        return float(np.mean(self.macs)) if self.macs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"width_mult": self.width_mult, "resolution": self.resolution,
                "samples": self.samples, "fits": self.fits, "fraction": self.fraction,
                "mean_macs": self.mean_macs, "ci95": list(self.ci), "p_best": self.p_best,
                "rejected": self.rejected, "macs": self.macs}


@dataclass
class StageOneResult:
    space: AnySpace
    budget: Budget
    samples: int
    seed: int
    patch: str
    min_fraction: float
    configs: list[ConfigResult]
    int8_input: bool = False
    seconds: float = 0.0
    plans: int = 0  # evaluations that needed the memory planner
    smallest: dict[str, int] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        return sum(c.samples for c in self.configs)

    @property
    def eligible(self) -> list[ConfigResult]:
        """Configurations with fitting subnets (at least --min-fraction of the samples), and
        at least MIN_FITS of them where any configuration has that many."""
        ok = [c for c in self.configs if c.fits and c.fraction >= self.min_fraction]
        return [c for c in ok if c.fits >= MIN_FITS] or ok

    @property
    def ranked(self) -> list[ConfigResult]:
        """Eligible configurations, best first: by the low end of the 95% interval of their
        mean MACs, so that a mean of two lucky subnets does not outrank one of sixty (ties:
        more fitting, then smaller w and r)."""
        return sorted(self.eligible,
                      key=lambda c: (-c.ci[0], -c.fits, c.width_mult, c.resolution))

    @property
    def choice(self) -> ConfigResult | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        c = self.choice
        return {"choice": None if c is None else {k: v for k, v in c.to_dict().items()
                                                  if k != "macs"},
                "budget": {"sram": self.budget.sram, "flash": self.budget.flash,
                           "macs": self.budget.macs, "latency_ms": self.budget.latency_ms,
                           "board": self.budget.board},
                "dataset": self.space.name, "samples": self.samples, "seed": self.seed,
                "patch": self.patch, "int8_input": self.int8_input,
                "min_fraction": self.min_fraction,
                "seconds": self.seconds, "evaluations": self.evaluations, "plans": self.plans,
                "smallest_subnet": self.smallest, "space": self.space.to_dict(),
                "configs": [c.to_dict() for c in self.configs]}


_Chunk = tuple[int, int, list[int], Counter[str], int]


def _evaluate(task: tuple[AnySpace, Budget, str, bool, int, int, int, int]) -> _Chunk:
    """One chunk of one configuration: (config index, chunk, fitting MACs, rejections, plans)."""
    space, budget, patch, int8_input, seed, index, chunk, n = task
    w, r = space.configs[index]
    rng = np.random.default_rng([seed, index, chunk])
    macs: list[int] = []
    rejected: Counter[str] = Counter()
    plans = 0
    for _ in range(n):
        v = check_budget(space.sample(rng, w, r), budget, patch, int8_input)
        plans += v.peak_sram is not None
        if v.fits:
            assert v.macs is not None
            macs.append(v.macs)
        else:
            rejected[v.reason] += 1
    return index, chunk, macs, rejected, plans


def check_feasible(space: AnySpace, budget: Budget, patch: str = "off",
                   int8_input: bool = False) -> dict[str, int]:
    """The smallest subnet's cost; raise TinyNASError naming it when nothing fits. The MBConv
    space's smallest subnet is its cheapest; the flexible space's takes each slot's first kind
    (a convolution can outweigh a depthwise-separable layer or a pooling), so there random
    subnets decide (FlexSpace.any_fits)."""
    arch = space.smallest()
    c = arch_cost(arch, patch, int8_input)
    cost = {"peak_sram": c.peak_sram, "flash_bytes": c.flash_bytes, "macs": c.macs}
    verdict = check_budget(arch, budget, patch, int8_input)
    if verdict.latency_ms is not None:
        cost["latency_ms"] = verdict.latency_ms  # type: ignore[assignment]
    if not verdict.fits and not (isinstance(space, FlexSpace) and space.any_fits(
            lambda a: check_budget(a, budget, patch, int8_input).fits)):
        raise TinyNASError(f"nothing in the {space.name} space fits {budget.describe()}: "
                           f"{_describe_smallest(space, arch, cost)}; raise the budget or use a "
                           "smaller space")
    return cost


def _describe_smallest(space: AnySpace, arch: Arch | FlexArch, cost: dict[str, int]) -> str:
    return (f"the smallest subnet of the {space.name} space (w{arch.width_mult:g}, "
            f"r{arch.resolution}, every depth/kernel/expand at its minimum) needs SRAM "
            f"{fmt_bytes(cost['peak_sram'])}, flash {fmt_bytes(cost['flash_bytes'])}, "
            f"{fmt_count(cost['macs'])} MACs"
            + (f", {cost['latency_ms']:.3g} ms" if "latency_ms" in cost else ""))


def run_stage_one(space: AnySpace, budget: Budget, samples: int = 1000, seed: int = 0,
                  workers: int = 2, patch: str = "off", min_fraction: float = 0.0,
                  int8_input: bool = False, progress: Callable[[int], Any] | None = None
                  ) -> StageOneResult:
    """Sweep every (w, r) of `space`; raise TinyNASError when nothing in the space fits."""
    if samples < 1:
        raise TinyNASError(f"--samples must be >= 1, got {samples}")
    t0 = time.perf_counter()
    small = check_feasible(space, budget, patch, int8_input)
    tasks = [(space, budget, patch, int8_input, seed, i, c, min(CHUNK, samples - c * CHUNK))
             for i in range(len(space.configs)) for c in range((samples + CHUNK - 1) // CHUNK)]
    found: dict[int, list[_Chunk]] = {}
    for out in _map(tasks, workers):
        found.setdefault(out[0], []).append(out)
        if progress is not None:
            progress(1)
    configs, plans = [], 0
    for i, (w, r) in enumerate(space.configs):
        macs: list[int] = []
        rejected: Counter[str] = Counter()
        for _, _, m, rej, p in sorted(found[i], key=lambda o: o[1]):  # chunk order
            macs += m
            rejected += rej
            plans += p
        configs.append(ConfigResult(w, r, samples, macs, dict(sorted(rejected.items()))))
    result = StageOneResult(space, budget, samples, seed, patch, min_fraction, configs,
                            int8_input=int8_input, plans=plans, smallest=small)
    _bootstrap(result, np.random.default_rng([seed, 1 << 20]))
    if result.choice is None:
        share = f" in at least {min_fraction:.0%} of a configuration" if min_fraction else ""
        raise TinyNASError(
            f"no sampled subnet fits {budget.describe()}{share}, although "
            f"{_describe_smallest(space, space.smallest(), small)}: the budget admits only a "
            "sliver of the space; raise --samples or the budget, or use a smaller space")
    result.seconds = time.perf_counter() - t0
    return result


def _map(tasks: list[tuple], workers: int) -> Iterator[_Chunk]:
    if workers <= 1:
        yield from map(_evaluate, tasks)
        return
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(workers, initializer=_quiet_worker) as pool:
        yield from pool.imap_unordered(_evaluate, tasks)


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the work (and says so in one
    # line); the workers ignore it and end with the pool, without a traceback each. The pool
    # ends them with SIGTERM, which a forked worker would otherwise answer with the command's
    # handler (tinyengine.cli_common.run_command): a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _bootstrap(result: StageOneResult, rng: np.random.Generator) -> None:
    """95% intervals of each mean and, per resample, which eligible configuration wins."""
    eligible = result.eligible
    if not eligible:
        return
    means = np.empty((len(eligible), BOOTSTRAP))
    for j, c in enumerate(eligible):
        m = np.asarray(c.macs, np.float64)
        means[j] = m[rng.integers(0, len(m), (BOOTSTRAP, len(m)))].mean(axis=1)
        lo, hi = np.percentile(means[j], [2.5, 97.5])
        c.ci = (float(lo), float(hi))
    wins = np.bincount(means.argmax(axis=0), minlength=len(eligible))
    for c, n in zip(eligible, wins):
        c.p_best = float(n) / BOOTSTRAP
