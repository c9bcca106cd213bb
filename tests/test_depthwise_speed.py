"""The pixel-pair depthwise path (issue 15, point 1): a depthwise layer over one input channel
with a depth multiplier that is a multiple of 4 and stride 1 or 2 along x (micro_speech's
49x40x1 -> 25x20x8, 10x8 window, stride 2) takes two output pixels per input word
(te_depthwise_simd_pairs in csrc/te_depthwise.c; 3x3 windows keep their unrolled path). Near
the left and right border the two windows of a pair keep different columns; a pair with fewer
than two columns in common, and a pixel left over, go one at a time.

Checked here against the numpy reference: the kernel out of place through the wrapper, in the
portable build and with the SIMD algorithms emulated on the host (TE_SIMD_EMULATE), on windows
wider and narrower than the image, odd and even widths and window widths, strides 1 and 2 (and
2 along x only), multipliers 4, 8 and 12, dilation along y, batches, the input zero point at
both ends of int8, per-tensor weights, and per-channel layers with some channels outside the
fast requantisation's domain (they are computed again exactly); the output buffer's guard bytes
stay untouched. And a generated project with such layers gives the reference's outputs on the
emulated Cortex-M4, SIMD and portable kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.target import run_records

from .test_depthwise_small_plane import _build, _qp
from .test_ops_dw_fc_add import CCall
from .test_simd import EMULATE, _assert_same, _require_qemu

DW = get_op("DEPTHWISE_CONV_2D")


@pytest.fixture(scope="module", params=["portable", "emulated"])
def kernels(request) -> tuple[Any, Any]:
    return _build(EMULATE if request.param == "emulated" else [])


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    span = (k - 1) * dilation + 1
    return -(-size // stride) if padding == "SAME" else (size - span) // stride + 1


def _tensors(rng: np.random.Generator, shape: tuple[int, int, int, int], k: tuple[int, int],
             stride: tuple[int, int], m: int, padding: str, dilation_h: int, x_zp: int,
             per_channel: bool, degenerate: bool, prefix: str = "") -> dict[str, Tensor]:
    """The tensors of one DEPTHWISE_CONV_2D; with `degenerate`, channel 0 (shift below -22), the
    last (a bias past 2^30) and from 8 channels on 2 (multiplier 0) and 5 (shift >= 0) leave the
    fast requantisation's domain while the rest stay in it."""
    n, h, w, c = shape
    oc = c * m
    oh = _out_size(h, k[0], stride[0], dilation_h, padding)
    ow = _out_size(w, k[1], stride[1], 1, padding)
    scale = rng.uniform(0.002, 0.02, oc if per_channel else 1)
    bias = rng.integers(-3000, 3000, oc).astype(np.int32)
    if degenerate:
        scale[0] *= 2.0 ** -18
        bias[oc - 1] = 3 << 28
        if oc >= 8:
            scale[2] *= 1e-9
            scale[5] *= 256.0
    zeros = np.zeros(scale.size)
    return {
        f"{prefix}x": Tensor(f"{prefix}x", shape, "int8", _qp(0.05, x_zp)),
        f"{prefix}w": Tensor(f"{prefix}w", (1, *k, oc), "int8", _qp(scale, zeros, 3),
                             rng.integers(-127, 128, (1, *k, oc), dtype=np.int8)),
        f"{prefix}b": Tensor(f"{prefix}b", (oc,), "int32",
                             _qp(np.float32(0.05) * scale, zeros), bias),
        f"{prefix}y": Tensor(f"{prefix}y", (n, oh, ow, oc), "int8",
                             _qp(0.1, int(rng.integers(-20, 20)))),
    }


def _op(prefix: str, stride: tuple[int, int], m: int, padding: str, dilation_h: int,
        act: str) -> Op:
    return Op(f"{prefix}dw", "DEPTHWISE_CONV_2D", [f"{prefix}x", f"{prefix}w", f"{prefix}b"],
              [f"{prefix}y"], {"stride": stride, "padding": padding, "dilation": (dilation_h, 1),
                               "activation": act, "depth_multiplier": m})


