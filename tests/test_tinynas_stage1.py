"""Stage one (search-space optimisation) and the `tinynas` command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tinynas.budget import Budget, arch_cost
from tinynas.cli import main, parse_bytes, parse_count
from tinynas.errors import TinyNASError
from tinynas.flexspace import FLEX_PRESETS
from tinynas.space import PRESETS
from tinynas.stage1 import ConfigResult, StageOneResult, _bootstrap, run_stage_one
from tinynas.stage1_report import table, write

# A smaller digits grid (the lowest, next and middle resolutions; the lowest, middle and highest
# widths) keeps these tests quick; the sweep code is the same.
SPACE = replace(PRESETS["digits"], resolutions=(8, 10, 12), width_mults=(0.25, 0.5, 0.75))
BUDGET = Budget(2048, 8192)


def _key(r: StageOneResult) -> list:
    return [(c.width_mult, c.resolution, c.macs, c.rejected, c.ci, c.p_best) for c in r.configs]


def test_the_test_grid_is_part_of_the_digits_preset():
    assert set(SPACE.configs) < set(PRESETS["digits"].configs)
    assert SPACE.smallest() == PRESETS["digits"].smallest()


def test_stage_one_is_deterministic_for_a_seed():
    a = run_stage_one(SPACE, BUDGET, samples=30, seed=3, workers=1)
    b = run_stage_one(SPACE, BUDGET, samples=30, seed=3, workers=2)
    c = run_stage_one(SPACE, BUDGET, samples=30, seed=4, workers=1)
    assert _key(a) == _key(b)
    assert _key(a) != _key(c)
    assert a.choice is not None and a.choice.label == b.choice.label


def test_every_kept_subnet_fits_and_the_choice_has_the_highest_interval():
    r = run_stage_one(SPACE, BUDGET, samples=40, seed=0, workers=1)
    for c in r.configs:
        assert c.fits + sum(c.rejected.values()) == 40
    assert r.choice is not None
    assert r.choice.ci[0] == max(c.ci[0] for c in r.eligible)
    assert sum(c.p_best for c in r.ranked) == pytest.approx(1.0)
    assert all(c.ci[0] <= c.mean_macs <= c.ci[1] for c in r.ranked)
    # Recompute the winner's samples independently: every kept one really fits.
    rng = np.random.default_rng([0, SPACE.configs.index((r.choice.width_mult,
                                                         r.choice.resolution)), 0])
    kept = []
    for _ in range(40):
        cost = arch_cost(SPACE.sample(rng, r.choice.width_mult, r.choice.resolution))
        if cost.peak_sram <= BUDGET.sram and cost.flash_bytes <= BUDGET.flash:
            kept.append(cost.macs)
    assert kept == r.choice.macs


def test_more_sram_favours_higher_resolution():
    # 640 B: fused inverted-residual blocks let r12 subnets fit in 1 KB.
    tight = run_stage_one(SPACE, Budget(640, 8192), samples=30, seed=0, workers=1).choice
    loose = run_stage_one(SPACE, Budget(4096, 8192), samples=30, seed=0, workers=1).choice
    assert tight is not None and loose is not None
    assert loose.resolution > tight.resolution


def test_min_fraction_and_mac_budget():
    r = run_stage_one(SPACE, BUDGET, samples=30, seed=0, workers=1, min_fraction=0.9)
    assert r.choice is not None and r.choice.fraction >= 0.9
    m = run_stage_one(SPACE, replace(BUDGET, macs=20_000), samples=30, seed=0, workers=1)
    assert m.choice is not None and max(m.choice.macs) <= 20_000
    assert any("macs" in c.rejected for c in m.configs)


def test_impossible_budget_names_the_smallest_subnet_and_the_budget():
    budget = Budget(300, 1000)
    small = arch_cost(SPACE.smallest())
    # below the smallest subnet on both counts, whichever check_budget asks first
    assert budget.sram < small.peak_sram and budget.flash < small.flash_bytes
    with pytest.raises(TinyNASError) as e:
        run_stage_one(SPACE, budget, samples=10, workers=1)
    msg = str(e.value)
    for words in ("nothing in the digits space fits", "SRAM 300 B", "flash 1000 B",
                  f"SRAM {small.peak_sram} B", "smallest subnet"):
        assert words in msg, msg


def test_report_files(tmp_path):
    r = run_stage_one(SPACE, BUDGET, samples=20, seed=0, workers=1)
    js, png = write(r, tmp_path)
    data = json.loads(js.read_text())
    assert data["choice"]["width_mult"] == r.choice.width_mult
    assert len(data["configs"]) == len(SPACE.configs)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert r.choice.label in table(r)


def test_config_result_statistics():
    c = ConfigResult(0.5, 96, 4, [10, 20], {"sram": 2})
    assert (c.fits, c.fraction, c.mean_macs, c.label) == (2, 0.5, 15.0, "w0.5-r96")


def test_sizes_and_counts_parse():
    assert parse_bytes("64KB", "--sram") == 65536 and parse_bytes("1MB", "x") == 1 << 20
    assert parse_bytes("1.5K", "x") == 1536 and parse_bytes("4096", "x") == 4096
    assert parse_count("10M", "--macs") == 10_000_000 and parse_count("500k", "x") == 500_000
    with pytest.raises(TinyNASError, match="expected a size"):
        parse_bytes("lots", "--sram")


def test_cli_space_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "s1"
    assert main(["space", "--sram", "2KB", "--flash", "8KB", "--samples", "10", "--workers",
                 "1", "-q", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "choice: w" in printed and "| config |" in printed
    assert (out / "stage1.json").is_file() and (out / "stage1_cdf.png").is_file()


def test_cli_space_with_a_custom_space_file(tmp_path, capsys):
    path = tmp_path / "space.json"
    path.write_text(SPACE.to_json())
    assert main(["space", "--sram", "2KB", "--flash", "8KB", "--space", str(path), "--samples",
                 "5", "--workers", "1", "-q", "-o", str(tmp_path / "o")]) == 0
    data = json.loads((tmp_path / "o" / "stage1.json").read_text())
    assert len(data["configs"]) == len(SPACE.configs)


@pytest.mark.parametrize("argv, words", [
    (["space", "--sram", "100B", "--flash", "1KB", "-o", "{tmp}/x"],
     ["nothing in the digits space fits", "smallest subnet"]),
    (["space", "--sram", "lots", "--flash", "1KB", "-o", "{tmp}/x"], ["--sram", "size"]),
    (["space", "--sram", "2KB", "--flash", "8KB", "--dataset", "mnist", "-o", "{tmp}/x"],
     ["unknown dataset"]),
    (["cost", "{tmp}/bad.json"], ["bad.json", "not valid JSON"]),
    (["cost", "{tmp}/missing.json"], ["cannot read"]),
])
def test_cli_user_errors_are_one_line_and_exit_2(argv, words, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinynas: error: "), err
    for w in words:
        assert w in err[0], err[0]


def test_cli_cost_of_an_example(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "mcunet" / "mcunet-in1.json"
    assert main(["cost", str(path)]) == 0
    out = capsys.readouterr().out
    assert "12,790,096 MACs" in out and "636,232 parameters" in out


def test_a_sliver_of_lucky_subnets_does_not_win():
    """MNIST-1D at 512 B / 2 KB, seed 2: 2 of 300 subnets fit at width 1 (mean 7,960 MACs),
    57 at width 0.5 (7,279). The mean of two is no evidence; the well-sampled one is chosen."""
    rng = np.random.default_rng(0)
    wide = ConfigResult(1.0, 40, 300, [6000, 9920], {"flash": 298})
    lucky = ConfigResult(0.75, 40, 300, [7500, 7600, 7700], {"flash": 297})
    many = ConfigResult(0.5, 40, 300, [int(x) for x in rng.normal(7279, 900, 57)],
                        {"flash": 243})
    r = StageOneResult(SPACE, BUDGET, 300, 2, "off", 0.0, [many, lucky, wide])
    _bootstrap(r, np.random.default_rng(1))
    assert wide.mean_macs > lucky.mean_macs > many.mean_macs
    assert r.eligible == [many] and r.choice is many
    # With nothing well sampled, the interval's low end still discounts the wider spread.
    r = StageOneResult(SPACE, BUDGET, 300, 2, "off", 0.0, [wide, lucky])
    _bootstrap(r, np.random.default_rng(1))
    assert r.eligible == [wide, lucky] and r.choice is lucky


def test_flexible_space_below_its_smallest_subnet_is_not_called_impossible():
    """The flexible space's smallest subnet takes each slot's first kind (convolutions: 951 B
    of flash on MNIST-1D); subnets with pooling or depthwise-separable layers need 400 B. A
    900 B budget is searchable, and one below every subnet is still a clear error."""
    space = FLEX_PRESETS["mnist1d"]
    assert arch_cost(space.smallest()).flash_bytes > 900
    r = run_stage_one(space, Budget(1024, 900), samples=60, seed=0, workers=1)
    assert r.choice is not None and r.choice.fits >= 1
    with pytest.raises(TinyNASError, match="nothing in the mnist1d space fits"):
        run_stage_one(space, Budget(1024, 200), samples=10, seed=0, workers=1)
