"""Seeded fuzzing of what users hand to `tinyengine`: mutated .tflite files, mutated ONNX models
and calibration arrays, and malformed input arrays for `tinyengine run`.

Every case is rebuilt from (kind, source, seed) alone, so a finding is reproduced by its id:

    python -m tests.fuzz_models tflite:tiny_kws_ref_model.tflite:17 [--write DIR]

The property (issue 17): `tinyengine compile` either refuses with exactly one line
`tinyengine: error: ...` on stderr, exit 2 and no output directory (nor anything else left in
its parent), or it writes a project whose C builds with -Werror, equals the numpy reference on a
few random inputs and runs clean under ASan/UBSan (tests/sanitized.py). `tinyengine run` either
refuses an array the same way, writing nothing, or takes it only in the model's own shape (or a
batch of it) and gives the reference's answer.

The CLI's `main` runs in this process for speed (the one-line rule is its own code, run as is);
`cli_check` runs the real command as a subprocess for a sample, and `c_check` builds and runs the
C of a sample of accepted mutants.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT.parent / "shared" / "models"
MODEL_FILES = ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
               "tiny_pretrainedResnet_quant.tflite", "tflm_micro_speech_quantized.tflite",
               "tflm_hello_world_int8.tflite"]
# The int16 and recurrent models (SVDF, LSTM: state carried between invocations).
MODEL_FILES_16X8 = ["tflm_keyword_scrambled.tflite", "tflm_micro_speech_lstm.tflite",
                    *(f"tflm_seanet_{op}0.tflite" for op in (
                        "add", "conv", "leaky_relu", "pad", "quantize", "strided_slice", "sub",
                        "transpose_conv"))]
LARGE_MODEL = "tflm_mobilenet_v2_pytorch.tflite"  # long run only: 4 MB, 300 M MACs
RUN_MODELS = ["tflm_hello_world_int8.tflite", "tflm_micro_speech_quantized.tflite",
              "tiny_kws_ref_model.tflite"]  # projects that `run` cases feed arrays to

# Verdicts: the first three keep the property, the rest are findings.
OK_VERDICTS = ("refused", "exact", "accepted")
FINDINGS = ("traceback", "sanitizer", "difference", "no-build", "run-fails", "bad-refusal",
            "cli-disagrees", "hang", "silent-reshape")
TIMEOUT_S = 60
C_LIMIT_MACS = 400_000_000  # accepted mutants bigger than this are not run under ASan
C_LIMIT_BYTES = 16 << 20


@dataclass
class Outcome:
    case: str  # "kind:source:seed"
    mutation: str
    verdict: str
    detail: str = ""  # the refusal, the traceback's last line, the sanitizer's first line...
    at_fault: str = ""  # the deepest tinyengine frame of a traceback: file:line (function)

    @property
    def ok(self) -> bool:
        return self.verdict in OK_VERDICTS

    def repro(self) -> str:
        return f"python -m tests.fuzz_models {self.case} --write /tmp/fuzz_case"

    def line(self) -> str:
        where = f" [{self.at_fault}]" if self.at_fault else ""
        return f"{self.case} ({self.mutation}): {self.verdict}: {self.detail}{where}"


# --------------------------------------------------------------------------------------------
# TFLite mutators

def _fb() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


_UNPACKED: dict[str, Any] = {}


def _unpack(name: str) -> Any:
    if name not in _UNPACKED:
        _UNPACKED[name] = _fb().ModelT.InitFromPackedBuf(bytearray((MODELS / name).read_bytes()),
                                                         0)
    return copy.deepcopy(_UNPACKED[name])


def _pack(model: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


INT_EDGES = [0, -1, -2, 1, 2, 3, 7, 255, 1000, 65535, 1 << 20, 2**31 - 1, -(2**31)]
SCALE_EDGES = [0.0, -1.0, -0.5, float("nan"), float("inf"), float("-inf"), 1e-45, 1e-38,
               1e-30, 1e-20, 1e-10, 1e10, 1e20, 1e30, 3.4e38]
ZP_EDGES = [-129, -128, 127, 128, 255, 1000, -1000, 2**31 - 1, -(2**40)]


def _raw_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    how = rng.choice(["flip", "truncate", "int32", "splice"])
    if how == "flip":
        n = rng.choice([1, 1, 2, 4, 16])
        for _ in range(n):
            buf[rng.randrange(8, len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf), f"raw: {n} bit flips"
    if how == "truncate":
        cut = rng.choice([rng.randrange(0, 64), rng.randrange(0, len(buf))])
        return bytes(buf[:cut]), f"raw: truncated to {cut} bytes"
    if how == "int32":  # an offset or an index anywhere in the file, set to an edge value
        at = rng.randrange(8, len(buf) - 4) & ~3
        v = rng.choice(INT_EDGES)
        buf[at:at + 4] = struct.pack("<i", v)
        return bytes(buf), f"raw: int32 at {at} = {v}"
    a, b = sorted(rng.randrange(8, len(buf)) for _ in range(2))
    c = rng.randrange(8, len(buf))
    del buf[a:b]
    buf[c:c] = data[a:b][:4096]
    return bytes(buf[: len(data) + 4096]), f"raw: moved bytes {a}..{b} to {c}"


def _pick_tensor(rng: random.Random, sub: Any, want_quant: bool = False) -> tuple[int, Any]:
    cands = [(i, t) for i, t in enumerate(sub.tensors)
             if not want_quant or (t.quantization is not None and t.quantization.scale is not None)]
    return rng.choice(cands or list(enumerate(sub.tensors)))


def _edge_like(rng: random.Random, v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return rng.choice([0, -1, 1, 2, 3, 4, 5, 6, 7, 9, 100, -100, 127, -128, v + 1])
    if isinstance(v, float):
        return rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e30])
    return v


def _structured_mutation(model: Any, rng: random.Random) -> str:
    """One edit of the unpacked model through TFLM's flatbuffer object API; returns what it did."""
    fb = _fb()
    sub = model.subgraphs[0]
    what = rng.choice(["shape", "shape", "type", "buffer", "buffer_data", "scale", "scale",
                       "zero_point", "zero_point", "quant_dim", "quant_drop", "op_index",
                       "op_index", "opcode", "options", "options", "options", "graph_io",
                       "op_order", "per_channel"])
    if what == "shape":
        i, t = _pick_tensor(rng, sub)
        shape = list(t.shape if t.shape is not None else [])
        how = rng.choice(["dim", "dim", "drop", "add", "empty"])
        if how == "dim" and shape:
            k = rng.randrange(len(shape))
            shape[k] = rng.choice([0, -1, 1, 2, shape[k] + 1, shape[k] * 2, 1 << 16, 2**31 - 1])
        elif how == "drop" and shape:
            shape.pop(rng.randrange(len(shape)))
        elif how == "add":
            shape.insert(rng.randrange(len(shape) + 1), rng.choice([1, 2, 3]))
        else:
            shape = []
        t.shape = shape
        return f"tensor {i} shape -> {shape}"
    full = [k for k, b in enumerate(model.buffers) if b.data is not None and len(b.data)]
    if what == "buffer_data" and not full:  # a model without constants (a one-op SEANet one)
        what = "type"
    if what == "type":
        i, t = _pick_tensor(rng, sub)
        t.type = rng.choice([0, 1, 2, 3, 4, 7, 9, 10, 16, 17, 127])
        return f"tensor {i} type -> {t.type}"
    if what == "buffer":
        i, t = _pick_tensor(rng, sub)
        t.buffer = rng.choice([0, len(model.buffers), len(model.buffers) + 100, 2**32 - 1,
                               rng.randrange(len(model.buffers))])
        return f"tensor {i} buffer -> {t.buffer}"
    if what == "buffer_data":
        k = rng.choice(full)
        data = model.buffers[k].data
        how = rng.choice(["short", "long", "empty", "random"])
        if how == "short":
            model.buffers[k].data = data[: rng.randrange(len(data))]
        elif how == "long":
            model.buffers[k].data = np.concatenate([data, data[: rng.randint(1, 64)]])
        elif how == "empty":
            model.buffers[k].data = None
        else:  # extreme contents: int32 biases near their limits, int8 weights at -128
            nrng = np.random.default_rng(rng.randrange(2**32))
            model.buffers[k].data = nrng.choice(np.array([0, 127, 128, 255], np.uint8),
                                                len(data))
        return f"buffer {k} data {how}"
    if what in ("scale", "zero_point", "quant_dim", "quant_drop", "per_channel"):
        i, t = _pick_tensor(rng, sub, want_quant=True)
        q = t.quantization
        if q is None or q.scale is None:
            t.quantization = None
            return f"tensor {i} quantization removed"
        n = len(q.scale)
        if what == "scale":
            v = rng.choice(SCALE_EDGES)
            scale = np.array(q.scale, np.float32)
            scale[rng.randrange(n) if rng.random() < 0.5 else slice(None)] = v
            q.scale = scale
            return f"tensor {i} scale -> {v}"
        if what == "zero_point":
            v = rng.choice(ZP_EDGES)
            zp = np.array(q.zeroPoint if q.zeroPoint is not None else np.zeros(n), np.int64)
            zp[rng.randrange(len(zp)) if len(zp) else slice(None)] = v
            q.zeroPoint = zp
            return f"tensor {i} zero point -> {v}"
        if what == "quant_dim":
            q.quantizedDimension = rng.choice([1, 2, 3, 4, -1, 7, 2**31 - 1])
            return f"tensor {i} quantized_dimension -> {q.quantizedDimension}"
        if what == "per_channel":  # a count of per-channel parameters the tensor does not have
            m = rng.choice([1, 2, max(n - 1, 1), n + 1, 2 * n])
            q.scale = np.resize(np.array(q.scale, np.float32), m)
            q.zeroPoint = np.zeros(rng.choice([m, 1, m + 1]), np.int64)
            return f"tensor {i} per-channel count {n} -> scales {m}, zero points " \
                   f"{len(q.zeroPoint)}"
        if rng.random() < 0.5:
            t.quantization = None
        else:
            q.scale, q.zeroPoint = None, None
        return f"tensor {i} quantization dropped"
    if what == "op_index":
        k = rng.randrange(len(sub.operators))
        op = sub.operators[k]
        side = rng.choice(["inputs", "outputs"])
        idx = list(getattr(op, side))
        j = rng.randrange(len(idx))
        idx[j] = rng.choice([-1, -2, len(sub.tensors), len(sub.tensors) + 1000, 2**31 - 1,
                             rng.randrange(len(sub.tensors))])
        if rng.random() < 0.2:
            idx = idx[:j] if rng.random() < 0.5 else idx + [rng.randrange(len(sub.tensors))]
        setattr(op, side, idx)
        return f"op {k} {side} -> {idx}"
    if what == "opcode":
        k = rng.randrange(len(sub.operators))
        if rng.random() < 0.5:
            sub.operators[k].opcodeIndex = rng.choice([len(model.operatorCodes),
                                                       len(model.operatorCodes) + 7, 2**32 - 1,
                                                       rng.randrange(len(model.operatorCodes))])
            return f"op {k} opcode index -> {sub.operators[k].opcodeIndex}"
        index = sub.operators[k].opcodeIndex
        if not 0 <= index < len(model.operatorCodes):  # an earlier step broke it (one-op models)
            index = rng.randrange(len(model.operatorCodes))
        c = model.operatorCodes[index]
        c.builtinCode = rng.choice([0, 1, 2, 3, 4, 9, 14, 17, 22, 25, 28, 32, 40, 49, 127, 150,
                                    2**31 - 1])
        c.deprecatedBuiltinCode = min(c.builtinCode, 127)
        return f"op {k} builtin code -> {c.builtinCode}"
    if what == "options":
        k = rng.randrange(len(sub.operators))
        op = sub.operators[k]
        opts = op.builtinOptions
        fields = [f for f, v in vars(opts).items() if isinstance(v, (int, float))] \
            if opts is not None else []
        if not fields or rng.random() < 0.1:
            how = rng.choice(["none", "type"])
            if how == "none":
                op.builtinOptions, op.builtinOptionsType = None, 0
            else:  # the options of another op kind: the reader must not take them as its own
                op.builtinOptionsType = rng.choice([1, 2, 5, 8, 9, 10, 25])
                op.builtinOptions = [fb.Conv2DOptionsT, fb.DepthwiseConv2DOptionsT,
                                     fb.Pool2DOptionsT, fb.FullyConnectedOptionsT,
                                     fb.SoftmaxOptionsT, fb.ConcatenationOptionsT,
                                     fb.ReshapeOptionsT][[1, 2, 5, 8, 9, 10, 25].index(
                                         op.builtinOptionsType)]()
            return f"op {k} options {how}"
        f = rng.choice(fields)
        old = getattr(opts, f)
        new = _edge_like(rng, old)
        if f in ("padding", "fusedActivationFunction", "weightsFormat", "quantizedBiasType"):
            new = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 100, -1])
        setattr(opts, f, new)
        return f"op {k} {type(opts).__name__[:-1]}.{f} {old} -> {new}"
    if what == "graph_io":
        side = rng.choice(["inputs", "outputs"])
        consts = [i for i, t in enumerate(sub.tensors)
                  if model.buffers[t.buffer].data is not None]
        idx = list(getattr(sub, side))
        choice = rng.choice(["const", "other", "dup", "empty", "range"])
        if choice == "const" and consts:
            idx[rng.randrange(len(idx))] = rng.choice(consts)
        elif choice == "dup":
            idx = idx + idx
        elif choice == "empty":
            idx = []
        elif choice == "range":
            idx[rng.randrange(len(idx))] = rng.choice([len(sub.tensors), -1, 2**31 - 1])
        else:
            idx[rng.randrange(len(idx))] = rng.randrange(len(sub.tensors))
        setattr(sub, side, idx)
        return f"graph {side} -> {idx}"
    # op_order: the graph's topology
    ops = sub.operators
    how = rng.choice(["swap", "drop", "dup"]) if len(ops) > 1 else "dup"
    a, b = rng.randrange(len(ops)), rng.randrange(len(ops))
    if how == "swap":
        ops[a], ops[b] = ops[b], ops[a]
    elif how == "drop":
        del ops[a]
    else:
        ops.insert(b, copy.deepcopy(ops[a]))
    return f"operators {how} {a},{b}"


