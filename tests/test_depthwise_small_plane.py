"""The small-plane in-place depthwise path (issue 15, pattern 2): a 3x3, stride-1, pad-1 layer
whose plane is too small for the ring of delayed outputs (4 * (w + 2) > h * w, e.g.
person_detect's 3x3x256) copies four channels at a time, padded with the input's zero point, into
a scratch of 4 * (h + 2) * (w + 2) bytes and writes the outputs straight over the input.

Checked here: the scratch size the C kernel asks (te_depthwise_conv_inplace_get_buffer_size
through the wrapper's twin) equals DEPTHWISE_CONV_2D's `scratch_bytes` on both sides of every
edge of the domain; the kernel, run in place with exactly that scratch (guard bytes after it),
equals the numpy reference in the portable build and with the SIMD algorithms emulated on the
host (TE_SIMD_EMULATE), batches and leftover channels included; and a generated project with such
layers gives the same outputs on the host (portable, emulated SIMD) and on the emulated
Cortex-M4 (SIMD and portable kernels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .ckernels import build
from .random_graphs import _Builder
from .test_kernel_wrappers import CDEF
from .test_ops_dw_fc_add import CCall
from .test_simd import EMULATE, _assert_same, _conv, _dw, _graph, _input, _require_qemu

CSRC = Path(__file__).resolve().parent.parent / "csrc"
DW = get_op("DEPTHWISE_CONV_2D")


def _build(cflags: list[str]) -> tuple[Any, Any]:
    """te_conv.c and te_depthwise.c (test_kernel_wrappers' declarations) as a cffi module with
    extra `cflags`."""
    return build(["te_conv.h", "te_depthwise.h"], ["te_conv.c", "te_depthwise.c"], CDEF,
                 tuple(cflags), ("te_simd.h", "te_requant16.h"))


@pytest.fixture(scope="module", params=["portable", "emulated"])
def kernels(request) -> tuple[Any, Any]:
    return _build(EMULATE if request.param == "emulated" else [])


def _qp(scale: Any, zp: Any, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def _layer(rng: np.random.Generator, shape: tuple[int, int, int, int], k: int = 3,
           stride: int = 1, x_zp: int | None = None, act: str = "NONE") -> tuple[Graph, Op]:
    """One in-place DEPTHWISE_CONV_2D (SAME padding, multiplier 1) on an input of `shape`."""
    n, h, w, c = shape
    oh, ow = -(-h // stride), -(-w // stride)
    zp = int(rng.integers(-30, 30)) if x_zp is None else x_zp
    tensors = {
        "x": Tensor("x", shape, "int8", _qp(0.05, zp)),
        "w": Tensor("w", (1, k, k, c), "int8", _qp(rng.uniform(0.002, 0.02, c), np.zeros(c), 3),
                    rng.integers(-127, 128, (1, k, k, c), dtype=np.int8)),
        "b": Tensor("b", (c,), "int32", _qp(np.full(c, 1e-4), np.zeros(c)),
                    rng.integers(-500, 500, c).astype(np.int32)),
        "y": Tensor("y", (n, oh, ow, c), "int8", _qp(0.1, int(rng.integers(-20, 20)))),
    }
    op = Op("dw", "DEPTHWISE_CONV_2D", ["x", "w", "b"], ["y"],
            {"stride": (stride, stride), "padding": "SAME", "dilation": (1, 1),
             "activation": act, "depth_multiplier": 1, "inplace": 0})
    g = Graph(tensors, [op], ["x"], ["y"])
    verify(g)
    return g, op


def _small(h: int, w: int, c: int) -> bool:
    """The domain on the shape alone (3x3, stride 1, SAME, zero point in range)."""
    return c >= 4 and 4 * (w + 2) > h * w and (h + 2) * (w + 2) <= 64


# (n, h, w, c): person_detect's layer, leftover channels, batches, the edges of the domain (the
# ring fits from 6x6 on; 63 and 64 padded pixels at 1x19 and 2x14, 66 at 1x20), 1 and 3 channels.
SHAPES = [(1, 3, 3, 256), (1, 3, 3, 13), (2, 3, 3, 8), (1, 1, 1, 4), (1, 1, 9, 8), (1, 2, 2, 5),
          (1, 4, 4, 8), (1, 5, 5, 7), (1, 4, 3, 6), (1, 3, 5, 9), (1, 1, 19, 4), (1, 2, 14, 4),
          (1, 1, 20, 4), (1, 6, 6, 8), (1, 5, 6, 4), (1, 3, 3, 3), (1, 2, 2, 1), (3, 2, 3, 12)]


def test_shapes_cover_both_sides_of_the_domain():
    inside = [s for s in SHAPES if _small(s[1], s[2], s[3])]
    assert len(inside) >= 10 and len(SHAPES) - len(inside) >= 4
    assert _small(2, 14, 4) and not _small(1, 20, 4)   # 64 padded pixels; 66
    assert _small(5, 5, 4) and not _small(6, 6, 4)     # the ring fits from 6x6 on


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("x_zp", [None, -128, 127])
def test_scratch_twin_and_in_place_output(kernels, shape, x_zp):
    ffi, lib = kernels
    rng = np.random.default_rng([*shape, (x_zp or 0) + 128])
    g, op = _layer(rng, shape, x_zp=x_zp, act="RELU6" if x_zp == 127 else "NONE")
    em = DW.emit(g, op)
    call = CCall(ffi, em)
    size = lib.te_depthwise_conv_get_buffer_size_s8(call.params, 1)
    _, h, w, c = shape
    want_size = 4 * (h + 2) * (w + 2) if _small(h, w, c) else h * w
    assert size == DW.scratch_bytes(g, op) == em.scratch_bytes == want_size
    assert DW.kernel(g, op) == "te_depthwise_conv_inplace_s8"
    assert lib.te_depthwise_conv_variant(call.params, 1) == 2
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    want = run_reference(g, [x])[0]
    # One byte off alignment, and guard bytes after the scratch the kernel asked for.
    raw = np.full(1 + size + 16, 0x5A, np.uint8)
    scratch = raw[1:1 + size].view(np.int8)
    buf = x.copy()
    p = ffi.from_buffer("int8_t[]", buf)
    status = lib.te_depthwise_conv_wrapper_s8(
        call.params, p, ffi.from_buffer("int8_t[]", call.consts["filter"]),
        ffi.from_buffer("int32_t[]", call.consts["bias"]), p,
        ffi.from_buffer("int8_t[]", scratch))
    assert status == 0
    np.testing.assert_array_equal(buf, want)
    assert np.all(raw[1 + size:] == 0x5A), "wrote past the scratch it asked for"


@pytest.mark.parametrize("stride,k", [(2, 3), (1, 5), (1, 1)])
def test_other_windows_keep_the_plane(stride, k):
    """Outside the 3x3 stride-1 window the scratch stays one plane."""
    g, op = _layer(np.random.default_rng(k), (1, 3, 3, 8), k=k, stride=stride)
    assert DW.scratch_bytes(g, op) == (-(-3 // stride)) ** 2


def _small_plane_graph(seed: int) -> Graph:
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 3, 3, 6))
    y = _conv(b, x, 20)
    y = _dw(b, y, m=1, k=3, act="RELU", inplace=True)      # 3x3x20: the small-plane path
    y = _conv(b, y, 13)
    y = _dw(b, y, m=1, k=3, inplace=True)                  # 13 channels: 12 small + 1 plane
    y = _dw(b, y, m=1, k=3, stride=2)                      # 3x3 -> 2x2
    y = _conv(b, y, 8)
    y = _dw(b, y, m=1, k=3, act="RELU6", inplace=True)     # 2x2x8
    return _graph(b, x, y, f"small_plane{seed}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    graph = _small_plane_graph(0)
    path = tmp_path_factory.mktemp("small_plane") / "p"
    compile_graph(graph, path, prefix="m", patch="off", inplace=False)
    rng = np.random.default_rng(0)
    records = [random_inputs(graph, rng) for _ in range(4)]
    want = [run_reference(graph, r) for r in records]
    return graph, path, records, want


def test_project_uses_the_small_plane_scratch(project):
    _, path, _, _ = project
    report = json.loads((path / "report.json").read_text())
    dws = [o for o in report["ops"] if o["kernel"] == "te_depthwise_conv_inplace_s8"]
    assert len(dws) == 3


def test_project_on_host_portable_and_emulated(project):
    _, path, records, want = project
    for flags in ([], EMULATE):
        model = HostModel(path, extra_cflags=flags)
        _assert_same(want, [model.invoke(r) for r in records], f"host {flags}")


def test_project_on_m4_simd_and_portable(project):
    _require_qemu()
    _, path, records, want = project
    for simd in (True, False):
        run = run_records(path, records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"cortex-m4 ({'SIMD' if simd else 'portable'})")
