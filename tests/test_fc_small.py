"""Small fully connected layers (issue 15): the per-tensor SIMD paths of csrc/te_fc.c
(te_fc_per_tensor: outputs four at a time, packed and clamped bytewise; te_fc_few: fewer than
four outputs, one at a time, with te_fc_wide's 64-bit requantisation) and their fallbacks equal
the numpy reference bit for bit.

Shapes of 1 to 8 inputs and outputs (every tail after the four-output blocks), batches of 1 and
3, per tensor (with and without a weights zero point) and per channel, activations that clamp
and that do not, a per-tensor requantisation outside the fast rule's domain, and biases that
push single accumulators past 2^30 (that block of four takes the exact rule output by output).
A second chain holds layers of 1 to 3 outputs: biases near +-2^31, shifts at both ends of
the fast domain (-1 and -22) and just past it (-23), no bias, a weights zero point and per
channel (the other paths). Checked on the host with emulated SIMD (and the portable build), and
on the Cortex-M4 and M7 under QEMU with the real instructions. te_fc_wide itself is checked
against tinyengine.quant (TFLite's rule) on edge and random accumulators, under UBSan.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, QuantParams, verify
from tinyengine.quant import multiply_by_quantized_multiplier
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .conftest import require
from .random_graphs import _UNIFORM_INT8_STD, _Builder, _qp

RECORDS = 4


def _input(b: _Builder, shape: tuple[int, ...]) -> str:
    scale = 10.0 ** b.rng.uniform(-2.5, -0.5)
    zp = int(b.rng.integers(-128, 128))
    x = b.tensor(shape, "int8", _qp(scale, zp))
    b.rms[x] = scale * math.hypot(_UNIFORM_INT8_STD, zp + 0.5)
    return x


def _fc(b: _Builder, x: str, units: int, per_channel: bool = False, w_zp: int = 0,
        act: str = "NONE", big_bias: tuple[int, ...] = (), slow: bool = False,
        bias_near: int = 0, no_bias: bool = False, real: float = 0.0) -> str:
    """bias_near: every bias within bias_near of +-2^31 alternately (sums that stay in int32);
    real: the layer's multiplier (in * weights / out scale), which sets its shift."""
    n, k = b.shape(x)
    wts, w_rms = b.weights((units, k), 0, per_channel)
    if w_zp:
        t = b.tensors[wts]
        assert t.quant is not None
        t.quant = QuantParams(t.quant.scale, np.array([w_zp]), 0)
    acc_std = math.sqrt(k) * b.rms[x] * w_rms
    bias, b_rms = ("", 0.0) if no_bias else b.bias(x, wts, units, acc_std)
    if (big_bias or bias_near) and not bias:
        bias, b_rms = b.bias(x, wts, units, acc_std)
        while not bias:
            bias, b_rms = b.bias(x, wts, units, acc_std)
    if big_bias:  # accumulators past 2^30: the fast rule's domain ends there
        t = b.tensors[bias]
        assert t.data is not None
        data = t.data.copy()
        for i, c in enumerate(big_bias):
            data[c] = (3 << 29) if i % 2 == 0 else -(3 << 29)
        t.data = data
    if bias_near:
        t = b.tensors[bias]
        data = b.rng.integers(0, bias_near, units) + (1 << 31) - bias_near
        data[1::2] = -data[1::2]
        t.data = data.astype(np.int32)
    y = b.activation((n, units), math.hypot(acc_std, b_rms), act)
    if slow:  # a multiplier above 1/2 (shift >= 0): outside the fast rule for every output
        t = b.tensors[y]
        assert t.quant is not None
        t.quant = QuantParams(t.quant.scale / 64.0, t.quant.zero_point, t.quant.axis)
    if real:
        t, tx, tw = b.tensors[y], b.tensors[x], b.tensors[wts]
        assert t.quant is not None and tx.quant is not None and tw.quant is not None
        scale = float(tx.quant.scale[0]) * float(tw.quant.scale[0]) / real
        t.quant = QuantParams(np.array([scale], np.float32), t.quant.zero_point, t.quant.axis)
    b.op("FULLY_CONNECTED", [x, wts, bias], [y], activation=act, keep_num_dims=False)
    return y


