"""Executed instructions per layer: our kernels against CMSIS-NN's, under QEMU, bit-exact checked.

    .venv/bin/python benchmarks/vs_cmsis_nn.py [--models kws,person] [--cores cortex-m4]
                                               [--opt O2,Os] [--quick] [--keep DIR]

For every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED layer of the int8 models in
../shared/models (default: the five TFLM's MANIFEST figures cover), on each core and optimisation
level, one bare-metal firmware per model holds both sides:

- ours: the generated project (compile_graph, patches off) and its own <prefix>_invoke on a seeded
  random input, so each kernel runs as the generated code calls it; per-op counts come from the
  project's QEMU plugin and trace splitter (tinyengine.target.icount), argument set-up included.
- CMSIS-NN: for each layer, the kernel TFLM's CMSIS-NN port calls (arm_convolve_wrapper_s8,
  arm_depthwise_conv_wrapper_s8, arm_fully_connected_s8) with its *_get_buffer_size scratch
  (asked outside the count, as TFLM does in Prepare), on the input our numpy reference computes
  for that layer from the same model input, with the same weights, bias, per-channel multipliers
  and shifts (TFLite's convention in both: shift > 0 shifts left) and activation limits. Offsets
  follow CMSIS-NN's code: input_offset = -input zero point; output_offset = +output zero point
  (the kernels add it, whatever the struct's comment says); filter_offset = -weight zero point.
  Each call goes through one noinline function whose trace gives the call's instructions, struct
  set-up included.

CMSIS-NN is compiled from ../shared/third_party/CMSIS-NN (pinned commit, PROVENANCE.md there)
with the same compiler and flags as our sources, only inside this benchmark's temporary build.
Before a count is trusted, every CMSIS-NN output is compared bit for bit with our reference for
that layer, and our model's outputs with the reference's; a layer that differs is reported and
left out of the totals (exit status 1). Prints Markdown: per-layer tables per core and level,
then a per-model table. Ratio = ours / CMSIS-NN (below 1.0: we execute fewer instructions).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from tinyengine.codegen import compile_graph
from tinyengine.codegen.cvalues import array_lines, c_comment
from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.ir import DTYPES, Graph, Op
from tinyengine.ops import get_op
from tinyengine.ops.common import conv_requant
from tinyengine.ops.depthwise import depth_multiplier
from tinyengine.ops.fully_connected import fc_geometry, filter_offset
from tinyengine.reference import ReferenceSession
from tinyengine.target import emulated_board, find_qemu, find_toolchain
from tinyengine.target.boards import Board
from tinyengine.target.build import (
    FIRMWARE_LDFLAGS,
    model_sources,
    render_target_files,
    symbol_sizes,
)
from tinyengine.target.icount import (
    bench_inputs,
    invoke_range,
    parse_trace,
    plugin_path,
    split_invocations,
)
from tinyengine.target.qemu import qemu_command

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
MODELS = SHARED / "models"
CMSIS_NN = SHARED / "third_party" / "CMSIS-NN"
CMSIS_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "NNSupportFunctions")
DEFAULT_MODELS = ("tflm_person_detect", "tiny_kws_ref_model", "tiny_pretrainedResnet_quant",
                  "tflm_micro_speech_quantized", "tflm_hello_world_int8")
QUICK = ("tiny_kws_ref_model", "cortex-m4", "O2")  # has all three layer kinds
COUNTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
PREFIX = "m"
# Our sources get the firmware's own warnings-as-errors; CMSIS-NN is third-party C99, built with
# the same code-generation flags but without -Werror.
OUR_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
CMSIS_FLAGS = ("-std=c99", "-ffunction-sections", "-fdata-sections")
STACK_BYTES = 16 * 1024  # CMSIS-NN's frames and newlib's stdio, with a wide margin
QEMU_TIMEOUT_S = 600.0


@dataclass
class Layer:
    """One counted layer: what the template lays out, and what the tables say."""

    k: int
    op_index: int
    name: str
    kind: str
    shape: str
    macs: int
    ours_kernel: str
    cmsis_kernel: str
    expected: np.ndarray  # our reference's output for this layer, flat int8
    ctx: dict[str, Any]


@dataclass
class Row:
    model: str
    layer: Layer
    ours: int
    cmsis: int | None  # None: CMSIS-NN's output differs from the reference
    mismatch: str = ""


def reference_values(graph: Graph, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's value in one reference inference (reference.py keeps only the outputs)."""
    values = dict(ReferenceSession(graph).state)  # variable tensors at their reset values
    values |= {n: x.reshape(graph.tensor(n).shape).astype(DTYPES[graph.tensor(n).dtype])
              for n, x in zip(graph.inputs, inputs)}
    values.update({t.name: t.data for t in graph.tensors.values() if t.data is not None})
    for op in graph.ops:
        args = [values[n] if n else None for n in op.inputs]
        outs = get_op(op.kind).reference(graph, op, args)  # type: ignore[arg-type]
        for name, y in zip(op.outputs, outs):
            values[name] = y
    return values


