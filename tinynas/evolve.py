"""Stage two's search: evolution of subnets under every constraint at once, and its baseline.

A candidate is admitted only if the engine says it fits: peak SRAM with the best patch schedule
(input, output and scratch counted), flash, and optionally MACs and latency on a board
(budget.check_budget). Its
fitness is the top-1 accuracy of the subnet with the supernet's weights, after recalibrating its
BatchNorm statistics on a sample of the training data, measured on the held-out val split
under the training distortions (`views` distorted copies of every val image, the same copies
for every subnet; views=0: the clean images). On a few hundred clean images the subnets of a
tight budget tie or differ by noise; the distorted views separate them (data.distorted).
scratch_fitness.ScratchEvaluator swaps the first half of that for a short training of each
candidate from scratch (muNAS's fidelity); everything below holds for either fitness.

Evolution (MCUNet / once-for-all): an initial population of admitted random subnets; each
generation keeps the best `parents` fraction, and refills the population with mutations
(each choice re-drawn with probability `mutate_prob`, the resolution too) and crossovers of
random parents. A generation that cannot find new admitted children in a bounded number of
tries tops up with random admitted subnets or ends the search early (a tight budget admits few
subnets), so it never loops forever. `random_search` spends the same number of evaluations on
uniformly random admitted subnets: the baseline evolution has to beat.

What one evaluation is, for both searches alike: one distinct architecture that the budget
admitted and whose fitness (accuracy with inherited weights, as above) the search obtained.
Budget rejections are not evaluations: they cost a resource check, no accuracy measurement.
Draws of an architecture the search already holds are not evaluations either (the Evaluator's
cache answers them). `SearchResult.evaluations` is that count; `measured` is how many of them
ran `Evaluator.measure` in this search, which is fewer only when the Evaluator shares another's
fitness values (random search reusing evolution's: the same subnet, data and views give the same
value, so it is looked up instead of measured again). Random search asked for n evaluations
makes exactly n, or fewer only when no admitted subnet it has not evaluated is left in the space
(`exhausted`, and the note says so); see `random_search` for how.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .arch import Arch
from .budget import Budget, Verdict, check_budget, fmt_bytes, fmt_count
from .data import Dataset, batches, distorted
from .errors import TinyNASError
from .flexarch import FlexArch
from .flexspace import FIT_DRAWS, FlexSpace
from .space import SearchSpace
from .space_index import SubnetIndex, subnet_count
from .subnet import recalibrate_bn
from .train import AnySupernet, evaluate

AnyArch = Arch | FlexArch  # a subnet of MCUNet's MBConv space or of the flexible space


@dataclass(frozen=True)
class Candidate:
    arch: AnyArch
    accuracy: float  # val top-1 (over the distorted views) with inherited weights
    loss: float  # val cross-entropy (the same views): breaks ties of accuracy
    sram: int
    flash: int
    macs: int
    index: int  # evaluation number (0-based)
    patched: bool = False  # fits the SRAM budget only with patch-based inference
    latency_ms: float | None = None  # the estimate on the budget's board, where it has one
    firmware_flash: int | None = None  # the whole firmware's, where the budget's scope is it
    firmware_ram: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "loss": self.loss, "sram_bytes": self.sram,
                "flash_bytes": self.flash, "macs": self.macs, "patched": self.patched,
                "latency_ms": self.latency_ms, "firmware_flash_bytes": self.firmware_flash,
                "firmware_ram_bytes": self.firmware_ram,
                "evaluation": self.index, "arch": self.arch.to_dict()}


@dataclass
class SearchResult:
    method: str  # "evolution" or "random"
    best: Candidate
    evaluated: list[Candidate]  # this search's evaluations, in order (see the module's docstring)
    generations: list[dict[str, float]] = field(default_factory=list)  # evolution only
    rejected: int = 0  # admitted-by-nothing samples (over budget)
    seconds: float = 0.0
    note: str = ""  # why it ended early, or how random search went on when draws ran dry
    views: int = 0  # distorted copies of each val image the fitness measured (0: clean)
    measured: int = 0  # evaluations whose fitness this search measured (the rest: shared)
    requested: int | None = None  # random search: the evaluations it was asked for
    exhausted: bool = False  # random search: no admitted subnet it had not evaluated was left
    fitness: str = "inherited"  # the Evaluator's kind: inherited weights, or scratch training
    fitness_epochs: int = 0  # scratch fitness: the epochs each candidate was trained

    @property
    def evaluations(self) -> int:
        """Distinct admitted subnets whose fitness this search obtained."""
        return len(self.evaluated)

    def best_so_far(self) -> list[float]:
        """Best fitness after each evaluation: the curve two searches are compared by."""
        return list(np.maximum.accumulate([c.accuracy for c in self.evaluated]))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "evaluations": self.evaluations,
                "measured": self.measured, "requested": self.requested,
                "exhausted": self.exhausted,
                "rejected": self.rejected, "seconds": round(self.seconds, 2), "note": self.note,
                "fitness_views": self.views, "fitness": self.fitness,
                "fitness_epochs": self.fitness_epochs,
                "best": self.best.to_dict(), "generations": self.generations,
                "evaluated": [c.to_dict() for c in self.evaluated]}


class Evaluator:
    """Fitness of subnets of one supernet, each architecture computed once."""

    kind = "inherited"  # what `measure` scores (scratch_fitness.ScratchEvaluator: "scratch")
    epochs = 0  # training epochs per candidate (scratch fitness only)

    def __init__(self, supernet: AnySupernet, calib: Dataset, val: Dataset, budget: Budget,
                 patch: str = "auto", calib_batches: int = 4, batch: int = 128,
                 views: int = 8, shared: Evaluator | None = None):
        """shared: another Evaluator of the same supernet, data and views whose fitness values
        this one may reuse (evolution and its random baseline); evaluations are counted per
        Evaluator."""
        self.supernet, self.budget, self.patch = supernet, budget, patch
        self.val: Dataset = val
        self.views: int = views
        if shared is not None and (shared.val is not val or shared.views != views):
            raise ValueError("a shared Evaluator must measure the same val images and views")
        self.fitness_sets: dict[int, Dataset] = \
            shared.fitness_sets if shared is not None else {}  # per resolution
        self.calib, self.calib_batches, self.batch = calib, calib_batches, batch
        self.fitness: dict[AnyArch, tuple[float, float]] = \
            shared.fitness if shared is not None else {}
        self.cache: dict[AnyArch, Candidate] = {}
        self.order: list[Candidate] = []
        self.measured = 0  # fitness values this Evaluator computed (measure() or prefetch())
        # Admitted architectures drawn but not evaluated yet (`reserve`): a search draws a
        # whole generation, the fitness of all of them is computed at once (`prefetch`: in
        # parallel where the Evaluator can), then they are evaluated in the order drawn.
        self.pending: list[AnyArch] = []

    def admit(self, arch: AnyArch) -> Verdict:
        return check_budget(arch, self.budget, self.patch)

    def seen(self, arch: AnyArch) -> bool:
        """Evaluated, or drawn for the batch being evaluated."""
        return arch in self.cache or arch in self.pending

    def reserve(self, arch: AnyArch) -> None:
        """Draw `arch` (admitted, not seen) for the next `evaluate_pending`."""
        self.pending.append(arch)

    def evaluate_pending(self) -> list[Candidate]:
        """Every reserved architecture evaluated, in the order reserved. The draws saw each
        other as seen, exactly as when each was evaluated at once, so a search makes the same
        draws, evaluations and results either way, however the fitness is computed."""
        archs, self.pending = self.pending, []
        self.prefetch([a for a in archs if a not in self.fitness])
        return [self(a) for a in archs]

    def prefetch(self, archs: list[AnyArch]) -> None:
        """Compute the fitness of `archs` ahead of their evaluation. Here one at a time; the
        scratch fitness trains them in parallel."""
        for arch in archs:
            if arch not in self.fitness:
                self.fitness[arch] = self.measure(arch)
                self.measured += 1

    def close(self) -> None:
        """Release what the fitness holds (the scratch fitness: its worker processes)."""

    def __call__(self, arch: AnyArch) -> Candidate:
        if arch in self.cache:
            return self.cache[arch]
        verdict = self.admit(arch)
        assert verdict.fits and verdict.peak_sram is not None and verdict.macs is not None
        if arch not in self.fitness:
            self.fitness[arch] = self.measure(arch)
            self.measured += 1
        acc, loss = self.fitness[arch]
        cand = Candidate(arch, acc, loss, verdict.peak_sram, verdict.flash,
                         verdict.macs, len(self.order), verdict.patched, verdict.latency_ms,
                         verdict.firmware_flash, verdict.firmware_ram)
        self.cache[arch] = cand
        self.order.append(cand)
        return cand

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        """(val accuracy, val cross-entropy) of the subnet with inherited weights."""
        net = inherited(self.supernet, arch, self.calib, self.calib_batches, self.batch)
        r = arch.resolution
        if r not in self.fitness_sets:
            self.fitness_sets[r] = distorted(self.val, r, self.views)
        with torch.no_grad():
            return evaluate(net, self.fitness_sets[r], r)


def inherited(supernet: AnySupernet, arch: AnyArch, calib: Dataset, calib_batches: int,
              batch: int = 128, seed: int = 0) -> torch.nn.Module:
    """The subnet with the supernet's weights and its own BatchNorm statistics, recalibrated on
    `calib_batches` batches of `calib` (shuffled by `seed`: the same images for everyone)."""
    net = supernet.extract(arch)  # type: ignore[arg-type]  # each supernet checks its kind
    gen = torch.Generator().manual_seed(seed)
    recalibrate_bn(net, (x for x, _ in batches(calib, batch, arch.resolution, gen)),
                   calib_batches)
    return net


def rank(c: Candidate) -> tuple[float, float, int]:
    """Sort key, best first: accuracy, then lower loss, then the earlier evaluation."""
    return (-c.accuracy, c.loss, c.index)


def _plain(arch: AnyArch) -> AnyArch:
    """The architecture without its name, so that equal choices compare equal."""
    return replace(arch, name="") if arch.name else arch


def sample_admitted(supernet: AnySupernet, ev: Evaluator, rng: np.random.Generator,
                    resolutions: tuple[int, ...], tries: int,
                    smallest: bool = True) -> tuple[AnyArch | None, int]:
    """(a random admitted subnet not evaluated yet or None, rejected samples). When `tries`
    samples find none and `smallest`, the smallest subnet is the answer if it is admitted and has
    not been evaluated, so a tight budget still gets a search."""
    rejected = 0
    for _ in range(tries):
        r = int(resolutions[rng.integers(len(resolutions))])
        arch = _plain(supernet.sample(rng, r))
        if ev.seen(arch):
            continue
        if ev.admit(arch).fits:
            return arch, rejected
        rejected += 1
    if not smallest:
        return None, rejected
    least = _plain(supernet.space.extreme(supernet.width_mult, min(resolutions), largest=False))
    # In the flexible space the "smallest" takes each slot's first kind, which is not always the
    # cheapest (a convolution can outweigh a depthwise-separable layer), so it is checked too.
    return (None if ev.seen(least) or not ev.admit(least).fits else least), rejected


def check_admits_something(supernet: AnySupernet, ev: Evaluator,
                           resolutions: tuple[int, ...]) -> None:
    """Raise, naming the figures, when the budget admits no subnet. The MBConv space's
    smallest subnet has every choice at its minimum, so it is the cheapest and enough to check;
    the flexible space's is not (FlexSpace.any_fits)."""
    space = supernet.space
    smallest = space.extreme(supernet.width_mult, min(resolutions), largest=False)
    v = ev.admit(smallest)
    if v.fits:
        return
    flexible = isinstance(space, FlexSpace)
    if isinstance(space, FlexSpace) and space.any_fits(lambda a: ev.admit(_plain(a)).fits,
                                                       supernet.width_mult, resolutions):
        return
    figures = [f"flash {fmt_bytes(v.flash)}"]
    if v.peak_sram is not None:
        figures.append(f"peak SRAM {fmt_bytes(v.peak_sram)}")
    if v.macs is not None:
        figures.append(f"{fmt_count(v.macs)} MACs")
    if v.latency_ms is not None:
        figures.append(f"{v.latency_ms:.3g} ms on {ev.budget.board}")
    raise TinyNASError(
        f"the budget ({ev.budget.describe()}) admits no subnet of the {space.name} supernet at "
        f"width {supernet.width_mult:g}: its smallest subnet (r={min(resolutions)}) needs "
        f"{', '.join(figures)} and is over on {v.reason}"
        + (f", as were {FIT_DRAWS} random subnets" if flexible else "")
        + "; raise the budget or search a smaller space (a lower width multiplier or resolution)")


