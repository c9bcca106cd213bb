"""Measure the per-op latency tables of tinyengine/target/latency.py: `bench` (QEMU and the cycle
model) on the shared models and on random subnets of the tinynas spaces for each core, a fit per
(kernel, shape class) through the per-op cycles, written to
tinyengine/target/latency_tables/<core>.json with the per-op records (benchmarks/cycle_model.py
reads them).

The subnets are what the search prices: MBConv networks built as tinynas.resources.build_graph
builds them (float32 input, QUANTIZE, the engine's kernels for their shapes), compiled with
random weights of a trained network's scale (latency.with_typical_weights: placeholder weights
would send the kernels down their portable paths), with whole tensors and with patches. They are
drawn from SUBNET_SEED; tests/test_tinynas_latency.py and benchmarks/latency_vs_bench.py check
the estimate on subnets from other seeds (held out).

    .venv/bin/python benchmarks/latency_table.py                      # cortex-m4 and cortex-m7
    .venv/bin/python benchmarks/latency_table.py --core cortex-m33 --core cortex-m55
    .venv/bin/python benchmarks/latency_table.py --refit   # refit the installed records

Needs arm-none-eabi-gcc and qemu-system-arm; one QEMU run at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyengine import __version__  # noqa: E402
from tinyengine.codegen import compile_graph  # noqa: E402
from tinyengine.frontend import load_tflite  # noqa: E402
from tinyengine.ir import Graph  # noqa: E402
from tinyengine.memory.fuse import fuse_blocks  # noqa: E402
from tinyengine.memory.schedule import schedule  # noqa: E402
from tinyengine.target import bench  # noqa: E402
from tinyengine.target.cycles import core_cycles  # noqa: E402
from tinyengine.target.latency import (  # noqa: E402
    TABLE_DIR,
    build_table,
    op_terms,
    with_typical_weights,
)
from tinynas.resources import build_graph  # noqa: E402
from tinynas.space import get_space  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
# The shared models the engine claims (tests/conftest.py MODEL_FILES), int8 and 16x8.
MODEL_FILES = ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
               "tiny_pretrainedResnet_quant.tflite", "tflm_micro_speech_quantized.tflite",
               "tflm_hello_world_int8.tflite", "tflm_keyword_scrambled.tflite",
               "tflm_micro_speech_lstm.tflite",
               *(f"tflm_seanet_{op}0.tflite" for op in ("add", "conv", "leaky_relu", "pad",
                                                        "quantize", "strided_slice", "sub",
                                                        "transpose_conv"))]


SUBNET_SEED = 7
# (space, subnets, widths, resolutions, patch): the digits space whole, the small corner of
# the VWW space (its larger subnets take minutes each under QEMU and use the same kernels), and
# more of the digits space's small corner, where fixed costs weigh most and the lines fit least.
# The last group runs every inverted-residual block fused (memory/fuse.py), which the planner
# picks only where the arena needs it: the fused blocks' own lines.
SUBNETS = [("digits", 24, None, None, "off"), ("digits", 8, None, None, "auto"),
           ("digits", 25, (0.25, 0.375, 0.5, 0.625, 0.75), (8, 10, 12, 14, 16), "off"),
           ("vww", 8, (0.1, 0.15, 0.2, 0.3), (32, 48), "off"),
           ("digits", 24, (0.25, 0.375), (8, 10, 12), "off"),
           ("digits", 12, (0.25, 0.375, 0.5), (8, 10), "auto"),
           ("digits", 30, (0.25, 0.375, 0.5, 0.625, 0.75), (8, 10, 12, 14, 16), "fused")]


def subnet_graphs(seed: int = SUBNET_SEED) -> list[tuple[str, Graph, str]]:
    """(name, graph with typical weights, patch) of the random subnets the tables are measured
    on."""
    out: list[tuple[str, Graph, str]] = []
    for group, (space_name, n, widths, resolutions, patch) in enumerate(SUBNETS):
        space = get_space(space_name)
        rng = np.random.default_rng([seed, len(out)])
        for i in range(n):
            # Given widths and resolutions: every pair in turn (the grid when n covers it).
            w = None if widths is None else widths[i % len(widths)]
            r = None if resolutions is None else \
                resolutions[(i // len(widths or (0,))) % len(resolutions)]
            arch = space.sample(rng, w, r)
            name = f"{space_name}-{group}-{patch}-{i}-w{arch.width_mult:g}-r{arch.resolution}"
            graph = with_typical_weights(build_graph(arch), len(out))
            if patch == "fused":
                graph, patch_of = fuse_blocks(graph), "off"
            else:
                patch_of = patch
            out.append((name, graph, patch_of))
    return out


def features(scheduled: Graph, op) -> dict:
    kernel, key, w, outs, pixels, taps = op_terms(scheduled, op)
    return {"kernel": kernel, "key": key, "work": w, "outputs": outs, "pixels": pixels,
            "taps": taps}


def model_features(names: list[str]) -> dict[tuple[str, str], dict]:
    """Each (model, op)'s features as op_terms computes them now, from the models the records
    were measured on (rebuilt, not run): a change of op_terms refits without QEMU."""
    graphs = {name: (load_tflite(MODELS / name), "auto") for name in MODEL_FILES}
    graphs.update({name: (graph, patch) for name, graph, patch in subnet_graphs()})
    out = {}
    for name in names:
        graph, patch = graphs[name]
        scheduled = schedule(graph, patch, True, "auto").graph
        out.update({(name, op.name): features(scheduled, op) for op in scheduled.ops})
    return out


def tool_version(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]


def measure(core: str, models: list[tuple[str, Graph, str]], work: Path) -> list[dict]:
    """Per-op records of every model on the core: features, and the bench's class counts."""
    records = []
    for name, graph, patch in models:
        project = work / name.removesuffix(".tflite")
        if not project.is_dir():
            compile_graph(graph, project, prefix="m", patch=patch)
        scheduled = schedule(graph, patch, True, "auto").graph  # compile_graph's defaults
        result = bench(project, core)
        for op, count in zip(scheduled.ops, result.per_op, strict=True):
            f = features(scheduled, op)
            assert (op.name, f["kernel"]) == (count.name, count.kernel), (op.name, count.name)
            records.append({"model": name, "op": op.name, "kind": op.kind, **f,
                            "macs": count.macs, "instructions": count.instructions,
                            "cycles": core_cycles(count.classes, core),
                            **{q: count.classes[q] for q in ("lines16", "lines32", "literal")}})
        print(f"{core:<14} {name:<40} {result.total_cycles:>12,} cycles", flush=True)
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", action="append", help="core (repeatable; default m4 and m7)")
    ap.add_argument("-o", "--output", type=Path, default=TABLE_DIR)
    ap.add_argument("--refit", action="store_true",
                    help="no measuring: the records of the tables in --output, their features "
                    "computed again from their models (not run), fitted again")
    args = ap.parse_args()
    if args.refit:
        recomputed: dict[tuple[str, str], dict] = {}
        for path in sorted(args.output.glob("*.json")):
            old = json.loads(path.read_text())
            meta = {k: v for k, v in old.items()
                    if k not in ("core", "keys", "kernels", "overall", "records")}
            if not recomputed:
                recomputed = model_features(meta["models"])
            for r in old["records"]:
                r.update(recomputed[(r["model"], r["op"])])
            table = build_table(old["records"], old["core"], meta)
            table["records"] = old["records"]
            path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
            print(f"refitted {path}: {len(table['keys'])} keys from {len(old['records'])} ops")
        return 0
    models = [(name, load_tflite(MODELS / name), "auto") for name in MODEL_FILES]
    models += subnet_graphs()
    meta = {"tinyengine_version": __version__, "models": [m[0] for m in models],
            "qemu": tool_version(["qemu-system-arm", "--version"]),
            "gcc": tool_version(["arm-none-eabi-gcc", "--version"]),
            "how": "benchmarks/latency_table.py: bench (SIMD kernels) on each model and on "
                   f"random tinynas subnets (seed {SUBNET_SEED}, typical weights), "
                   "cycles at zero wait states from tinyengine/target/cycles.py"}
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="latency-table-") as tmp:
        for core in args.core or ["cortex-m4", "cortex-m7"]:
            records = measure(core, models, Path(tmp))
            table = build_table(records, core, meta)
            table["records"] = records
            path = args.output / f"{core}.json"
            path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
            print(f"wrote {path}: {len(table['keys'])} keys from {len(records)} ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