def _dims(n: int, h: int, w: int, c: int) -> str:
    return "{" + f"{n}, {h}, {w}, {c}" + "}"


def _lines(values: np.ndarray) -> list[str]:
    return array_lines(np.asarray(values).ravel(), per_line=24)


def cmsis_conv_variant(p: dict[str, Any], cin: int, ih: int) -> str:
    """The kernel arm_convolve_wrapper_s8 picks without MVE (its own conditions, restated)."""
    kh, kw = p["filter"][1:3]
    if (p["pad_h"], p["pad_w"], kh, kw, p["dilation_h"], p["dilation_w"]) == (0, 0, 1, 1, 1, 1):
        return "1x1_s8_fast" if (p["stride_h"], p["stride_w"]) == (1, 1) else "1x1_s8"
    if ih == 1 and p["dilation_w"] == 1 and kh == 1 and (p["stride_w"] * cin) % 4 == 0:
        return "1_x_n_s8"
    return "convolve_s8"


def cmsis_dw_variant(p: dict[str, Any], batches: int) -> str:
    """The kernel arm_depthwise_conv_wrapper_s8 picks without MVE."""
    if p["depth_multiplier"] == 1 and batches == 1 and (p["dilation_h"], p["dilation_w"]) == (1, 1):
        if tuple(p["filter"][1:3]) == (3, 3) and p["pad_h"] <= 1 and p["pad_w"] <= 1:
            return "dw_3x3_s8"
        return "dw_s8_opt"
    return "dw_s8"


def layer_context(graph: Graph, op: Op, values: dict[str, np.ndarray]) -> dict[str, Any] | str:
    """Template values for CMSIS-NN's call of `op`, or why the layer cannot be compared."""
    x, w, o = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
               graph.tensor(op.outputs[0]))
    b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    if (x.dtype, o.dtype) != ("int8", "int8"):
        return f"{x.dtype} activations (CMSIS-NN's s8 kernels take int8)"
    assert w.data is not None and w.quant is not None
    p: dict[str, Any] = dict(get_op(op.kind).emit(graph, op).params)
    neg_in_zp, out_zp, lo, hi = p["q"]
    mult, shift = conv_requant(x, w, o)
    ctx: dict[str, Any] = {
        "input_offset": neg_in_zp, "output_offset": out_zp, "act_min": lo, "act_max": hi,
        "input_lines": _lines(values[op.inputs[0]]), "input_size": x.size,
        "filter_lines": _lines(w.data), "filter_size": w.size,
        "bias_lines": _lines(b.data) if b is not None and b.data is not None else [],
        "output_size": o.size}
    if op.kind == "FULLY_CONNECTED":
        if w.quant.per_channel:
            return "per-channel weights (arm_fully_connected_s8 is per tensor)"
        batches, n_in, n_out = fc_geometry(graph, op)
        ctx.update(channels=n_out, mult0=int(mult[0]), shift0=int(shift[0]),
                   filter_offset=filter_offset(w), input_dims=_dims(batches, 1, 1, n_in),
                   filter_dims=_dims(n_in, 1, 1, n_out), bias_dims=_dims(1, 1, 1, n_out),
                   output_dims=_dims(batches, 1, 1, n_out), scratch=0,
                   shape=f"{batches}x{n_in} -> {n_out}", cmsis="fully_connected_s8")
        return ctx
    if op.kind == "CONV_2D" and p.get("groups", 1) != 1:
        return "grouped convolution (the wrapper takes groups == 1)"
    n, ih, iw, cin = p["input"]
    _, oh, ow, oc = p["output"]
    kh, kw = p["filter"][1:3]
    channels = oc
    ctx.update(channels=channels, mult_lines=_lines(np.broadcast_to(mult, (channels,))),
               shift_lines=_lines(np.broadcast_to(shift, (channels,))),
               stride_h=p["stride_h"], stride_w=p["stride_w"], pad_h=p["pad_h"],
               pad_w=p["pad_w"], dilation_h=p["dilation_h"], dilation_w=p["dilation_w"],
               input_dims=_dims(n, ih, iw, cin), bias_dims=_dims(1, 1, 1, oc),
               output_dims=_dims(n, oh, ow, oc),
               # An upper bound of any variant's im2col / widened-column scratch.
               scratch=8 * cin * kh * kw + 1024,
               shape=(f"{ih}x{iw}x{cin} -> {oh}x{ow}x{oc}, {kh}x{kw}/{p['stride_h']}"
                      f"{'x' + str(p['stride_w']) if p['stride_w'] != p['stride_h'] else ''}"
                      f"{', pad' if p['pad_h'] or p['pad_w'] else ''}"))
    if op.kind == "CONV_2D":
        ctx.update(filter_dims=_dims(oc, kh, kw, cin), cmsis=cmsis_conv_variant(p, cin, ih))
    else:
        ctx.update(filter_dims=_dims(1, kh, kw, oc), ch_mult=depth_multiplier(graph, op),
                   cmsis=cmsis_dw_variant(p, n))
    return ctx


