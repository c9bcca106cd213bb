"""A second fitness for the search: each candidate trained briefly from scratch (muNAS's).

The default fitness (evolve.Evaluator) scores a subnet by the supernet's weights. At the
tightest budgets it is flat and weakly predictive at the top: on MNIST-1D at 512 B / 2 KB
(seed 0) the 24 best of 460 subnets by inherited fitness all looked alike and scored 0.67-0.88
on the val views after 6 epochs from scratch, so the search explored a region the inherited
fitness liked, not the one training likes. The deployed network is trained from scratch, so
this fitness asks that question directly: a fresh network of the architecture (the same torch
seed for every candidate), trained `epochs` epochs with the recipe the deploy and the re-rank
use (finish.finetune: cosine AdamW, the training augmentation), then its accuracy and
cross-entropy on the same distorted val views the inherited fitness measures. It costs seconds
per candidate instead of milliseconds, so searches with it evaluate tens of subnets, not
hundreds; the supernet is not needed at all.

Everything else is the Evaluator's: the budget check, the per-search evaluation count, the
cache (each architecture trained once per fitness table) and `shared=` (random search reuses
evolution's values for the architectures both drew).

`workers` > 1 trains the candidates a search draws together (a generation, or a batch of random
search) in that many processes. Every training runs on one thread from the same seed, in a
worker or here, so the fitness values, and with them the whole search, are the same for any
number of workers.
"""

from __future__ import annotations

import multiprocessing
import weakref
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from tinyengine.cli_common import termination_held

from .budget import Budget
from .data import Dataset, distorted
from .evolve import AnyArch, Evaluator
from .finish import from_scratch
from .train import AnySupernet, evaluate

FITNESS_KINDS = ("inherited", "scratch")


class ScratchEvaluator(Evaluator):
    """Fitness by `epochs` epochs of training from scratch, each architecture trained once.

    `supernet` is only the space at its width that the searches sample from (an untrained one
    serves: its weights are never read)."""

    kind = "scratch"
    train: Dataset
    lr: float
    seed: int

    def __init__(self, supernet: AnySupernet, train: Dataset, val: Dataset, budget: Budget,
                 epochs: int, lr: float, seed: int = 0, patch: str = "auto", views: int = 8,
                 shared: ScratchEvaluator | None = None, workers: int = 1):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"scratch fitness needs a whole number of epochs >= 1, got "
                             f"{epochs!r}")
        if shared is not None and (shared.epochs, shared.lr, shared.seed, shared.train) != (
                epochs, lr, seed, train):
            raise ValueError("a shared ScratchEvaluator must train with the same data, "
                             "epochs, learning rate and seed")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"scratch fitness needs a whole number of workers >= 1, got "
                             f"{workers!r}")
        super().__init__(supernet, train, val, budget, patch, views=views, shared=shared)
        self.train, self.epochs, self.lr, self.seed = train, epochs, lr, seed
        self.workers = workers
        # One pool for evolution and the random search that shares its fitness values.
        self._pool: _Pool = shared._pool if shared is not None else _Pool()

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        """(val accuracy, val cross-entropy) after `epochs` epochs from scratch."""
        return _fitness(arch, self.train, self._fitness_set(arch.resolution), self.epochs,
                        self.lr, self.seed)

    def _fitness_set(self, r: int) -> Dataset:
        if r not in self.fitness_sets:
            self.fitness_sets[r] = distorted(self.val, r, self.views)
        return self.fitness_sets[r]

    def prefetch(self, archs: list[AnyArch]) -> None:
        """Train the architectures not measured yet, in `workers` processes where there are
        more than one of them."""
        todo = list(dict.fromkeys(a for a in archs if a not in self.fitness))
        if self.workers == 1 or len(todo) < 2:
            super().prefetch(todo)
            return
        jobs = [(a, self._fitness_set(a.resolution)) for a in todo]
        # A SIGTERM in the middle of sending a starting worker its data would leave that
        # worker half-fed, ending in a traceback of its own: it waits until they are started.
        with termination_held():
            results = self._executor().map(_remote_fitness, jobs)
        for arch, value in zip(todo, results):
            self.fitness[arch] = value
            self.measured += 1

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool.executor is None:
            # spawn, not fork: a forked copy of a process that has run torch can deadlock.
            pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                       initializer=_start_worker,
                                       initargs=(self.train, self.epochs, self.lr, self.seed))
            self._pool.executor = pool
            weakref.finalize(self._pool, _stop, pool)
        return self._pool.executor

    def close(self) -> None:
        """Stop the worker processes now, a training in progress included (a later prefetch
        starts new ones). Called on the way out of an interrupted or terminated search too, so
        that no worker goes on training for a process that has gone."""
        if self._pool.executor is not None:
            _stop(self._pool.executor)
            self._pool.executor = None


def _stop(pool: ProcessPoolExecutor) -> None:
    # shutdown() alone waits for the trainings in progress (a minute each at full length) and
    # has no way to end them before Python 3.14's terminate_workers.
    procs = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs.values():
        if p.is_alive():
            p.terminate()
    for p in procs.values():
        p.join()


class _Pool:
    """The worker processes, shared by the Evaluators that share fitness values; stopped when
    the last of them is gone (or by close())."""

    executor: ProcessPoolExecutor | None = None


def _fitness(arch: AnyArch, train: Dataset, fit: Dataset, epochs: int, lr: float,
             seed: int) -> tuple[float, float]:
    """One candidate trained from scratch on one thread, its (accuracy, loss) on `fit`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic here and in a worker: the same values
    try:
        net = from_scratch(arch, train, epochs, lr, seed)  # the same initial draw for all
        with torch.no_grad():
            return evaluate(net, fit, arch.resolution)
    finally:
        torch.set_num_threads(threads)


_WORKER: dict[str, Any] = {}


def _start_worker(train: Dataset, epochs: int, lr: float, seed: int) -> None:
    _WORKER.update(train=train, epochs=epochs, lr=lr, seed=seed)


def _remote_fitness(job: tuple[AnyArch, Dataset]) -> tuple[float, float]:
    arch, fit = job
    w = _WORKER
    return _fitness(arch, w["train"], fit, w["epochs"], w["lr"], w["seed"])
