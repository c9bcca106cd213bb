"""16x8 (int16 activations, int8 weights) CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and
TRANSPOSE_CONV, checked on seeded random cases:

1. TFLite's int64 MultiplyByQuantizedMultiplier, pinned by hand-worked values where the int32
   rule gives another answer, and the numpy version against a scalar transcription;
2. each op's numpy reference against naive scalar transcriptions of TFLite's int16 reference
   loops (ConvPerChannel<int64/int32>, DepthwiseConvPerChannel, FullyConnected[PerChannel],
   TransposeConv with its int64 scratch) in tests/conv16_cases.py;
3. the C kernels, called exactly as emit() says, == reference;
4. generated C == reference == TFLM on single-op graphs (through the TFLite writer), including
   the accumulator-type cases that pin TFLM's rules;
5. the shared SEANet models: bit-exact on 20 inputs, arena at most TFLM's head;
6. ASan/UBSan on a generated project; refusals naming the op and the tensor; patches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, Tensor, verify
from tinyengine.ops import get_op, requant16

from . import ckernels
from .conv16_cases import (
    BIASES,
    CASES,
    act16,
    bias_tensor,
    conv16_case,
    depthwise16_case,
    fc16_case,
    graph_of,
    i16,
    n_mbqm64,
    naive,
    reference,
    some_cases,
    tconv16_case,
    values,
    weights,
)
from .test_ops_dw_fc_add import CCall, n_conv_multipliers, n_mbqm, n_wrap32, qp

TE_OK, TE_ERR_ARG = 0, 1

# ---------------------------------------------------------------------------------------------
# 1. The int64 requantisation rule
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, m, shift, want64, want32", [
    (3, 1 << 30, 0, 2, 2),  # 1.5: both round up
    # -0.5: one rounding half up (towards +inf) gives 0; the int32 rule rounds half away from
    # zero, -1.
    (-2, 1 << 30, -1, 0, -1),
    # 1.25: one rounding gives 1; the int32 rule rounds twice (2.5 -> 3, then 1.5 -> 2).
    (5, 1 << 30, -1, 1, 2),
    # The Q31 multiplier is rounded to Q15 first: (2^30 + 2^14 - 1) becomes 2^14 / 2^15 = 0.5
    # exactly, so 2^17 gives 65536; the int32 rule keeps 0.5000076 and gives 65537.
    (1 << 17, (1 << 30) + (1 << 14) - 1, 0, 65536, 65537),
    # Multipliers from 0x7FFF0000 on reduce to 0x7FFF (0x7FFF8000 would round to 0x8000 and
    # give 524288); the int32 rule gives 2^20 * 0x7FFF8000 / 2^32 = 524280.
    (1 << 20, 0x7FFF8000, -1, 524272, 524280),
])
def test_int64_rule_worked_values(x: int, m: int, shift: int, want64: int, want32: int) -> None:
    assert n_mbqm64(x, m, shift) == want64
    assert int(requant16.multiply_by_quantized_multiplier_64(np.array([x]), m, shift)[0]) \
        == want64
    assert n_mbqm(x, m, shift) == want32  # the int8 path's rule: another answer where it differs


def test_int64_rule_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(-(1 << 46), 1 << 46, 3000)
    x[:1000] = rng.integers(-100000, 100000, 1000)
    m = rng.integers(0, 1 << 31, 3000)
    m[:50] = rng.integers(0x7FFF0000, 1 << 31, 50)
    shift = rng.integers(-31, requant16.MAX_SHIFT64 + 1, 3000)
    got = requant16.multiply_by_quantized_multiplier_64(x, m, shift)
    want = [n_mbqm64(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift)]
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# 2. numpy reference == naive transcription
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(CASES))
def test_reference_matches_naive(kind: str) -> None:
    rng = np.random.default_rng(1600)
    for i, (g, op) in enumerate(some_cases(kind, 1601 + len(kind), 12)):
        vals = values(rng, g, op)
        np.testing.assert_array_equal(reference(g, op, vals), naive(g, op, vals),
                                      err_msg=f"{kind} case {i}: {op.attrs}")


def test_reference_int32_accumulator_without_bias() -> None:
    """No bias and quantized_bias_type INT32: TFLM's int32 accumulator, hence the int32 rule."""
    rng = np.random.default_rng(1602)
    for make in (conv16_case, fc16_case):
        for _ in range(4):
            g, op = make(rng, None)
            op.attrs["quantized_bias_type"] = "int32"
            vals = values(rng, g, op)
            assert requant16.accumulator(g, op) == "int32"
            np.testing.assert_array_equal(reference(g, op, vals), naive(g, op, vals))