def small_fc_graph(seed: int, batch: int) -> Graph:
    """A chain 1 -> 8 -> 5 -> 2 -> 7 -> 4 -> 3 -> 1 -> 6 of small layers in every variant."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (batch, 1))
    y = _fc(b, x, 8)                                     # 1 input: tails only in the sums
    y = _fc(b, y, 5, act="RELU", big_bias=(1,))          # a block of four with one past 2^30
    y = _fc(b, y, 2, per_channel=True)                   # the general path, pairs
    y = _fc(b, y, 7, w_zp=3)                             # weights offset: pairs and one
    y = _fc(b, y, 4, act="RELU6", big_bias=(0, 3))       # clamping on both ends
    y = _fc(b, y, 3, slow=True)                          # per tensor, outside the fast rule
    y = _fc(b, y, 1)                                     # one output
    y = _fc(b, y, 6, per_channel=True, act="RELU")
    g = Graph(b.tensors, b.ops, [x], [y], name=f"fcsmall{seed}b{batch}")
    verify(g)
    return g


def few_fc_graph(seed: int, batch: int) -> Graph:
    """Layers of 1 to 3 outputs (te_fc_few, and those it leaves to the other paths), each after
    a wider one so that their sums run the four-value steps and the tails."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (batch, 13))
    y = _fc(b, x, 3, bias_near=1 << 20)                   # sums far past 2^30, both signs
    y = _fc(b, y, 9)
    y = _fc(b, y, 2, act="RELU", real=0.3)                # shift -1
    y = _fc(b, y, 12, no_bias=True)
    y = _fc(b, y, 1, real=0.75 * 2.0 ** -22, bias_near=1 << 30)  # shift -22, the domain's end
    y = _fc(b, y, 16)
    y = _fc(b, y, 3, real=0.75 * 2.0 ** -23, bias_near=1 << 30)  # shift -23: the general path
    y = _fc(b, y, 5)
    y = _fc(b, y, 2, w_zp=-5, act="RELU6")               # weights offset: te_fc_per_tensor
    y = _fc(b, y, 3, per_channel=True)                    # per channel: te_fc_general
    y = _fc(b, y, 4)
    y = _fc(b, y, 3, no_bias=True, act="RELU")
    g = Graph(b.tensors, b.ops, [x], [y], name=f"fcfew{seed}b{batch}")
    verify(g)
    return g


GRAPHS = {"small": small_fc_graph, "few": few_fc_graph}


def _outputs_of_every_layer(graph: Graph) -> Graph:
    """The same graph with every layer's output a graph output, so each is compared."""
    outs = [op.outputs[0] for op in graph.ops]
    g = Graph(graph.tensors, graph.ops, graph.inputs, outs, name=graph.name)
    verify(g)
    return g


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fcsmall")
    cache: dict[tuple[str, int, int], tuple] = {}

    def get(case: tuple[str, int, int]):
        if case not in cache:
            kind, seed, batch = case
            graph = _outputs_of_every_layer(GRAPHS[kind](seed, batch))
            project = root / graph.name
            compile_graph(graph, project, prefix="m", inplace=False)
            rng = np.random.default_rng(100 + seed)
            records = [random_inputs(graph, rng) for _ in range(RECORDS)]
            want = [run_reference(graph, r) for r in records]
            cache[case] = (graph, project, records, want)
        return cache[case]
    return get


def _assert_same(want, got, what: str) -> None:
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        assert len(w) == len(g)
        for i, (a, c) in enumerate(zip(w, g)):
            np.testing.assert_array_equal(np.asarray(c).reshape(a.shape), a,
                                          err_msg=f"{what}: record {k}, layer {i}")


def test_graph_reaches_both_paths_and_the_exact_rule(built):
    """The chain is what the tests claim: per-tensor layers in and out of the fast domain,
    per-channel layers, and accumulators past 2^30 in the reference's own sums."""
    graph, _, records, _ = built(("small", 0, 1))
    kinds = [(op.attrs.get("activation"), graph.tensor(op.inputs[1]).quant.per_channel)
             for op in graph.ops]
    assert sum(pc for _, pc in kinds) == 2 and len(kinds) == 8
    ops = graph.ops
    assert np.abs(graph.tensor(ops[1].inputs[2]).data).max() >= 3 << 29


def _fc_params(graph: Graph) -> list[tuple[int, int, list[int], bool]]:
    """(outputs, filter offset, shifts, has bias) of each layer, as the code generator sees it."""
    from tinyengine.quant import quantize_multiplier
    out = []
    for op in graph.ops:
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        y = graph.tensor(op.outputs[0])
        assert w.quant is not None
        reals = np.float64(x.scale) * w.quant.scale.astype(np.float64) / np.float64(y.scale)
        shifts = [quantize_multiplier(float(r))[1] for r in reals]
        has_bias = len(op.inputs) > 2 and op.inputs[2] != ""
        out.append((w.shape[0], int(-w.quant.zero_point[0]), shifts, has_bias))
    return out


def test_few_graph_reaches_what_it_claims(built):
    """The few-outputs chain: shifts -1, -22 and -23 on layers of 1 to 3 outputs, biases within
    2^20 of +-2^31, layers without a bias, and the two layers te_fc_few must leave alone."""
    graph, _, _, _ = built(("few", 0, 1))
    params = _fc_params(graph)
    few = [p for p in params if p[0] < 4]
    assert [p[2] for p in few if len(p[2]) == 1 and p[2][0] in (-1, -22, -23)] == [[-1], [-22],
                                                                                   [-23]]
    assert any(not p[3] for p in few) and any(p[1] != 0 for p in few)
    assert any(len(p[2]) > 1 for p in few)
    bias = np.abs(graph.tensor(graph.ops[0].inputs[2]).data.astype(np.int64))
    assert bias.min() >= (1 << 31) - (1 << 20)


