"""The scratch fitness (tinynas/scratch_fitness.py): each candidate trained briefly from scratch.

Checked on a tiny config (64 digits training images, 1 epoch per candidate): evolution and its
random baseline report the same number of evaluations, every architecture is trained once across
both (the trainings are counted by wrapping the training function, independently of the
Evaluator's own counters), two runs with the same seed agree, and the pipeline and CLI take the
mode, record it and reject bad values with one line and exit 2.
"""

from __future__ import annotations

import json

import pytest
import torch

import tinynas.scratch_fitness as scratch_fitness
from tinynas.budget import Budget, check_budget
from tinynas.cli import main
from tinynas.errors import TinyNASError
from tinynas.evolve import evolutionary_search, random_search
from tinynas.flexspace import FLEX_PRESETS
from tinynas.pipeline import PipelineConfig
from tinynas.scratch_fitness import ScratchEvaluator
from tinynas.space import PRESETS
from tinynas.supernet import Supernet

from .conftest import digits_slice

torch.set_num_threads(1)

RES = (8, 10, 12)
BUDGET = Budget(sram=2048, flash=7 * 1024)


@pytest.fixture(scope="module")
def tiny_data():
    return digits_slice(64, 40)


def _searches(data, monkeypatch=None, seed: int = 0, workers: int = 1):
    """Evolution and random search with scratch fitness; the trained architectures, in order."""
    trained: list = []
    if monkeypatch is not None:
        real = scratch_fitness.from_scratch

        def counting(arch, *args, **kwargs):
            trained.append(arch)
            return real(arch, *args, **kwargs)

        monkeypatch.setattr(scratch_fitness, "from_scratch", counting)
    train, val = data
    net = Supernet(PRESETS["digits"], 0.375)  # untrained: only the space's sampler
    ev = ScratchEvaluator(net, train, val, BUDGET, epochs=1, lr=1e-2, seed=seed, patch="off",
                          views=0, workers=workers)
    evo = evolutionary_search(net, ev, RES, population=4, generations=3, seed=seed)
    rev = ScratchEvaluator(net, train, val, BUDGET, epochs=1, lr=1e-2, seed=seed, patch="off",
                           views=0, shared=ev, workers=workers)
    rnd = random_search(net, rev, RES, evo.evaluations, seed=seed + 1, batch=3)
    ev.close()
    return evo, rnd, ev, rev, trained


@pytest.fixture(scope="module")
def runs(tiny_data):
    mp = pytest.MonkeyPatch()
    try:
        first = _searches(tiny_data, mp)
    finally:
        mp.undo()
    return first, _searches(tiny_data)


def test_both_searches_count_the_same_evaluations(runs):
    evo, rnd, _, _, _ = runs[0]
    assert evo.evaluations > 4  # the generations after the first added children
    assert rnd.evaluations == evo.evaluations == rnd.requested
    assert evo.fitness == rnd.fitness == "scratch" and evo.fitness_epochs == 1
    for c in evo.evaluated + rnd.evaluated:
        assert check_budget(c.arch, BUDGET, "off").fits
        assert 0.0 <= c.accuracy <= 1.0 and c.loss > 0


def test_each_architecture_is_trained_once(runs):
    evo, rnd, ev, rev, trained = runs[0]
    assert len(trained) == len(set(trained))
    both = {c.arch for c in evo.evaluated} | {c.arch for c in rnd.evaluated}
    assert set(trained) == both
    assert ev.measured + rev.measured == len(trained)
    # Random search looked up what evolution had trained instead of training it again.
    shared = {c.arch for c in evo.evaluated} & {c.arch for c in rnd.evaluated}
    assert rev.measured == rnd.evaluations - len(shared)


def test_same_seed_same_search(runs):
    (evo_a, rnd_a, *_), (evo_b, rnd_b, *_) = runs
    for a, b in ((evo_a, evo_b), (rnd_a, rnd_b)):
        assert [c.arch for c in a.evaluated] == [c.arch for c in b.evaluated]
        assert [(c.accuracy, c.loss) for c in a.evaluated] == \
            [(c.accuracy, c.loss) for c in b.evaluated]


def test_workers_change_nothing_but_the_time(tiny_data, runs):
    """Candidates trained in two worker processes give the very same search as one at a time
    here: the same draws, the same fitness values to the last bit, the same counts."""
    evo_a, rnd_a, ev_a, rev_a, _ = runs[0]
    evo_b, rnd_b, ev_b, rev_b, _ = _searches(tiny_data, workers=2)
    for a, b in ((evo_a, evo_b), (rnd_a, rnd_b)):
        assert [(c.arch, c.accuracy, c.loss) for c in a.evaluated] == \
            [(c.arch, c.accuracy, c.loss) for c in b.evaluated]
    assert (ev_a.measured, rev_a.measured) == (ev_b.measured, rev_b.measured)
    assert ev_b._pool.executor is None  # closed: no worker left behind