def evolutionary_search(supernet: AnySupernet, ev: Evaluator, resolutions: tuple[int, ...],
                        population: int = 40, generations: int = 15, parents: float = 0.25,
                        mutation: float = 0.5, mutate_prob: float = 0.2, seed: int = 0,
                        tries: int = 500, progress: Callable[[int, float], None] | None = None
                        ) -> SearchResult:
    """MCUNet's evolution. `progress(generation, best)` is called after every generation."""
    if population < 2 or generations < 1 or not 0 < parents < 1 or not 0 <= mutation <= 1:
        raise TinyNASError("evolution needs population >= 2, generations >= 1, "
                           "0 < parents < 1 and 0 <= mutation <= 1")
    start = time.perf_counter()
    check_admits_something(supernet, ev, resolutions)
    first, measured = len(ev.order), ev.measured  # an Evaluator used before counts from here
    rng = np.random.default_rng(seed)
    space = supernet.space
    pop: list[Candidate] = []
    rejected, note = 0, ""
    for _ in range(population):
        arch, rej = sample_admitted(supernet, ev, rng, resolutions, tries)
        rejected += rej
        if arch is None:
            break
        ev.reserve(arch)
    pop = ev.evaluate_pending()
    if not pop:
        raise TinyNASError(f"no admitted subnet in {tries} random samples under "
                           f"{ev.budget.describe()}; raise the budget")
    history = []
    n_parents = max(2, int(round(parents * population)))
    n_mutants = int(round(mutation * population))
    for g in range(generations):
        pop.sort(key=rank)
        history.append({"generation": g, "best": pop[0].accuracy,
                        "mean": float(np.mean([c.accuracy for c in pop])),
                        "evaluations": len(ev.order) - first})
        if progress is not None:
            progress(g, pop[0].accuracy)
        if g == generations - 1:
            break
        elite = pop[:n_parents]
        for i in range(population - len(elite)):
            child, rej = _child(space, elite, ev, rng, resolutions, tries,
                                mutate=i < n_mutants, mutate_prob=mutate_prob)
            rejected += rej
            if child is None:
                child, rej = sample_admitted(supernet, ev, rng, resolutions, tries)
                rejected += rej
            if child is None:
                note = (f"generation {g + 1}: no new admitted subnet in {tries} tries; the "
                        "budget admits few subnets, so the search ended early")
                break
            ev.reserve(child)
        children = ev.evaluate_pending()
        pop = elite + children
        if note:
            pop.sort(key=rank)
            break
    evaluated = ev.order[first:]
    return SearchResult("evolution", min(evaluated, key=rank), evaluated, history, rejected,
                        time.perf_counter() - start, note, ev.views, ev.measured - measured,
                        fitness=ev.kind, fitness_epochs=ev.epochs)


