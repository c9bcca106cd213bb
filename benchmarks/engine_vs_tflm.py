"""Arena, flash and host speed of tinyengine's generated C against TFLM on the shared models.

    .venv/bin/python benchmarks/engine_vs_tflm.py [--runs N]

For each model in ../shared/models: our arena (inputs, outputs and scratch included) and flash
(weights + biases + requantisation tables as laid out), TFLM's head (activations, its greedy
planner) and total arena (head + persistent tail) as measured now with the tflite-micro package,
the ratios, and the host time per inference of our C (through cffi) and of the TFLM interpreter
on the same inputs. Prints a Markdown table; benchmarks/RESULTS.md records its output.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyengine import tflm
from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.runtime import HostModel

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"


def _per_call(fn, inputs: list[list[np.ndarray]]) -> float:
    """Median over inputs of one call, in milliseconds (after one warm-up call)."""
    fn(inputs[0])
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    from tflite_micro import runtime

    print("| model | ours arena B | TFLM head B | ours/head | TFLM total B | ours/total "
          "| ours flash B | MACs | ours ms | TFLM ms | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(MODELS.glob("*.tflite")):
        graph = load_tflite(path)
        with tempfile.TemporaryDirectory() as tmp:
            report = compile_graph(graph, Path(tmp) / "p", prefix="m")
            host = HostModel(Path(tmp) / "p")
            rng = np.random.default_rng(0)
            inputs = [random_inputs(graph, rng) for _ in range(args.runs)]
            ours_ms = _per_call(host.invoke, inputs)
        itp = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=tflm.DEFAULT_ARENA_BYTES)

        def tflm_call(x: list[np.ndarray], itp=itp) -> None:
            for i, a in enumerate(x):
                itp.set_input(a, i)
            itp.invoke()

        tflm_ms = _per_call(tflm_call, inputs)
        a = tflm.tflm_arena(path)
        ours = report["arena_bytes"]
        print(f"| {path.stem} | {ours:,} | {a['head']:,} | {ours / a['head']:.3f} | "
              f"{a['total']:,} | {ours / a['total']:.3f} | {report['flash_bytes']:,} | "
              f"{report['macs']:,} | {ours_ms:.3f} | {tflm_ms:.3f} | {tflm_ms / ours_ms:.1f}x |")


if __name__ == "__main__":
    main()
