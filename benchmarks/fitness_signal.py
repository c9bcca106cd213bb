"""Does the search's fitness tell subnets apart? A split-half check on the val split.

    .venv/bin/python benchmarks/fitness_signal.py out/bench_pipeline/tight-s0 [...]

For each finished pipeline run (its supernet.pt and search.json), takes the subnets its random
search evaluated (uniformly random admitted subnets: chosen without looking at any fitness) and
measures each with inherited weights, image by image, on the val split: clean, and under 8
distorted views of every image (data.distorted, the search's fitness). Then, over 400 random
halvings of the val images into A and B, for each fitness:
- r: the correlation, across subnets, of the fitness on A with the clean accuracy on B;
- pick: the clean accuracy on B of the subnet best on A (ties by loss), minus the mean clean
  accuracy on B of all of them: what choosing by this fitness gains on unseen images.
No test image is used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tinynas.arch import Arch
from tinynas.data import Dataset, distorted, load_dataset, resize, split
from tinynas.evolve import inherited
from tinynas.train import supernet_from_checkpoint

VIEWS, HALVINGS = 8, 400


@torch.no_grad()
def per_image(net: torch.nn.Module, data: Dataset, r: int,
              n: int) -> tuple[np.ndarray, np.ndarray]:
    """(correct, cross-entropy) per val image, averaged over its views (data: views x n)."""
    logits = net(resize(torch.from_numpy(data.x), r))  # the clean images are at native size
    y = torch.from_numpy(data.y)
    correct = (logits.argmax(1) == y).double().reshape(-1, n).mean(0)
    loss = F.cross_entropy(logits, y, reduction="none").double().reshape(-1, n).mean(0)
    return correct.numpy(), loss.numpy()


def measure(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    supernet, _, _ = supernet_from_checkpoint(run / "supernet.pt")
    cfg = json.loads((run / "summary.json").read_text())["config"]
    parts = split(load_dataset(cfg["dataset"]), cfg["test"], cfg["val"], cfg["split_seed"])
    archs = [Arch.from_dict(c["arch"])
             for c in json.loads((run / "search.json").read_text())["random"]["evaluated"]]
    n = len(parts.val)
    sets = {name: {r: distorted(parts.val, r, v) for r in {a.resolution for a in archs}}
            for name, v in (("clean", 0), (f"{VIEWS} views", VIEWS))}
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in sets}
    for arch in archs:
        net = inherited(supernet, arch, parts.train, 4)
        for name, by_r in sets.items():
            out[name].append(per_image(net, by_r[arch.resolution], arch.resolution, n))
    return {name: (np.array([c for c, _ in v]), np.array([ls for _, ls in v]))
            for name, v in out.items()}


def halves(m: dict[str, tuple[np.ndarray, np.ndarray]], seed: int = 0) -> dict[str, list[float]]:
    clean = m["clean"][0]
    n = clean.shape[1]
    rng = np.random.default_rng(seed)
    stats: dict[str, list[float]] = {}
    for _ in range(HALVINGS):
        p = rng.permutation(n)
        a, b = p[: n // 2], p[n // 2:]
        on_b = clean[:, b].mean(1)
        for name, (correct, loss) in m.items():
            acc_a, loss_a = correct[:, a].mean(1), loss[:, a].mean(1)
            for kind, fit in (("accuracy", acc_a), ("loss", -loss_a)):
                pick = int(np.lexsort((loss_a, -fit))[0])
                key = f"{name} {kind}"
                stats.setdefault(key + " r", []).append(float(np.corrcoef(fit, on_b)[0, 1]))
                stats.setdefault(key + " pick", []).append(float(on_b[pick] - on_b.mean()))
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished pipeline run directories")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        m = measure(run)
        stats = halves(m)
        names = sorted({k.rsplit(" ", 1)[0] for k in stats})
        for name in names:
            rows.append((run.name, m["clean"][0].shape[0], name,
                         np.mean(stats[name + " r"]), 100 * np.mean(stats[name + " pick"])))
    print("| run | subnets | fitness on half A | r with clean accuracy on half B | "
          "pick's gain on B (points) |\n|---|---|---|---|---|")
    for run, k, name, r, gain in rows:
        print(f"| {run} | {k} | {name} | {r:+.2f} | {gain:+.2f} |")
    for name in sorted({row[2] for row in rows}):
        sel = [row for row in rows if row[2] == name]
        print(f"mean over runs, {name}: r {np.mean([s[3] for s in sel]):+.2f}, "
              f"gain {np.mean([s[4] for s in sel]):+.2f}")


if __name__ == "__main__":
    main()