CASES = [("small", seed, batch) for seed in (0, 1, 2) for batch in (1, 3)] + [
    ("few", seed, batch) for seed in (0, 1, 2) for batch in (1, 2)]


@pytest.mark.parametrize("case", CASES, ids=[f"{k}-seed{s}-batch{b}" for k, s, b in CASES])
def test_host_portable_and_emulated_simd_equal_reference(case, built):
    _, project, records, want = built(case)
    _assert_same(want, [HostModel(project).invoke(r) for r in records], "host portable")
    emulated = HostModel(project, extra_cflags=["-DTE_SIMD_EMULATE"])
    _assert_same(want, [emulated.invoke(r) for r in records], "host emulated SIMD")


QEMU_CASES = [("small", 0, 1), ("small", 1, 3), ("few", 0, 1), ("few", 1, 2)]


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
@pytest.mark.parametrize("case", QEMU_CASES,
                         ids=[f"{k}-seed{s}-batch{b}" for k, s, b in QEMU_CASES])
def test_on_cortex_m_equals_reference(cpu, case, built):
    require(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc is not installed")
    require(shutil.which("qemu-system-arm") is not None, "qemu-system-arm is not installed")
    _, project, records, want = built(case)
    run = run_records(project, records, cpu, simd=True)
    _assert_same(want, run.outputs, f"{cpu} SIMD")


# --- te_fc_wide against TFLite's rule, directly ------------------------------------------------

CSRC = Path(__file__).resolve().parent.parent / "csrc"

WIDE_MAIN = r"""
#include <stdio.h>
#include "te_fc.c"

int main(void)
{
    long long acc, m, sh, zp;
    while (scanf("%lld %lld %lld %lld", &acc, &m, &sh, &zp) == 4) {
        const te_fc_wide_t q = te_fc_wide_make((int32_t)m, (int32_t)sh, (int32_t)zp);
        printf("%d\n", (int)te_fc_wide((int32_t)acc, q));
    }
    return 0;
}
"""


def _wide_cases() -> np.ndarray:
    """(acc, multiplier, shift, output zero point): int32's ends and 2^30's neighbours, exact
    halves after the first rounding (multiplier 2^30, small shifts), and random values."""
    rng = np.random.default_rng(7)
    accs = [-(1 << 31), -(1 << 31) + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -3, -2, -1, 0,
            1, 2, 3, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, (1 << 31) - 2, (1 << 31) - 1]
    mults = [0, 1, 1 << 30, (1 << 30) + 1, (1 << 31) - 1]
    rows = [(a, m, sh, zp) for a in accs for m in mults for sh in (-1, -2, -21, -22)
            for zp in (-128, 0, 127)]
    n = 20000
    acc = np.concatenate([rng.integers(-(1 << 31), 1 << 31, n),
                          rng.integers(-(1 << 12), 1 << 12, n)])
    mult = np.concatenate([rng.integers(0, 1 << 31, n), np.full(n, 1 << 30)])
    shift = np.concatenate([rng.integers(-22, 0, n), rng.integers(-3, 0, n)])
    zp = rng.integers(-128, 128, 2 * n)
    return np.concatenate([np.array(rows, np.int64),
                           np.stack([acc, mult, shift, zp], axis=1).astype(np.int64)])


def test_wide_rule_equals_tflite_requantisation(tmp_path):
    """te_fc_wide(acc) is clamp(MultiplyByQuantizedMultiplier(acc, m, shift) + zp) for every
    int32 acc, m >= 0 and shift in [-22, -1], built with UBSan (no overflow on the way)."""
    cc = shutil.which("cc")
    require(cc is not None, "a host C compiler (cc) is needed")
    src = tmp_path / "wide.c"
    src.write_text(WIDE_MAIN)
    exe = tmp_path / "wide"
    subprocess.run([str(cc), "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-DTE_SIMD_EMULATE", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    f"-I{CSRC}", str(src), "-o", str(exe)], check=True)
    cases = _wide_cases()
    stdin = "\n".join(" ".join(str(int(v)) for v in row) for row in cases) + "\n"
    run = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    got = np.array(run.stdout.split(), np.int64)
    want = np.clip(multiply_by_quantized_multiplier(cases[:, 0], cases[:, 1], cases[:, 2])
                   + cases[:, 3], -128, 127)
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"first mismatch: (acc, m, shift, zp) = {cases[bad[0]].tolist()}: " \
        f"{got[bad[0]]} != {want[bad[0]]}"