@dataclass
class ModelSetup:
    name: str
    project: Path
    report: dict[str, Any]
    inputs: list[np.ndarray]
    expected_outputs: list[np.ndarray]
    layers: list[Layer]
    skipped: list[str]


def prepare_model(name: str, work: Path) -> ModelSetup:
    path = MODELS / f"{name}.tflite"
    if not path.is_file():
        raise TinyEngineError(f"model {path} not found; choose from "
                              f"{', '.join(sorted(p.stem for p in MODELS.glob('*.tflite')))}")
    graph = load_tflite(path)
    project = work / name / "project"
    report = compile_graph(graph, project, prefix=PREFIX, patch="off")
    by_name = {op.name: op for op in graph.ops}
    inputs = bench_inputs(report, seed=0)
    values = reference_values(graph, inputs)
    layers: list[Layer] = []
    skipped: list[str] = []
    for i, rop in enumerate(report["ops"]):
        op = by_name[rop["name"]]
        if op.kind not in COUNTED:
            continue
        ctx = layer_context(graph, op, values)
        if isinstance(ctx, str):
            skipped.append(f"{name} op {i} {op.name}: {ctx}")
            continue
        k = len(layers)
        ctx.update(k=k, op_index=i, name=op.name, kind=op.kind)
        layers.append(Layer(k, i, op.name, op.kind, ctx["shape"], rop["macs"], rop["kernel"],
                            ctx["cmsis"], values[op.outputs[0]].ravel(), ctx))
    return ModelSetup(name, project, report, inputs, [values[n] for n in graph.outputs], layers,
                      skipped)


# -- building ---------------------------------------------------------------------------------

def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise TinyEngineError(f"{what}:\n{result.stderr[-3000:]}")


def _compile_all(units: list[tuple[Path, Path, list[str]]]) -> None:
    def one(unit: tuple[Path, Path, list[str]]) -> None:
        src, obj, flags = unit
        _run([find_toolchain().gcc, *flags, "-c", str(src), "-o", str(obj)],
             f"compiling {src} failed")

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, units))


