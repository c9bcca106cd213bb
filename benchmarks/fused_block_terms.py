"""How well the fused block's latency lines fit, with its member calls weighted by channels
(tinyengine/target/latency.py `_fused_terms`) against the output rows they replaced.

    .venv/bin/python benchmarks/fused_block_terms.py [--core cortex-m4]

Reads the fused blocks' measured cycles from the installed latency table's records, rebuilds
their models (benchmarks/latency_table.py's subnets; nothing is run under QEMU), and prints the
leave-one-out relative error of the per-class lines (latency.fit_terms) under both terms.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from latency_table import subnet_graphs  # noqa: E402

from tinyengine.memory.schedule import schedule  # noqa: E402
from tinyengine.target.latency import TABLE_DIR, fit_terms, line_value, op_terms  # noqa: E402


def leave_one_out(rows: list[tuple[str, tuple[int, ...], float]]) -> np.ndarray:
    """Relative errors of each block's line fitted without it, per class with 8 or more."""
    errors = []
    for key in sorted({k for k, _, _ in rows}):
        group = [(f, y) for k, f, y in rows if k == key]
        if len(group) < 8:
            continue
        for i, (f, y) in enumerate(group):
            rest = group[:i] + group[i + 1:]
            coef = fit_terms([g[0] for g in rest], [g[1] for g in rest])
            errors.append(line_value(coef, *f) / y - 1)
    return np.abs(np.array(errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", default="cortex-m4")
    args = ap.parse_args()
    table = json.loads((TABLE_DIR / f"{args.core}.json").read_text())
    cycles = {(r["model"], r["op"]): r["cycles"] for r in table["records"]
              if r["kind"] == "FUSED_BLOCK"}
    rows: dict[str, list] = {"output rows": [], "member calls x channels": []}
    for name, graph, patch in subnet_graphs():
        if not any(m == name for m, _ in cycles):
            continue
        scheduled = schedule(graph, patch, True, "auto").graph
        for op in scheduled.ops:
            if (name, op.name) not in cycles:
                continue
            _, key, work, outs, calls, expanded = op_terms(scheduled, op)
            out = scheduled.tensor(op.outputs[0]).shape
            y = cycles[(name, op.name)]
            rows["output rows"].append((key, (work, outs, out[0] * out[1], expanded), y))
            rows["member calls x channels"].append((key, (work, outs, calls, expanded), y))
    print(f"{len(cycles)} fused blocks measured on {args.core}")
    print("| term | mean | 90th percentile | worst |\n|---|---|---|---|")
    for term, r in rows.items():
        e = leave_one_out(r)
        print(f"| {term} | {e.mean():.1%} | {np.quantile(e, 0.9):.1%} | {e.max():.1%} |")


if __name__ == "__main__":
    main()
