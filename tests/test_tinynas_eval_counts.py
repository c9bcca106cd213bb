"""Evolution and random search count evaluations alike, and random search makes as many as asked.

An evaluation is a distinct admitted architecture whose fitness the search obtained (evolve.py's
docstring); budget rejections are not evaluations. The counts are checked against the calls of
the Evaluator's `measure` (recorded by a subclass), and the admitted subnets of a small space
against a brute-force listing written here, independently of tinynas/space_index.py.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import numpy as np
import pytest
import torch

from tinynas.arch import Arch
from tinynas.budget import Budget, arch_cost, check_budget
from tinynas.errors import TinyNASError
from tinynas.evolve import AnyArch, Evaluator, _child, evolutionary_search, random_search
from tinynas.search_report import log_line
from tinynas.space import PRESETS, SearchSpace
from tinynas.space_index import SubnetIndex
from tinynas.supernet import Supernet

from .conftest import digits_slice

torch.set_num_threads(1)  # tiny networks: extra threads only contend

DIGITS = PRESETS["digits"]


class Recording(Evaluator):
    """The real fitness (inherited weights, BN recalibrated, val accuracy), each call recorded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[AnyArch] = []

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        self.calls.append(arch)
        return super().measure(arch)


class MacsRecording(Evaluator):
    """A stand-in fitness (MACs, a fixed function of the architecture), each call recorded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[AnyArch] = []

    def measure(self, arch: AnyArch) -> tuple[float, float]:
        self.calls.append(arch)
        return arch_cost(arch).macs / 1e6, 0.0


@pytest.fixture(scope="module")
def tiny_data():
    return digits_slice(64, 40)


# A budget under which some random subnets of w0.375 at r 8-12 fit and many do not, so that
# the searches meet rejections and the counts have something to leave out.
RES = (8, 10, 12)
BUDGET = Budget(sram=2048, flash=7 * 1024)


def _recording(net: Supernet, data, **kw) -> Recording:
    train, val = data
    return Recording(net, train, val, BUDGET, "off", calib_batches=1, batch=32, views=0, **kw)


def _admitted_once(archs: list[AnyArch], budget: Budget) -> bool:
    return len(set(archs)) == len(archs) and all(check_budget(a, budget).fits for a in archs)


def test_evolution_reports_the_distinct_subnets_it_measured(tiny_data):
    torch.manual_seed(0)
    net = Supernet(DIGITS, 0.375)
    ev = _recording(net, tiny_data)
    evo = evolutionary_search(net, ev, RES, population=6, generations=3, seed=1)
    assert evo.rejected > 0, "the budget should reject some samples, or the test proves less"
    assert _admitted_once(ev.calls, BUDGET)
    assert evo.evaluations == evo.measured == len(ev.calls)
    assert [c.arch for c in evo.evaluated] == ev.calls
    assert evo.to_dict()["evaluations"] == len(ev.calls)
    assert evo.generations[-1]["evaluations"] == len(ev.calls)
    assert evo.best.accuracy == max(c.accuracy for c in evo.evaluated)


def test_random_search_measures_exactly_evolutions_count(tiny_data):
    torch.manual_seed(0)
    net = Supernet(DIGITS, 0.375)
    ev = _recording(net, tiny_data)
    evo = evolutionary_search(net, ev, RES, population=6, generations=3, seed=1)
    n = len(ev.calls)

    alone = _recording(net, tiny_data)  # its own fitness values: every evaluation is measured
    rnd = random_search(net, alone, RES, evo.evaluations, seed=2)
    assert len(alone.calls) == rnd.evaluations == rnd.measured == n == rnd.requested
    assert _admitted_once(alone.calls, BUDGET) and not rnd.exhausted
    assert rnd.to_dict()["evaluations"] == evo.to_dict()["evaluations"] == n

    shared = _recording(net, tiny_data, shared=ev)  # evolution's values are looked up instead
    rnd2 = random_search(net, shared, RES, evo.evaluations, seed=2)
    assert [c.arch for c in rnd2.evaluated] == [c.arch for c in rnd.evaluated]
    assert rnd2.evaluations == n and rnd2.measured == len(shared.calls)
    reused = {c.arch for c in rnd2.evaluated} & set(ev.calls)
    assert len(shared.calls) == n - len(reused)
    assert not set(shared.calls) & set(ev.calls)


def test_the_log_lines_print_the_same_figure(tiny_data):
    torch.manual_seed(0)
    net = Supernet(DIGITS, 0.375)
    ev = _recording(net, tiny_data)
    evo = evolutionary_search(net, ev, RES, population=4, generations=2, seed=0)
    rev = _recording(net, tiny_data, shared=ev)
    rnd = random_search(net, rev, RES, evo.evaluations, seed=1)
    n = len(ev.calls)
    assert log_line(evo).startswith(f"evolution, {n} evaluations: ")
    assert log_line(rnd, evo).startswith(f"random search, the same {n} evaluations as evolution")
    fewer = replace(rnd, evaluated=rnd.evaluated[:-1], note="ran dry")
    line = log_line(fewer, evo)
    assert f"{n - 1} evaluations, evolution {n}" in line and "(ran dry)" in line


# -- a space small enough to list by hand ------------------------------------------------------

# Three stages, kernels {3}, expands {2, 3}: a stage of depth 1 or 2 has 2 + 4 options, the last
# stage (depth 1) 2, so 6 * 6 * 2 = 72 subnets per resolution.
SMALL = replace(DIGITS, name="small", resolutions=(8, 10), kernels=(3,), expands=(2, 3))


def _every_subnet(space: SearchSpace, w: float, resolutions: tuple[int, ...]) -> list[Arch]:
    per_stage = []
    for s in range(len(space.stage_bases)):
        per_stage.append([blocks for d in space.depth_choices(s)
                          for blocks in product(product(space.kernels, space.expands),
                                                repeat=d)])
    return [space.build(w, r, [len(p) for p in picks], [[k for k, _ in p] for p in picks],
                        [[e for _, e in p] for p in picks])
            for r in resolutions for picks in product(*per_stage)]


@pytest.fixture(scope="module")
def small_admitted():
    """A budget at the flash of the median subnet: about half the 144 fit."""
    every = _every_subnet(SMALL, 0.375, SMALL.resolutions)
    assert len(every) == 144
    flash = sorted(arch_cost(a).flash_bytes for a in every)[len(every) // 2]
    budget = Budget(sram=1 << 20, flash=flash)
    admitted = {a for a in every if check_budget(a, budget).fits}
    assert 0 < len(admitted) < len(every)
    return budget, admitted


def _small_random(budget: Budget, n: int, seed: int = 0, tries: int = 3, **kw):
    net = Supernet(SMALL, 0.375)
    ev = MacsRecording(net, None, None, budget, "off")
    return random_search(net, ev, SMALL.resolutions, n, seed=seed, tries=tries, **kw), ev


def test_random_search_walks_the_space_when_draws_run_dry(small_admitted):
    """Three draws in a row rarely all hit new admitted subnets for long: the walk takes over
    and still reaches every admitted subnet, each once."""
    budget, admitted = small_admitted
    rnd, ev = _small_random(budget, len(admitted))
    assert rnd.evaluations == len(ev.calls) == len(admitted)
    assert set(ev.calls) == admitted and len(set(ev.calls)) == len(ev.calls)
    assert not rnd.exhausted and "walk through all 144 subnets" in rnd.note


def test_random_search_says_when_the_space_runs_out(small_admitted):
    budget, admitted = small_admitted
    rnd, ev = _small_random(budget, len(admitted) + 5)
    assert rnd.evaluations == len(ev.calls) == len(admitted) and rnd.requested == len(admitted) + 5
    assert rnd.exhausted and f"admits only {len(admitted)} distinct subnets" in rnd.note


def test_a_space_too_large_to_walk_stops_short_and_says_so(small_admitted):
    budget, admitted = small_admitted
    rnd, _ = _small_random(budget, len(admitted), tries=1, walk_limit=100)
    assert rnd.evaluations < len(admitted) and not rnd.exhausted
    assert "more than the 100 it may list" in rnd.note and "stopped short" in rnd.note


def test_random_search_is_deterministic_for_a_seed(small_admitted):
    budget, admitted = small_admitted
    a, _ = _small_random(budget, len(admitted) - 3, seed=5)
    b, _ = _small_random(budget, len(admitted) - 3, seed=5)
    c, _ = _small_random(budget, len(admitted) - 3, seed=6)
    assert [x.arch for x in a.evaluated] == [x.arch for x in b.evaluated]
    assert [x.arch for x in a.evaluated] != [x.arch for x in c.evaluated]


def test_random_search_needs_a_positive_count(small_admitted):
    budget, _ = small_admitted
    for bad in (0, -3, 2.5, True):
        with pytest.raises(TinyNASError, match="whole number of evaluations"):
            _small_random(budget, bad)  # type: ignore[arg-type]


def test_the_index_numbers_every_subnet_once():
    index = SubnetIndex(SMALL, 0.375, SMALL.resolutions)
    archs = [index[i] for i in range(len(index))]
    assert set(archs) == set(_every_subnet(SMALL, 0.375, SMALL.resolutions))
    assert len(set(archs)) == len(archs) == 144
    # The digits space at w0.25, r 8 and 10: stages of (2 * 3) + (2 * 3)^2 = 42 options, the last
    # of 6, so 42 * 42 * 6 * 2 subnets, all distinct, all in the space; every draw is one of them.
    big = SubnetIndex(DIGITS, 0.25, (8, 10))
    assert len(big) == 42 * 42 * 6 * 2
    listed = {big[i] for i in range(len(big))}
    assert len(listed) == len(big)
    assert all(DIGITS.contains(big[i]) for i in range(0, len(big), 97))
    rng = np.random.default_rng(0)
    net = Supernet(DIGITS, 0.25)
    assert all(net.sample(rng, int(rng.choice([8, 10]))) in listed for _ in range(300))
    with pytest.raises(IndexError):
        big[len(big)]



def test_a_single_parent_is_mutated_where_crossover_needs_two(small_admitted):
    """Where random draws find one admitted subnet (the smallest, the fallback of a tight
    budget), evolution starts from a population of one: its crossover children must come from
    mutating that one parent (the MBConv-only space at 512 B crashed in rng.choice here)."""
    budget, admitted = small_admitted
    net = Supernet(SMALL, 0.375)
    ev = MacsRecording(net, None, None, budget, "off")
    parent = min(admitted, key=lambda a: arch_cost(a).flash_bytes)
    ev.reserve(parent)
    (only,) = ev.evaluate_pending()
    child, _ = _child(SMALL, [only], ev, np.random.default_rng(0), SMALL.resolutions, 50,
                      mutate=False, mutate_prob=0.5)
    assert child is not None and child != parent and child in admitted