# ---------------------------------------------------------------------------------------------
# 3. C kernels == reference
# ---------------------------------------------------------------------------------------------

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { const int32_t *multiplier; const int8_t *shift; int32_t per_channel; }
    te_requant_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w; te_quant_t q; te_requant_t rq; int32_t groups;
} te_conv2d_params_t;
te_status_t te_conv2d_s16(const te_conv2d_params_t *p, const int16_t *input,
    const int8_t *filter, const int64_t *bias, int16_t *output);
te_status_t te_conv2d_acc32_s16(const te_conv2d_params_t *p, const int16_t *input,
    const int8_t *filter, const int32_t *bias, int16_t *output);
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output; int32_t depth_multiplier;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w; te_quant_t q; te_requant_t rq;
} te_depthwise_conv_params_t;
te_status_t te_depthwise_conv_s16(const te_depthwise_conv_params_t *p, const int16_t *input,
    const int8_t *filter, const int64_t *bias, int16_t *output);
typedef struct {
    int32_t batches; int32_t in_features; int32_t out_features; int32_t filter_offset;
    te_quant_t q; te_requant_t rq;
} te_fully_connected_params_t;
te_status_t te_fully_connected_s16(const te_fully_connected_params_t *p, const int16_t *input,
    const int8_t *weights, const int64_t *bias, int16_t *output);
te_status_t te_fully_connected_acc32_s16(const te_fully_connected_params_t *p,
    const int16_t *input, const int8_t *weights, const int32_t *bias, int16_t *output);
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t stride_h; int32_t stride_w; int32_t pad_h; int32_t pad_w;
    te_quant_t q; te_requant_t rq;
} te_transpose_conv_params_t;
te_status_t te_transpose_conv_s16(const te_transpose_conv_params_t *p, const int16_t *input,
    const int8_t *filter, const int64_t *bias, int16_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_requant16.h", "te_conv.h", "te_depthwise.h", "te_fc.h",
                           "te_transpose_conv.h"],
                          ["te_conv.c", "te_depthwise.c", "te_fc.c", "te_transpose_conv.c"], CDEF)


def run_c(kernels: tuple[Any, Any], g: Graph, op: Op, vals: list[np.ndarray | None],
          kernel: str | None = None) -> tuple[int, np.ndarray]:
    ffi, lib = kernels
    em = get_op(op.kind).emit(g, op)
    tensors = {n: np.ascontiguousarray(v) for n, v in zip(op.inputs, vals)
               if n and v is not None and not g.tensor(n).is_const}
    out = np.full(g.tensor(op.outputs[0]).shape, 12345, np.int16)
    tensors[op.outputs[0]] = out
    return CCall(ffi, em)(lib, tensors, kernel), out


@pytest.mark.parametrize("kind", sorted(CASES))
def test_c_kernels_match_reference(kernels: tuple[Any, Any], kind: str) -> None:
    rng = np.random.default_rng(1700)
    chosen = set()
    for i, (g, op) in enumerate(some_cases(kind, 1701 + len(kind), 18)):
        vals = values(rng, g, op)
        status, out = run_c(kernels, g, op, vals)
        chosen.add(get_op(op.kind).kernel(g, op))
        assert status == TE_OK
        np.testing.assert_array_equal(out, reference(g, op, vals),
                                      err_msg=f"{kind} case {i}: {op.attrs}")
    acc32 = {"CONV_2D": {"te_conv2d_acc32_s16"},
             "FULLY_CONNECTED": {"te_fully_connected_acc32_s16"}}.get(kind, set())
    assert len(chosen) == 1 + len(acc32) and acc32 <= chosen, chosen