# (n, h, w), (kh, kw), (stride_h, stride_w), multiplier, padding, dilation_h
CASES = [
    ((1, 49, 40), (10, 8), (2, 2), 8, "SAME", 1),     # micro_speech's layer
    ((1, 17, 13), (5, 7), (2, 2), 8, "SAME", 1),      # odd window width, odd output width
    ((1, 9, 11), (3, 4), (1, 1), 4, "SAME", 1),       # stride 1: pairs two columns apart
    ((1, 9, 11), (3, 3), (2, 2), 8, "SAME", 1),       # 3x3: the unrolled path, not pairs
    ((1, 8, 10), (4, 2), (1, 1), 12, "SAME", 1),      # window 2 wide, multiplier 12
    ((2, 12, 15), (3, 6), (1, 2), 4, "SAME", 1),      # stride 2 along x only, batches
    ((1, 12, 14), (4, 5), (2, 2), 8, "VALID", 1),     # no border
    ((1, 10, 9), (3, 4), (1, 1), 8, "VALID", 2),      # dilation 2 along y
    ((1, 6, 3), (3, 8), (1, 2), 4, "SAME", 1),        # window wider than the image
    ((1, 5, 4), (2, 5), (2, 1), 4, "SAME", 1),        # pairs with < 2 common columns
    ((1, 7, 7), (3, 1), (1, 1), 4, "SAME", 1),        # window 1 wide: one pixel at a time
    ((1, 6, 5), (3, 3), (2, 2), 2, "SAME", 1),        # multiplier 2: not the pair path
]


def _ids(case: tuple) -> str:
    (n, h, w), (kh, kw), (sh, sw), m, pad, dil = case
    return f"{n}x{h}x{w}-k{kh}x{kw}-s{sh}x{sw}-m{m}-{pad}-d{dil}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("mode", ["per_channel", "per_tensor", "zp-128", "zp127", "degenerate"])
def test_pair_path_equals_reference(kernels, case, mode):
    ffi, lib = kernels
    (n, h, w), k, stride, m, padding, dilation_h = case
    seed = [n, h, w, *k, *stride, m, dilation_h, len(mode)]
    rng = np.random.default_rng(seed)
    x_zp = {"zp-128": -128, "zp127": 127}.get(mode, int(rng.integers(-30, 30)))
    tensors = _tensors(rng, (n, h, w, 1), k, stride, m, padding, dilation_h, x_zp,
                       per_channel=mode != "per_tensor", degenerate=mode == "degenerate")
    op = _op("", stride, m, padding, dilation_h, "RELU6" if mode == "zp127" else "NONE")
    g = Graph(tensors, [op], ["x"], ["y"])
    verify(g)
    assert DW.kernel(g, op) == "te_depthwise_conv_s8"
    call = CCall(ffi, DW.emit(g, op))
    x = rng.integers(-128, 128, (n, h, w, 1), dtype=np.int8)
    want = run_reference(g, [x])[0]
    raw = np.full(want.size + 16, 0x5A, np.uint8)  # guard bytes after the output
    out = raw[:want.size].view(np.int8)
    status = lib.te_depthwise_conv_wrapper_s8(
        call.params, ffi.from_buffer("int8_t[]", x),
        ffi.from_buffer("int8_t[]", call.consts["filter"]),
        ffi.from_buffer("int32_t[]", call.consts["bias"]), ffi.from_buffer("int8_t[]", out),
        ffi.NULL)
    assert status == 0
    np.testing.assert_array_equal(out.reshape(want.shape), want)
    assert np.all(raw[want.size:] == 0x5A), "wrote past the output"


def _project_graph(seed: int) -> Graph:
    """Three pair-path layers side by side (micro_speech's, a stride-1 one with an odd window,
    and one with degenerate channels), each from its own input."""
    rng = np.random.default_rng(seed)
    layers = [("a", (1, 49, 40, 1), (10, 8), (2, 2), 8, False),
              ("b", (1, 9, 11, 1), (3, 5), (1, 1), 4, False),
              ("c", (1, 12, 13, 1), (4, 3), (2, 2), 8, True)]
    tensors: dict[str, Tensor] = {}
    ops = []
    for prefix, shape, k, stride, m, degenerate in layers:
        tensors.update(_tensors(rng, shape, k, stride, m, "SAME", 1, int(rng.integers(-30, 30)),
                                True, degenerate, prefix))
        ops.append(_op(prefix, stride, m, "SAME", 1, "RELU"))
    g = Graph(tensors, ops, [f"{p}x" for p, *_ in layers], [f"{p}y" for p, *_ in layers],
              name=f"dw_pairs{seed}")
    verify(g)
    return g


def test_project_on_m4_simd_and_portable(tmp_path: Path):
    _require_qemu()
    graph = _project_graph(0)
    compile_graph(graph, tmp_path / "p", prefix="m", patch="off", inplace=False)
    rng = np.random.default_rng(0)
    records = [random_inputs(graph, rng) for _ in range(3)]
    want = [run_reference(graph, r) for r in records]
    for simd in (True, False):
        run = run_records(tmp_path / "p", records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"cortex-m4 ({'SIMD' if simd else 'portable'})")
