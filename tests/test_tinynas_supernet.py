"""The once-for-all supernet: extracted subnets compute exactly what the supernet computes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from tinynas.errors import TinyNASError
from tinynas.space import PRESETS
from tinynas.subnet import SubNet, count_params, recalibrate_bn
from tinynas.supernet import Supernet
from tinynas.zoo import MODELS


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and kernel transforms, so that slicing mistakes show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "transforms" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.3, 0.3, generator=g)
    return net


@pytest.fixture(scope="module")
def supernets() -> dict[str, Supernet]:
    torch.manual_seed(0)
    nets = {"digits": Supernet(PRESETS["digits"], 0.625), "imagenet": Supernet(
        PRESETS["imagenet"], 0.3)}
    for i, net in enumerate(nets.values()):
        _randomise(net, i)
        net.sort_channels()
    return nets


@pytest.mark.parametrize("name, resolutions", [("digits", None), ("imagenet", (48, 64))])
def test_extracted_subnet_equals_supernet(supernets, name, resolutions):
    net = supernets[name].eval()
    rng = np.random.default_rng(3)
    for i in range(6):
        r = None if resolutions is None else resolutions[i % len(resolutions)]
        arch = net.sample(rng, r)
        x = torch.randn(2, net.space.in_channels, arch.resolution, arch.resolution)
        sub = net.extract(arch)
        assert not sub.training
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=1e-6)
        assert isinstance(sub, SubNet) and count_params(sub) < count_params(net)


def test_extract_in_training_mode_matches_too(supernets):
    net = supernets["digits"].train()
    arch = net.sample(np.random.default_rng(5))
    x = torch.randn(4, 1, arch.resolution, arch.resolution)
    sub = net.extract(arch)
    assert sub.training
    torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=1e-5)
    net.eval()


def test_largest_subnet_is_the_whole_supernet(supernets):
    net = supernets["digits"].eval()
    arch = net.largest()
    assert count_params(net.extract(arch)) == count_params(net) - sum(
        p.numel() for n, p in net.named_parameters() if "transforms" in n)


def test_sort_channels_keeps_the_largest_subnet_and_reorders():
    net = _randomise(Supernet(PRESETS["digits"], 0.625), 7).eval()
    arch = net.largest(8)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        block = net.stages[0][0]
        block.project_conv.weight[:, 0].zero_()  # make channel 0 the least important
        before = net(x, arch)
        net.sort_channels()
        torch.testing.assert_close(net(x, arch), before, rtol=1e-5, atol=1e-5)
    importance = block.project_conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_kernel_transform_changes_small_kernels_only(supernets):
    block = supernets["imagenet"].stages[1][0]
    w7 = block.dw_conv.weight
    torch.testing.assert_close(block.dw_kernel(7), w7)
    crop = w7[:, :, 2:5, 2:5]
    assert block.dw_kernel(3).shape == crop.shape
    assert not torch.allclose(block.dw_kernel(3), crop)  # the transforms were randomised
    plain = Supernet(PRESETS["imagenet"], 0.3, kernel_transform=False).stages[1][0]
    torch.testing.assert_close(plain.dw_kernel(3), plain.dw_conv.weight[:, :, 2:5, 2:5])


def test_bn_recalibration_gives_the_batches_statistics():
    torch.manual_seed(1)
    arch = PRESETS["digits"].sample(np.random.default_rng(0), 0.5, 8)
    net = SubNet(arch)
    batches = [torch.randn(16, 1, 8, 8) * 3 + 1 for _ in range(3)]
    recalibrate_bn(net, batches)
    assert not net.training
    bn = net.stem[1]
    with torch.no_grad():
        y = torch.cat([net.stem[0](b) for b in batches])
    torch.testing.assert_close(bn.running_mean, y.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1  # restored


def test_supernet_refuses_a_foreign_architecture(supernets):
    net = supernets["imagenet"]
    with pytest.raises(TinyNASError, match="not a subnet"):
        net.extract(MODELS["mcunet-in3"])  # width 0.5, not 0.3
    arch = net.sample(np.random.default_rng(0))
    with pytest.raises(TinyNASError, match="not a subnet"):
        net.extract(replace(arch, stem_channels=arch.stem_channels + 8))


def test_mcunet_model_is_a_subnet_at_its_width():
    net = Supernet(PRESETS["imagenet"], 0.5).eval()
    arch = MODELS["mcunet-in1"]
    sub = net.extract(arch)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=1e-6)
