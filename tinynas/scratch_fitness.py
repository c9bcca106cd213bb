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
"""

from __future__ import annotations

import torch

from .arch import Arch
from .budget import Budget
from .data import Dataset, distorted
from .evolve import AnyArch, Evaluator
from .finish import finetune
from .flexnet import FlexNet
from .subnet import SubNet
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
                 shared: ScratchEvaluator | None = None):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"scratch fitness needs a whole number of epochs >= 1, got "
                             f"{epochs!r}")
        if shared is not None and (shared.epochs, shared.lr, shared.seed, shared.train) != (
                epochs, lr, seed, train):
            raise ValueError("a shared ScratchEvaluator must train with the same data, "
                             "epochs, learning rate and seed")
        super().__init__(supernet, train, val, budget, patch, views=views, shared=shared)
        self.train, self.epochs, self.lr, self.seed = train, epochs, lr, seed

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        """(val accuracy, val cross-entropy) after `epochs` epochs from scratch."""
        torch.manual_seed(self.seed)  # the same initial draw for every candidate
        fresh = SubNet(arch) if isinstance(arch, Arch) else FlexNet(arch)
        net = finetune(fresh, arch, self.train, self.epochs, self.lr, self.seed)
        r = arch.resolution
        if r not in self.fitness_sets:
            self.fitness_sets[r] = distorted(self.val, r, self.views)
        with torch.no_grad():
            return evaluate(net, self.fitness_sets[r], r)
