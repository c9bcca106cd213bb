"""Arena, flash and host speed of tinyengine's generated C against TFLM on the shared models.

    .venv/bin/python benchmarks/engine_vs_tflm.py [--runs N] [--set int8|16x8]

For each model of the set (`int8`: the int8 models; `16x8`: the int16 and recurrent models, with
state), three builds of the generated C: whole-tensor execution
(--patch off), automatic patch-based inference (--patch auto, 20% MAC budget) and, as a labelled
option, patches with the input streamed from the caller's buffer. Each build's arena (inputs,
outputs and scratch included unless streamed) is set beside TFLM's head (activations, its greedy
planner) and total arena (head + persistent tail) as measured now with the tflite-micro package,
and each build's outputs are checked against TFLM bit for bit on N random inputs. A second table
gives the host time per inference (whole-tensor build, through cffi) against the TFLM
interpreter on the same inputs. Prints Markdown; benchmarks/RESULTS.md records the output.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyengine import tflm
from tinyengine.codegen import compile_graph
from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.runtime import HostModel

MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
MODEL_FILES = ["tflm_hello_world_int8.tflite", "tflm_micro_speech_quantized.tflite",
               "tflm_mobilenet_v2_pytorch.tflite", "tflm_person_detect.tflite",
               "tiny_kws_ref_model.tflite", "tiny_pretrainedResnet_quant.tflite"]
# int16 activations (16x8) and recurrent models with state (SVDF, LSTM): MANIFEST.md.
MODEL_FILES_16X8 = ["tflm_keyword_scrambled.tflite", "tflm_micro_speech_lstm.tflite",
                    *(f"tflm_seanet_{op}0.tflite" for op in (
                        "add", "conv", "leaky_relu", "pad", "quantize", "strided_slice", "sub",
                        "transpose_conv"))]
SETS = {"int8": MODEL_FILES, "16x8": MODEL_FILES_16X8}
MODES = {"off": {"patch": "off"}, "auto": {"patch": "auto"},
         "stream": {"patch": "auto", "stream_input": True}}


def _per_call(fn, inputs: list[list[np.ndarray]]) -> float:
    """Median over inputs of one call, in milliseconds (after one warm-up call)."""
    fn(inputs[0])
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _build(graph, tmp: Path, mode: str) -> tuple[dict, HostModel] | None:
    try:
        report = compile_graph(graph, tmp / mode, prefix="m", **MODES[mode])
    except TinyEngineError:  # streaming without patches: not applicable to this model
        return None
    return report, HostModel(tmp / mode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--set", choices=sorted(SETS), default="int8")
    args = ap.parse_args()
    from tflite_micro import runtime

    memory_rows, speed_rows = [], []
    for path in (MODELS / name for name in SETS[args.set]):
        graph = load_tflite(path)
        model = path.read_bytes()
        rng = np.random.default_rng(0)
        inputs = [random_inputs(graph, rng) for _ in range(args.runs)]
        # One interpreter for the whole run: the inputs are one stream (state carried), as in
        # each build's host model below.
        oracle = tflm.TflmSession(model)
        expected = [oracle.invoke(x) for x in inputs]
        a = tflm.tflm_arena(path)
        cells = []
        with tempfile.TemporaryDirectory() as tmp:
            builds = {m: _build(graph, Path(tmp), m) for m in MODES}
            for built in builds.values():
                if built is None:
                    cells.append("n/a")
                    continue
                report, host = built
                exact = all(np.array_equal(c, t.reshape(c.shape))
                            for x, want in zip(inputs, expected)
                            for c, t in zip(host.invoke(x), want))
                p = report["patches"]
                how = (f"{p['grid'][0]}x{p['grid'][1]}@{len(p['stage_ops'])}, "
                       f"+{100 * p['mac_overhead']:.1f}% MACs" if p else "no patches")
                # Against TFLM's head plus its state: our state sits beside the arena.
                ours, state = report["arena_bytes"], report["persistent_bytes"]
                st = f" + {state:,} state" if state else ""
                cells.append(f"{ours:,}{st} ({(ours + state) / (a['head'] + a['variable']):.2f}"
                             f" head{'+state' if state else ''}, {(ours + state) / a['total']:.2f}"
                             f" total; {how}; {'exact' if exact else 'MISMATCH'})")
            whole, host = builds["off"]  # type: ignore[misc]
            ours_ms = _per_call(host.invoke, inputs)
        itp = runtime.Interpreter.from_bytes(model, arena_size=tflm.DEFAULT_ARENA_BYTES)

        def tflm_call(x: list[np.ndarray], itp=itp) -> None:
            for i, v in enumerate(x):
                itp.set_input(v, i)
            itp.invoke()

        tflm_ms = _per_call(tflm_call, inputs)
        var = f" + {a['variable']:,} state" if a["variable"] else ""
        memory_rows.append(f"| {path.stem} | {a['head']:,}{var} | {a['total']:,} | "
                           + " | ".join(cells) + " |")
        speed_rows.append(f"| {path.stem} | {whole['flash_bytes']:,} | {whole['macs']:,} | "
                          f"{ours_ms:.3f} | {tflm_ms:.3f} | {tflm_ms / ours_ms:.1f}x |")
    print(f"Arena bytes (+ persistent state where the model has any); each build checked "
          f"against TFLM on {args.runs} random inputs fed as one stream.\n")
    print("| model | TFLM head | TFLM total | ours, whole tensors | ours, auto patches "
          "| ours, patches + streamed input (option) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(memory_rows))
    print("\nHost time per inference, whole-tensor build (median of the same inputs).\n")
    print("| model | ours flash B | MACs | ours ms | TFLM ms | speed-up |")
    print("|---|---|---|---|---|---|")
    print("\n".join(speed_rows))


if __name__ == "__main__":
    main()