def build_cmsis(board: Board, opt: str, out: Path) -> Path:
    """libcmsisnn.a for one core and level, in the temporary build only."""
    lib = out / "libcmsisnn.a"
    if lib.is_file():
        return lib
    obj_dir = out / "obj"
    obj_dir.mkdir(parents=True)
    flags = [*board.cpu.cflags, f"-{opt}", *CMSIS_FLAGS, f"-I{CMSIS_NN / 'Include'}"]
    # The int kernels only: the float ones need the float API switched on (arm_nn_types_flt.h).
    sources = sorted(s for d in CMSIS_DIRS for s in (CMSIS_NN / "Source" / d).glob("*.c")
                     if not re.search(r"_f(16|32)(_|$)", s.stem))
    units = [(s, obj_dir / f"{s.stem}.o", flags) for s in sources]
    _compile_all(units)
    ar = shutil.which("arm-none-eabi-ar")
    if ar is None:
        raise TinyEngineError("arm-none-eabi-ar not found; apt-get install binutils-arm-none-eabi")
    _run([ar, "rcs", str(lib), *[str(o) for _, o, _ in units]], "arm-none-eabi-ar failed")
    return lib


def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "vs_cmsis_nn")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["comment"] = c_comment
    return env.get_template("harness.c.j2")


def build_harness(setup: ModelSetup, board: Board, opt: str, lib: Path, out: Path) -> Path:
    out.mkdir(parents=True)
    report, project = setup.report, setup.project
    sources = model_sources(report, project)
    files = render_target_files(report, board, sources,
                                {"firmware_startup.c.j2": "firmware_startup.c",
                                 "firmware.ld.j2": "firmware.ld"})
    # Raw little-endian bytes: the model input may be int16 or float (a QUANTIZE first).
    inputs = [{"index": i, "bytes": x.nbytes,
               "lines": _lines(np.ascontiguousarray(x, x.dtype.newbyteorder("<")).view(np.uint8))}
              for i, x in enumerate(setup.inputs)]
    files["vs_harness.c"] = _template().render(
        model=setup.name, board=board, opt=f"-{opt}", prefix=PREFIX, inputs=inputs,
        outputs=report["outputs"], layers=[layer.ctx for layer in setup.layers],
        scratch_bytes=max([layer.ctx["scratch"] for layer in setup.layers] + [16]),
        out_bytes=max(layer.ctx["output_size"] for layer in setup.layers))
    for name, text in files.items():
        (out / name).write_text(text)
    ours = [*board.cpu.cflags, f"-{opt}", *OUR_FLAGS, f"-I{project}", f"-I{project / 'kernels'}"]
    units = [(project / s, out / (s.replace("/", "__")[:-2] + ".o"), ours) for s in sources]
    units.append((out / "firmware_startup.c", out / "firmware_startup.o", ours))
    units.append((out / "vs_harness.c", out / "vs_harness.o",
                  [*ours, f"-I{CMSIS_NN / 'Include'}"]))
    _compile_all(units)
    elf = out / "vs_harness.elf"
    _run([find_toolchain().gcc, *board.cpu.cflags, *FIRMWARE_LDFLAGS, "-T",
          str(out / "firmware.ld"), "-o", str(elf), *[str(o) for _, o, _ in units], str(lib)],
         f"linking the {setup.name} harness for {board.name} failed")
    return elf


# -- running ----------------------------------------------------------------------------------

def _qemu_trace(elf: Path, board: Board, lo: int, hi: int) -> tuple[list[tuple[int, int, int]],
                                                                       bytes]:
    """One run with the plugin counting calls out of [lo, hi): the trace and output.bin."""
    with tempfile.TemporaryDirectory(prefix="vs-cmsis-qemu-") as tmp:
        trace = Path(tmp) / "trace.txt"
        cmd = qemu_command(board, elf, ["-plugin", f"{plugin_path()},lo={lo:#x},hi={hi:#x},"
                                                   f"out={trace}"])
        try:
            proc = subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=QEMU_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TinyEngineError(f"{elf} on {board.name}: QEMU did not finish in "
                                  f"{QEMU_TIMEOUT_S:g} s") from None
        if proc.returncode != 0 or "vs-done" not in proc.stdout:
            raise TinyEngineError(f"{elf} on {board.name}: QEMU exited with {proc.returncode}: "
                                  f"{(proc.stdout + proc.stderr)[-2000:]}")
        events, _ = parse_trace(trace.read_text())
        return events, (Path(tmp) / "output.bin").read_bytes()


