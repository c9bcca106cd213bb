"""The search's last step: its best few subnets trained briefly from scratch, the best of them
kept.

The fitness the search ranks by (inherited weights on distorted val views) is cheap and ranks
the admitted subnets well on the whole (Spearman 0.81 with 60-epoch from-scratch accuracy at
1 KB / 4 KB on MNIST-1D, benchmarks/RESULTS.md), but its top few are often within its noise of
each other, and at the tightest budgets the shared weights are a poor start for the narrowest
subnets. The deployed network is trained from scratch, so the last word goes to a short
from-scratch training of the top `top` distinct subnets (cosine schedule, `epochs` epochs),
scored on the same distorted val views: a second, dearer fidelity, as muNAS and successive
halving spend their budget. The search's evaluation count is unchanged; the extra training is
reported in seconds. Random search gets the same step when its winner is deployed, so the
comparison stays like for like.

With --distill the winner's training is distilled but these short trainings are not. Distilling
them too was measured (benchmarks/RESULTS.md, session 13): on MNIST-1D, at 2 KB / 8 KB over
three seeds and at 1 KB / 4 KB at one, it changed the pick twice in four runs, both times to a
network worse on test once distilled (98.71 against 99.00%, 98.29 against 98.71%), and the
re-rank took three to four times as long. The six scores lie within 0.6 points of each other
there: noise that the dearer recipe does not remove.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .data import Dataset, distorted
from .evolve import Candidate, SearchResult, rank
from .finish import from_scratch
from .train import accuracy, progress_bar


def shortlist(evaluated: list[Candidate], top: int, fitness: str = "inherited"
              ) -> list[Candidate]:
    """The `top` candidates to train, best fitness first.

    Inherited fitness: shared out over the resolutions the search evaluated (each gets
    top // resolutions of its best; the rest go to the best left). Inherited fitness is not
    comparable across resolutions: on MNIST-1D at 1 KB / 4 KB (seed 0) evolution spent 357 of
    its 460 evaluations at length 32, whose best fitness was 0.71 against 0.63 at length 40,
    and all six of its best were at 32; trained from scratch, that winner reached 95.3% on the
    val views, where the length-40 winner of a run that could not score length 32 had reached
    96.7%.

    Scratch fitness: simply the `top` best. Every candidate was trained from the same start
    with the same recipe and scored on the same val views at its own length, so the values
    compare across resolutions; sharing out would spend the re-rank on lengths that cannot
    win (on MNIST-1D at 1 KB / 4 KB, session 9, the shares put 4 of 6 re-rank trainings on
    lengths 24 and 32 at every seed, none of them ever chosen, while evolution's and random
    search's best 6 by fitness were at length 40 on all three seeds)."""
    ordered = sorted(evaluated, key=rank)
    if top <= 1:
        return ordered[:1]
    if fitness == "scratch":
        return ordered[:top]
    resolutions = sorted({c.arch.resolution for c in ordered})
    share = top // len(resolutions)
    picked = [c for r in resolutions
              for c in [c for c in ordered if c.arch.resolution == r][:share]]
    rest = [c for c in ordered if c not in picked]
    picked += rest[:top - len(picked)]
    return sorted(picked, key=rank)


@dataclass
class Reranked:
    best: Candidate
    rows: list[dict[str, Any]] = field(default_factory=list)  # per candidate, search order
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best.arch.summary(), "rows": self.rows,
                "seconds": round(self.seconds, 1)}


def rerank(result: SearchResult, train: Dataset, val: Dataset, top: int, epochs: int,
           lr: float, seed: int, views: int, progress: bool = False) -> Reranked:
    """The candidate of the shortlist (the search's `top` best by fitness; inherited fitness:
    spread over its resolutions) whose short from-scratch training scores best on the val
    views; ties keep the search's order."""
    t0 = time.perf_counter()
    ranked = shortlist(result.evaluated, top, result.fitness)
    if top <= 1 or epochs <= 0 or len(ranked) == 1:
        return Reranked(ranked[0] if ranked else result.best)
    bar = progress_bar(progress, len(ranked), f"re-rank ({epochs} epochs each)", "subnet")
    sets: dict[int, Dataset] = {}
    rows, scores = [], []
    for c in ranked:
        r = c.arch.resolution
        if r not in sets:
            sets[r] = distorted(val, r, views)
        net = from_scratch(c.arch, train, epochs, lr, seed)
        score = accuracy(net, sets[r], r)
        scores.append(score)
        rows.append({"arch": c.arch.summary(), "fitness": c.accuracy, "trained": score,
                     "flash_bytes": c.flash, "sram_bytes": c.sram, "macs": c.macs})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    best = max(range(len(ranked)), key=lambda i: (scores[i], -i))
    return Reranked(ranked[best], rows, time.perf_counter() - t0)
