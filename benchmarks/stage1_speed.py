"""How fast tinynas prices candidates, and how long the default stage-one sweep takes.

    .venv/bin/python benchmarks/stage1_speed.py [--seconds S] [--samples N] [--workers W]

1. Calls per second on random ImageNet-space subnets (MCUNet's grid, every (w, r)):
   tinyengine.cost.estimate (the reference), tinynas's arch_cost (the same figures, faster),
   and check_budget at 320 KB / 1 MB (rejects before planning where it can).
2. Where estimate()'s time goes, per part, on the same subnets.
3. The default sweep: 108 configurations x N samples (default 1000) at 320 KB SRAM / 1 MB
   flash, on W worker processes (default 2), wall time and evaluations per second.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from tinyengine.cost import flash_bytes, with_placeholders
from tinyengine.ir import verify
from tinyengine.memory.inplace import mark_inplace
from tinyengine.memory.plan import plan_memory
from tinyengine.memory.schedule import choose_order, scratch_sizes
from tinynas.arch import Arch
from tinynas.budget import Budget, arch_cost, check_budget
from tinynas.resources import build_graph, estimate_arch
from tinynas.space import PRESETS
from tinynas.stage1 import run_stage_one

BUDGET = Budget(320 << 10, 1 << 20)


def _rate(fn: Callable[[Arch], object], archs: list[Arch], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(archs[n % len(archs)])
        n += 1
    return n / (time.perf_counter() - t0)


def _parts(archs: list[Arch]) -> dict[str, float]:
    """Seconds per call of each part of estimate(), averaged over `archs`."""
    t = dict.fromkeys(("build graph + placeholders", "verify", "flash (emit constants)",
                       "order search", "in-place marks", "arena placement"), 0.0)
    for a in archs:
        t0 = time.perf_counter()
        g = with_placeholders(build_graph(a))
        t1 = time.perf_counter()
        verify(g)
        t2 = time.perf_counter()
        flash_bytes(g)
        t3 = time.perf_counter()
        g2 = choose_order(g)
        t4 = time.perf_counter()
        g3 = mark_inplace(g2)
        t5 = time.perf_counter()
        plan_memory(g3, scratch_sizes(g3), "auto")
        t6 = time.perf_counter()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            t[k] += dt / len(archs)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    space = PRESETS["imagenet"]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng, *space.configs[rng.integers(len(space.configs))])
             for _ in range(300)]
    for a in archs:  # warm tinynas's per-piece caches, as a sweep does after its first configs
        check_budget(a, BUDGET)
    fresh = [space.sample(rng, *space.configs[rng.integers(len(space.configs))])
             for _ in range(2000)]  # unseen by the memo of whole architectures
    print(f"random ImageNet-space subnets ({len(build_graph(archs[0]).ops)}-ish ops), one core:")
    print("| pricing | calls/s |")
    print("|---|---|")
    ref, fast = _rate(estimate_arch, fresh, args.seconds), _rate(arch_cost, fresh[::-1],
                                                                  args.seconds)
    print(f"| tinyengine.cost.estimate (reference) | {ref:.1f} |")
    print(f"| tinynas arch_cost (same figures) | {fast:.1f} |")
    rng2 = np.random.default_rng(1)
    more = [space.sample(rng2, *space.configs[rng2.integers(len(space.configs))])
            for _ in range(20000)]
    print(f"| tinynas check_budget, 320 KB / 1 MB | "
          f"{_rate(lambda a: check_budget(a, BUDGET), more, args.seconds):.1f} |")
    print()
    parts = _parts(archs[:60])
    total = sum(parts.values())
    print(f"where estimate()'s time goes ({1e3 * total:.1f} ms per call):")
    print("| part | ms | share |")
    print("|---|---|---|")
    for k, v in parts.items():
        print(f"| {k} | {1e3 * v:.2f} | {100 * v / total:.0f}% |")
    print()
    t0 = time.perf_counter()
    r = run_stage_one(space, BUDGET, samples=args.samples, seed=0, workers=args.workers)
    dt = time.perf_counter() - t0
    c = r.choice
    assert c is not None
    print(f"default sweep: imagenet, {len(space.configs)} configs x {args.samples} samples, "
          f"{BUDGET.describe()}, {args.workers} workers: {dt:.1f} s, "
          f"{r.evaluations / dt:.0f} evaluations/s, {r.plans} memory plans "
          f"({100 * r.plans / r.evaluations:.0f}%); choice {c.label}")


if __name__ == "__main__":
    main()
