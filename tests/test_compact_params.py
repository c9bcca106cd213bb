"""Compact requantisation tables (issue 16, point 2): shifts stored as int8_t, and one
(multiplier, shift) pair with per_channel 0 where every output channel has the same one.

The kernels read te_requant_t element 0 for every channel when per_channel is 0 (the SIMD
helpers and the per-channel assembly path included); these tests hold the code generator to
that contract and the generated C bit-exact with the numpy reference for conv, depthwise and
fully connected layers that are per channel, per tensor and collapsed, in int8 and 16x8, on the
host (portable and emulated SIMD) and on the emulated Cortex-M4 (SIMD and portable).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.cost import flash_bytes
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.common import compact_requant, requant_consts, requant_init
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .conftest import require
from .conv16_cases import conv16_case, depthwise16_case, fc16_case
from .random_graphs import _Builder
from .test_simd import EMULATE, _conv, _dw, _fc, _graph, _input

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# --- the tables ---------------------------------------------------------------------------------

def test_equal_channels_collapse_to_one_pair() -> None:
    mult = np.array([1 << 30, 1 << 30, 1 << 30], np.int32)
    shift = np.array([-7, -7, -7], np.int32)
    m, s = compact_requant(mult, shift)
    assert m.tolist() == [1 << 30] and s.tolist() == [-7]
    assert requant_init(m) == ["@mult", "@shift", 0]


def test_channels_that_differ_keep_a_pair_each() -> None:
    # The same multipliers with one shift apart: not one pair.
    mult = np.array([1 << 30, 1 << 30, 1 << 30], np.int32)
    shift = np.array([-7, -8, -7], np.int32)
    m, s = compact_requant(mult, shift)
    assert m.tolist() == mult.tolist() and s.tolist() == [-7, -8, -7]
    assert requant_init(m) == ["@mult", "@shift", 1]
    m, s = compact_requant(np.array([5, 6], np.int32), np.array([-3, -3], np.int32))
    assert m.tolist() == [5, 6] and requant_init(m)[2] == 1


def test_shift_table_is_int8_and_exact_at_the_ends() -> None:
    mult, shift = requant_consts(np.array([0, 1 << 30, (1 << 31) - 1]), np.array([-31, 0, 31]))
    assert (mult.name, mult.ctype, mult.values.dtype) == ("mult", "int32_t", np.int32)
    assert (shift.name, shift.ctype, shift.values.dtype) == ("shift", "int8_t", np.int8)
    assert shift.values.tolist() == [-31, 0, 31] and shift.values.nbytes == 3


# --- graphs -------------------------------------------------------------------------------------

def _equalise(b: _Builder, y: str) -> None:
    """Give every output channel of the per-channel layer producing y channel 0's weight scale
    (and its bias the matching scales): per-channel quantisation whose pairs all agree."""
    op = next(o for o in b.ops if o.outputs[0] == y)
    w = b.tensors[op.inputs[1]]
    assert w.quant is not None and w.quant.scale.size > 1
    scale = np.full(w.quant.scale.size, w.quant.scale[0], w.quant.scale.dtype)
    w.quant = QuantParams(scale, w.quant.zero_point, w.quant.axis)
    if len(op.inputs) > 2 and op.inputs[2]:
        bias = b.tensors[op.inputs[2]]
        assert bias.quant is not None
        bias.quant = QuantParams(np.float64(b.tensors[op.inputs[0]].scale) * scale,
                                 bias.quant.zero_point, bias.quant.axis)


def mixed_graph(seed: int = 3) -> tuple[Graph, dict[str, str]]:
    """int8 layers of every requantisation form, each reaching a different kernel path:
    name of the output -> "collapsed", "per_channel" or "per_tensor"."""
    b = _Builder(np.random.default_rng(seed))
    forms: dict[str, str] = {}

    def mark(y: str, form: str) -> str:
        if form == "collapsed":
            _equalise(b, y)
        forms[y] = form
        return y

    x = _input(b, (1, 6, 7, 16))
    y = mark(_conv(b, x, 24), "collapsed")                           # pointwise, 8n inputs
    y = mark(_conv(b, y, 24, inplace=True), "collapsed")             # in place, q15 path
    y = mark(_conv(b, y, 16, inplace=True), "per_channel")           # q15 assembly path
    y = mark(_conv(b, y, 13, act="RELU"), "per_channel")
    y = mark(_conv(b, y, 13, k=3, act="RELU6"), "collapsed")         # generic conv
    y = mark(_conv(b, y, 9, k=3, stride=2), "per_channel")
    y = mark(_dw(b, y, m=1, k=3), "collapsed")                       # 3x3 depthwise
    y = mark(_dw(b, y, m=2, k=3, per_channel=False), "per_tensor")
    y = mark(_dw(b, y, m=1, k=3, inplace=True), "collapsed")         # in place
    y = mark(_dw(b, y, m=1, k=2, padding="VALID"), "per_channel")
    y = mark(_conv(b, y, 8, per_channel=False), "per_tensor")
    y = mark(_fc(b, y, 12, per_channel=True), "collapsed")
    y = mark(_fc(b, y, 10, per_channel=True), "per_channel")
    y = mark(_fc(b, y, 6), "per_tensor")
    return _graph(b, x, y, f"compact{seed}"), forms


def _rq_of(graph: Graph, op: Op) -> tuple[np.ndarray, np.ndarray, int]:
    em = get_op(op.kind).emit(graph, op)
    consts = {c.name: c for c in em.consts}
    assert consts["mult"].ctype == "int32_t" and consts["shift"].ctype == "int8_t"
    assert consts["shift"].values.dtype == np.int8
    rq = em.params["rq"]
    assert isinstance(rq, list) and rq[:2] == ["@mult", "@shift"]
    return consts["mult"].values, consts["shift"].values, int(rq[2])


def _channels(graph: Graph, op: Op) -> int:
    return graph.tensor(op.outputs[0]).shape[-1]


def _check_forms(graph: Graph, forms: dict[str, str]) -> None:
    for op in graph.ops:
        if op.kind not in WEIGHTED:
            continue
        mult, shift, per_channel = _rq_of(graph, op)
        form = forms[op.outputs[0]]
        n = 1 if form != "per_channel" else _channels(graph, op)
        assert (mult.size, shift.size, per_channel) == (n, n, int(form == "per_channel")), \
            (op.name, form)


def test_emission_follows_the_form_of_each_layer() -> None:
    graph, forms = mixed_graph()
    assert set(forms.values()) == {"collapsed", "per_channel", "per_tensor"}
    _check_forms(graph, forms)


def test_generated_c_stores_int8_shifts_and_one_pair_where_collapsed(tmp_path: Path) -> None:
    graph, forms = mixed_graph()
    compile_graph(graph, tmp_path / "p", prefix="m", inplace=False)
    weights_c = (tmp_path / "p" / "m_weights.c").read_text()
    model_c = (tmp_path / "p" / "m_model.c").read_text()
    assert "int32_t m_op" not in "".join(re.findall(r"const \w+ m_op\d+_shift", weights_c))
    shifts = dict(re.findall(r"const int8_t (m_op\d+)_shift\[(\d+)\]", weights_c))
    mults = dict(re.findall(r"const int32_t (m_op\d+)_mult\[(\d+)\]", weights_c))
    weighted = [op for op in graph.ops if op.kind in WEIGHTED]
    assert len(shifts) == len(mults) == len(weighted)
    for sym, n in shifts.items():
        # The op's params name its arrays and say per_channel = (more than one pair).
        params = re.search(rf"{sym}_params = \{{(.*?)^\}};", model_c, re.M | re.S)
        assert params is not None, sym
        rq = re.search(r"\.rq = \{(\w+), (\w+), (\d)\}", params.group(1))
        assert rq is not None and rq.groups() == (f"{sym}_mult", f"{sym}_shift",
                                                  str(int(int(n) > 1))), sym
        assert mults[sym] == n
    collapsed = sum(1 for form in forms.values() if form != "per_channel")
    assert sum(1 for n in shifts.values() if n == "1") == collapsed


def test_flash_counts_one_byte_per_shift() -> None:
    """flash_bytes by hand: weights + 4 B per multiplier + 1 B per shift + 4 B per bias."""
    graph, forms = mixed_graph()
    want = 0
    for op in graph.ops:
        if op.kind not in WEIGHTED:
            continue
        w = graph.tensor(op.inputs[1])
        pairs = _channels(graph, op) if forms[op.outputs[0]] == "per_channel" else 1
        bias = _channels(graph, op) if len(op.inputs) > 2 and op.inputs[2] else 0
        want += int(np.prod(w.shape)) + 5 * pairs + 4 * bias
    assert flash_bytes(graph) == want


@pytest.fixture(scope="module")
def mixed_project(tmp_path_factory: pytest.TempPathFactory):
    graph, _ = mixed_graph()
    project = tmp_path_factory.mktemp("compact") / "p"
    compile_graph(graph, project, prefix="m", inplace=False)
    rng = np.random.default_rng(5)
    records = [random_inputs(graph, rng) for _ in range(3)]
    want = [run_reference(graph, r) for r in records]
    return graph, project, records, want


def _assert_same(want: list[list[np.ndarray]], got: list[list[np.ndarray]], what: str) -> None:
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        for a, c in zip(w, g):
            np.testing.assert_array_equal(c, a, err_msg=f"{what}: record {k}")


def test_mixed_layers_bit_exact_on_host(mixed_project) -> None:
    _, project, records, want = mixed_project
    host = HostModel(project)
    _assert_same(want, [host.invoke(r) for r in records], "portable C")
    emulated = HostModel(project, extra_cflags=EMULATE)
    _assert_same(want, [emulated.invoke(r) for r in records], "emulated SIMD")


def test_mixed_layers_bit_exact_on_m4(mixed_project) -> None:
    require(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc is not installed")
    require(shutil.which("qemu-system-arm") is not None, "qemu-system-arm is not installed")
    _, project, records, want = mixed_project
    for simd in (True, False):
        run = run_records(project, records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"cortex-m4 {'SIMD' if simd else 'portable'}")


# --- 16x8 ---------------------------------------------------------------------------------------

def _equalise_op(graph: Graph, op: Op) -> None:
    w = graph.tensor(op.inputs[1])
    assert w.quant is not None
    scale = np.full(w.quant.scale.size, w.quant.scale[0], w.quant.scale.dtype)
    graph.tensors[w.name] = Tensor(w.name, w.shape, w.dtype,
                                   QuantParams(scale, w.quant.zero_point, w.quant.axis), w.data)
    if len(op.inputs) > 2 and op.inputs[2]:
        b = graph.tensor(op.inputs[2])
        assert b.quant is not None
        bscale = (np.float32(graph.tensor(op.inputs[0]).scale) * scale).astype(np.float32)
        graph.tensors[b.name] = Tensor(b.name, b.shape, b.dtype,
                                       QuantParams(bscale, b.quant.zero_point, b.quant.axis),
                                       b.data)
    verify(graph)


CASES16 = {"conv": conv16_case, "depthwise": depthwise16_case, "fc": fc16_case}


@pytest.mark.parametrize("kind,bias", [("conv", "int64"), ("conv", "int32"),
                                       ("depthwise", "int64"), ("depthwise", None),
                                       ("fc", "int64"), ("fc", "int32")])
def test_16x8_collapsed_and_per_channel_bit_exact(kind: str, bias: str | None,
                                                   tmp_path: Path) -> None:
    """The int64 rule (int64 bias) and the int32 one, one pair and a pair per channel."""
    rng = np.random.default_rng(17)
    done = {"collapsed": 0, "per_channel": 0}
    for k in range(40):
        if min(done.values()) >= 2:
            break
        graph, op = CASES16[kind](rng, bias)
        w = graph.tensor(op.inputs[1])
        assert w.quant is not None
        if not w.quant.per_channel or w.quant.scale.size < 2:
            continue
        form = "collapsed" if done["collapsed"] <= done["per_channel"] else "per_channel"
        if form == "collapsed":
            _equalise_op(graph, op)
        mult, shift, per_channel = _rq_of(graph, op)
        n = 1 if form == "collapsed" else _channels(graph, op)
        assert (mult.size, shift.size, per_channel) == (n, n, int(form == "per_channel"))
        project = tmp_path / f"p{k}"
        compile_graph(graph, project, prefix="m")
        host = HostModel(project)
        for _ in range(2):
            x = random_inputs(graph, rng)
            _assert_same([run_reference(graph, x)], [host.invoke(x)], f"{kind} {form}")
        done[form] += 1
    assert min(done.values()) >= 2, done