def test_c_int64_rule_on_edge_multipliers(kernels: tuple[Any, Any]) -> None:
    """te_requant16.h's rule against the numpy one on the edges: multipliers 0, 1, at and past
    0x7FFF0000 (reduced to 0x7FFF), shifts -31 to 14, sums up to 2^46 whose result leaves int32
    (truncated, then clamped). A 1-feature FC with weight 1 gives acc = x + bias[o]."""
    ffi, lib = kernels
    rng = np.random.default_rng(1705)
    mults = np.array([0, 1, 1 << 30, 0x7FFEFFFF, 0x7FFF0000, 0x7FFF7FFF, 0x7FFF8000,
                      (1 << 31) - 1] + list(rng.integers(0, 1 << 31, 8)), np.int64)
    shifts = np.array([-31, -20, -15, -1, 0, 1, 7, 14] * 2, np.int64)
    k = mults.size
    w = Tensor("w", (k, 1), "int8", qp(np.full(k, 0.01), np.zeros(k), 0), np.ones((k, 1), np.int8))
    # Odd channels: sums near the int16 range after scaling; even ones: any size up to 2^46.
    factor = np.maximum(mults / 2.0 ** 31 * 2.0 ** shifts, 2.0 ** -46)
    near = np.clip(rng.uniform(-40000, 40000, k) / factor, -(2.0 ** 45), 2.0 ** 45)
    far = rng.choice([-1, 1], k) * (1 << rng.integers(0, 46, k))
    bias = np.where(np.arange(k) % 2 == 1, near, far).astype(np.int64)
    b = Tensor("b", (k,), "int64", qp(np.full(k, 1e-6), np.zeros(k), 0), bias)
    op = Op("fc", "FULLY_CONNECTED", ["x", "w", "b"], ["y"],
            {"activation": "NONE", "keep_num_dims": False})
    g = graph_of(op, [act16("x", (64, 1), 1e-4), w, b, act16("y", (64, k), 1e-2)])
    em = get_op(op.kind).emit(g, op)
    call = CCall(ffi, em)
    m32, s8 = mults.astype(np.int32), shifts.astype(np.int8)
    call.keep += [m32, s8]
    call.params.rq.multiplier = ffi.from_buffer("int32_t[]", m32)
    call.params.rq.shift = ffi.from_buffer("int8_t[]", s8)
    call.params.rq.per_channel = 1  # equal weight scales: the generator stored one pair
    x = i16(rng, (64, 1))
    out = np.zeros((64, k), np.int16)
    assert call(lib, {"x": x, "y": out}) == TE_OK
    acc = x.astype(np.int64) + bias
    want = np.clip(requant16.multiply_by_quantized_multiplier_64(acc, mults, shifts), -32768,
                   32767)
    np.testing.assert_array_equal(out, want)
    assert len(set(want.ravel().tolist())) > 64  # not all clamped


def test_c_kernels_refuse_parameters_outside_their_domain(kernels: tuple[Any, Any]) -> None:
    """An offset (asymmetric int16), int8-range limits read as int16 ones are fine, but limits
    past int16, a shift the int64 rule cannot take or a negative multiplier are TE_ERR_ARG."""
    ffi, lib = kernels
    rng = np.random.default_rng(1710)
    for kind in sorted(CASES):
        g, op = CASES[kind](rng)
        vals = values(rng, g, op)
        em = get_op(op.kind).emit(g, op)
        assert em.kernel.endswith("_s16") and em.params["q"] is not None
        assert list(em.params["q"])[:2] == [0, 0]  # type: ignore[arg-type]
        tensors = {n: np.ascontiguousarray(v) for n, v in zip(op.inputs, vals)
                   if n and v is not None and not g.tensor(n).is_const}
        tensors[op.outputs[0]] = np.zeros(g.tensor(op.outputs[0]).shape, np.int16)
        for change in ("input_offset", "output_offset", "act_min", "shift", "multiplier"):
            call = CCall(ffi, em)
            q, rq = call.params.q, call.params.rq
            if change == "input_offset":
                q.input_offset = 1
            elif change == "output_offset":
                q.output_offset = -1
            elif change == "act_min":
                q.act_min = -32769
            else:
                arr = call.consts["shift" if change == "shift" else "mult"].copy()
                arr[0] = requant16.MAX_SHIFT64 + 1 if change == "shift" else -1
                ptr = ffi.from_buffer(f"{arr.dtype}_t[]", arr)
                call.keep += [arr, ptr]
                setattr(rq, change, ptr)
            assert call(lib, tensors) == TE_ERR_ARG, (kind, change)


