"""Budget-aware supernet training (tinynas/train_pool.py) and the re-ranking of the search's
best few by short from-scratch training (tinynas/rerank.py)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from tinynas import rerank as rerank_module
from tinynas.budget import Budget, check_budget
from tinynas.data import load_digits, split
from tinynas.evolve import Candidate, SearchResult
from tinynas.flexnet import FlexSupernet
from tinynas.flexspace import FLEX_PRESETS
from tinynas.train import TrainConfig, train_supernet
from tinynas.train_pool import MIN_POOL, draw, fitting_pool

torch.set_num_threads(1)

SPACE = FLEX_PRESETS["digits-flex"]
RES = (8, 10)
# Tight enough that most uniform draws at w0.5 do not fit, loose enough for a full pool.
BUDGET = Budget(sram=1024, flash=4096)
SIZE = 12  # pool entries per resolution here (the pipeline's: POOL); MIN_POOL or more


@pytest.fixture(scope="module")
def supernet() -> FlexSupernet:
    return FlexSupernet(SPACE, 0.5)


def test_pool_holds_only_distinct_fitting_subnets_and_is_seeded(supernet):
    pools = fitting_pool(supernet, RES, asdict(BUDGET), seed=3, size=SIZE)
    again = fitting_pool(supernet, RES, asdict(BUDGET), seed=3, size=SIZE)
    other = fitting_pool(supernet, RES, asdict(BUDGET), seed=4, size=SIZE)
    assert pools == again and pools != other
    assert SIZE >= MIN_POOL  # a full pool is used, not dropped for uniform sampling
    for r in RES:
        assert len(pools[r]) == SIZE and len(set(pools[r])) == len(pools[r])
        assert all(a.resolution == r and check_budget(a, BUDGET, "auto").fits
                   for a in pools[r])
    # Uniform draws at this budget mostly do not fit: the pool is a real restriction.
    rng = np.random.default_rng(0)
    uniform = [supernet.sample(rng, 10) for _ in range(60)]
    assert sum(check_budget(a, BUDGET, "auto").fits for a in uniform) < 45


def test_a_budget_nothing_fits_keeps_uniform_sampling(supernet):
    pools = fitting_pool(supernet, (8,), asdict(Budget(sram=16, flash=16)), seed=0, size=SIZE)
    assert pools == {8: []}
    a = draw(pools, supernet, np.random.default_rng(1), 8)
    b = supernet.sample(np.random.default_rng(1), 8)
    assert a == b


def test_training_with_a_budget_steps_only_through_fitting_subnets(monkeypatch):
    """Every subnet the sandwich samples besides the largest and the smallest comes from the
    pool; the same settings give the same weights."""
    parts = split(load_digits(), seed=0)
    train = parts.train.subset(np.arange(128), "t")
    val = parts.val.subset(np.arange(32), "v")
    seen: list = []
    import tinynas.train as train_module
    import tinynas.train_pool as pool_module

    monkeypatch.setattr(pool_module, "POOL", SIZE)

    def spy(pools, net, rng, r):
        a = draw(pools, net, rng, r)
        seen.append((a, pools.get(r, [])))
        return a

    monkeypatch.setattr(train_module, "draw", spy)
    cfg = TrainConfig(0.5, RES, largest_epochs=1, epochs=1, batch=64, subnets=3,
                      budget=asdict(BUDGET), seed=0)
    one = train_supernet(SPACE, train, val, cfg, progress=False)
    assert seen and all(pool and a in pool for a, pool in seen)
    two = train_supernet(SPACE, train, val, cfg, progress=False)
    for p, q in zip(one.supernet.parameters(), two.supernet.parameters()):
        assert torch.equal(p, q)


def _candidates(supernet, n: int) -> list[Candidate]:
    rng = np.random.default_rng(0)
    out = []
    while len(out) < n:
        a = supernet.sample(rng, 8)
        v = check_budget(a, BUDGET, "auto")
        if v.fits and all(c.arch != a for c in out):
            out.append(Candidate(a, 0.9 - 0.01 * len(out), 0.1, v.peak_sram or 0, v.flash,
                                 v.macs or 0, len(out)))
    return out


def test_rerank_keeps_the_best_trained_of_the_top_few(supernet, monkeypatch):
    """The winner is the candidate whose short training scores best, among the `top` best by
    fitness; candidates below the top are never trained."""
    cands = _candidates(supernet, 5)
    result = SearchResult("evolution", cands[0], list(reversed(cands)))
    trained_scores = {cands[0].arch: 0.5, cands[1].arch: 0.7, cands[2].arch: 0.6}
    trained: list = []

    class Fake:  # what rerank reads of a trained network: only which architecture it is
        def __init__(self, arch):
            self.arch_for_test = arch

    def fake_from_scratch(arch, train, epochs, lr, seed):
        trained.append(arch)
        return Fake(arch)

    monkeypatch.setattr(rerank_module, "from_scratch", fake_from_scratch)
    monkeypatch.setattr(rerank_module, "accuracy",
                        lambda net, data, r: trained_scores[net.arch_for_test])
    parts = split(load_digits(), seed=0)
    out = rerank_module.rerank(result, parts.train, parts.val.subset(np.arange(16), "v"),
                               top=3, epochs=2, lr=1e-2, seed=0, views=0)
    assert out.best is cands[1]
    assert trained == [c.arch for c in cands[:3]]
    assert [r["trained"] for r in out.rows] == [0.5, 0.7, 0.6]


def test_rerank_off_returns_the_search_best(supernet):
    cands = _candidates(supernet, 3)
    result = SearchResult("evolution", cands[0], cands)
    parts = split(load_digits(), seed=0)
    for top, epochs in ((1, 30), (6, 0)):
        out = rerank_module.rerank(result, parts.train, parts.val, top=top, epochs=epochs,
                                   lr=1e-2, seed=0, views=0)
        assert out.best is cands[0] and out.rows == []


def test_shortlist_spreads_over_the_resolutions(supernet):
    """The candidates to train: each resolution's best share, the rest by fitness; never a
    subnet twice, best fitness first. With scratch fitness, the best by fitness alone."""
    rng = np.random.default_rng(2)
    cands: list[Candidate] = []
    fitness = {8: [0.90, 0.89, 0.88, 0.87], 10: [0.70, 0.60], 12: [0.50]}
    for r, values in fitness.items():
        for f in values:
            while True:
                a = supernet.sample(rng, r)
                if all(c.arch != a for c in cands):
                    break
            cands.append(Candidate(a, f, 0.1, 0, 0, 0, len(cands)))
    picked = rerank_module.shortlist(cands, 5)
    assert [c.accuracy for c in picked] == [0.90, 0.89, 0.88, 0.70, 0.50]
    assert [c.accuracy for c in rerank_module.shortlist(cands, 3)] == [0.90, 0.70, 0.50]
    assert [c.accuracy for c in rerank_module.shortlist(cands, 1)] == [0.90]
    assert len(rerank_module.shortlist(cands, 20)) == len(cands)
    # Scratch fitness compares across resolutions: the best by fitness, wherever they are
    best = rerank_module.shortlist(cands, 5, "scratch")
    assert [c.accuracy for c in best] == [0.90, 0.89, 0.88, 0.87, 0.70]
    assert [c.accuracy for c in rerank_module.shortlist(cands, 1, "scratch")] == [0.90]
