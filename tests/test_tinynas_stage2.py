"""Stage two in process: supernet training with checkpoint/resume, and the searches.

The search tests score subnets with a stand-in fitness (a fixed function of the architecture),
so that what they check (admission, no duplicates, determinism, evolution beating random
search, ending on tight budgets) depends on the search alone and runs in seconds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tinynas.budget import Budget, arch_cost, check_budget
from tinynas.data import load_digits, split
from tinynas.errors import TinyNASError
from tinynas.evolve import AnyArch, Evaluator, evolutionary_search, random_search
from tinynas.flexnet import FlexSupernet
from tinynas.flexspace import FLEX_PRESETS
from tinynas.space import PRESETS
from tinynas.supernet import Supernet
from tinynas.train import CHECKPOINT, TrainConfig, train_supernet

from .conftest import digits_slice

torch.set_num_threads(1)  # tiny networks: extra threads only contend (and crawl under xdist)

SPACE = PRESETS["digits"]
RES = (8, 10, 12)


@pytest.fixture(scope="module")
def small_data():
    return digits_slice(160, 60)


CFG = TrainConfig(width_mult=0.25, resolutions=(8, 10), largest_epochs=1, epochs=2, batch=32)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("stop", [1, 2])  # at the phase boundary, and inside phase two
def test_resumed_training_equals_uninterrupted(tmp_path, small_data, stop):
    train, val = small_data
    whole = train_supernet(SPACE, train, val, CFG, tmp_path / "a", progress=False)
    part = train_supernet(SPACE, train, val, CFG, tmp_path / "b", progress=False,
                          stop_after=stop)
    assert len(part.history) == stop and (tmp_path / "b" / CHECKPOINT).exists()
    resumed = train_supernet(SPACE, train, val, CFG, tmp_path / "b", progress=False)
    assert resumed.resumed_from == stop
    assert [h.loss for h in resumed.history] == [h.loss for h in whole.history]
    assert _same_weights(whole.supernet, resumed.supernet)
    assert not _same_weights(whole.supernet, part.supernet)


def test_resume_with_other_settings_is_refused(tmp_path, small_data):
    train, val = small_data
    train_supernet(SPACE, train, val, CFG, tmp_path, progress=False, stop_after=1)
    other = replace(CFG, epochs=5, lr=0.02)
    with pytest.raises(TinyNASError, match=r"other settings.*epochs: 2 then, 5 now.*lr"):
        train_supernet(SPACE, train, val, other, tmp_path, progress=False)
    with pytest.raises(TinyNASError, match="exists"):
        train_supernet(SPACE, train, val, CFG, tmp_path, progress=False, resume=False)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(TinyNASError, match="not a tinynas checkpoint"):
        train_supernet(SPACE, train, val, CFG, tmp_path, progress=False)


def test_training_learns():
    """Four epochs already beat chance (10%) by far: the loop trains."""
    parts = split(load_digits(), seed=0)
    cfg = replace(CFG, largest_epochs=4, epochs=0, resolutions=(8,), batch=64)
    result = train_supernet(SPACE, parts.train, parts.val, cfg, progress=False)
    assert result.history[-1].loss < 0.6 * result.history[0].loss
    assert result.history[-1].val_largest > 0.5


# -- searches, with a stand-in fitness ---------------------------------------------------------

class MacsFitness(Evaluator):
    """Fitness = MACs (a fixed function of the architecture); counts measurements."""

    measured = 0

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        MacsFitness.measured += 1
        return arch_cost(arch).macs / 1e6, 0.0


def _search(budget: Budget, seed: int = 0, population: int = 12, generations: int = 5,
            tries: int = 300, patch: str = "off"):
    net = Supernet(SPACE, 0.375)
    ev = MacsFitness(net, None, None, budget, patch)  # type: ignore[arg-type]
    return evolutionary_search(net, ev, RES, population=population, generations=generations,
                               seed=seed, tries=tries), net, ev


# Planning with patches is about a hundred times slower than with whole tensors, so most
# searches here price whole tensors only; one asks for patches where whole tensors do not fit.
# SRAM binds at 1 KB (fused inverted-residual blocks let most of the 2 KB subnets fit), so the
# searches below have something to find.
BUDGET = Budget(sram=1024, flash=7 * 1024)


@pytest.mark.parametrize("patch, population", [("off", 12), ("auto", 5)])
def test_evolution_admits_only_fitting_subnets_once_each(patch, population):
    budget = BUDGET if patch == "off" else Budget(sram=1536, flash=7 * 1024)
    result, net, _ = _search(budget, population=population,
                             generations=5 if patch == "off" else 2, patch=patch)
    archs = [c.arch for c in result.evaluated]
    assert len(set(archs)) == len(archs) >= population
    for c in result.evaluated:
        v = check_budget(c.arch, budget, patch)
        cost = arch_cost(c.arch, "auto" if v.patched else "off")
        assert v.fits and c.sram == cost.peak_sram <= budget.sram
        assert c.flash == cost.flash_bytes <= budget.flash and c.macs == cost.macs
        assert c.arch.width_mult == 0.375 and c.arch.resolution in RES
        assert c.patched == v.patched == (arch_cost(c.arch).peak_sram > budget.sram)
        net.check(c.arch)
    if patch == "auto":
        assert any(c.patched for c in result.evaluated), "this budget needs patches sometimes"
    assert result.best.accuracy == max(c.accuracy for c in result.evaluated)
    best = [g["best"] for g in result.generations]
    assert best == sorted(best)  # elitism: the best never gets worse


def test_evolution_is_deterministic_and_seeded():
    a, _, _ = _search(BUDGET, seed=3)
    b, _, _ = _search(BUDGET, seed=3)
    c, _, _ = _search(BUDGET, seed=4)
    assert [x.arch for x in a.evaluated] == [x.arch for x in b.evaluated]
    assert a.best.arch == b.best.arch
    assert [x.arch for x in a.evaluated] != [x.arch for x in c.evaluated]


def test_evolution_beats_random_search_with_the_same_evaluations():
    wins = 0
    for seed in range(3):
        evo, net, ev = _search(BUDGET, seed=seed)
        rev = MacsFitness(net, None, None, BUDGET, "off", shared=ev)  # type: ignore[arg-type]
        MacsFitness.measured = 0
        rnd = random_search(net, rev, RES, len(evo.evaluated), seed=seed + 100)
        assert len(rnd.evaluated) == len(evo.evaluated)
        assert MacsFitness.measured <= len(rnd.evaluated)  # shared fitness is not recomputed
        wins += evo.best.accuracy > rnd.best.accuracy
    assert wins >= 2


def test_a_shared_fitness_cache_needs_the_same_views():
    net = Supernet(SPACE, 0.375)
    ev = Evaluator(net, None, None, BUDGET, "off", views=8)  # type: ignore[arg-type]
    Evaluator(net, None, None, BUDGET, "off", views=8, shared=ev)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same val images and views"):
        Evaluator(net, None, None, BUDGET, "off", views=0, shared=ev)  # type: ignore[arg-type]


def test_budget_below_the_smallest_subnet_is_a_clear_error():
    smallest = SPACE.extreme(0.375, RES[0], largest=False)
    flash = arch_cost(smallest).flash_bytes
    with pytest.raises(TinyNASError, match=r"admits no subnet.*smallest subnet.*flash"):
        _search(Budget(sram=1 << 20, flash=flash - 1))
    with pytest.raises(TinyNASError, match=r"admits no subnet.*over on sram"):
        _search(Budget(sram=64, flash=1 << 20), patch="auto")


def test_flexible_space_whose_smallest_is_over_still_searches():
    """The flexible space's "smallest" takes each slot's first kind (a convolution); at MNIST-1D
    width 1 that is 2.8 KB of flash, while 18 of the 900 subnets stage one sampled there
    (depthwise-separable layers) fit 2 KB. The search must run there (the 512 B / 2 KB
    benchmark's seed 2 stopped with "admits no subnet") and never evaluate an over-budget
    subnet as its fallback."""
    space = replace(FLEX_PRESETS["mnist1d"], resolutions=(24, 40), width_mults=(1.0,))
    net = FlexSupernet(space, 1.0)
    budget = Budget(sram=512, flash=2048)
    ev = MacsFitness(net, None, None, budget, "off")  # type: ignore[arg-type]
    assert not ev.admit(space.extreme(1.0, 24, largest=False)).fits
    result = evolutionary_search(net, ev, space.resolutions, population=4, generations=2,
                                 seed=0, tries=20)
    assert result.evaluated
    assert all(c.sram <= budget.sram and c.flash <= budget.flash for c in result.evaluated)


def test_tight_budget_ends_early_instead_of_looping():
    """A budget that admits only a handful of subnets: the search stops and says why."""
    smallest = SPACE.extreme(0.375, RES[0], largest=False)
    cost = arch_cost(smallest)
    budget = Budget(sram=cost.peak_sram, flash=cost.flash_bytes + 64)
    result, _, _ = _search(budget, population=30, generations=4, tries=60)
    assert 1 <= len(result.evaluated) < 30
    assert "ended early" in result.note
    assert all(c.flash <= budget.flash and c.sram <= budget.sram for c in result.evaluated)