# ---------------------------------------------------------------------------------------------
# 4. Generated C == reference == TFLM
# ---------------------------------------------------------------------------------------------

def assert_exact(g: Graph, seed: int, n_random: int = 2) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    verdicts, _ = verify_graph(g, write_tflite(g), n_random=n_random, seed=seed)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_c_reference_tflm(tflm: Any, kind: str) -> None:
    """Every bias type TFLM reads for the op, fused activations, strides, padding, dilation,
    groups, per-channel and per-tensor weights: one project per case."""
    cases = some_cases(kind, 1800 + len(kind), 2 * len(BIASES[kind]))
    for i, (g, _) in enumerate(cases):
        assert_exact(g, seed=i)


def rule_splitting_case(rng: np.random.Generator, with_bias: bool
                        ) -> tuple[float, float, float, int, np.ndarray]:
    """Scales, a bias (0 without) and int16 inputs x for which acc = 127 * x + bias gives
    different in-range outputs under TFLM's two MultiplyByQuantizedMultiplier overloads:
    (in_s, w_s, out_s, bias, x)."""
    from tinyengine import quant

    while True:
        in_s, w_s = (float(np.float32(v)) for v in rng.uniform(1e-4, 1e-2, 2))
        out_s = float(np.float32(in_s * w_s / rng.uniform(0.01, 0.9)))
        m, shift = n_conv_multipliers(in_s, np.array([w_s], np.float32), out_s, 1)[0]
        bias = int(rng.integers(-(1 << 20), 1 << 20)) if with_bias else 0
        x = np.arange(-32768, 32768, dtype=np.int64)
        acc = 127 * x + bias
        y64 = requant16.multiply_by_quantized_multiplier_64(acc, m, shift)
        y32 = quant.multiply_by_quantized_multiplier(acc, m, shift)
        hits = x[(y64 != y32) & (np.abs(y64) < 30000)]
        if hits.size >= 8:
            pick = rng.choice(hits, 8, replace=False)
            return in_s, w_s, out_s, bias, pick.astype(np.int16)


@pytest.mark.parametrize("kind, acc_type", [
    (kind, acc) for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
    for acc in ("int64", "int32", "int32 without bias")
    if acc == "int64" or kind in ("CONV_2D", "FULLY_CONNECTED")])
