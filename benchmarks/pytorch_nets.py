"""PyTorch networks through the float road, measured (issue 12).

    .venv/bin/python benchmarks/pytorch_nets.py

The three nets of tests/test_pytorch_nets.py (a MobileNetV3-small-style net, a small U-Net, a
ResNet-18-style net; seeded random weights, BatchNorm statistics from training-mode passes),
exported with torch's ONNX exporter, calibrated (minmax) on 32 seeded random images and run on
16 held-out ones. Per net:

1. size: ops of the int8 graph, MACs, float parameters, flash (weights and biases);
2. memory: arena with `--patch off` and `--patch auto`, the reduction, the patch grid, split
   point and MAC overhead, or why no schedule was chosen;
3. accuracy: |dequantised C output - float output| / (float output range of that input) over
   every output element, as a distribution; rms error over the rms of the output's
   input-dependent part (the test's bound); top-1 agreement for the classifiers, with how many
   distinct classes the float model picks among the 16 inputs; C == reference on every input.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_pytorch_nets import (  # noqa: E402
    NETS,
    NetCase,
    build_and_run,
    relative_errors,
    signal_error,
)
from tinyengine.ir import Graph  # noqa: E402
from tinyengine.memory.patch import stage_candidates  # noqa: E402
from tinyengine.memory.report import step_usage  # noqa: E402
from tinyengine.memory.schedule import schedule  # noqa: E402
from tinyengine.ops import get_op  # noqa: E402


def why_no_patches(graph: Graph) -> str:
    """Why `--patch auto` kept whole tensors: an op that ends every patch stage early, or the
    peak lying beyond the longest stage."""
    sched = schedule(graph, "off")
    g = sched.graph
    stages = stage_candidates(g)
    longest = max(stages, default=0)
    rows = step_usage(g, sched.plan)
    peak = max(rows, key=lambda r: r.live_bytes)
    ends = g.ops[longest] if longest < len(g.ops) else None
    if ends is not None and get_op(ends.kind).patch == "none":
        cause = f"{ends.kind} `{ends.name}` (op {longest}) cannot run per patch"
    elif ends is not None:
        cause = (f"beyond op {longest} more than one tensor of the stage is read after it (a "
                 "skip connection)")
    else:
        cause = "no stage"
    return (f"no schedule: {cause}, so the longest stage is {longest} op(s); the peak "
            f"({peak.live_bytes:,} B live) is at op {peak.step} ({peak.kind})")


def measure(case: NetCase, tmp: Path) -> tuple[list[str], list[str]]:
    net, graph, test, want, builds = build_and_run(case, tmp)
    off, auto = builds["off"].report, builds["auto"].report
    params = sum(p.numel() for p in net.parameters())
    reduction = 100 * (1 - auto["arena_bytes"] / off["arena_bytes"])
    same = all(np.array_equal(a, b) for a, b in zip(builds["off"].c_raw, builds["auto"].c_raw))
    p = auto["patches"]
    if p:
        patches = (f"{p['grid'][0]}x{p['grid'][1]} over the first {len(p['stage_ops'])} ops "
                   f"(to `{p['split_after']}`), +{100 * p['mac_overhead']:.1f}% MACs")
    else:
        patches = why_no_patches(graph)
    flash = f"{off['flash_bytes']:,}" + ("" if auto["flash_bytes"] == off["flash_bytes"]
                                         else f" ({auto['flash_bytes']:,} patched)")
    size = [case.name, f"{'x'.join(map(str, case.shape))}", str(len(graph.ops)),
            f"{off['macs']:,}", f"{params:,}", flash, f"{off['arena_bytes']:,}",
            f"{auto['arena_bytes']:,}", f"{reduction:.1f}%", patches,
            "yes" if same else "NO"]
    got = builds["off"].c_out
    e = relative_errors(got, want).ravel()
    top1 = "n/a"
    if case.classifier:
        agree = float(np.mean(got.argmax(1) == want.argmax(1)))
        top1 = f"{100 * agree:.1f}% ({len(set(want.argmax(1).tolist()))} classes)"
    exact = builds["off"].exact and builds["auto"].exact
    acc = [case.name, "yes" if exact else "NO", f"{e.mean():.4f}", f"{np.median(e):.4f}",
           f"{np.percentile(e, 99):.4f}", f"{e.max():.4f}",
           f"{signal_error(got, want):.3f}", top1]
    return size, acc


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    torch.set_num_threads(1)
    sizes, accs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in NETS:
            size, acc = measure(case, Path(tmp))
            sizes.append(size)
            accs.append(acc)
    print(table(["net", "input", "ops", "MACs", "params", "flash B", "arena off B",
                 "arena auto B", "reduction", "patch schedule (auto)", "auto == off"], sizes))
    print()
    print(table(["net", "C == reference", "mean err/range", "p50", "p99", "max",
                 "rms err / rms signal", "top-1 agreement"], accs))
    print(f"\nerr/range: |dequantised C - float| / (float output range of that input), over "
          f"every output element of the {len(NETS)} nets' 16 held-out inputs; signal: the float "
          "output minus its mean over those inputs.")


if __name__ == "__main__":
    main()