def measure(setup: ModelSetup, board: Board, elf: Path) -> list[Row]:
    report = setup.report
    lo, hi = invoke_range(elf, PREFIX)
    events, data = _qemu_trace(elf, board, lo, hi)
    (_, per_op, _), = split_invocations(events, lo, len(report["ops"]))
    addr, size = symbol_sizes(elf)["vs_call"]
    addr &= ~1
    events, data2 = _qemu_trace(elf, board, addr, addr + size)
    calls = split_invocations(events, addr, 1)
    if len(calls) != len(setup.layers) or data2 != data:
        raise TinyEngineError(f"{setup.name}: the two runs on {board.name} disagree")

    pos = 0
    for k, want in enumerate(setup.expected_outputs):
        want_bytes = np.ascontiguousarray(want, want.dtype.newbyteorder("<")).tobytes()
        got_bytes = data[pos:pos + len(want_bytes)]
        pos += len(want_bytes)
        if got_bytes != want_bytes:
            raise TinyEngineError(f"{setup.name} on {board.name}: our output {k} differs from "
                                  "the reference (an engine bug: run the target tests)")
    out = np.frombuffer(data, np.int8)
    rows = []
    for layer, (count, _, _) in zip(setup.layers, calls):
        got = out[pos:pos + layer.expected.size]
        pos += layer.expected.size
        bad = int(np.count_nonzero(got != layer.expected))
        rows.append(Row(setup.name, layer, per_op[layer.op_index], None if bad else count,
                        f"{bad} of {got.size} values differ" if bad else ""))
    return rows


# -- tables -----------------------------------------------------------------------------------

def _ratio(ours: int, cmsis: int | None) -> str:
    return f"{ours / cmsis:.2f}x" if cmsis else "n/a"