def _child(space: Any, elite: list[Candidate], ev: Evaluator, rng: np.random.Generator,
           resolutions: tuple[int, ...], tries: int, mutate: bool,
           mutate_prob: float) -> tuple[AnyArch | None, int]:
    rejected = 0
    # a budget that admits a single subnet leaves a single parent: crossover needs two
    mutate = mutate or len(elite) < 2
    for _ in range(tries):
        if mutate:
            parent = elite[rng.integers(len(elite))].arch
            arch = space.mutate(parent, rng, mutate_prob, resolutions)
        else:
            a, b = rng.choice(len(elite), 2, replace=False)
            arch = space.crossover(elite[a].arch, elite[b].arch, rng)
        arch = _plain(arch)
        if ev.seen(arch):
            continue
        if ev.admit(arch).fits:
            return arch, rejected
        rejected += 1
    return None, rejected


# Walking the space checks each subnet against the budget once at most: 4 ms a subnet with
# whole tensors, 11 ms with patches allowed (all 21,168 digits subnets at w0.25, r 8 and 10:
# 87 s and 228 s on this project's 2-core machine). The digits space at one width, all five
# resolutions, is 52,920 subnets; a walk costs minutes only where random draws have already
# stopped finding new admitted subnets. Bigger spaces are not walked.
WALK_LIMIT = 1 << 16


