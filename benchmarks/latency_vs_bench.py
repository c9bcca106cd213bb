"""The search's latency estimate against `bench` on compiled digits subnets it never saw.

    .venv/bin/python benchmarks/latency_vs_bench.py

tinynas prices a candidate with tinyengine's per-op tables (tinyengine/target/latency.py,
measured by benchmarks/latency_table.py on subnets of seed 7); `tinyengine bench --board` runs
the compiled project under QEMU and weights its instruction classes
(tinyengine/target/cycles.py). Issue 16 asks for the two within 5% on the search's winner. The
subnets here come from other seeds and the corners of the space, compiled with weights of a
trained network's scale (latency.with_typical_weights), whole and with patches.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinyengine.codegen import compile_graph  # noqa: E402
from tinyengine.target import bench  # noqa: E402
from tinyengine.target.latency import with_typical_weights  # noqa: E402
from tinynas.arch import Arch  # noqa: E402
from tinynas.budget import arch_latency_ms  # noqa: E402
from tinynas.resources import build_graph  # noqa: E402
from tinynas.space import get_space  # noqa: E402

BOARDS = ["stm32f412", "stm32f746"]


def cases() -> list[tuple[str, Arch, str]]:
    """(label, subnet, patch): digits subnets of seed 2024 at four (width, resolution) pairs, the
    corners of the space, and subnets of seeds 31-36."""
    space = get_space("digits")
    out = []
    for w, r, patch in [(0.25, 8, "off"), (0.5, 12, "off"), (0.75, 16, "off"),
                        (0.375, 14, "auto")]:
        rng = np.random.default_rng([2024, int(100 * w), r])
        out.append((f"seed 2024 w{w} r{r}", space.sample(rng, w, r), patch))
    for w, r, largest, patch in [(0.25, 8, False, "off"), (0.25, 16, False, "off"),
                                 (0.75, 8, True, "off"), (0.75, 16, True, "off"),
                                 (0.75, 16, True, "auto")]:
        name = "largest" if largest else "smallest"
        out.append((f"{name} w{w} r{r}", space.extreme(w, r, largest), patch))
    for seed in range(31, 37):
        arch = space.sample(np.random.default_rng(seed))
        out.append((f"seed {seed} w{arch.width_mult:g} r{arch.resolution}", arch,
                    "auto" if seed % 3 == 0 else "off"))
    return out


def main() -> int:
    start = time.time()
    print("| subnet | patch | board | estimate (ms) | bench (ms) | error |")
    print("|---|---|---|---|---|---|")
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, arch, patch) in enumerate(cases()):
            project = Path(tmp) / f"s{i}"
            compile_graph(with_typical_weights(build_graph(arch)), project, prefix="m",
                          patch=patch)
            for board in BOARDS:
                measured = bench(project, board).ms
                assert measured is not None
                estimate = arch_latency_ms(arch, board, patch)
                errors.append(estimate / measured - 1)
                print(f"| {label} | {patch} | {board} | {estimate:.3f} | {measured:.3f} | "
                      f"{errors[-1]:+.1%} |", flush=True)
    worst = max(abs(e) for e in errors)
    within = sum(abs(e) <= 0.05 for e in errors)
    print(f"\n{within} of {len(errors)} within 5%, worst {worst:.1%} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
