"""Measure the per-op latency tables of tinyengine/target/latency.py: `bench` (QEMU and the cycle
model) on the shared models for each core, a line per (kernel, shape class) through the per-op
cycles, written to tinyengine/target/latency_tables/<core>.json with the per-op records
(benchmarks/cycle_model.py reads them).

    .venv/bin/python benchmarks/latency_table.py                      # cortex-m4 and cortex-m7
    .venv/bin/python benchmarks/latency_table.py --core cortex-m33 --core cortex-m55

Needs arm-none-eabi-gcc and qemu-system-arm; one QEMU run at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyengine import __version__  # noqa: E402
from tinyengine.codegen import compile_graph  # noqa: E402
from tinyengine.frontend import load_tflite  # noqa: E402
from tinyengine.memory.schedule import schedule  # noqa: E402
from tinyengine.target import bench  # noqa: E402
from tinyengine.target.cycles import core_cycles  # noqa: E402
from tinyengine.target.latency import TABLE_DIR, build_table, op_features  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
# The shared models the engine claims (tests/conftest.py MODEL_FILES), int8 and 16x8.
MODEL_FILES = ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
               "tiny_pretrainedResnet_quant.tflite", "tflm_micro_speech_quantized.tflite",
               "tflm_hello_world_int8.tflite", "tflm_keyword_scrambled.tflite",
               "tflm_micro_speech_lstm.tflite",
               *(f"tflm_seanet_{op}0.tflite" for op in ("add", "conv", "leaky_relu", "pad",
                                                        "quantize", "strided_slice", "sub",
                                                        "transpose_conv"))]


def tool_version(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]


def measure(core: str, files: list[str], work: Path) -> list[dict]:
    """Per-op records of every model on the core: features, and the bench's class counts."""
    records = []
    for name in files:
        graph = load_tflite(MODELS / name)
        project = work / name.removesuffix(".tflite")
        if not project.is_dir():
            compile_graph(graph, project, prefix="m")
        scheduled = schedule(graph, "auto", True, "auto").graph  # compile_graph's defaults
        result = bench(project, core)
        for op, count in zip(scheduled.ops, result.per_op, strict=True):
            kernel, key, w = op_features(scheduled, op)
            assert (op.name, kernel) == (count.name, count.kernel), (op.name, count.name)
            records.append({"model": name, "op": op.name, "kind": op.kind, "kernel": kernel,
                            "key": key, "work": w, "macs": count.macs,
                            "instructions": count.instructions,
                            "cycles": core_cycles(count.classes, core),
                            **{q: count.classes[q] for q in ("lines16", "lines32", "literal")}})
        print(f"{core:<14} {name:<40} {result.total_cycles:>12,} cycles", flush=True)
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", action="append", help="core (repeatable; default m4 and m7)")
    ap.add_argument("-o", "--output", type=Path, default=TABLE_DIR)
    args = ap.parse_args()
    meta = {"tinyengine_version": __version__, "models": MODEL_FILES,
            "qemu": tool_version(["qemu-system-arm", "--version"]),
            "gcc": tool_version(["arm-none-eabi-gcc", "--version"]),
            "how": "benchmarks/latency_table.py: bench (SIMD kernels) on each model, "
                   "cycles at zero wait states from tinyengine/target/cycles.py"}
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="latency-table-") as tmp:
        for core in args.core or ["cortex-m4", "cortex-m7"]:
            records = measure(core, MODEL_FILES, Path(tmp))
            table = build_table(records, core, meta)
            table["records"] = records
            path = args.output / f"{core}.json"
            path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
            print(f"wrote {path}: {len(table['keys'])} keys from {len(records)} ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
