"""Which subnets the sandwich rule samples: those that fit the budget.

Uniform sampling over the space trains mostly subnets the search will never admit: at 512 B
of SRAM on MNIST-1D one random subnet in four to ten fits. Their weights are shared with the
admitted ones but tuned for other shapes, so the inherited weights the search ranks by are a
worse start exactly where it looks. With a budget, each resolution gets a pool of subnets that
fit it (drawn once, seeded, with the search's own check: tinyengine's figures through
budget.check_budget), and a training step's sampled subnets come from the pool of its
resolution; the largest and the smallest stay in every step as the sandwich rule has them.
A resolution where too few subnets fit keeps uniform sampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .budget import Budget, check_budget

POOL = 256  # subnets per resolution: enough that a step rarely repeats its neighbour's
TRIES = 20  # draws per pool entry before giving up on filling it
MIN_POOL = 8  # fewer fitting subnets than this: sample uniformly at that resolution


def fitting_pool(supernet: Any, resolutions: tuple[int, ...], budget: dict[str, Any],
                 seed: int, size: int | None = None) -> dict[int, list[Any]]:
    """Per resolution, up to `size` (default POOL) distinct subnets of `supernet` that fit
    `budget` (a Budget's fields), the same for the same seed."""
    size = POOL if size is None else size
    b = Budget(**budget)
    pools: dict[int, list[Any]] = {}
    for r in resolutions:
        rng = np.random.default_rng([seed, r, 7919])
        found: dict[Any, None] = {}  # insertion-ordered set: deterministic order
        for _ in range(size * TRIES):
            arch = supernet.sample(rng, r)
            if arch not in found and check_budget(arch, b, "auto").fits:
                found[arch] = None
                if len(found) == size:
                    break
        pools[r] = list(found) if len(found) >= MIN_POOL else []
    return pools


def draw(pools: dict[int, list[Any]], supernet: Any, rng: np.random.Generator, r: int) -> Any:
    """One subnet for a step at resolution r: from its pool, or uniform when it has none."""
    pool = pools.get(r)
    if not pool:
        return supernet.sample(rng, r)
    return pool[int(rng.integers(len(pool)))]
