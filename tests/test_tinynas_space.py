"""Search spaces and architecture descriptions: presets, sampling, JSON, MCUNet's models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tinynas.arch import Arch, make_divisible
from tinynas.errors import TinyNASError
from tinynas.resources import estimate_arch
from tinynas.space import PRESETS, SearchSpace, get_space
from tinynas.subnet import SubNet, count_params
from tinynas.zoo import EXACT, MODELS, write_examples

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "mcunet"


def test_make_divisible_is_tensorflows_rule():
    assert [make_divisible(v) for v in (9.6, 12, 14.4, 19.2, 57.6, 115.2)] == \
        [16, 16, 16, 24, 56, 112]
    assert make_divisible(4.8, 4) == 8 and make_divisible(2.4, 4) == 4


def test_imagenet_preset_is_mcunets_grid():
    s = PRESETS["imagenet"]
    assert len(s.configs) == 108 and s.resolutions[0] == 48 and s.resolutions[-1] == 224
    assert s.channels(1.0) == (32, 16, (24, 40, 80, 96, 192, 320), 0)
    assert s.channels(0.5) == (16, 8, (16, 24, 40, 48, 96, 160), 0)


@pytest.mark.parametrize("name", list(PRESETS))
def test_sampling_covers_every_choice(name):
    space = PRESETS[name]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    assert {a.width_mult for a in archs} == set(space.width_mults)
    assert {a.resolution for a in archs} == set(space.resolutions)
    for s in range(len(space.stage_bases)):
        assert {a.stages[s].depth for a in archs} == set(space.depth_choices(s))
        assert {b.kernel for a in archs for b in a.stages[s].blocks} == set(space.kernels)
        assert {b.expand for a in archs for b in a.stages[s].blocks} == set(space.expands)
    assert all(space.contains(a) for a in archs)


def test_sampling_is_seeded():
    space = PRESETS["imagenet"]
    a = [space.sample(np.random.default_rng(7), 0.5, 96) for _ in range(2)]
    assert a[0] == a[1] and a[0].width_mult == 0.5 and a[0].resolution == 96


@pytest.mark.parametrize("name", list(PRESETS))
def test_arch_and_space_round_trip_json(name):
    space = PRESETS[name]
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = space.sample(rng)
        assert Arch.from_json(a.to_json()) == a
    assert SearchSpace.from_dict(json.loads(space.to_json())) == space


def test_digits_preset_reaches_tiny_budgets():
    from tinynas.budget import arch_cost

    small = arch_cost(PRESETS["digits"].smallest())
    assert small.peak_sram <= 1024 and small.flash_bytes <= 4096


@pytest.mark.parametrize("text, words", [
    ("{", ["not valid JSON", "line 1"]),
    ("[1, 2]", ["JSON object"]),
    ('{"resolution": 8}', ["missing field", "stages"]),
    ('{"resolution": 8, "stem_channels": 8, "first_block_channels": 4, "stages": [], '
     '"colour": 1}', ["unknown field", "colour"]),
    ('{"resolution": 8, "stem_channels": 8, "first_block_channels": 4, "stages": []}',
     ["at least one stage"]),
    ('{"resolution": "8", "stem_channels": 8, "first_block_channels": 4, "stages": '
     '[{"channels": 8, "stride": 2, "blocks": [{"kernel": 3, "expand": 3}]}]}',
     ["resolution", "integer"]),
    ('{"resolution": 8, "stem_channels": 8, "first_block_channels": 4, "stages": '
     '[{"channels": 8, "stride": 2, "blocks": [{"kernel": 4, "expand": 3}]}]}',
     ["kernel must be odd"]),
    ('{"resolution": 8, "stem_channels": 8, "first_block_channels": 4, "stages": '
     '[{"channels": 8, "stride": 3, "blocks": [{"kernel": 3, "expand": 3}]}]}',
     ["stride must be 1 or 2"]),
    ('{"resolution": 8, "stem_channels": 8, "first_block_channels": 4, "stages": '
     '[{"channels": 8, "stride": 2, "blocks": [{"kernel": 3}]}]}', ["kernel and expand"]),
])
def test_malformed_json_gets_a_clear_error(text, words):
    with pytest.raises(TinyNASError) as e:
        Arch.from_json(text, "my.json")
    assert str(e.value).startswith("my.json")
    for w in words:
        assert w in str(e.value)


def test_unreadable_file_and_unknown_dataset():
    with pytest.raises(TinyNASError, match="cannot read"):
        Arch.load("/nonexistent/arch.json")
    with pytest.raises(TinyNASError, match="unknown dataset"):
        get_space("cifar1000")


@pytest.mark.parametrize("name", list(MODELS))
def test_mcunet_models_match_their_published_figures(name):
    arch = MODELS[name]
    readme = arch.extra["readme"]
    macs, params = estimate_arch(arch).macs, count_params(SubNet(arch))
    if name in EXACT:
        assert round(macs / 1e6, 1) == readme["macs_m"]
        assert round(params / 1e6, 2) == readme["params_m"]
    else:  # proxyless-w0.3: reconstructed approximately, and documented as such
        assert abs(macs / 1e6 - readme["macs_m"]) / readme["macs_m"] < 0.05


def test_mcunet_models_live_in_the_presets():
    for name, arch in MODELS.items():
        if name.startswith("mcunet-in"):
            assert PRESETS["imagenet"].contains(arch), name
        elif name.startswith("mcunet-vww"):
            assert PRESETS["vww"].contains(arch), name
    assert not PRESETS["imagenet"].contains(replace(MODELS["mcunet-in3"], resolution=100))


def test_example_files_are_the_zoo(tmp_path):
    write_examples(tmp_path)
    for name, arch in MODELS.items():
        shipped = EXAMPLES / f"{name}.json"
        assert shipped.read_text() == (tmp_path / f"{name}.json").read_text(), \
            f"regenerate with: python -m tinynas.zoo examples/mcunet ({name})"
        assert Arch.load(shipped) == arch


@pytest.mark.parametrize("name", ["imagenet", "digits"])
def test_mutation_and_crossover_stay_in_the_space(name):
    space = PRESETS[name]
    rng = np.random.default_rng(4)
    w, r = space.configs[len(space.configs) // 2]
    archs = [space.sample(rng, w, r) for _ in range(30)]
    assert space.mutate(archs[0], rng, prob=0.0) == archs[0]
    assert space.crossover(archs[1], archs[1], rng) == archs[1]
    children = [space.mutate(a, rng, 0.5) for a in archs]
    children += [space.crossover(a, b, rng) for a, b in zip(archs, archs[1:])]
    assert all(space.contains(c) and c.width_mult == w and c.resolution == r for c in children)
    assert sum(c not in archs for c in children) > 40
    moved = {space.mutate(archs[0], rng, 1.0, resolutions=space.resolutions).resolution
             for _ in range(20)}
    assert len(moved) > 1
