"""Faster resnet convolutions and a lean one-input fully connected layer (issue 15, session 6).

te_conv2d_s8's im2col path with input channels a multiple of 4 widens each pixel pair's patch
straight from the input (te_conv_im2col_q15: whole kernel rows where both pixels' rows lie in
the image, a tap at a time with padding words elsewhere, dilation per tap); once the whole
widened pair no longer fits at the output's end, pairs go a kernel row at a time into int32 sums
(te_conv2d_im2col_rows_simd, te_conv_q15_acc), and only the last few pixels take the generic
loop, whose border rows now fold the input offset too. te_conv2d_rows_inplace_s8 hands each band
the gap up to the input rows it reads (te_conv2d_room_s8) and picks one-row bands where that
leaves fewer pixels to the generic loop. te_fc_one_in: one input feature, per tensor, with a
bias and no weights offset.

Layers sit on the edges of those domains: widened rows of 12, 24, 40 and 48 values (the
assembly's 8- and 16-value steps and the C loop), odd output channels, clamping activations,
padding on every side, strides, dilation, zero points -128 and 127, an output with room for all
three modes and one with room for the generic loop only, per tensor; FC layers of 1 input with
4, 7 and 16 outputs, batches, sums past 2^30, and the 1-input layers the lean path leaves alone
(no bias, a weights zero point). Bit-exact with the reference on the host (portable and emulated
SIMD), in place at several offsets, and on the emulated Cortex-M4 and M7.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, verify
from tinyengine.ops import get_op
from tinyengine.ops.rows_inplace import rows_of
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .conftest import require
from .random_graphs import _Builder
from .test_conv_im2col import _conv, _input
from .test_fc_small import _fc
from .test_fc_small import _input as _fc_input
from .test_inplace_rows import _build, _call, _layer
from .test_simd import EMULATE, _assert_same

RECORDS = 3


def conv_graph(seed: int) -> Graph:
    """Resnet-like 3x3 layers whose outputs leave room for one, two or all three modes."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 10, 10, 16), -128 if seed == 0 else 127)
    y = _conv(b, x, 16, 3, 3, act="RELU")        # row 48: whole pairs, kernel rows, generic
    y = _conv(b, y, 32, 3, 3, stride=2)           # 5x5x32: k = 144, stride 2
    y = _conv(b, y, 64, 3, 3)                     # row 96, 64 channels (resnet's last 3x3)
    y = _conv(b, y, 8, 3, 5, stride=2, padding="VALID", act="RELU6")  # row 320, no padding
    y = _conv(b, y, 9, 1, 1)                      # back to 9 channels: odd below
    y = _conv(b, y, 4, 1, 1)
    y = _conv(b, y, 9, 3, 3, dilation=2)          # c = 4, dilation: a tap at a time, k = 36
    y = _conv(b, y, 8, 1, 1)
    y = _conv(b, y, 9, 3, 5, act="RELU6")         # c = 8, row 40 (an odd 8), odd channels
    y = _conv(b, y, 12, 1, 1)
    y = _conv(b, y, 10, 3, 3, per_channel=False)  # c = 12, row 36 (the C loop), per tensor
    g = Graph(b.tensors, b.ops, [x], [op.outputs[0] for op in b.ops], name=f"speed6c{seed}")
    verify(g)
    return g


def fc_graph(seed: int, batch: int) -> Graph:
    """One-input layers: te_fc_one_in and the ones it leaves to the other paths."""
    b = _Builder(np.random.default_rng(seed))
    x = _fc_input(b, (batch, 1))
    ys = [_fc(b, x, 16, act="RELU"),                # hello_world's first layer
          _fc(b, x, 7, big_bias=(2, 4, 5)),         # a remainder of 3; sums past 2^30
          _fc(b, x, 4, act="RELU6", big_bias=(1,)),
          _fc(b, x, 5, no_bias=True),               # te_fc_per_tensor
          _fc(b, x, 6, w_zp=-3)]                    # weights offset: te_fc_per_tensor
    g = Graph(b.tensors, b.ops, [x], ys, name=f"speed6f{seed}b{batch}")
    verify(g)
    return g


