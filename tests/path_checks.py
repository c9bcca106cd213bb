"""What the kernel-path tests share (tests/test_kernel_paths.py: depthwise, test_conv_paths.py:
convolution and pointwise, test_fc_paths.py: fully connected): one windowed kernel called in or
out of place with guard bytes, the shared models' int8 layers of one kind (in place where the op
allows it), and one generated project run on the host (portable and emulated SIMD) and under
QEMU (cortex-m4, SIMD and portable) against the reference."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.ir import Graph, Op
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .conftest import MODEL_FILES_INT8, MODELS, require
from .test_simd import EMULATE, _assert_same, _records, _require_qemu


def run_kernel(ffi: Any, lib: Any, call: Any, fn: str, x: np.ndarray, out_shape: tuple[int, ...],
         in_place: bool, scratch_bytes: int) -> tuple[int, np.ndarray]:
    """Calls kernel `fn` on input x (in place: the output over the input, which starts where
    the output starts, in a buffer the larger of the two, with exactly scratch_bytes of scratch
    and guard bytes after it); returns (status, output)."""
    consts = call.consts
    filt = ffi.from_buffer("int8_t[]", consts["filter"])
    bias = ffi.from_buffer("int32_t[]", consts["bias"]) if "bias" in consts else ffi.NULL
    size = int(np.prod(out_shape))
    if in_place:
        buf = np.full(max(x.size, size), 99, np.int8)
        buf[:x.size] = x.ravel()
        scratch = np.full(scratch_bytes + 16, 77, np.int8)
        p = ffi.from_buffer("int8_t[]", buf)
        status = getattr(lib, fn)(call.params, p, filt, bias, p,
                                  ffi.from_buffer("int8_t[]", scratch))
        assert (scratch[scratch_bytes:] == 77).all(), f"{fn} wrote past its scratch"
        return int(status), buf[:size].reshape(out_shape)
    out = np.full(size + 16, 55, np.int8)
    status = getattr(lib, fn)(call.params, ffi.from_buffer("int8_t[]", np.ascontiguousarray(x)),
                              filt, bias, ffi.from_buffer("int8_t[]", out))
    assert (out[size:] == 55).all(), f"{fn} wrote past its output"
    return int(status), out[:size].reshape(out_shape)


def shared_model_layers(kind: str, op_def: Any = None) -> Iterator[tuple[Graph, Op]]:
    """Every int8 `kind` layer of the shared int8 models; with op_def, also a copy marked in
    place where op_def.inplace_inputs allows it."""
    for name in MODEL_FILES_INT8:
        require((MODELS / name).is_file(), f"{MODELS / name} is missing")
        g = load_tflite(MODELS / name)
        for op in g.ops:
            if op.kind != kind or g.tensor(op.outputs[0]).dtype != "int8":
                continue
            yield g, op
            if op_def is not None and op_def.inplace_inputs(g, op):
                marked = copy.copy(op)
                marked.attrs = {**op.attrs, "inplace": 0}
                g2 = copy.copy(g)
                g2.ops = [marked if o is op else o for o in g.ops]
                yield g2, marked


def compile_project(graph: Graph, folder: Path) -> tuple[Graph, Path, list, list]:
    """The graph compiled whole (no patches, no in-place planning of its own), its input
    records and the reference's outputs for them."""
    path = folder / "p"
    compile_graph(graph, path, prefix="m", patch="off", inplace=False)
    records = _records(graph)
    return graph, path, records, [run_reference(graph, r) for r in records]


def check_on_host(path: Path, records: list, want: list) -> None:
    for flags in ([], EMULATE):
        model = HostModel(path, extra_cflags=flags)
        _assert_same(want, [model.invoke(r) for r in records], f"host {flags}")


def check_on_m4(path: Path, records: list, want: list) -> None:
    _require_qemu()
    for simd in (True, False):
        run = run_records(path, records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"cortex-m4 ({'SIMD' if simd else 'portable'})")
