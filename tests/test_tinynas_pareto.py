"""Multi-objective search (issue 14 point 3): the front is exactly the non-dominated set of what
was evaluated, the same seed gives the same front, and a picked point deploys to exactly the
SRAM and flash the front promised (through `tinynas search --pareto` and `tinynas deploy
--front --pick`)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tinynas.budget import Budget
from tinynas.cli import main
from tinynas.data import load_dataset, split
from tinynas.evolve import Candidate, Evaluator
from tinynas.flexspace import FLEX_PRESETS
from tinynas.pareto import dominates, front, pareto_search
from tinynas.train import TrainConfig, train_supernet

SPACE = replace(FLEX_PRESETS["mnist1d"], resolutions=(24, 40), width_mults=(0.5,))
BUDGET = Budget(1024, 4096)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A supernet trained for one epoch on a slice of MNIST-1D, saved as `tinynas train`
    saves it."""
    data = load_dataset("mnist1d")
    parts = split(data, 0.2, 0.15, 0)
    train = parts.train.subset(np.arange(600), "train")
    val = parts.val.subset(np.arange(200), "val")
    out = tmp_path_factory.mktemp("supernet")
    cfg = TrainConfig(0.5, SPACE.resolutions, largest_epochs=1, epochs=0, seed=0)
    result = train_supernet(SPACE, train, val, cfg, out, progress=False)
    return result.supernet, train, val, out / "supernet.pt"


def _cand(i, acc, sram, flash, macs):
    return Candidate(None, acc, 0.0, sram, flash, macs, i)  # type: ignore[arg-type]


def test_front_is_the_non_dominated_set():
    rng = np.random.default_rng(0)
    cands = [_cand(i, float(rng.integers(0, 5)) / 4, int(rng.integers(1, 6)),
                   int(rng.integers(1, 6)), int(rng.integers(1, 6))) for i in range(80)]
    got = front(cands)
    brute = [c for c in cands if not any(dominates(o, c) for o in cands)]
    # Duplicated objectives keep one representative each.
    keys = {(c.accuracy, c.sram, c.flash, c.macs) for c in brute}
    assert {(c.accuracy, c.sram, c.flash, c.macs) for c in got} == keys
    assert len(got) == len(keys)
    assert not any(dominates(a, b) for a in got for b in got)


def test_search_front_and_determinism(trained):
    net, train, val, _ = trained
    fronts = []
    for _ in range(2):
        ev = Evaluator(net, train, val, BUDGET, views=0, calib_batches=1)
        r = pareto_search(net, ev, SPACE.resolutions, evaluations=30, population=10, seed=3)
        assert r.evaluations == 30 and len({c.arch for c in r.evaluated}) == 30
        assert all(c.sram <= BUDGET.sram and c.flash <= BUDGET.flash for c in r.evaluated)
        assert r.front == front(r.evaluated) and r.front
        fronts.append([(c.arch, c.accuracy) for c in r.front])
    assert fronts[0] == fronts[1]


def test_picked_point_deploys_as_promised(trained, tmp_path, capsys):
    _, _, _, ckpt = trained
    out = tmp_path / "search"
    assert main(["search", "--supernet", str(ckpt), "--dataset", "mnist1d", "--sram", "1KB",
                 "--flash", "4KB", "--pareto", "--evaluations", "20", "--population", "8",
                 "--fitness-views", "0", "-q", "-o", str(out)]) == 0
    doc = json.loads((out / "front.json").read_text())
    assert (out / "front.png").stat().st_size > 0 and doc["front"]
    pick = len(doc["front"]) - 1
    assert main(["deploy", "--supernet", str(ckpt), "--dataset", "mnist1d", "--front",
                 str(out / "front.json"), "--pick", str(pick), "--finetune-epochs", "0",
                 "--quant", "minmax", "-q", "-o", str(tmp_path / "d")]) == 0
    d = json.loads((tmp_path / "d" / "deploy.json").read_text())
    point = doc["front"][pick]
    assert (d["sram_bytes"], d["flash_bytes"]) == (point["sram_bytes"], point["flash_bytes"])
    assert d["front_point"]["as_promised"] is True
    capsys.readouterr()
    assert main(["deploy", "--supernet", str(ckpt), "--dataset", "mnist1d", "--front",
                 str(out / "front.json"), "--pick", "999", "-q", "-o",
                 str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no point 999" in err and "\n" not in err
    assert not (tmp_path / "e").exists()