class _UnseenAdmitted:
    """Uniformly random admitted subnets that `ev` has not evaluated, one at a time.

    Random draws first (cheap while many admitted subnets are new); once `tries` draws in a row
    find none, a walk through every subnet of the space in a seeded random order, from where it
    last stopped. Every subnet behind the walk's cursor is evaluated or over budget, so the next
    admitted unevaluated one after it is a uniform pick among those left, and reaching the end
    proves that none is left (`exhausted`). A space too large to walk keeps the draws' old
    fallback (its smallest subnet, once) and then stops."""

    def __init__(self, supernet: AnySupernet, ev: Evaluator, rng: np.random.Generator,
                 resolutions: tuple[int, ...], tries: int, walk_limit: int):
        self.supernet, self.ev, self.rng = supernet, ev, rng
        self.resolutions, self.tries = resolutions, tries
        self.count = subnet_count(supernet.space, resolutions)
        self.walkable = self.count is not None and self.count <= walk_limit
        self.walk_limit = walk_limit
        self.rejected = 0
        self.walk: tuple[SubnetIndex, np.ndarray] | None = None
        self.cursor = 0
        self.exhausted = False
        self.note = ""

    @property
    def drawn(self) -> int:
        """Subnets evaluated or drawn for evaluation so far."""
        return len(self.ev.order) + len(self.ev.pending)

    def next(self) -> AnyArch | None:
        if self.walk is None:
            arch, rej = sample_admitted(self.supernet, self.ev, self.rng, self.resolutions,
                                        self.tries, smallest=not self.walkable)
            self.rejected += rej
            if arch is not None:
                return arch
            after = (f"{self.tries} random draws in a row found no new admitted subnet after "
                     f"{self.drawn} evaluations")
            if not self.walkable:
                size = "cannot be listed" if self.count is None else \
                    f"has {self.count:,} subnets, more than the {self.walk_limit:,} it may list"
                self.note = f"{after}, and the space {size}, so the search stopped short"
                return None
            assert self.count is not None
            self.note = (f"{after}; the rest came from a walk through all {self.count:,} "
                         "subnets in a seeded random order")
            space = self.supernet.space
            assert isinstance(space, SearchSpace)  # the only kind subnet_count numbers
            self.walk = (SubnetIndex(space, self.supernet.width_mult, self.resolutions),
                         self.rng.permutation(self.count))
        index, order = self.walk
        while self.cursor < len(order):
            arch = index[int(order[self.cursor])]
            self.cursor += 1
            if self.ev.seen(arch):
                continue
            if self.ev.admit(arch).fits:
                return arch
            self.rejected += 1
        self.exhausted = True
        self.note = (f"the budget admits only {self.drawn} distinct subnets of the "
                     f"{len(index):,} at width {self.supernet.width_mult:g}, resolutions "
                     f"{list(self.resolutions)} (every one checked), and all were evaluated")
        return None


