"""The hand-written baselines the search must beat, and the paired test that says it did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinynas.baselines import dwsep_cnn, fit_to_budget, mcnemar, plain_cnn, vgg_cnn
from tinynas.budget import Budget, check_budget
from tinynas.errors import TinyNASError
from tinynas.flexnet import FlexNet

BUILDERS = {"plain": plain_cnn, "dwsep": dwsep_cnn, "vgg": vgg_cnn}


def test_vgg_shape():
    """Two convolutions at full resolution, then max pool before each further one; the
    channels double twice and the pools keep their input's channels."""
    arch = vgg_cnn(6, 40, 1, 10, 1)
    kinds = [(layer.kind, layer.out, layer.stride) for layer in arch.layers[:-1]]
    assert kinds == [("conv", 6, 1), ("conv", 12, 1), ("maxpool", 12, 2), ("conv", 12, 1),
                     ("maxpool", 12, 2), ("conv", 24, 1), ("maxpool", 24, 2), ("conv", 24, 1)]
    assert arch.layers[0].kernel == 5 and vgg_cnn(6, 12, 1, 10, 2).layers[0].kernel == 3


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("dims,r", [(1, 40), (2, 8)])
def test_every_baseline_runs_at_both_ranks(name, dims, r):
    arch = BUILDERS[name](4, r, 1, 10, dims)
    x = torch.zeros((3, 1, r, 1) if dims == 1 else (3, 1, r, r))
    assert FlexNet(arch).eval()(x).shape == (3, 10)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fit_to_budget_is_the_widest_that_fits(name):
    budget = Budget(1024, 4096)

    def build(w):
        return BUILDERS[name](w, 40, 1, 10, 1)

    arch = fit_to_budget(build, budget)
    width = arch.layers[0].out
    assert check_budget(arch, budget).fits
    assert not check_budget(build(width + 1), budget).fits


def test_fit_to_budget_says_when_nothing_fits():
    with pytest.raises(TinyNASError, match="not even one channel fits"):
        fit_to_budget(lambda w: vgg_cnn(w, 40, 1, 10, 1), Budget(64, 128))


def test_mcnemar_counts_the_discordant_pairs_only():
    a = np.array([1, 1, 1, 0, 0, 1] + [1] * 10, bool)
    b = np.array([1, 0, 0, 0, 1, 1] + [1] * 10, bool)
    t = mcnemar(a, b)
    assert (t.a_only, t.b_only) == (2, 1)
    assert t.p_value == pytest.approx(1.0)  # 3 discordant pairs, split 2 / 1: no evidence
    # ten discordant pairs all one way: two-sided exact p = 2 * 0.5 ** 10
    t = mcnemar(np.ones(10, bool), np.zeros(10, bool))
    assert t.p_value == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar(a, a).p_value == 1.0
    with pytest.raises(TinyNASError, match="not the same examples"):
        mcnemar(a, a[:-1])


def test_the_mnist1d_deep_space_holds_a_vgg_shaped_net_that_fits_2kb():
    """The VGG-shaped CNN is the strongest hand design at 2 KB / 8 KB; mnist1d-deep exists to
    express its shape: two convolutions at full length before the first halving, max
    pooling before each later convolution (channels from the space's pruning grid)."""
    from tinynas.blocks import HEAD, Layer
    from tinynas.flexarch import FlexArch
    from tinynas.flexspace import FLEX_PRESETS

    space = FLEX_PRESETS["mnist1d-deep"]
    body = [("conv", 8, 5), ("conv", 16, 3), ("maxpool", 16, 2), ("conv", 18, 3),
            ("maxpool", 18, 2), ("conv", 32, 3), ("maxpool", 32, 2), ("conv", 36, 3)]
    layers = [Layer(k, out, kernel, 2 if k == "maxpool" else 1, slot=i)
              for i, (k, out, kernel) in enumerate(body)]
    layers.append(Layer(HEAD, 0, pool="avg", slot=len(body)))
    arch = FlexArch(40, 1, 10, tuple(layers), 1, 1.0)
    assert space.contains(arch)
    assert check_budget(arch, Budget(2048, 8192), "off").fits
