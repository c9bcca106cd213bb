"""A small CNN trained in PyTorch on scikit-learn's bundled digits, compiled through ONNX with
post-training int8 quantisation, and run as generated C on the host.

    .venv/bin/python examples/digits_cnn.py [-o out/digits]

Prints the float model's accuracy on the held-out test split, the int8 accuracy of the
generated C, and how often the two agree on the top-1 class.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): 8x8 images scaled to [0, 1], NCHW float32."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    return x_train, y_train, x_test, y_test


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 30,
          seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


@dataclass
class DigitsResult:
    float_accuracy: float
    int8_accuracy: float  # of the generated C on the host
    agreement: float  # top-1 agreement between the float model and the generated C
    arena_bytes: int
    flash_bytes: int


def run(out_dir: Path, seed: int = 0, calib_samples: int = 200) -> DigitsResult:
    from tinyengine.convert import compile_torch
    from tinyengine.runtime import HostModel
    from tinyengine.source_forms import source_input_batches, source_outputs

    torch.set_num_threads(1)  # tensors this small train fastest on one thread (no contention)
    x_train, y_train, x_test, y_test = digits_split(seed)
    model = train(small_cnn(), x_train, y_train, seed=seed)
    with torch.no_grad():
        float_pred = model(torch.from_numpy(x_test)).argmax(1).numpy()
    calib = x_train[:calib_samples]
    report = compile_torch(model, torch.from_numpy(x_test[:1]), calib, out_dir, prefix="digits")
    host = HostModel(out_dir)
    (batch,), _ = source_input_batches(report, [x_test], ["x_test"])
    logits = np.stack([host.invoke([b])[0] for b in batch])
    (logits,) = source_outputs(report, [logits], raw=False)
    c_pred = logits.reshape(len(x_test), -1).argmax(1)
    return DigitsResult(float(np.mean(float_pred == y_test)), float(np.mean(c_pred == y_test)),
                        float(np.mean(c_pred == float_pred)), report["arena_bytes"],
                        report["flash_bytes"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("out/digits"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r = run(args.output, args.seed)
    print(f"float accuracy {100 * r.float_accuracy:.2f}%, int8 C accuracy "
          f"{100 * r.int8_accuracy:.2f}%, top-1 agreement {100 * r.agreement:.2f}%, "
          f"arena {r.arena_bytes} B, flash {r.flash_bytes} B")


if __name__ == "__main__":
    main()