def mutate_tflite(source: str, seed: int) -> tuple[bytes, str]:
    """The mutant of shared model `source` for `seed`: raw bytes edited a third of the time,
    else one to three edits through the flatbuffer object API."""
    rng = random.Random(f"tflite:{source}:{seed}")
    data = (MODELS / source).read_bytes()
    if rng.random() < 0.3:
        return _raw_mutation(data, rng)
    model = _unpack(source)
    steps = [_structured_mutation(model, rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    try:
        return _pack(model), "; ".join(steps)
    except (struct.error, OverflowError, TypeError, ValueError):
        # A value the schema's field type cannot hold: such a file cannot exist; flip bits.
        return _raw_mutation(data, rng)


# --------------------------------------------------------------------------------------------
# ONNX models: tiny torch modules, exported once, then mutated through onnx's protobuf API

def _onnx_modules() -> dict[str, tuple[Any, tuple[int, ...]]]:
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(torch.relu(x + self.conv(x)))

    class Cat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(2, 3, 1)
            self.b = nn.Conv2d(2, 3, 3, padding=1, stride=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(x)], 1).mean((2, 3))

    torch.manual_seed(0)
    return {
        "conv": (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, stride=2), nn.ReLU(),
                               nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)), (1, 3, 8, 8)),
        "dw": (nn.Sequential(nn.Conv2d(4, 4, 3, groups=4, padding=1), nn.ReLU6(),
                             nn.Conv2d(4, 6, 1), nn.Sigmoid()), (1, 4, 6, 6)),
        "residual": (Residual(), (1, 4, 6, 6)),
        "mlp": (nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4), nn.Softmax(-1)),
                (1, 16)),
        "cat": (Cat(), (1, 2, 5, 5)),
    }