def test_accumulator_rule_pinned_against_tflm(tflm: Any, kind: str, acc_type: str) -> None:
    """A one-weight op (weight 127) on eight inputs where TFLM's int64 and int32 requantisation
    rules disagree: the reference, the C and TFLM take the rule of the accumulator TFLM picks
    (int64 bias: int64; int32 bias, or none with quantized_bias_type INT32: int32), and the other
    rule would fail. Depthwise and transposed convolutions have the int64 one only."""
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    rng = np.random.default_rng(1900 + len(kind) + len(acc_type))
    rule = acc_type.split()[0]
    has_bias = acc_type != "int32 without bias"
    in_s, w_s, out_s, bias, x = rule_splitting_case(rng, has_bias)
    x = x.reshape(8, 1) if kind == "FULLY_CONNECTED" else x.reshape(1, 8, 1, 1)
    w_shape = (1, 1) if kind == "FULLY_CONNECTED" else (1, 1, 1, 1)
    attrs: dict[str, Any] = {"activation": "NONE"}
    if kind == "FULLY_CONNECTED":
        attrs["keep_num_dims"] = False
    elif kind == "TRANSPOSE_CONV":
        attrs.update(output_shape=(1, 8, 1, 1), stride=(1, 1), padding="VALID")
    else:
        attrs.update(stride=(1, 1), dilation=(1, 1), padding="VALID")
        if kind == "DEPTHWISE_CONV_2D":
            attrs["depth_multiplier"] = 1
    if not has_bias:
        attrs["quantized_bias_type"] = "int32"
    w = Tensor("w", w_shape, "int8", qp(w_s, 0, 3 if kind == "DEPTHWISE_CONV_2D" else 0),
               np.full(w_shape, 127, np.int8))
    b = Tensor("b", (1,), rule, qp(np.float32(in_s) * np.float32(w_s), 0),
               np.array([bias], np.int64 if rule == "int64" else np.int32)) if has_bias else None
    op = Op("op", kind, ["x", "w", "b" if has_bias else ""], ["y"], attrs)
    g = graph_of(op, [act16("x", x.shape, in_s), w, b, act16("y", x.shape, out_s)])
    assert requant16.accumulator(g, op) == rule
    y = reference(g, op, [x, w.data, None if b is None else b.data])
    acc = 127 * x.astype(np.int64).ravel() + bias
    m, shift = n_conv_multipliers(in_s, np.array([w_s], np.float32), out_s, 1)[0]
    mine = [n_mbqm64(int(a), m, shift) if rule == "int64" else n_mbqm(int(a), m, shift)
            for a in acc]
    other = [n_mbqm(int(a), m, shift) if rule == "int64" else n_mbqm64(int(a), m, shift)
             for a in acc]
    np.testing.assert_array_equal(y.ravel(), mine)
    assert all(a != b for a, b in zip(mine, other))
    verdicts, _ = verify_graph(g, write_tflite(g), given=[[x]], n_random=0)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_int32_accumulator_wraps_like_tflm(tflm: Any) -> None:
    """An int32 bias near INT32_MAX plus positive products: TFLM's int32 sum wraps around (x86's
    two's complement), and so do the reference and the C."""
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    n_in = 64
    w = Tensor("w", (2, n_in), "int8", qp(0.01, 0), np.full((2, n_in), 127, np.int8))
    b = Tensor("b", (2,), "int32", qp(np.float32(1e-4) * np.float32(0.01), 0),
               np.array([(1 << 31) - 1000, -(1 << 31) + 1000], np.int32))
    op = Op("fc", "FULLY_CONNECTED", ["x", "w", "b"], ["y"],
            {"activation": "NONE", "keep_num_dims": False})
    g = graph_of(op, [act16("x", (1, n_in), 1e-4), w, b, act16("y", (1, 2), 3e-1)])
    x = np.full((1, n_in), 32767, np.int16)
    y = reference(g, op, [x, w.data, b.data])
    acc = 127 * 32767 * n_in + b.data.astype(np.int64)  # type: ignore[union-attr]
    assert acc[0] > (1 << 31) - 1  # channel 0 wraps to a large negative sum
    np.testing.assert_array_equal(y.ravel(), [n_mbqm(n_wrap32(int(a)), *n_conv_multipliers(
        1e-4, np.array([0.01], np.float32), 3e-1, 1)[0]) for a in acc])
    verdicts, _ = verify_graph(g, write_tflite(g), given=[[x], [-x]], n_random=2)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


# ---------------------------------------------------------------------------------------------
# 5. The shared SEANet models (16x8, cut from TFLM's integration tests)
# ---------------------------------------------------------------------------------------------

# TFLM's arena head for each (../shared/models/MANIFEST.md, tflite-micro 0.dev20261023).
SEANET_HEAD = {"tflm_seanet_conv0.tflite": 10432, "tflm_seanet_transpose_conv0.tflite": 23696}


@pytest.mark.parametrize("name", sorted(SEANET_HEAD))
def test_seanet_model_exact_and_arena_within_tflm_head(tflm: Any, shared_models: Path,
                                                       name: str) -> None:
    """Compiles; C == reference == TFLM on 20 random inputs; our arena (inputs and outputs
    included) is at most TFLM's head (activations and scratch; TRANSPOSE_CONV's int64 scratch of
    the whole output is 18432 B of its 23696, which our gathering kernel does without)."""
    from tinyengine.verify import verify_model

    path = shared_models / name
    verdicts, report = verify_model(path, n_random=20, seed=5)
    assert all(v.exact for v in verdicts) and verdicts[0].n_inputs == 20, \
        [v.line(report["arena_bytes"]) for v in verdicts]
    head = tflm.tflm_arena(path)["head"]
    assert head == SEANET_HEAD[name]
    assert report["arena_bytes"] <= head, (report["arena_bytes"], head)


# ---------------------------------------------------------------------------------------------
# 6. A chain of the four ops: TFLM, ASan/UBSan, patches; refusals
# ---------------------------------------------------------------------------------------------

