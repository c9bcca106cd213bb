"""After the search: fine-tune the winner, quantise it, compile it, and measure the C.

`finetune` trains the extracted subnet alone for a few epochs (inherited weights, cross-entropy,
optionally distillation from a teacher). `deploy` runs
the engine's own path for a PyTorch model (ONNX export, post-training int8 quantisation with
calibration images from the training split, code generation with patch-based inference), builds
the generated C on the host, and runs it over the whole test split: the int8 accuracy reported is
the C's, not a simulation's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .arch import Arch
from .data import Dataset, augment, batches, resize_numpy
from .errors import TinyNASError
from .flexarch import FlexArch
from .flexnet import FlexNet
from .subnet import SubNet
from .train import adamw, progress_bar


def from_scratch(arch: Arch | FlexArch, train: Dataset, epochs: int, lr: float = 3e-3,
                 seed: int = 0, progress: bool = False,
                 teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 kd: float = 0.5, temperature: float = 1.0) -> nn.Module:
    """A fresh network of `arch` trained by `finetune` (distilled from `teacher` where given).
    Its initial weights are drawn under `seed`, so that networks trained to be compared with one
    another start from the same draw."""
    torch.manual_seed(seed)
    fresh = SubNet(arch) if isinstance(arch, Arch) else FlexNet(arch)
    return finetune(fresh, arch, train, epochs, lr, seed, teacher=teacher, kd=kd,
                    progress=progress, temperature=temperature)


def finetune(net: nn.Module, arch: Arch | FlexArch, train: Dataset, epochs: int,
             lr: float = 3e-3,
             seed: int = 0, teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
             kd: float = 0.5, batch: int = 64, weight_decay: float = 1e-4,
             progress: bool = False, temperature: float = 1.0) -> nn.Module:
    """Cosine-decayed AdamW on the training split at the subnet's resolution, with the same
    augmentation as supernet training. Returns the module in eval mode.

    With a `teacher` (logits of the same batch), the loss mixes in weight `kd` of the KL
    divergence from the teacher's softened distribution at `temperature` (Hinton's, scaled by
    its square so that its gradients keep their size as it rises)."""
    r = arch.resolution
    opt = adamw(net, lr, weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    aug = torch.Generator().manual_seed(seed + 1)
    bar = progress_bar(progress, epochs, "fine-tune", "epoch")
    for epoch in range(epochs):
        net.train()
        parts = batches(train, batch, train.native_resolution, shuffle)
        for i, (x, y) in enumerate(parts):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (epoch + i / len(parts)) / epochs))
            xb = augment(x, r, aug)
            out = net(xb)
            loss = F.cross_entropy(out, y)
            if teacher is not None:
                t = temperature
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / t, 1)
                loss = (1 - kd) * loss + kd * t * t * F.kl_div(F.log_softmax(out / t, 1), soft,
                                                               reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return net.eval()


@dataclass
class Deployment:
    float_accuracy: float  # the fine-tuned PyTorch subnet on the test split
    int8_accuracy: float  # the generated C, run on the host, on the test split
    agreement: float  # top-1 agreement between the two
    test_images: int
    sram_bytes: int  # the generated project's arena (input, output and scratch included)
    flash_bytes: int  # weights, biases and requantisation constants
    macs: int  # with the patch schedule's recomputation
    patches: dict[str, Any] | None  # the patch schedule, None for whole tensors
    project: str
    seconds: float
    calibration: str = "minmax"  # the calibration method the deployed ranges come from
    # The C's top-1 class per test example, for paired comparisons (not in to_dict: large).
    predictions: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["predictions"]
        return d


METHODS = ("minmax", "percentile", "mse")


def deploy(net: nn.Module, arch: Arch | FlexArch, calib: Dataset, test: Dataset,
           out_dir: str | Path,
           prefix: str = "model", calib_images: int = 256, method: str = "minmax",
           patch: str = "auto", val: Dataset | None = None) -> Deployment:
    """Quantise, compile to out_dir, build on the host and measure the C over `test`.

    method "auto" (needs `val`): compile once per calibration method (min/max, percentile,
    MSE-optimal ranges), run each C over the val images, and keep the most accurate; tiny
    networks lose a few test images to int8 rounding, and which ranges lose fewest varies.
    """
    import tempfile

    start = time.perf_counter()
    chosen = method
    if method == "auto":
        if val is None:
            raise TinyNASError("calibration method 'auto' needs val images to choose with")
        scores = []
        with tempfile.TemporaryDirectory() as tmp:
            for m in METHODS:
                _compile(net, arch, calib, Path(tmp) / m, prefix, calib_images, m, patch)
                scores.append(np.mean(c_predictions(Path(tmp) / m, arch, val) == val.y))
        chosen = METHODS[int(np.argmax(scores))]  # ties: the first, plain min/max
    report = _compile(net, arch, calib, out_dir, prefix, calib_images, chosen, patch)
    c_pred = c_predictions(out_dir, arch, test)
    with torch.no_grad():
        float_pred = net.eval()(torch.from_numpy(resize_numpy(test.x, arch.resolution)))
    float_pred = float_pred.argmax(1).numpy()
    return Deployment(float(np.mean(float_pred == test.y)), float(np.mean(c_pred == test.y)),
                      float(np.mean(c_pred == float_pred)), len(test), int(report["arena_bytes"]),
                      int(report["flash_bytes"]), int(report["macs"]), report.get("patches"),
                      str(out_dir), time.perf_counter() - start, chosen,
                      [int(v) for v in c_pred])


def _compile(net: nn.Module, arch: Arch | FlexArch, calib: Dataset, out_dir: str | Path,
             prefix: str,
             calib_images: int, method: str, patch: str) -> dict[str, Any]:
    from tinyengine.convert import compile_torch

    r = arch.resolution
    x_calib = resize_numpy(calib.x[:calib_images], r)
    return compile_torch(net.eval(), torch.from_numpy(x_calib[:1]), x_calib, out_dir,
                         method=method, prefix=prefix, patch=patch)


def c_predictions(project: str | Path, arch: Arch | FlexArch, data: Dataset) -> np.ndarray:
    """Top-1 predictions of the generated C (built on the host) over `data`."""
    from tinyengine.runtime import HostModel
    from tinyengine.runtime.host import load_project_report
    from tinyengine.source_forms import source_input_batches, source_outputs

    report = load_project_report(project)
    x = resize_numpy(data.x, arch.resolution)
    host = HostModel(project)
    (engine_x,), _ = source_input_batches(report, [x], ["images"])
    logits = np.stack([host.invoke([xi])[0] for xi in engine_x])
    (logits,) = source_outputs(report, [logits], raw=False)
    return logits.reshape(len(x), -1).argmax(1)


def check_input(data: Dataset, arch: Arch | FlexArch) -> None:
    if data.in_channels != arch.in_channels or data.num_classes != arch.num_classes:
        raise TinyNASError(f"dataset {data.name} has {data.in_channels}-channel {data.kind}s "
                           f"and {data.num_classes} classes; the architecture expects "
                           f"{arch.in_channels} and {arch.num_classes}")
    if isinstance(arch, FlexArch) and (arch.dims == 1) != (data.kind == "sequence"):
        raise TinyNASError(f"dataset {data.name} holds {data.kind}s; the architecture is for "
                           f"{'sequences' if arch.dims == 1 else 'images'}")