ONNX_MODELS = ["conv", "dw", "residual", "mlp", "cat"]


def export_onnx_models(cache: Path) -> Path:
    """The tiny ONNX models and a calibration .npy for each, under `cache` (made once)."""
    import warnings

    import torch

    cache.mkdir(parents=True, exist_ok=True)
    for name, (module, shape) in _onnx_modules().items():
        path = cache / f"{name}.onnx"
        if path.is_file():
            continue
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (torch.randn(*shape),), str(path), dynamo=False,
                              opset_version=17)
        calib = np.random.default_rng(0).standard_normal((8, *shape[1:])).astype(np.float32)
        np.save(cache / f"{name}_calib.npy", calib)
    return cache


def _mutate_array(x: np.ndarray, rng: random.Random) -> tuple[Any, str]:
    """A malformed version of `x`: wrong dtype, shape, NaN/inf, empty; or bytes that are not an
    .npy at all (returned as bytes)."""
    how = rng.choice(["nan", "inf", "huge", "dtype", "dtype", "transpose", "shape", "shape",
                      "empty", "scalar", "zero_file", "junk", "npz", "fortran", "object",
                      "int_range"])
    nrng = np.random.default_rng(rng.randrange(2**32))
    if how in ("nan", "inf", "huge"):
        y = x.astype(np.float32)
        v = {"nan": np.nan, "inf": rng.choice([np.inf, -np.inf]), "huge": 3e38}[how]
        y.flat[nrng.integers(0, y.size, max(1, y.size // rng.choice([1, 4, 100])))] = v
        return y, f"array with {how}"
    if how == "dtype":
        dt = rng.choice([np.float64, np.float16, np.int16, np.int32, np.int64, np.uint8, bool,
                         np.complex64])
        return x.astype(dt), f"array dtype {np.dtype(dt).name}"
    if how == "int_range":
        return nrng.integers(-1000, 1000, x.shape).astype(np.int32), "int32 beyond int8"
    if how == "transpose":
        axes = list(range(x.ndim))
        rng.shuffle(axes)
        if axes == sorted(axes):
            axes.reverse()
        return np.ascontiguousarray(x.transpose(axes)), f"array transposed {tuple(axes)}"
    if how == "shape":
        shape = list(x.shape)
        k = rng.randrange(len(shape))
        shape[k] = rng.choice([0, 1, 2, shape[k] + 1, shape[k] * 3])
        if rng.random() < 0.3:
            shape.insert(0, rng.choice([1, 2]))
        return nrng.standard_normal(shape).astype(x.dtype), f"array shape {tuple(shape)}"
    if how == "empty":
        return np.zeros((0, *x.shape[1:]), x.dtype), "empty batch"
    if how == "scalar":
        return np.array(1, x.dtype), "0-d array"
    if how == "zero_file":
        return b"", "0-byte file"
    if how == "junk":
        buf = io.BytesIO()
        np.save(buf, x)
        raw = buf.getvalue()
        return raw[: rng.randrange(len(raw))], "truncated .npy"
    if how == "npz":
        buf = io.BytesIO()
        np.savez(buf, x)
        return buf.getvalue(), ".npz given as .npy"
    if how == "fortran":
        return np.asfortranarray(x), "Fortran-ordered array"
    return np.array([x, None], dtype=object), "object array"


def _write_array(path: Path, arr: Any) -> None:
    if isinstance(arr, bytes):
        path.write_bytes(arr)
    else:
        with open(path, "wb") as f:
            np.save(f, arr, allow_pickle=arr.dtype == object)


def mutate_onnx(cache: Path, source: str, seed: int) -> tuple[bytes, Any, str]:
    """(onnx bytes, calibration array or raw bytes, what changed) for model `source`."""
    import onnx
    from onnx import helper, numpy_helper

    rng = random.Random(f"onnx:{source}:{seed}")
    model = onnx.load(str(cache / f"{source}.onnx"))
    calib: Any = np.load(cache / f"{source}_calib.npy")
    g = model.graph
    what = rng.choice(["attr", "attr", "attr", "init_dims", "init_data", "init_data",
                       "node_type", "rewire", "input_shape", "remove_node", "calib", "calib",
                       "opset", "raw"])
    if what == "attr":
        nodes = [n for n in g.node if n.attribute]
        n = rng.choice(nodes)
        a = rng.choice(n.attribute)
        if a.ints:
            vals = list(a.ints)
            vals[rng.randrange(len(vals))] = rng.choice(INT_EDGES[:10] + [-5, 100])
            if rng.random() < 0.2:
                vals = vals[:-1] or [0]
            del a.ints[:]
            a.ints.extend(vals)
            desc = f"{vals}"
        elif a.type == onnx.AttributeProto.INT:
            a.i = rng.choice(INT_EDGES[:10] + [-5, 100])
            desc = f"{a.i}"
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e30])
            desc = f"{a.f}"
        else:
            n.attribute.remove(a)
            desc = "removed"
        return model.SerializeToString(), calib, f"{n.op_type} {n.name} {a.name} -> {desc}"
    if what in ("init_dims", "init_data"):
        init = rng.choice(list(g.initializer))
        arr = numpy_helper.to_array(init)
        if what == "init_dims":
            dims = list(init.dims)
            if dims:
                dims[rng.randrange(len(dims))] = rng.choice([0, 1, 2, dims[0] + 1, 64])
            if rng.random() < 0.3:
                dims = dims[:-1]
            del init.dims[:]
            init.dims.extend(dims)
            return model.SerializeToString(), calib, f"initializer {init.name} dims -> {dims}"
        how = rng.choice(["nan", "inf", "huge", "zero", "truncate", "dtype"])
        if how == "truncate":
            raw = numpy_helper.from_array(arr, init.name).raw_data
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            init.raw_data = raw[: rng.randrange(max(len(raw), 1))]
        elif how == "dtype":
            init.CopyFrom(numpy_helper.from_array(arr.astype(rng.choice(
                [np.float64, np.int64, np.int32, np.float16])), init.name))
        else:
            a = np.array(arr, copy=True)
            if a.dtype.kind == "f" and a.size:
                a.flat[rng.randrange(a.size)] = {"nan": np.nan, "inf": np.inf, "huge": 3e38,
                                                 "zero": 0.0}[how]
                if how == "zero":
                    a[...] = 0
            init.CopyFrom(numpy_helper.from_array(a, init.name))
        return model.SerializeToString(), calib, f"initializer {init.name} {how}"
    if what == "node_type":
        n = rng.choice(list(g.node))
        old = n.op_type
        n.op_type = rng.choice(["Conv", "Relu", "Add", "Mul", "MatMul", "Gemm", "MaxPool",
                                "AveragePool", "Flatten", "Reshape", "Transpose", "Concat",
                                "Softmax", "Sigmoid", "Clip", "GlobalAveragePool", "Bogus"])
        return model.SerializeToString(), calib, f"node {n.name} {old} -> {n.op_type}"
    if what == "rewire":
        names = [i.name for i in g.input] + [i.name for i in g.initializer] + \
            [o for n in g.node for o in n.output]
        if rng.random() < 0.7:
            n = rng.choice(list(g.node))
            k = rng.randrange(len(n.input))
            n.input[k] = rng.choice(names + ["", "nonexistent"])
            desc = f"node {n.name} input {k} -> {n.input[k]!r}"
        else:
            o = g.output[0]
            o.name = rng.choice(names + ["nonexistent"])
            desc = f"graph output -> {o.name!r}"
        return model.SerializeToString(), calib, desc
    if what == "input_shape":
        dims = g.input[0].type.tensor_type.shape.dim
        k = rng.randrange(len(dims))
        how = rng.choice(["zero", "big", "param", "type"])
        if how == "zero":
            dims[k].dim_value = 0
        elif how == "big":
            dims[k].dim_value = rng.choice([3, 100, 1 << 20])
        elif how == "param":
            dims[k].dim_param = "n"
        else:
            g.input[0].type.tensor_type.elem_type = rng.choice([2, 3, 6, 7, 10, 11])
        return model.SerializeToString(), calib, f"graph input dim {k} {how}"
    if what == "remove_node":
        k = rng.randrange(len(g.node))
        name = g.node[k].name
        del g.node[k]
        return model.SerializeToString(), calib, f"node {name} removed"
    if what == "calib":
        arr, desc = _mutate_array(calib, rng)
        return model.SerializeToString(), arr, f"calibration: {desc}"
    if what == "opset":
        v = rng.choice([1, 7, 11, 13, 21, 99])
        del model.opset_import[:]
        model.opset_import.extend([helper.make_opsetid("", v)])
        return model.SerializeToString(), calib, f"opset -> {v}"
    raw, desc = _raw_mutation(model.SerializeToString(), rng)
    return raw, calib, desc


# --------------------------------------------------------------------------------------------
# Running cases

class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


_FRAME = re.compile(r'File "([^"]*tinyengine[/\\][^"]*)", line (\d+), in (\S+)')


def _fault_of(tb_text: str) -> str:
    """The deepest frame inside the tinyengine package: where the bug surfaced."""
    frames = _FRAME.findall(tb_text)
    if not frames:
        return ""
    path, line, func = frames[-1]
    rel = path[path.rfind("tinyengine"):]
    return f"{rel}:{line} ({func})"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def cli_main(argv: list[str]) -> tuple[int | None, str, str]:
    """tinyengine.cli.main in this process: (exit code or None for a traceback, stderr, the
    traceback text)."""
    from tinyengine import cli

    err, out = io.StringIO(), io.StringIO()
    tb = ""
    rc: int | None = None
    # What C libraries (onnxruntime's log) write to fd 2 counts too, as in a real process; and
    # each warning shows once per case, as it would in a fresh process.
    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:  # printed, even under pytest's recorder
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with tempfile.TemporaryFile() as cerr, warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(cerr.fileno(), 2)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
                    _deadline(TIMEOUT_S):
                rc = cli.main(argv)
        except _Timeout:
            tb = f"hang: no answer in {TIMEOUT_S} s"
        except SystemExit as e:  # argparse
            rc = int(e.code or 0)
        except BaseException:  # noqa: BLE001 - any exception here is a finding
            tb = traceback.format_exc()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        cerr.seek(0)
        stderr = cerr.read().decode("utf-8", "replace") + err.getvalue()
    return (None if tb else rc), stderr, tb


def cli_subprocess(argv: list[str], cwd: Path) -> tuple[int | None, str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        run = subprocess.run([sys.executable, "-m", "tinyengine.cli", *argv], cwd=cwd,
                             capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return None, "", f"hang: no answer in {TIMEOUT_S} s"
    tb = run.stderr if "Traceback (most recent call last)" in run.stderr or \
        run.returncode not in (0, 2) else ""
    return (None if tb else run.returncode), run.stderr, tb


def _judge_refusal_or_accept(case: str, mutation: str, rc: int | None, stderr: str, tb: str,
                             workdir: Path, out_name: str, before: set[str]) -> Outcome:
    """The part of the property every command shares: a clean one-line refusal with nothing
    left behind, or exit 0."""
    if rc is None:
        verdict = "hang" if tb.startswith("hang") else "traceback"
        return Outcome(case, mutation, verdict, _last_line(tb), _fault_of(tb))
    left = sorted(set(p.name for p in workdir.iterdir()) - before)
    if rc == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("tinyengine: error: "):
            return Outcome(case, mutation, "bad-refusal",
                           f"{len(lines)} stderr lines: {stderr.strip()[:200]!r}")
        if left:
            return Outcome(case, mutation, "bad-refusal", f"left behind {left}: {lines[0]}")
        return Outcome(case, mutation, "refused", lines[0])
    if rc != 0:
        return Outcome(case, mutation, "bad-refusal", f"exit {rc}: {_last_line(stderr)}")
    if out_name and not (workdir / out_name).is_dir():
        return Outcome(case, mutation, "bad-refusal", "exit 0 but no project was written")
    return Outcome(case, mutation, "accepted")


def c_check(project: Path, graph: Any, n_inputs: int = 3, seed: int = 0) -> tuple[str, str]:
    """Build the project's demo under ASan/UBSan with -Werror, run it on random inputs and
    compare with the reference (tests/sanitized.py); (verdict, detail)."""
    from tinyengine.inputs import random_inputs
    from tinyengine.ops import get_op

    from .sanitized import check_sanitized_demo

    macs = sum(get_op(op.kind).macs(graph, op) for op in graph.ops)
    if macs > C_LIMIT_MACS or sum(t.nbytes for t in graph.tensors.values()) > C_LIMIT_BYTES:
        return "accepted", "too large to run under the sanitizers"
    rng = np.random.default_rng(seed)
    try:
        with _deadline(4 * TIMEOUT_S):
            cases = [random_inputs(graph, rng) for _ in range(n_inputs)]
            check_sanitized_demo(project, "model", graph, cases)
    except _Timeout:
        return "hang", "the sanitized build or run did not end"
    except subprocess.CalledProcessError as e:
        errs = [ln for ln in (e.stderr or e.stdout or "").splitlines() if "error" in ln]
        return "no-build", (errs[0] if errs else _last_line(e.stderr or ""))[:300]
    except AssertionError as e:
        msg = str(e)
        for ln in msg.splitlines():
            if "runtime error" in ln or "ERROR: AddressSanitizer" in ln:
                return "sanitizer", ln.strip()[:300]
        if "Arrays are not equal" in msg or "len(got)" in msg:
            return "difference", " ".join(msg.split())[:300]
        return "run-fails", _last_line(msg) or "the demo exited non-zero"
    except Exception:  # noqa: BLE001 - the reference itself failed on an accepted graph
        tb = traceback.format_exc()
        return "traceback", f"{_last_line(tb)} [{_fault_of(tb)}]"
    return "exact", ""


@dataclass
class Case:
    kind: str  # tflite | onnx | run
    source: str  # model file (tflite, run) or ONNX module name
    seed: int

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.source}:{self.seed}"

    @staticmethod
    def parse(text: str) -> Case:
        kind, source, seed = text.split(":")
        return Case(kind, source, int(seed))


def _graph_of(path: Path, onnx_calib: Path | None) -> Any:
    if onnx_calib is None:
        from tinyengine.frontend import parse_tflite

        return parse_tflite(path.read_bytes(), str(path))
    from tinyengine.convert import quantize_onnx

    return quantize_onnx(path, onnx_calib)[1]


def check_compile_case(case: Case, work: Path, cache: Path | None = None, build_c: bool = False,
                       subprocess_too: bool = False) -> Outcome:
    """Write the mutant under `work`, compile it with the CLI's own main (in this process, and
    with `subprocess_too` also as the real command, whose verdict must agree), and with
    `build_c` build and run an accepted project's C."""
    mdir = work / "in"
    mdir.mkdir(parents=True, exist_ok=True)
    calib_path: Path | None = None
    if case.kind == "tflite":
        data, mutation = mutate_tflite(case.source, case.seed)
        model = mdir / "mutant.tflite"
        model.write_bytes(data)
        extra: list[str] = []
    else:
        assert cache is not None, "ONNX cases need the exported models' cache"
        data, calib, mutation = mutate_onnx(cache, case.source, case.seed)
        model = mdir / "mutant.onnx"
        model.write_bytes(data)
        calib_path = mdir / "calib.npy"
        _write_array(calib_path, calib)
        extra = ["--calib", str(calib_path)]
    outdir = work / "out"
    outdir.mkdir(exist_ok=True)
    argv = ["compile", str(model), "-o", str(outdir / "project"), *extra]
    rc, err, tb = cli_main(argv)
    result = _judge_refusal_or_accept(case.id, mutation, rc, err, tb, outdir, "project", set())
    if subprocess_too and result.verdict in ("refused", "accepted"):
        sub_out = work / "out_cli"
        sub_out.mkdir(exist_ok=True)
        argv[3] = str(sub_out / "project")
        rc2, err2, tb2 = cli_subprocess(argv, work)
        other = _judge_refusal_or_accept(case.id, mutation, rc2, err2, tb2, sub_out, "project",
                                         set())
        if not other.ok:
            return other
        if other.verdict != result.verdict:
            return Outcome(case.id, mutation, "cli-disagrees",
                           f"in process {result.verdict}, command {other.verdict}")
    if result.verdict != "accepted" or not build_c:
        return result
    try:
        graph = _graph_of(model, calib_path)
    except Exception:  # noqa: BLE001 - compile accepted it, so reading it again must work
        tb = traceback.format_exc()
        return Outcome(case.id, mutation, "traceback", _last_line(tb), _fault_of(tb))
    verdict, detail = c_check(outdir / "project", graph, seed=case.seed)
    at_fault = ""
    if verdict == "traceback" and " [" in detail:
        detail, at_fault = detail.rsplit(" [", 1)
        at_fault = at_fault.rstrip("]")
    return Outcome(case.id, mutation, verdict, detail, at_fault)


# --------------------------------------------------------------------------------------------
# `tinyengine run` with malformed arrays

_PROJECTS: dict[str, tuple[Path, Any]] = {}


def run_project(source: str, cache: Path) -> tuple[Path, Any]:
    """A compiled project of shared model `source` (made once under `cache`) and its graph."""
    if source not in _PROJECTS:
        from tinyengine.codegen import compile_graph
        from tinyengine.frontend import load_model

        graph = load_model(MODELS / source)
        project = cache / f"run_{Path(source).stem}"
        if not project.is_dir():
            compile_graph(graph, project, source=source)
        _PROJECTS[source] = (project, graph)
    return _PROJECTS[source]


def check_run_case(case: Case, work: Path, cache: Path) -> Outcome:
    """`tinyengine run` with a malformed input array: a clean refusal writing nothing, or the
    model's own shape (or a batch of it) and the reference's answer."""
    from tinyengine.reference import run_reference

    project, graph = run_project(case.source, cache)
    shape = graph.tensor(graph.inputs[0]).shape
    rng = random.Random(case.id)
    good = np.random.default_rng(case.seed).integers(-128, 128, shape).astype(np.int8)
    if rng.random() < 0.3:
        good = np.stack([good] * rng.choice([2, 3]))
    arr, mutation = _mutate_array(good, rng)
    work.mkdir(parents=True, exist_ok=True)
    x_path, y_path = work / "x.npy", work / "y.npy"
    _write_array(x_path, arr)
    before = {p.name for p in work.iterdir()}
    rc, err, tb = cli_main(["run", str(project), "--input", str(x_path), "--output",
                            str(y_path)])
    result = _judge_refusal_or_accept(case.id, mutation, rc, err, tb, work, "", before)
    if result.verdict != "accepted":
        return result
    x = np.asarray(arr)
    if not (x.shape == shape or x.shape[1:] == shape or (shape[0] == 1 and x.ndim == len(shape)
                                                         and x.shape[1:] == shape[1:])):
        return Outcome(case.id, mutation, "silent-reshape",
                       f"run took an array of shape {x.shape} for input shape {shape}")
    try:
        y = np.load(y_path)
        records = x.reshape((-1, *shape))
        want = np.stack([run_reference(graph, [r.astype(np.int8)])[0] for r in records])
    except Exception:  # noqa: BLE001
        tb = traceback.format_exc()
        return Outcome(case.id, mutation, "traceback", _last_line(tb), _fault_of(tb))
    if y.size != want.size or not np.array_equal(y.reshape(want.shape), want) or not np.array_equal(
            records.astype(np.int8), records.astype(np.float64)):
        return Outcome(case.id, mutation, "difference",
                       "run's output differs from the reference on the values given")
    return Outcome(case.id, mutation, "exact")


def check_case(case: Case, work: Path, cache: Path, build_c: bool = False,
               subprocess_too: bool = False) -> Outcome:
    if case.kind == "run":
        return check_run_case(case, work, cache)
    return check_compile_case(case, work, cache, build_c, subprocess_too)


def fresh_dir(parent: Path, name: str) -> Path:
    d = parent / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def signature(outcome: Outcome) -> str:
    """What makes two findings the same bug: verdict, place and message without numbers."""
    return re.sub(r"\d+", "N", f"{outcome.verdict} {outcome.at_fault} {outcome.detail[:80]}")


def append_finding(path: Path, outcome: Outcome) -> bool:
    """One finding as a line of the shared findings file, for whoever fixes it; skipped (False)
    when the file already holds this case or a finding of the same signature."""
    text = path.read_text() if path.is_file() else ""
    sig = signature(outcome)
    if f"`{outcome.case}`" in text or f"<!-- {sig} -->" in text:
        return False
    with open(path, "a") as f:
        f.write(f"<!-- {sig} -->\n")
        f.write(f"- `{outcome.case}` {outcome.verdict}: {outcome.mutation} -> {outcome.detail}"
                f"{' [' + outcome.at_fault + ']' if outcome.at_fault else ''}; repro: "
                f"`{outcome.repro()}`\n")
    return True


def main(argv: list[str] | None = None) -> int:
    """Reproduce one case: `python -m tests.fuzz_models KIND:SOURCE:SEED [--write DIR]`."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("case")
    p.add_argument("--write", type=Path, help="keep the mutant, the project and the arrays here")
    args = p.parse_args(argv)
    case = Case.parse(args.case)
    cache = Path(tempfile.gettempdir()) / "tinyengine_fuzz_cache"
    if case.kind == "onnx":
        export_onnx_models(cache)
    cache.mkdir(exist_ok=True)
    keep: Callable[[], Any] = (lambda: contextlib.nullcontext(str(args.write))) if args.write \
        else (lambda: tempfile.TemporaryDirectory())
    with keep() as tmp:
        work = fresh_dir(Path(tmp), "case")
        out = check_case(case, work, cache, build_c=True, subprocess_too=True)
        print(out.line())
        if args.write:
            print(f"files under {work}")
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Case", "Outcome", "FINDINGS", "MODEL_FILES", "MODEL_FILES_16X8", "ONNX_MODELS",
           "RUN_MODELS",
           "append_finding", "c_check", "check_case", "export_onnx_models", "fresh_dir",
           "mutate_onnx", "mutate_tflite", "signature"]