def random_search(supernet: AnySupernet, ev: Evaluator, resolutions: tuple[int, ...],
                  evaluations: int, seed: int = 0, tries: int = 500,
                  walk_limit: int = WALK_LIMIT, batch: int = 16,
                  progress: Callable[[int, float], None] | None = None) -> SearchResult:
    """Uniformly random admitted subnets, exactly `evaluations` of them (ask for
    `evolution.evaluations` to compare with an evolution): the baseline with the same number of
    evaluations. It makes fewer only when the space has no admitted subnet left that it has not
    evaluated (the result is `exhausted` and its note says so), which cannot happen when asked
    for the count an evolution reached with the same supernet, budget and resolutions; or, in a
    space it cannot walk (more than `walk_limit` subnets, or one space_index.py cannot number:
    the flexible space), when `tries` random draws in a row find no new admitted one (the note
    says so; `exhausted` stays False). `progress(evaluations, best)` is called after every
    `batch` evaluations (the draws are made `batch` at a time; the result is the same for any
    batch)."""
    if isinstance(evaluations, bool) or not isinstance(evaluations, int) or evaluations < 1:
        raise TinyNASError(f"random search needs a whole number of evaluations >= 1, got "
                           f"{evaluations!r}")
    start = time.perf_counter()
    check_admits_something(supernet, ev, resolutions)
    first, measured = len(ev.order), ev.measured
    pick = _UnseenAdmitted(supernet, ev, np.random.default_rng(seed), resolutions, tries,
                           walk_limit)
    while len(ev.order) - first < evaluations:
        # Draws in batches (one per `batch` evaluations) so that a parallel fitness has work
        # for every worker; the draws are the same whatever the batch.
        for _ in range(min(batch, evaluations - (len(ev.order) - first))):
            arch = pick.next()
            if arch is None:
                break
            ev.reserve(arch)
        if not ev.pending:
            break
        ev.evaluate_pending()
        if progress is not None:
            progress(len(ev.order) - first, max(c.accuracy for c in ev.order[first:]))
    evaluated = ev.order[first:]
    if not evaluated:
        raise TinyNASError(f"no admitted subnet in {tries} random samples under "
                           f"{ev.budget.describe()}; raise the budget")
    return SearchResult("random", min(evaluated, key=rank), evaluated, [], pick.rejected,
                        time.perf_counter() - start, pick.note, ev.views,
                        ev.measured - measured, evaluations, pick.exhausted, ev.kind, ev.epochs)