def chain16(rng: np.random.Generator) -> Graph:
    """x -> CONV_2D (3x3 SAME, int64 bias, RELU) -> DEPTHWISE (3x3, stride 2, x2, int64 bias)
    -> TRANSPOSE_CONV (stride 2 SAME, int16 bias) -> FULLY_CONNECTED (int32 bias) -> y."""
    def w(name: str, shape: tuple[int, ...], axis: int) -> Tensor:
        return weights(rng, name, shape, axis, True)

    def b(name: str, dtype: str, wt: Tensor, in_s: float) -> Tensor:
        t = bias_tensor(rng, dtype, wt.shape[3 if len(wt.shape) == 4 and wt.shape[0] == 1
                                             else 0], in_s, wt)
        assert t is not None
        t.name = name
        return t

    s = [4e-4, 6e-3, 2e-2, 3e-2, 2e-1]
    w1, w2, w3, w4 = (w("w1", (4, 3, 3, 3), 0), w("w2", (1, 3, 3, 8), 3),
                      w("w3", (4, 3, 3, 8), 0), w("w4", (5, 144), 0))
    tensors = [act16("x", (1, 6, 6, 3), s[0]), w1, b("b1", "int64", w1, s[0]),
               act16("t1", (1, 6, 6, 4), s[1]), w2, b("b2", "int64", w2, s[1]),
               act16("t2", (1, 3, 3, 8), s[2]), w3, b("b3", "int16", w3, s[2]),
               act16("t3", (1, 6, 6, 4), s[3]), w4, b("b4", "int32", w4, s[3]),
               act16("y", (1, 5), s[4])]
    ops = [Op("conv", "CONV_2D", ["x", "w1", "b1"], ["t1"],
              {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "activation": "RELU"}),
           Op("dw", "DEPTHWISE_CONV_2D", ["t1", "w2", "b2"], ["t2"],
              {"stride": (2, 2), "dilation": (1, 1), "padding": "SAME", "activation": "NONE",
               "depth_multiplier": 2}),
           Op("tconv", "TRANSPOSE_CONV", ["t2", "w3", "b3"], ["t3"],
              {"output_shape": (1, 6, 6, 4), "stride": (2, 2), "padding": "SAME",
               "activation": "RELU6"}),
           Op("fc", "FULLY_CONNECTED", ["t3", "w4", "b4"], ["y"],
              {"activation": "NONE", "keep_num_dims": False})]
    g = Graph({t.name: t for t in tensors}, ops, ["x"], ["y"], name="chain16")
    verify(g)
    return g


