"""Where the hand-written baselines sit under the re-rank's fidelity (issue 14).

The pipeline's re-rank (tinynas/rerank.py) trains the search's best few subnets for a few
epochs from scratch and scores them on the distorted val views. This trains the plain and
depthwise-separable CNNs the benchmark compares against (tinynas.baselines, scaled to the budget
as benchmarks/nas_baselines.py does, both heads) the same way, so their scores can be read
beside the re-rank's rows in a run's summary.json.

    .venv/bin/python benchmarks/baselines_at_rerank.py --sram 512B --flash 2KB --epochs 30
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from tinynas.baselines import dwsep_cnn, fit_to_budget, plain_cnn  # noqa: E402
from tinynas.budget import Budget  # noqa: E402
from tinynas.cli import parse_bytes  # noqa: E402
from tinynas.data import distorted, load_dataset, split  # noqa: E402
from tinynas.finish import finetune  # noqa: E402
from tinynas.flexarch import FlexArch  # noqa: E402
from tinynas.flexnet import FlexNet  # noqa: E402
from tinynas.pipeline import PipelineConfig  # noqa: E402
from tinynas.train import accuracy  # noqa: E402


def main() -> int:
    d = PipelineConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist1d")
    ap.add_argument("--sram", default="512B")
    ap.add_argument("--flash", default="2KB")
    ap.add_argument("--epochs", type=int, default=d.rerank_epochs)
    ap.add_argument("--seed", type=int, default=d.seed)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    parts = split(data, d.test, d.val, d.split_seed)
    budget = Budget(parse_bytes(args.sram, "--sram"), parse_bytes(args.flash, "--flash"))
    r = data.native_resolution
    dims = 1 if data.kind == "sequence" else 2
    views = distorted(parts.val, r, d.fitness_views)
    print(f"| net | arch | val views after {args.epochs} epochs | clean val | seconds |")
    print("|---|---|---|---|---|")
    for name, build in (("plain", plain_cnn), ("dwsep", dwsep_cnn)):
        for head in ("avg", "flatten"):
            def shaped(width: int, b: Callable[..., FlexArch] = build,
                       h: str = head) -> FlexArch:
                return b(width, r, data.in_channels, data.num_classes, dims, h)

            arch = fit_to_budget(shaped, budget)
            t = time.perf_counter()
            torch.manual_seed(args.seed)
            net = finetune(FlexNet(arch), arch, parts.train, args.epochs, d.lr, args.seed)
            print(f"| {name} {head} | {arch.summary()} | {accuracy(net, views, r):.4f} | "
                  f"{accuracy(net, parts.val, r):.4f} | {time.perf_counter() - t:.0f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
