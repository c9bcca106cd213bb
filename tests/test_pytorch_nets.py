"""PyTorch networks as their users write them, through the float road (issue 12).

Three nets with seeded random weights and BatchNorm statistics from a few training-mode passes
on random data (so folding them is exercised), exported with torch's ONNX exporter, calibrated
on 32 seeded random images and tested on 16 held-out ones:

1. a MobileNetV3-small-style net: hard-swish, squeeze-excite (AdaptiveAvgPool -> 1x1 conv ->
   ReLU -> 1x1 conv -> Hardsigmoid -> multiply), inverted residuals, depthwise convolutions;
2. a small U-Net: encoder convolutions + MaxPool, a decoder of ConvTranspose (kernel 2 stride 2
   and kernel 4 stride 2 padding 1), a bilinear nn.Upsample, torch.cat skips;
3. a ResNet-18-style net at 64x64: BasicBlocks with residual adds, stride-2 downsampling with a
   1x1 projection, global average pooling and a fully connected classifier.

For each: the generated C equals the numpy reference bit for bit, the dequantised C output
tracks the float torch output, and `patch="auto"` gives the same outputs as `patch="off"`.
benchmarks/pytorch_nets.py measures the same builds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

CALIB, TEST = 32, 16


# ---------------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV3's bneck: expand 1x1 -> depthwise kxk -> [SE] -> project 1x1 [+ x]."""

    def __init__(self, cin: int, mid: int, cout: int, kernel: int, stride: int, se: bool,
                 act: type[nn.Module]):
        super().__init__()
        layers: list[nn.Module] = []
        if mid != cin:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act()]
        layers += [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                   nn.BatchNorm2d(mid), act()]
        if se:
            layers.append(SqueezeExcite(mid, max(8, mid // 4)))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    """torchvision's mobilenet_v3_small layout at a quarter of its widths (and fewer blocks)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        hs, re = nn.Hardswish, nn.ReLU
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  hs())
        # (in, expanded, out, kernel, stride, squeeze-excite, activation), as in the paper.
        config = [(16, 16, 16, 3, 2, True, re), (16, 48, 24, 3, 2, False, re),
                  (24, 56, 24, 3, 1, False, re), (24, 64, 32, 5, 2, True, hs),
                  (32, 96, 32, 5, 1, True, hs), (32, 96, 48, 5, 1, True, hs)]
        self.blocks = nn.Sequential(*[InvertedResidual(*c) for c in config])
        self.head = nn.Sequential(nn.Conv2d(48, 144, 1, bias=False), nn.BatchNorm2d(144), hs(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(144, 128),
                                  hs(), nn.Linear(128, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNet(nn.Module):
    """Three levels of encoder (double conv + MaxPool), a bottleneck, and a decoder that
    upsamples three ways: ConvTranspose k4 s2 p1, ConvTranspose k2 s2, and a bilinear
    nn.Upsample (align_corners=False) + 1x1 conv, each followed by torch.cat with the encoder's
    skip and a double conv. (Nearest resize is covered by tests/test_ops_reduce_resize.py.)"""

    def __init__(self, classes: int = 3, w: int = 8):
        super().__init__()
        self.enc1, self.enc2, self.enc3 = double_conv(3, w), double_conv(w, 2 * w), \
            double_conv(2 * w, 4 * w)
        self.pool = nn.MaxPool2d(2)
        self.mid = double_conv(4 * w, 4 * w)
        self.up3 = nn.ConvTranspose2d(4 * w, 4 * w, 4, 2, 1)
        self.dec3 = double_conv(8 * w, 2 * w)
        self.up2 = nn.ConvTranspose2d(2 * w, 2 * w, 2, 2)
        self.dec2 = double_conv(4 * w, w)
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear",
                                             align_corners=False), nn.Conv2d(w, w, 1))
        self.dec1 = double_conv(2 * w, w)
        self.out = nn.Conv2d(w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        m = self.mid(self.pool(e3))
        d3 = self.dec3(torch.cat([self.up3(m), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.out(d1)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.down(x))


class ResNet18(nn.Module):
    """ResNet-18's four stages of two BasicBlocks at a quarter of its widths, with the 64x64
    (Tiny-ImageNet / CIFAR) stem: a 3x3 stride-1 convolution and no max pool."""

    def __init__(self, classes: int = 10, w: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        cin = w
        for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
            blocks += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def init_net(net: nn.Module, shape: tuple[int, ...], seed: int) -> nn.Module:
    """Seeded weights; BatchNorm running statistics from a few training-mode passes over
    random data, and random affine parameters, so that folding BN is not the identity.

    Weights are He-normal, not PyTorch's default (He-uniform with a = sqrt(5), a third of the
    variance): with the default, the MobileNetV3's logits vary by 0.1% of their range from one
    input to the next, below one int8 step, so comparing them with the float ones would test
    only the biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.5
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
        net.train()
        for _ in range(4):
            net(torch.randn((8,) + shape[1:], generator=gen) * 1.5 + 0.2)
    return net.eval()


@dataclass(frozen=True)
class NetCase:
    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    classifier: bool


def _seeded(cls: Callable[[], nn.Module], shape: tuple[int, ...], seed: int
            ) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(seed)
        return init_net(cls(), shape, seed)
    return build


NETS = [NetCase("mobilenetv3_small", _seeded(MobileNetV3Small, (1, 3, 64, 64), 1),
                (1, 3, 64, 64), True),
        NetCase("unet", _seeded(UNet, (1, 3, 64, 64), 2), (1, 3, 64, 64), False),
        NetCase("resnet18", _seeded(ResNet18, (1, 3, 64, 64), 3), (1, 3, 64, 64), True)]


def data(case: NetCase) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, held-out test) inputs, disjoint seeded draws of image-like noise: smooth
    (bilinear 8x upsampled) plus white noise, with a contrast and a colour offset per image.
    White noise alone averages out in global pooling, so every input would get the same
    logits and top-1 agreement would mean nothing."""
    rng = np.random.default_rng(sum(map(ord, case.name)))
    n, c, h, w = (CALIB + TEST,) + case.shape[1:]
    coarse = torch.from_numpy(rng.normal(0, 1, (n, c, h // 8, w // 8)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear").numpy()
    contrast = rng.uniform(0.5, 2.0, (n, 1, 1, 1))
    offset = rng.normal(0, 1, (n, c, 1, 1))
    x = (contrast * (smooth + 0.3 * rng.normal(0, 1, (n, c, h, w))) + offset).astype(np.float32)
    return x[:CALIB], x[CALIB:]


# ---------------------------------------------------------------------------------------------
# Compile and run
# ---------------------------------------------------------------------------------------------

@dataclass
class Build:
    report: dict[str, Any]
    c_out: np.ndarray        # (TEST, *source output shape), dequantised C outputs
    c_raw: list[np.ndarray]  # int8 engine outputs of the C, one per test input
    exact: bool              # C == run_reference on every test input


def build_and_run(case: NetCase, tmp: Path) -> tuple[Any, Any, np.ndarray, np.ndarray,
                                                     dict[str, Build]]:
    """Export, quantise, compile with patch off and auto, run the C on the held-out inputs.
    Returns (torch net, int8 graph, test inputs, float outputs, {patch: Build})."""
    from tinyengine.codegen import compile_graph
    from tinyengine.convert import export_torch, quantize_onnx, source_model_info
    from tinyengine.reference import run_reference
    from tinyengine.runtime import HostModel
    from tinyengine.source_forms import source_input_batches, source_outputs

    torch.set_num_threads(1)
    net = case.build()
    calib, test = data(case)
    path = export_torch(net, torch.from_numpy(calib[:1]), tmp / f"{case.name}.onnx")
    model, graph = quantize_onnx(path, calib)
    with torch.no_grad():
        want = net(torch.from_numpy(test)).numpy()
    builds: dict[str, Build] = {}
    for patch in ("off", "auto"):
        out_dir = tmp / f"{case.name}-{patch}"
        report = compile_graph(graph, out_dir, patch=patch,
                               source_model=source_model_info(model, graph))
        host = HostModel(out_dir)
        (batch,), _ = source_input_batches(report, [test], ["test"])
        raws, exact = [], True
        for b in batch:
            c = host.invoke([b])[0]
            exact &= bool(np.array_equal(c, run_reference(graph, [b])[0]))
            raws.append(c)
        (got,) = source_outputs(report, [np.stack(raws)], raw=False)
        builds[patch] = Build(report, got.reshape(want.shape), raws, exact)
    return net, graph, test, want, builds


def relative_errors(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|dequantised C - float| per output element, over the float output's range on that input."""
    flat_g, flat_w = got.reshape(len(got), -1), want.reshape(len(want), -1)
    return np.abs(flat_g - flat_w) / np.ptp(flat_w, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

# The int8 network must track the float one: rms(C - float) at most this fraction of the rms of
# the float output's input-dependent part (its deviation from the mean over the test inputs).
# Normalising by that part, not by the output range, matters for classifiers, whose logits
# carry a large input-independent offset. Measured: 0.14 (MobileNetV3), 0.13 (U-Net), 0.22
# (ResNet); the same C output against each net's float model with one plausible import bug
# (the mutations below) measures 0.34-0.75, so the bound rejects them all.
SIGNAL_ERROR_BOUND = 0.3


def signal_error(got: np.ndarray, want: np.ndarray) -> float:
    signal = want - want.mean(axis=0)
    return float(np.sqrt(np.mean((got - want) ** 2) / np.mean(signal ** 2)))


def _same_pad(conv: nn.Conv2d) -> nn.Sequential:
    """The conv padded as TFLite's SAME pads a stride-2 layer (the odd pixel after only)
    instead of PyTorch's symmetric padding=1: what an importer that dropped the PAD computes."""
    c = copy.deepcopy(conv)
    c.padding = (0, 0)
    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), c)


def _replace(net: nn.Module, old: type[nn.Module], new: Callable[[], nn.Module]) -> nn.Module:
    for mod in net.modules():
        for k, child in mod.named_children():
            if isinstance(child, old):
                setattr(mod, k, new())
    return net


def mutations(name: str, net: nn.Module) -> dict[str, nn.Module]:
    """Copies of the float net with one op computed the way a broken importer would."""
    out: dict[str, nn.Module] = {}
    if name == "mobilenetv3_small":
        n = copy.deepcopy(net)
        n.stem[0] = _same_pad(n.stem[0])
        out["stem conv padded SAME-style"] = n
        out["hard-swish as ReLU"] = _replace(copy.deepcopy(net), nn.Hardswish, nn.ReLU)
    elif name == "unet":
        n = copy.deepcopy(net)
        n.up1[0] = nn.Upsample(scale_factor=2, mode="nearest")
        out["bilinear resize as nearest"] = n
    else:
        n = copy.deepcopy(net)
        n.layers[2].conv1 = _same_pad(n.layers[2].conv1)
        out["first stride-2 conv padded SAME-style"] = n
        n = copy.deepcopy(net)
        n.layers[3].bn2.running_mean.zero_()
        n.layers[3].bn2.running_var.fill_(1.0)
        out["one BatchNorm folded with default statistics"] = n
    return out


@pytest.mark.parametrize("case", NETS, ids=[c.name for c in NETS])
def test_pytorch_net(case: NetCase, tmp_path: Path) -> None:
    net, graph, test, want, builds = build_and_run(case, tmp_path)
    off, auto = builds["off"], builds["auto"]
    assert off.exact, "generated C (patch off) differs from the numpy reference"
    assert auto.exact, "generated C (patch auto) differs from the numpy reference"
    for a, b in zip(off.c_raw, auto.c_raw):
        np.testing.assert_array_equal(a, b)
    err = signal_error(off.c_out, want)
    print(f"{case.name}: rms error / rms signal {err:.3f}")
    assert err < SIGNAL_ERROR_BOUND, f"{case.name}: int8 error {err:.3f} of the signal"
    with torch.no_grad():
        for what, bad in mutations(case.name, net).items():
            wrong = signal_error(off.c_out, bad(torch.from_numpy(test)).numpy())
            print(f"  against the float net with {what}: {wrong:.3f}")
            assert wrong > SIGNAL_ERROR_BOUND, f"the bound would not notice {what}"