def test_chain_c_reference_tflm(tflm: Any) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    g = chain16(np.random.default_rng(2000))
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=4, seed=1)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_sanitized_project(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs

    from .sanitized import check_sanitized_demo

    g = chain16(np.random.default_rng(2001))
    compile_graph(g, tmp_path / "p", prefix="c16")
    rng = np.random.default_rng(2002)
    check_sanitized_demo(tmp_path / "p", "c16", g, [random_inputs(g, rng) for _ in range(3)])


def test_patched_int16_stage_equals_whole(tmp_path: Path) -> None:
    """CONV_2D and DEPTHWISE_CONV_2D run patch by patch (attrs["window"]: the kernels' padding
    and output size per patch) and give the whole-tensor result, in the reference and in C."""
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs
    from tinyengine.memory.patch import patch_graph
    from tinyengine.reference import run_reference
    from tinyengine.runtime import HostModel

    g = chain16(np.random.default_rng(2003))
    patched, sched = patch_graph(g, 2, (2, 2))
    verify(patched)
    assert len(sched.patches) == 4
    assert any("window" in op.attrs for op in patched.ops if op.kind == "CONV_2D")
    compile_graph(g, tmp_path / "p", prefix="p16", patch="2x2@2")
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(2004)
    for _ in range(3):
        x = random_inputs(g, rng)
        whole = run_reference(g, x)[0]
        np.testing.assert_array_equal(run_reference(patched, x)[0], whole)
        np.testing.assert_array_equal(host.invoke(x)[0], whole)


def test_int16_pointwise_conv_is_not_in_place(tmp_path: Path) -> None:
    """The int8 1x1 convolution may overwrite its input; 16x8 has no in-place kernel, so the
    planner must not ask for one."""
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs
    from tinyengine.reference import run_reference
    from tinyengine.runtime import HostModel

    rng = np.random.default_rng(2005)
    w1, w2 = weights(rng, "w1", (6, 1, 1, 6), 0, True), weights(rng, "w2", (6, 1, 1, 6), 0, True)
    ops = [Op(f"c{i}", "CONV_2D", [src, f"w{i}", ""], [dst],
              {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID", "activation": "NONE"})
           for i, src, dst in ((1, "x", "t"), (2, "t", "y"))]
    g = Graph({t.name: t for t in (act16("x", (1, 4, 4, 6), 1e-3), w1, act16("t", (1, 4, 4, 6),
               2e-2), w2, act16("y", (1, 4, 4, 6), 0.3))}, ops, ["x"], ["y"])
    verify(g)
    assert all(get_op("CONV_2D").inplace_inputs(g, op) == [] for op in ops)
    report = compile_graph(g, tmp_path / "p", prefix="pw16")
    assert [(k["kernel"], k["inplace"]) for k in report["ops"]] == [("te_conv2d_s16", False)] * 2
    host = HostModel(tmp_path / "p")
    x = random_inputs(g, rng)
    np.testing.assert_array_equal(host.invoke(x)[0], run_reference(g, x)[0])


def _bad(change: str) -> Graph:
    rng = np.random.default_rng(2100)
    make = {"depthwise int32 bias": depthwise16_case, "transpose int32 bias": tconv16_case,
            "fc bias beyond 2^47": fc16_case}.get(change, conv16_case)
    g, op = make(rng, "int64", "NONE")
    x, w, b, y = (g.tensor(n) for n in ("x", "w", "b", "y"))
    assert w.data is not None and b.data is not None
    if change == "input zero point":
        x.quant = qp(x.scale, 5)
    elif change == "output zero point":
        y.quant = qp(y.scale, -3)
    elif change == "int32 weights":
        g.tensors["w"] = Tensor("w", w.shape, "int32", w.quant, w.data.astype(np.int32))
    elif change == "int16 weights":
        g.tensors["w"] = Tensor("w", w.shape, "int16", w.quant, w.data.astype(np.int16))
    elif change in ("int8 bias", "depthwise int32 bias", "transpose int32 bias"):
        dtype = np.int8 if change == "int8 bias" else np.int32
        g.tensors["b"] = Tensor("b", b.shape, np.dtype(dtype).name, None, b.data.astype(dtype))
    elif change == "mixed int8 output":
        g.tensors["y"] = Tensor("y", y.shape, "int8", qp(y.scale, 0))
    elif change == "int8 with int64 bias":
        g.tensors["x"] = Tensor("x", x.shape, "int8", qp(x.scale, 0))
        g.tensors["y"] = Tensor("y", y.shape, "int8", qp(y.scale, 0))
    elif change == "fc bias beyond 2^47":
        b.data[0] = 1 << 47
    elif change == "shift beyond 14":
        y.quant = qp(x.scale * float(w.quant.scale.max()) / 40000.0, 0)  # type: ignore[union-attr]
    return g


@pytest.mark.parametrize("change, tensor, words", [
    ("input zero point", "x", "zero point 5"),
    ("output zero point", "y", "zero point -3"),
    ("int32 weights", "w", "int32"),
    ("int16 weights", "w", "constant int8"),
    ("int8 bias", "b", "int64 or int32"),
    ("depthwise int32 bias", "b", "int64 vector"),
    ("transpose int32 bias", "b", "int64 or int16"),
    ("mixed int8 output", "y", "one type"),
    ("int8 with int64 bias", "b", "int32 vector"),
    ("fc bias beyond 2^47", "b", r"2\^47"),
    ("shift beyond 14", "", "left shift"),
])
def test_refusals_name_op_and_tensor(change: str, tensor: str, words: str) -> None:
    g = _bad(change)
    with pytest.raises(UnsupportedError, match=words) as e:
        verify(g)
    op = g.ops[0]
    assert f"op {op.name} ({op.kind})" in str(e.value), str(e.value)
    assert f" {tensor}" in str(e.value), str(e.value)
