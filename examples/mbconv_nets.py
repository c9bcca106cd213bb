"""Random MBConv-style float networks (MobileNetV2 inverted residuals), for testing the float
path: kernels 3/5/7, strides 1/2, expand ratios 1-6, residuals where shapes allow.

    .venv/bin/python examples/mbconv_nets.py --seed 3   # prints the network
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6()]
        layers += [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                   nn.BatchNorm2d(mid), nn.ReLU6(),
                   nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def random_mbconv(seed: int, resolution: int = 16, classes: int = 10) -> nn.Module:
    """A stem, 2-4 random MBConv blocks, global pooling and a classifier; BatchNorm statistics
    randomised so that folding them is exercised."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    width = int(rng.choice([8, 16]))
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU6()]
    cin = width
    for _ in range(int(rng.integers(2, 5))):
        cout = int(rng.choice([cin, cin, 8, 16, 24]))
        layers.append(MBConv(cin, cout, int(rng.choice([3, 5, 7])), int(rng.choice([1, 1, 2])),
                             int(rng.integers(1, 7))))
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    print(random_mbconv(ap.parse_args().seed))
