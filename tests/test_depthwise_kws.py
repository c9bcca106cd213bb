"""In-place 3x3 depthwise through a ring of three padded input rows (issue 15, point 1): kws's
25x5x64 layers. A stride-1, pad-1 in-place layer whose ring (three rows of w words with a
zero-point word before, between and after them: 4 * (3w + 4) bytes) fits the one-plane scratch
copies four channels' input rows into it, so every 3x3 window is an interior one, and writes
each output row straight over its input row (te_depthwise_inplace_ring3_simd in
csrc/te_depthwise.c). Narrower scratch keeps the row-at-a-time path (h >= 8) or the pixel ring.

Checked here against the numpy reference: the kernel run in place through the wrapper with
exactly the scratch it asks (one byte off alignment, guard bytes after it), which stays the
plane DEPTHWISE_CONV_2D's `scratch_bytes` gives; widths 1 to 7 at the smallest height inside
the ring's domain and one row below it, kws's shape, batches, leftover channels, the input zero
point at both ends of int8, per tensor and with some channels outside the fast requantisation's
domain; in the portable build and with the SIMD algorithms emulated on the host
(TE_SIMD_EMULATE). A generated project with such layers gives the reference's outputs under
ASan/UBSan and on the emulated Cortex-M4 and M7 (SIMD at -O2 and -Os, and portable).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.runtime.host import load_project_report
from tinyengine.target.boards import emulated_board
from tinyengine.target.build import build_firmware
from tinyengine.target.qemu import run_firmware

from .conftest import require
from .random_graphs import _Builder
from .sanitized import SAN
from .test_depthwise_small_plane import _build
from .test_ops_dw_fc_add import CCall
from .test_simd import (
    EMULATE,
    _assert_same,
    _conv,
    _degenerate_channels,
    _dw,
    _input,
    _require_qemu,
)

DW = get_op("DEPTHWISE_CONV_2D")


def ring3(h: int, w: int, c: int) -> bool:
    """The ring's domain on the shape alone (3x3, stride 1, SAME, multiplier 1): the ring inside
    the h * w scratch, and not a small plane (which the ring's size rules out already)."""
    return c >= 4 and 4 * (3 * w + 4) <= h * w


def _min_h(w: int) -> int:
    return -(-4 * (3 * w + 4) // w)


# (n, h, w, c): kws's layer; every width 1..7 at the least height inside the ring's domain and
# one row less (the row-at-a-time path); leftover channels (13 = 12 + 1 on the plane, 6, 7),
# batches, exactly 4 channels, and too few channels for a quad.
SHAPES = [(1, 25, 5, 64)] + \
    [(1, _min_h(w), w, c) for w, c in zip(range(1, 8), (4, 13, 8, 6, 7, 12, 5))] + \
    [(1, _min_h(w) - 1, w, 8) for w in range(1, 8)] + \
    [(2, 16, 5, 12), (3, 18, 3, 4), (1, 30, 1, 3), (1, 20, 9, 20), (2, 40, 2, 9)]


def test_shapes_cover_both_sides_of_the_domain():
    inside = [s for s in SHAPES if ring3(s[1], s[2], s[3])]
    assert len(inside) >= 10 and len(SHAPES) - len(inside) >= 7
    assert ring3(25, 5, 64)                                  # kws
    assert ring3(16, 5, 4) and not ring3(15, 5, 4)           # 76 bytes in 80, not in 75
    assert ring3(28, 1, 4) and not ring3(27, 1, 4)           # 28 bytes
    assert not ring3(12, 12, 64) and not ring3(6, 6, 128)    # 160 > 144, 88 > 36


def _qp(scale: Any, zp: Any, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def _layer(rng: np.random.Generator, shape: tuple[int, int, int, int], x_zp: int, act: str,
           per_channel: bool, degenerate: bool) -> tuple[Graph, Op]:
    """One in-place 3x3 DEPTHWISE_CONV_2D (SAME, stride 1, multiplier 1); with `degenerate`,
    channel 0 (shift below -22), 2 (multiplier 0) and the last (a bias past 2^30) leave the fast
    requantisation's domain."""
    n, h, w, c = shape
    scale = rng.uniform(0.002, 0.02, c if per_channel else 1)
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    if degenerate:
        scale[0] *= 2.0 ** -18
        bias[c - 1] = 3 << 28
        if c > 2:
            scale[2] *= 1e-9
    zeros = np.zeros(scale.size)
    tensors = {
        "x": Tensor("x", shape, "int8", _qp(0.05, x_zp)),
        "w": Tensor("w", (1, 3, 3, c), "int8", _qp(scale, zeros, 3),
                    rng.integers(-127, 128, (1, 3, 3, c), dtype=np.int8)),
        "b": Tensor("b", (c,), "int32", _qp(np.float32(0.05) * scale, zeros), bias),
        "y": Tensor("y", shape, "int8", _qp(0.1, int(rng.integers(-20, 20)))),
    }
    op = Op("dw", "DEPTHWISE_CONV_2D", ["x", "w", "b"], ["y"],
            {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1), "activation": act,
             "depth_multiplier": 1, "inplace": 0})
    g = Graph(tensors, [op], ["x"], ["y"])
    verify(g)
    return g, op


@pytest.fixture(scope="module", params=["portable", "emulated"])
def kernels(request) -> tuple[Any, Any]:
    return _build(EMULATE if request.param == "emulated" else [])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["zp-random", "zp-128", "zp127", "per_tensor", "degenerate"])
def test_in_place_output_with_the_scratch_it_asks(kernels, shape, mode):
    ffi, lib = kernels
    rng = np.random.default_rng([*shape, len(mode), ord(mode[-1])])
    x_zp = {"zp-128": -128, "zp127": 127}.get(mode, int(rng.integers(-30, 30)))
    g, op = _layer(rng, shape, x_zp, "RELU6" if mode == "zp127" else "NONE",
                   per_channel=mode != "per_tensor", degenerate=mode == "degenerate")
    em = DW.emit(g, op)
    call = CCall(ffi, em)
    size = lib.te_depthwise_conv_get_buffer_size_s8(call.params, 1)
    n, h, w, c = shape
    assert size == DW.scratch_bytes(g, op) == em.scratch_bytes == h * w
    assert DW.kernel(g, op) == "te_depthwise_conv_inplace_s8"
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    want = run_reference(g, [x])[0]
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
    assert np.all(raw[1 + size:] == 0x5A) and raw[0] == 0x5A, "wrote outside the scratch"


def _ring3_graph(seed: int) -> Graph:
    """kws's block (25x5x64 in place, then a pointwise layer), odd widths with leftover
    channels, one layer with degenerate channels, and one a row too short for the ring."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 25, 5, 3))
    y = _conv(b, x, 64)
    y = _dw(b, y, m=1, k=3, act="RELU", inplace=True)       # kws: 25x5x64
    y = _conv(b, y, 64, act="RELU", inplace=True)
    y = _dw(b, y, m=1, k=3, inplace=True)                   # again, activation NONE
    y = _conv(b, y, 13)
    y = _dw(b, y, m=1, k=3, act="RELU6", inplace=True)      # 13 channels: 12 + 1 on the plane
    y = _conv(b, y, 8)
    y = _dw(b, y, m=1, k=3, inplace=True)
    _degenerate_channels(b, y)                              # the portable loops
    y2 = _input(b, (1, 18, 3, 4))
    z = _dw(b, y2, m=1, k=3, inplace=True)                  # 3 wide, 4 channels, least height
    z = _conv(b, z, 6)
    z = _dw(b, z, m=1, k=3, act="RELU", inplace=True)
    g = Graph(b.tensors, b.ops, [x, y2], [y, z], name=f"dwring{seed}")
    verify(g)
    return g


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    graph = _ring3_graph(0)
    path = tmp_path_factory.mktemp("dwring") / "p"
    compile_graph(graph, path, prefix="m", patch="off", inplace=False)
    rng = np.random.default_rng(0)
    records = [random_inputs(graph, rng) for _ in range(3)]
    want = [run_reference(graph, r) for r in records]
    return graph, path, records, want


def test_project_runs_the_layers_in_place(project):
    _, path, _, _ = project
    report = load_project_report(path)
    dws = [o for o in report["ops"] if o["kind"] == "DEPTHWISE_CONV_2D"]
    assert [o["kernel"] for o in dws] == ["te_depthwise_conv_inplace_s8"] * 6
    assert all(o["inplace"] for o in dws)


@pytest.mark.parametrize("flags", [[], EMULATE], ids=["portable", "emulated"])
def test_project_clean_under_sanitizers(project, tmp_path, flags):
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    _, compiled, records, want = project
    path = tmp_path / "p"
    shutil.copytree(compiled, path, ignore=shutil.ignore_patterns(".target", ".host"))
    cflags = " ".join(["-std=c99 -O1 -g -Wall -Wextra -Werror", *flags, SAN])
    subprocess.run(["make", "-s", "-C", str(path), f"CFLAGS={cflags}", f"LDFLAGS={SAN}"],
                   check=True, capture_output=True, text=True)
    (tmp_path / "in.bin").write_bytes(b"".join(x.tobytes() for r in records for x in r))
    run = subprocess.run([str(path / "m_demo"), str(tmp_path / "in.bin"),
                          str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    assert (tmp_path / "out.bin").read_bytes() == \
        b"".join(y.tobytes() for w in want for y in w)


@pytest.mark.parametrize("core,opt", [("cortex-m4", "O2"), ("cortex-m4", "Os"),
                                      ("cortex-m7", "O2")])
def test_project_on_target_simd_and_portable(project, core, opt):
    _require_qemu()
    _, path, records, want = project
    board = emulated_board(core)
    report = load_project_report(path)
    for simd in (True, False):
        elf = build_firmware(path, board, simd=simd, opt=opt)
        run = run_firmware(elf, board, report, records, label=str(path))
        _assert_same(want, run.outputs, f"{core} -{opt} ({'SIMD' if simd else 'portable'})")
