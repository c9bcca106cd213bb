"""MicroNets' linear op-count latency model against our cycle model (issue 16, point 3).

MicroNets (Banbury et al., MLSys 2021) model an op's latency as a * MACs + b per op kind. Here
a and b are fitted by least squares per op kind over the per-op cycles that `bench` measured on
the shared models (the records in tinyengine/target/latency_tables/<core>.json, written by
benchmarks/latency_table.py), and the table says how far that model is from ours per op kind:
the median and worst per-op error, and the error on each model's total.

    .venv/bin/python benchmarks/cycle_model.py                # cortex-m4 and cortex-m7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyengine.target.latency import load_table  # noqa: E402


def fit_kind(macs: np.ndarray, cycles: np.ndarray) -> tuple[float, float]:
    """Least squares cycles = a * macs + b (plain: MicroNets' model, no constraints)."""
    if len(set(macs.tolist())) < 2:
        return 0.0, float(cycles.mean())
    a, b = np.linalg.lstsq(np.stack([macs, np.ones_like(macs)], axis=1), cycles, rcond=None)[0]
    return float(a), float(b)


def report(core: str) -> str:
    records = load_table(core)["records"]
    kinds = sorted({r["kind"] for r in records})
    fits = {}
    lines = [f"{core}: {len(records)} ops of {len({r['model'] for r in records})} models",
             "", "| op kind | ops | share of cycles | a (cycles/MAC) | b (cycles) | "
             "median per-op error | worst per-op error |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    total = sum(r["cycles"] for r in records)
    for kind in kinds:
        rs = [r for r in records if r["kind"] == kind]
        macs = np.array([r["macs"] for r in rs], dtype=float)
        ours = np.array([r["cycles"] for r in rs], dtype=float)
        a, b = fits[kind] = fit_kind(macs, ours)
        err = np.abs((a * macs + b) / ours - 1)
        lines.append(f"| {kind} | {len(rs)} | {100 * ours.sum() / total:.1f}% | {a:.3f} | "
                     f"{b:,.0f} | {100 * np.median(err):.1f}% | {100 * err.max():.0f}% |")
    lines += ["", "| model | ours (cycles) | MicroNets' fit | error |", "|---|---:|---:|---:|"]
    for model in sorted({r["model"] for r in records}):
        rs = [r for r in records if r["model"] == model]
        ours_total = sum(r["cycles"] for r in rs)
        theirs = sum(fits[r["kind"]][0] * r["macs"] + fits[r["kind"]][1] for r in rs)
        lines.append(f"| {model.removesuffix('.tflite')} | {ours_total:,.0f} | {theirs:,.0f} | "
                     f"{100 * (theirs / ours_total - 1):+.1f}% |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", action="append", help="core (repeatable; default m4 and m7)")
    args = ap.parse_args()
    print("\n\n".join(report(core) for core in args.core or ["cortex-m4", "cortex-m7"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
