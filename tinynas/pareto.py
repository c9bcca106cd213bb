"""Multi-objective search: one run, the whole trade-off between int8-relevant accuracy and
SRAM, flash and MACs (muNAS's aging evolution with random scalarisation).

Every candidate is admitted by the budget (the largest SRAM, flash, MACs and latency the user
accepts) and scored like the single-budget search (evolve.Evaluator: accuracy with inherited
weights over the distorted val views). Each step draws random weights over the four objectives
(error, SRAM, flash, MACs; resources as fractions of the budget, MACs of the largest seen),
picks from a random sample of the population the member best under that scalarisation,
mutates it into an admitted subnet not seen before, and retires the oldest member (aging keeps
the population moving). Random weights send the parents to every part of the front, not only to
its most accurate end. The front is the non-dominated set of everything evaluated.

`tinynas search --pareto` writes front.json and front.png; `tinynas deploy --front FILE --pick
N` deploys point N, whose compiled SRAM and flash are the figures the front promised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .arch import parse_json, read_text
from .errors import TinyNASError
from .evolve import Candidate, Evaluator, _plain, check_admits_something, sample_admitted
from .flexarch import FlexArch
from .train import AnySupernet

FRONT_FORMAT = "tinynas-front/1"


def objectives(c: Candidate) -> tuple[float, int, int, int]:
    """What is minimised: error, SRAM, flash, MACs."""
    return (1.0 - c.accuracy, c.sram, c.flash, c.macs)


def dominates(a: Candidate, b: Candidate) -> bool:
    oa, ob = objectives(a), objectives(b)
    return all(x <= y for x, y in zip(oa, ob)) and oa != ob


def front(cands: list[Candidate]) -> list[Candidate]:
    """The non-dominated candidates, by SRAM then flash (equal objectives: the earlier one)."""
    out: list[Candidate] = []
    seen: set[tuple[float, int, int, int]] = set()
    for c in sorted(cands, key=lambda c: (objectives(c)[1:], -c.accuracy, c.index)):
        if objectives(c) in seen or any(dominates(o, c) for o in cands):
            continue
        seen.add(objectives(c))
        out.append(c)
    return out


@dataclass
class ParetoResult:
    evaluated: list[Candidate]
    front: list[Candidate]
    seconds: float = 0.0
    steps: list[dict[str, float]] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return len(self.evaluated)

    def to_dict(self, budget: Any = None) -> dict[str, Any]:
        return {"format": FRONT_FORMAT, "evaluations": self.evaluations,
                "seconds": round(self.seconds, 2),
                "budget": None if budget is None else {
                    "sram_bytes": budget.sram, "flash_bytes": budget.flash,
                    "macs": budget.macs, "latency_ms": budget.latency_ms,
                    "board": budget.board},
                "front": [{"point": i, **c.to_dict()} for i, c in enumerate(self.front)],
                "evaluated": [c.to_dict() for c in self.evaluated]}


def pareto_search(supernet: AnySupernet, ev: Evaluator, resolutions: tuple[int, ...],
                  evaluations: int = 400, population: int = 40, sample: int = 10,
                  mutate_prob: float = 0.2, seed: int = 0, tries: int = 500,
                  progress: Callable[[int, int], None] | None = None) -> ParetoResult:
    """Aging evolution with random scalarisation; `evaluations` admitted distinct subnets in
    all (fewer only when the budget admits no more). `progress(done, front size)`."""
    if evaluations < 2 or population < 2 or sample < 1:
        raise TinyNASError("the Pareto search needs evaluations >= 2, population >= 2 and a "
                           "tournament sample >= 1")
    start = time.perf_counter()
    check_admits_something(supernet, ev, resolutions)
    first = len(ev.order)
    rng = np.random.default_rng(seed)
    space = supernet.space
    pop: list[Candidate] = []
    while len(pop) < min(population, evaluations):
        arch, _ = sample_admitted(supernet, ev, rng, resolutions, tries)
        if arch is None:
            break
        pop.append(ev(arch))
    budget = ev.budget
    steps = []
    while len(ev.order) - first < evaluations and pop:
        w = rng.dirichlet(np.ones(4))
        most_macs = max(c.macs for c in ev.order[first:]) or 1
        scale = np.array([1.0, budget.sram, budget.flash, most_macs], np.float64)
        picks = rng.choice(len(pop), min(sample, len(pop)), replace=False)
        parent = min((pop[int(i)] for i in picks),
                     key=lambda c: (float(w @ (np.array(objectives(c), np.float64) / scale)),
                                    c.index))
        child = None
        for _ in range(tries):
            arch = _plain(space.mutate(parent.arch, rng, mutate_prob,  # type: ignore[arg-type]
                                       resolutions))
            if not ev.seen(arch) and ev.admit(arch).fits:
                child = arch
                break
        if child is None:
            child, _ = sample_admitted(supernet, ev, rng, resolutions, tries, smallest=False)
        if child is None:
            break  # the budget admits nothing new near the population or at random
        pop.append(ev(child))
        pop.pop(0)
        done = len(ev.order) - first
        if progress is not None and done % 10 == 0:
            progress(done, len(front(ev.order[first:])))
        steps.append({"evaluations": done, "best": max(c.accuracy for c in ev.order[first:])})
    evaluated = ev.order[first:]
    return ParetoResult(evaluated, front(evaluated), time.perf_counter() - start, steps)


def save_front(result: ParetoResult, budget: Any, out: Path) -> tuple[Path, Path]:
    """front.json (every point with its promised figures and architecture) and front.png."""
    out.mkdir(parents=True, exist_ok=True)
    js = out / "front.json"
    js.write_text(json.dumps(result.to_dict(budget), indent=1))
    png = out / "front.png"
    plot_front(result, png)
    return js, png


def plot_front(result: ParetoResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    acc = [c.accuracy for c in result.evaluated]
    for ax, (i, label) in zip(axes, [(1, "peak SRAM (B)"), (2, "flash (B)"), (3, "MACs")]):
        ax.scatter([objectives(c)[i] for c in result.evaluated], acc, s=8, c="0.75",
                   label="evaluated")
        xs = [objectives(c)[i] for c in result.front]
        ax.scatter(xs, [c.accuracy for c in result.front], s=22, c="C3", label="front")
        for n, c in enumerate(result.front):
            ax.annotate(str(n), (objectives(c)[i], c.accuracy), fontsize=7,
                        xytext=(2, 2), textcoords="offset points")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("val fitness (inherited weights)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Pareto front: {len(result.front)} points of {result.evaluations} "
                 "evaluated subnets (numbers: --pick)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass(frozen=True)
class Point:
    """One point of a saved front: the architecture and what it promised."""

    index: int
    arch: Any
    sram: int
    flash: int
    macs: int
    patched: bool


def load_point(path: str | Path, pick: int) -> Point:
    """Point `pick` of a front.json, as one-line errors for anything malformed."""
    from .arch import Arch

    p = Path(path)
    d = parse_json(read_text(p, "a front JSON"), str(p))
    if not isinstance(d, dict) or d.get("format") != FRONT_FORMAT or \
            not isinstance(d.get("front"), list):
        raise TinyNASError(f"{p}: not a Pareto front ({FRONT_FORMAT}) written by `tinynas "
                           "search --pareto`")
    points = d["front"]
    if not 0 <= pick < len(points):
        raise TinyNASError(f"{p}: no point {pick}; the front has points 0 to {len(points) - 1}")
    q = points[pick]
    try:
        a = q["arch"]
        arch = FlexArch.from_dict(a, f"{p}: point {pick}") if a.get("format") == \
            "tinynas-arch/2" else Arch.from_dict(a, f"{p}: point {pick}")
        return Point(pick, arch, int(q["sram_bytes"]), int(q["flash_bytes"]), int(q["macs"]),
                     bool(q["patched"]))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise TinyNASError(f"{p}: point {pick} is malformed ({type(e).__name__}: {e})") \
            from None