def test_the_fitness_is_training_not_the_supernets_weights(tiny_data, runs):
    """A supernet with other (random) weights gives the same fitness values: none are read."""
    evo = runs[0][0]
    train, val = tiny_data
    torch.manual_seed(123)
    other = Supernet(PRESETS["digits"], 0.375)
    ev = ScratchEvaluator(other, train, val, BUDGET, epochs=1, lr=1e-2, seed=0, patch="off",
                          views=0)
    for c in evo.evaluated[:3]:
        assert ev(c.arch).accuracy == c.accuracy and ev(c.arch).loss == c.loss


def test_sharing_needs_the_same_training(tiny_data):
    train, val = tiny_data
    net = Supernet(PRESETS["digits"], 0.375)
    ev = ScratchEvaluator(net, train, val, BUDGET, epochs=1, lr=1e-2, views=0)
    with pytest.raises(ValueError, match="same data, epochs"):
        ScratchEvaluator(net, train, val, BUDGET, epochs=2, lr=1e-2, views=0, shared=ev)
    with pytest.raises(ValueError, match="epochs >= 1"):
        ScratchEvaluator(net, train, val, BUDGET, epochs=0, lr=1e-2, views=0)
    with pytest.raises(ValueError, match="workers >= 1"):
        ScratchEvaluator(net, train, val, BUDGET, epochs=1, lr=1e-2, views=0, workers=0)


def test_auto_fitness_is_scratch_on_the_flexible_space_only():
    assert PipelineConfig().fitness == "auto"
    assert PipelineConfig().resolve(FLEX_PRESETS["mnist1d"]).fitness == "scratch"
    assert PipelineConfig().resolve(PRESETS["digits"]).fitness == "inherited"
    chosen = PipelineConfig(fitness="inherited")
    assert chosen.resolve(FLEX_PRESETS["mnist1d"]).fitness == "inherited"
    with pytest.raises(TinyNASError, match="resolve it"):
        PipelineConfig().search_shape()
    with pytest.raises(TinyNASError, match="--scratch-epochs"):
        PipelineConfig(scratch_epochs=0).resolve(FLEX_PRESETS["mnist1d"])


def test_search_shape_defaults_by_mode():
    assert PipelineConfig(fitness="inherited").search_shape() == (40, 15)
    small = PipelineConfig(fitness="scratch").search_shape()
    assert small[0] * small[1] < 40 * 15
    assert PipelineConfig(fitness="scratch", population=7).search_shape() == (7, small[1])


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    return err


def test_cli_rejects_a_bad_fitness(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:  # argparse's own check of the choices
        main(["pipeline", "--quick", "-q", "--fitness", "weights", "-o", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--fitness" in err and "weights" in err and "Traceback" not in err
    err = _error(capsys, ["pipeline", "--quick", "-q", "--fitness", "scratch",
                          "--fitness-epochs", "0", "-o", str(out)])
    assert "fitness epochs 0" in err
    err = _error(capsys, ["pipeline", "--quick", "-q", "--fitness", "scratch",
                          "--scratch-epochs", "0", "-o", str(out)])
    assert "--scratch-epochs" in err
    err = _error(capsys, ["pipeline", "--quick", "-q", "--fitness", "scratch",
                          "--workers", "0", "-o", str(out)])
    assert "workers 0" in err
    assert not out.exists()


def test_pipeline_with_scratch_fitness_trains_no_supernet(tmp_path):
    out = tmp_path / "run"
    assert main(["pipeline", "--quick", "-q", "--fitness", "scratch", "--population", "4",
                 "-o", str(out)]) == 0
    assert not (out / "supernet.pt").exists()
    search = json.loads((out / "search.json").read_text())
    assert search["evolution"]["fitness"] == search["random"]["fitness"] == "scratch"
    assert search["evolution"]["fitness_epochs"] == 1  # --quick's
    assert search["evolution"]["evaluations"] == search["random"]["evaluations"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fitness"] == "scratch" and summary["config"]["fitness"] == "scratch"
    assert summary["finetune"]["kept"] == "scratch" and summary["finetune"]["val_inherited"] \
        is None
    assert 0.0 <= summary["int8_accuracy"] <= 1.0