CASES = {"conv0": lambda: conv_graph(0), "conv1": lambda: conv_graph(1),
         "fc1": lambda: fc_graph(0, 1), "fc3": lambda: fc_graph(1, 3)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed6")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            graph = CASES[name]()
            project = root / name
            compile_graph(graph, project, prefix="m", inplace=False)
            rng = np.random.default_rng(7)
            records = [random_inputs(graph, rng) for _ in range(RECORDS)]
            cache[name] = (graph, project, records, [run_reference(graph, r) for r in records])
        return cache[name]
    return get


def test_graphs_reach_the_paths_they_claim(built):
    graph, _, _, _ = built("conv0")
    kernels = [get_op(op.kind).kernel(graph, op) for op in graph.ops]
    assert kernels.count("te_conv2d_s8") == 7
    # The first layer's output (1,600 B) holds the whole widened pair (579 B) with pixels to
    # spare, and its last pixels only the kernel-row work space (4 * 48 + 8 * 16 + 3 = 323 B).
    first = graph.tensor(graph.ops[0].outputs[0])
    assert first.size > 579 + 323 + 2 * 16
    fc, _, _, _ = built("fc1")
    assert [fc.tensor(op.inputs[1]).shape for op in fc.ops][:3] == [(16, 1), (7, 1), (4, 1)]
    assert np.abs(fc.tensor(fc.ops[1].inputs[2]).data).max() >= 3 << 29


@pytest.mark.parametrize("name", list(CASES))
def test_host_portable_and_emulated_simd_equal_reference(name, built):
    _, project, records, want = built(name)
    _assert_same(want, [HostModel(project).invoke(r) for r in records], f"{name} portable")
    emulated = HostModel(project, extra_cflags=EMULATE)
    _assert_same(want, [emulated.invoke(r) for r in records], f"{name} emulated SIMD")


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
@pytest.mark.parametrize("name", list(CASES))
def test_on_cortex_m_equals_reference(cpu, name, built):
    require(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc is not installed")
    require(shutil.which("qemu-system-arm") is not None, "qemu-system-arm is not installed")
    _, project, records, want = built(name)
    _assert_same(want, run_records(project, records, cpu, simd=True).outputs, f"{name} {cpu}")


# In place band by band: resnet's 3x3 over 16 channels (one-row bands whose gap holds the work
# space, or part of it), 32 channels, and c = 8 with odd output channels.
ROWS_LAYERS = [((1, 12, 12, 16), 16, 3, 1), ((1, 8, 8, 32), 32, 3, 1),
               ((1, 9, 7, 8), 9, 3, 2)]


@pytest.mark.parametrize("flags", ["portable", "emulated"])
@pytest.mark.parametrize("layer", ROWS_LAYERS, ids=lambda c: f"{c[0][1]}x{c[0][3]}s{c[3]}")
def test_rows_in_place_with_room_equals_reference(flags, layer):
    ffi, lib = _build(EMULATE if flags == "emulated" else [])
    shape, oc, k, stride = layer
    rng = np.random.default_rng([*shape, oc, stride])
    g = _layer(rng, "CONV_2D", shape, oc, k, stride, act="RELU")
    rows = rows_of(g, g.ops[0])
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    want = run_reference(g, [x])[0]
    out_row = rows.out_row
    offsets = {*rows.options(), *(-(-rows.need(r) // 4) * 4 for r in (1, 2, 3)),
               *(-(-(rows.need(1) + extra) // 4) * 4 for extra in (out_row // 2, 600, 1200))}
    for offset in sorted(offsets):
        op = Op("layer", "CONV_2D", g.ops[0].inputs, g.ops[0].outputs,
                dict(g.ops[0].attrs, inplace=0, inplace_offset=offset))
        buf = np.full(max(rows.out_bytes, offset + rows.in_bytes) + 16, 0x5A, np.uint8)
        buf[offset:offset + x.size] = x.view(np.uint8).ravel()
        assert _call(ffi, lib, g, op, buf.view(np.int8), offset, 0) == 0
        got = buf[:want.size].view(np.int8).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=f"offset {offset}")
        assert np.all(buf[-16:] == 0x5A), "wrote past the shared buffer"