def layer_table(rows: list[Row]) -> list[str]:
    lines = ["| model | op | layer | MACs | our kernel | CMSIS-NN kernel | ours | CMSIS-NN | "
             "ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lay = r.layer
        cmsis = f"{r.cmsis:,}" if r.cmsis is not None else f"MISMATCH: {r.mismatch}"
        lines.append(f"| {r.model} | {lay.op_index} | {lay.kind} {lay.shape} | {lay.macs:,} | "
                     f"{lay.ours_kernel} | arm_{lay.cmsis_kernel} | {r.ours:,} | {cmsis} | "
                     f"{_ratio(r.ours, r.cmsis)} |")
    return lines


def model_table(results: dict[tuple[str, str], list[Row]], models: list[str]) -> list[str]:
    lines = ["| model | core | opt | layers | ours | CMSIS-NN | ratio | layers above 1.0x | "
             "worst layer |", "|---|---|---|---|---|---|---|---|---|"]
    for model in models:
        for (core, opt), rows in results.items():
            mine = [r for r in rows if r.model == model and r.cmsis is not None]
            if not mine:
                continue
            ours, cmsis = sum(r.ours for r in mine), sum(r.cmsis or 0 for r in mine)
            worst = max(mine, key=lambda r: r.ours / (r.cmsis or 1))
            above = sum(1 for r in mine if r.ours > (r.cmsis or 0))
            lines.append(f"| {model} | {core} | -{opt} | {len(mine)} | {ours:,} | {cmsis:,} | "
                         f"{_ratio(ours, cmsis)} | {above} | op {worst.layer.op_index} "
                         f"{worst.layer.kind} ({_ratio(worst.ours, worst.cmsis)}) |")
    return lines


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _resolve_models(names: list[str]) -> list[str]:
    """Model stems; a unique substring is enough (`kws` -> tiny_kws_ref_model)."""
    stems = sorted(p.stem for p in MODELS.glob("*.tflite"))
    if names == ["all"]:
        return [*DEFAULT_MODELS, *(s for s in stems if s not in DEFAULT_MODELS)]
    out = []
    for n in names:
        hits = [s for s in stems if s == n] or [s for s in stems if n in s]
        if len(hits) != 1:
            raise TinyEngineError(f"--models {n!r} matches {hits or 'no model'}; choose from "
                                  f"{', '.join(stems)}")
        out.append(hits[0])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="comma-separated model names in ../shared/models (a unique substring "
                         "is enough), or `all`; default: the five TFLM's figures cover")
    ap.add_argument("--cores", default="cortex-m4,cortex-m7", help="emulated cores")
    ap.add_argument("--opt", default="O2,Os", help="optimisation levels, e.g. O2,Os")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {QUICK[0]} on {QUICK[1]} at -{QUICK[2]} only")
    ap.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    args = ap.parse_args()
    try:
        if args.quick:
            models, cores, opts = [QUICK[0]], [QUICK[1]], [QUICK[2]]
        else:
            models = _resolve_models(_split(args.models))
            cores, opts = _split(args.cores), [o.lstrip("-") for o in _split(args.opt)]
        boards = {c: dataclasses.replace(emulated_board(c), stack_bytes=STACK_BYTES)
                  for c in cores}
        bad = [o for o in opts if o not in ("O0", "O1", "O2", "O3", "Os", "Oz", "Ofast")]
        if bad:
            raise TinyEngineError(f"--opt {','.join(bad)}: use gcc levels such as O2,Os")
        find_qemu()
        find_toolchain()
        return run(models, cores, opts, boards, args.keep)
    except TinyEngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(models: list[str], cores: list[str], opts: list[str], boards: dict[str, Board],
        keep: Path | None) -> int:
    t0 = time.monotonic()
    results: dict[tuple[str, str], list[Row]] = {(c, o): [] for c in cores for o in opts}
    skipped: list[str] = []  # layers CMSIS-NN's s8 kernels do not cover
    failed: list[str] = []  # models that could not be built or run
    with tempfile.TemporaryDirectory(prefix="vs-cmsis-nn-") as tmp:
        work = keep.resolve() if keep else Path(tmp)
        if keep and keep.exists() and any(keep.iterdir()):
            raise TinyEngineError(f"--keep {keep} is not empty; choose a new directory")
        setups = []
        for name in models:
            try:
                setups.append(prepare_model(name, work))
            except TinyEngineError as e:  # e.g. --models all: a float or unsupported model
                failed.append(f"{name}: {e}")
                continue
            skipped += setups[-1].skipped
        for core in cores:
            for opt in opts:
                board = boards[core]
                print(f"[{time.monotonic() - t0:6.0f} s] CMSIS-NN for {core} -{opt}",
                      file=sys.stderr, flush=True)
                lib = build_cmsis(board, opt, work / f"cmsis-nn-{core}-{opt}")
                for setup in setups:
                    if not setup.layers:
                        continue
                    print(f"[{time.monotonic() - t0:6.0f} s] {setup.name} on {core} -{opt}",
                          file=sys.stderr, flush=True)
                    try:
                        elf = build_harness(setup, board, opt, lib,
                                            work / setup.name / f"harness-{core}-{opt}")
                        results[(core, opt)] += measure(setup, board, elf)
                    except TinyEngineError as e:  # e.g. weights twice over do not fit
                        failed.append(f"{setup.name} on {core} -{opt}: {e}")
    print("Executed instructions per layer call, ours / CMSIS-NN (commit 99f736a), under QEMU "
          "(tinyengine.target's instruction-count plugin); one seeded random model input, "
          "CMSIS-NN outputs checked bit-exact against our reference.\n")
    for (core, opt), rows in results.items():
        print(f"### {core} ({boards[core].name}), -{opt}\n")
        print("\n".join(layer_table(rows)) + "\n")
    print("### Per model: the counted layers together\n")
    print("\n".join(model_table(results, models)))
    if skipped:
        print("\nNot compared: " + "; ".join(skipped))
    for f in failed:
        lines = f.splitlines()
        cause = next((ln.strip() for ln in lines[1:] if "error" in ln or "overflow" in ln), "")
        print(f"\nNot measured: {lines[0]} {cause}")
    mismatches = [r for rows in results.values() for r in rows if r.cmsis is None]
    if mismatches:
        print(f"\n{len(mismatches)} layer(s) where CMSIS-NN's output differs from the reference "
              "were left out of the totals.")
    print(f"\n({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 1 if mismatches or failed else 0


if __name__ == "__main__":
    sys.exit(main())
