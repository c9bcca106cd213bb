"""AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, PAD and RESHAPE: numpy reference, C kernels, TFLM.

Three layers of evidence:
1. the numpy references (the specification) against naive scalar loops written here from
   TFLite's reference kernels (reference_integer_ops::AveragePool/MaxPool, reference_ops::Pad,
   reference_ops::QuantizedMeanOrSum), on seeded random shapes, plus rounding cases worked out
   by hand;
2. the C kernels against the numpy references, bit for bit, with the params struct built from
   each op's own `emit()`;
3. one-op models run by the TFLM interpreter (the `tflite-micro` package), the only oracle we
   have for MEAN since none of our real models contains one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.ops import get_op
from tinyengine.ops import reduce as reduce_mod

from . import ckernels

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


# ----------------------------------------------------------------------------- graph helpers

def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def one_op_graph(kind: str, in_shape: tuple[int, ...], attrs: dict[str, Any],
                 in_q: tuple[float, int], out_q: tuple[float, int],
                 out_shape: tuple[int, ...] | None = None) -> tuple[Graph, Op]:
    op = Op("op0", kind, ["x"], ["y"], attrs)
    tensors = {"x": Tensor("x", tuple(in_shape), "int8", qp(*in_q)),
               "y": Tensor("y", tuple(out_shape or in_shape), "int8", qp(*out_q))}
    g = Graph(tensors, [op], ["x"], ["y"])
    if out_shape is None:
        g.tensors["y"].shape = tuple(get_op(kind).infer_shapes(g, op)[0])
    get_op(kind).check(g, op)
    return g, op


def run_ref(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    (y,) = get_op(op.kind).reference(g, op, [x])
    assert y.dtype == np.int8 and y.shape == g.tensors["y"].shape
    return y


def rand_int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


# ----------------------------------------------------- naive scalar kernels, from TFLite's C++

def c_div(a: int, b: int) -> int:
    """C's truncating integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def tflite_padding(in_size: int, filt: int, stride: int, padding: str) -> tuple[int, int]:
    """(out, pad_before) as TFLite's ComputePaddingHeightWidth, dilation 1."""
    out = (in_size + stride - 1) // stride if padding == "SAME" else (in_size - filt) // stride + 1
    return out, max((out - 1) * stride + filt - in_size, 0) // 2


def naive_pool(x: np.ndarray, filt: tuple[int, int], stride: tuple[int, int], padding: str,
               act_min: int, act_max: int, avg: bool) -> np.ndarray:
    n, ih, iw, c = x.shape
    oh, ph = tflite_padding(ih, filt[0], stride[0], padding)
    ow, pw = tflite_padding(iw, filt[1], stride[1], padding)
    y = np.zeros((n, oh, ow, c), np.int8)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    y0, x0 = oy * stride[0] - ph, ox * stride[1] - pw
                    acc, count, best = 0, 0, -128
                    for fy in range(max(0, -y0), min(filt[0], ih - y0)):
                        for fx in range(max(0, -x0), min(filt[1], iw - x0)):
                            v = int(x[b, y0 + fy, x0 + fx, ch])
                            acc += v
                            count += 1
                            best = max(best, v)
                    if avg:
                        assert count > 0
                        r = (c_div(acc + count // 2, count) if acc > 0
                             else c_div(acc - count // 2, count))
                    else:
                        r = best
                    y[b, oy, ox, ch] = min(max(r, act_min), act_max)
    return y


def naive_mbqm(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier on Python ints (gemmlowp double rounding)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    if a == m == -(1 << 31):
        high = (1 << 31) - 1
    else:
        ab = a * m
        high = c_div(ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30)), 1 << 31)
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)


def naive_mean(x: np.ndarray, in_q: tuple[float, int], out_q: tuple[float, int]) -> np.ndarray:
    """reference_ops::QuantizedMeanOrSum for axes {1, 2}, one output element at a time."""
    n, h, w, c = x.shape
    real = float(np.float64(np.float32(in_q[0])) / np.float64(np.float32(out_q[0])))
    mult, shift = quant.quantize_multiplier(real)
    count = h * w
    k = min(63 - (64 - count.bit_length()), 32, 31 + shift)  # 63 - CountLeadingZeros(uint64)
    mult, shift = (mult << k) // count, shift - k
    y = np.zeros((n, c), np.int8)
    for b in range(n):
        for ch in range(c):
            s = sum(int(v) for v in x[b, :, :, ch].ravel()) - in_q[1] * count
            s = (s + (1 << 31)) % (1 << 32) - (1 << 31)
            y[b, ch] = min(max(naive_mbqm(s, mult, shift) + out_q[1], -128), 127)
    return y


def naive_pad(x: np.ndarray, pads: list[tuple[int, int]], value: int) -> np.ndarray:
    out_shape = tuple(d + b + a for d, (b, a) in zip(x.shape, pads, strict=True))
    y = np.full(out_shape, value, np.int8)
    for idx in np.ndindex(*x.shape):
        y[tuple(i + b for i, (b, _) in zip(idx, pads, strict=True))] = x[idx]
    return y


# --------------------------------------------------------------------- random configurations

def random_pool_case(rng: np.random.Generator) -> dict[str, Any]:
    while True:
        filt = (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["SAME", "VALID"]))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 12)), int(rng.integers(1, 12)),
                 int(rng.integers(1, 6)))
        if padding == "SAME" or (shape[1] >= filt[0] and shape[2] >= filt[1]):
            break
    scale = float(rng.choice([0.02, 0.05, 0.1, 1 / 3]))
    return {"shape": shape, "filter": filt, "stride": stride, "padding": padding,
            "activation": str(rng.choice(ACTS)), "q": (scale, int(rng.integers(-40, 40)))}


def pool_graph(kind: str, case: dict[str, Any]) -> tuple[Graph, Op]:
    attrs = {k: case[k] for k in ("filter", "stride", "padding", "activation")}
    return one_op_graph(kind, case["shape"], attrs, case["q"], case["q"])


def random_mean_case(rng: np.random.Generator) -> dict[str, Any]:
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 10)), int(rng.integers(1, 10)),
             int(rng.integers(1, 40)))
    in_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
    same = bool(rng.integers(0, 2))
    out_q = in_q if same else (float(in_q[0] * rng.uniform(0.1, 3.0)), int(rng.integers(-128, 128)))
    return {"shape": shape, "in_q": in_q, "out_q": out_q, "keep_dims": bool(rng.integers(0, 2))}


def mean_graph(case: dict[str, Any]) -> tuple[Graph, Op]:
    return one_op_graph("MEAN", case["shape"], {"axes": (1, 2), "keep_dims": case["keep_dims"]},
                        case["in_q"], case["out_q"])


def random_pad_case(rng: np.random.Generator) -> dict[str, Any]:
    rank = int(rng.integers(1, 5))
    shape = tuple(int(rng.integers(1, 6)) for _ in range(rank))
    pads = [(int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(rank)]
    return {"shape": shape, "paddings": pads, "q": (0.05, int(rng.integers(-128, 128)))}


# ------------------------------------------------------------ 1. numpy vs naive scalar loops

@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_reference_matches_naive(kind: str) -> None:
    rng = np.random.default_rng(1234 if kind == "AVERAGE_POOL_2D" else 4321)
    for _ in range(60):
        case = random_pool_case(rng)
        g, op = pool_graph(kind, case)
        x = rand_int8(rng, case["shape"])
        lo, hi = quant.activation_range(case["activation"], *case["q"])
        want = naive_pool(x, case["filter"], case["stride"], case["padding"], lo, hi,
                          avg=kind == "AVERAGE_POOL_2D")
        np.testing.assert_array_equal(run_ref(g, op, x), want, err_msg=str(case))


@pytest.mark.parametrize("values, expected", [
    ([-1, -2], -2),   # -1.5 rounds away from zero
    ([1, 2], 2),      # 1.5 rounds away from zero
    ([-1, 0], -1),    # -0.5 -> -1
    ([1, 0], 1),      # 0.5 -> 1
    ([-1, -1, 0], -1),  # -2/3 -> -1
    ([1, 1, 0], 1),   # 2/3 -> 1
    ([-1, 0, 0], 0),  # -1/3 -> 0
    ([0, 0, 0, 0], 0),
    ([-128, -128, -128, -127], -128),  # -127.75 -> -128
    ([127, 127, 126], 127),  # 126.67 -> 127
])
def test_avgpool_rounding_pinned(values: list[int], expected: int) -> None:
    x = np.array(values, np.int8).reshape(1, 1, len(values), 1)
    attrs = {"filter": (1, len(values)), "stride": (1, 1), "padding": "VALID",
             "activation": "NONE"}
    g, op = one_op_graph("AVERAGE_POOL_2D", x.shape, attrs, (0.1, 0), (0.1, 0))
    assert int(run_ref(g, op, x)[0, 0, 0, 0]) == expected


def test_avgpool_counts_only_valid_taps() -> None:
    # 3x3 SAME on a 2x2 image: the corner window sees 4 pixels, not 9 (padding is not counted).
    x = np.array([1, 2, 3, 4], np.int8).reshape(1, 2, 2, 1)
    attrs = {"filter": (3, 3), "stride": (1, 1), "padding": "SAME", "activation": "NONE"}
    g, op = one_op_graph("AVERAGE_POOL_2D", x.shape, attrs, (0.1, 0), (0.1, 0))
    np.testing.assert_array_equal(run_ref(g, op, x).ravel(), [3, 3, 3, 3])  # 10/4 = 2.5 -> 3


def test_maxpool_padding_never_wins() -> None:
    x = np.full((1, 2, 2, 1), -128, np.int8)
    attrs = {"filter": (3, 3), "stride": (2, 2), "padding": "SAME", "activation": "RELU"}
    g, op = one_op_graph("MAX_POOL_2D", x.shape, attrs, (0.5, -100), (0.5, -100))
    np.testing.assert_array_equal(run_ref(g, op, x).ravel(), [-100])  # clamped up by RELU


def test_mean_reference_matches_naive() -> None:
    rng = np.random.default_rng(99)
    for _ in range(40):
        case = random_mean_case(rng)
        g, op = mean_graph(case)
        x = rand_int8(rng, case["shape"])
        want = naive_mean(x, case["in_q"], case["out_q"]).reshape(g.tensors["y"].shape)
        np.testing.assert_array_equal(run_ref(g, op, x), want, err_msg=str(case))


@pytest.mark.parametrize("values, expected", [
    # Equal scales 1.0: QuantizeMultiplier(1.0) = (2^30, 1); n = 4 -> k = 2, M' = 2^30, s' = -1.
    ([1, 2, 3, 4], 3),       # 10 -> SRDHM 5 -> RoundingDivideByPOT(5, 1) = 2.5 -> 3
    ([-1, -2, -3, -4], -3),  # -10 -> SRDHM -5 -> -2.5 -> -3 (away from zero)
    # n = 3 -> k = 1, M' = 2^31 / 3 = 715827882, s' = 0: 4 * M' / 2^31 = 1.33 -> 1.
    ([1, 1, 2], 1),
])
def test_mean_rounding_pinned(values: list[int], expected: int) -> None:
    x = np.array(values, np.int8).reshape(1, 1, len(values), 1)
    g, op = one_op_graph("MEAN", x.shape, {"axes": (1, 2), "keep_dims": True}, (1.0, 0),
                         (1.0, 0))
    assert int(run_ref(g, op, x).ravel()[0]) == expected


def test_mean_multiplier_pinned() -> None:
    assert reduce_mod.mean_multiplier(1.0, 1.0, 4) == (1 << 30, -1)
    assert reduce_mod.mean_multiplier(1.0, 1.0, 3) == (715827882, 0)
    # 49 elements: k = floor(log2 49) = 5; M' = (2^30 << 5) // 49.
    assert reduce_mod.mean_multiplier(1.0, 1.0, 49) == ((1 << 35) // 49, -4)


def test_pad_reference_matches_naive() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        case = random_pad_case(rng)
        g, op = one_op_graph("PAD", case["shape"], {"paddings": case["paddings"]}, case["q"],
                             case["q"])
        x = rand_int8(rng, case["shape"])
        want = naive_pad(x, case["paddings"], case["q"][1])
        np.testing.assert_array_equal(run_ref(g, op, x), want, err_msg=str(case))


def test_reshape_reference() -> None:
    x = np.arange(-12, 12, dtype=np.int8).reshape(1, 2, 3, 4)
    g, op = one_op_graph("RESHAPE", x.shape, {}, (0.1, 3), (0.1, 3), out_shape=(1, 24))
    np.testing.assert_array_equal(run_ref(g, op, x), x.reshape(1, 24))


def test_unsupported_configurations_name_the_op() -> None:
    bad: list[tuple[str, tuple[int, ...], dict[str, Any], tuple[float, int],
                    tuple[int, ...] | None]] = [
        ("MEAN", (1, 4, 4, 3), {"axes": (3,), "keep_dims": False}, (0.1, 0), None),
        ("MEAN", (4, 4, 3), {"axes": (1, 2), "keep_dims": False}, (0.1, 0), (4, 3)),
        ("AVERAGE_POOL_2D", (1, 4, 4, 3), {"filter": (2, 2), "stride": (2, 2),
                                           "padding": "SAME", "activation": "NONE"},
         (0.2, 0), None),
        ("MAX_POOL_2D", (1, 2, 2, 3), {"filter": (3, 3), "stride": (1, 1),
                                       "padding": "VALID", "activation": "NONE"},
         (0.1, 0), (1, 1, 1, 3)),
        ("PAD", (1, 4, 4, 3), {"paddings": [(0, 0), (1, 1), (-1, 0), (0, 0)]}, (0.1, 0),
         (1, 6, 5, 3)),
        ("PAD", (1, 4, 4, 3), {"paddings": [(1, 1)]}, (0.1, 0), (1, 4, 4, 3)),
        ("RESHAPE", (1, 4, 4, 3), {}, (0.2, 0), (1, 48)),
        ("RESHAPE", (1, 4, 4, 3), {}, (0.1, 0), (1, 47)),
    ]
    for kind, shape, attrs, out_q, out_shape in bad:
        op = Op("bad_op", kind, ["x"], ["y"], attrs)
        y_shape = out_shape or (1, 2, 2, 3)
        g = Graph({"x": Tensor("x", shape, "int8", qp(0.1, 0)),
                   "y": Tensor("y", y_shape, "int8", qp(*out_q))}, [op], ["x"], ["y"])
        with pytest.raises(UnsupportedError, match="bad_op"):
            get_op(kind).check(g, op)


# ----------------------------------------------------------------- 2. C kernels vs numpy

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct {
    te_dims_t input; te_dims_t output; int32_t filter_h; int32_t filter_w; int32_t stride_h;
    int32_t stride_w; int32_t pad_h; int32_t pad_w; int32_t act_min; int32_t act_max;
} te_pool_params_t;
typedef struct {
    te_dims_t input; te_dims_t output; te_quant_t q; int32_t multiplier; int32_t shift;
} te_mean_params_t;
typedef struct {
    te_dims_t input; te_dims_t output; int32_t pad_before[4]; int32_t pad_after[4];
    int32_t pad_value;
} te_pad_params_t;
typedef struct { int32_t size; } te_reshape_params_t;
te_status_t te_avgpool_s8(const te_pool_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_maxpool_s8(const te_pool_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_mean_s8(const te_mean_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_reshape_s8(const te_reshape_params_t *p, const int8_t *input, int8_t *output);
"""


@pytest.fixture(scope="module")
def clib() -> tuple[Any, Any]:
    return ckernels.build(["te_pool.h", "te_pad.h", "te_reshape.h"],
                          ["te_pool.c", "te_pad.c", "te_reshape.c"], CDEF)


def run_c(clib: tuple[Any, Any], g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """Call the kernel emit() chose, with the params struct built from emit()'s initialisers."""
    ffi, lib = clib
    em = get_op(op.kind).emit(g, op)
    assert set(em.sources) >= {"te_common.h"} and not em.consts and em.scratch_bytes == 0
    assert list(em.params) == [f[0] for f in ffi.typeof(em.params_type).fields]
    assert [a.kind for a in em.args] == ["tensor", "tensor"]
    params = ffi.new(f"{em.params_type} *", em.params)
    xc = np.ascontiguousarray(x)
    y = np.full(g.tensors["y"].shape, 99, np.int8)
    status = getattr(lib, em.kernel)(params, ffi.from_buffer("int8_t[]", xc),
                                     ffi.from_buffer("int8_t[]", y))
    assert status == lib.TE_OK, (em.kernel, em.params)
    return y


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_c_matches_reference(clib: tuple[Any, Any], kind: str) -> None:
    rng = np.random.default_rng(2024)
    for _ in range(80):
        case = random_pool_case(rng)
        g, op = pool_graph(kind, case)
        x = rand_int8(rng, case["shape"])
        np.testing.assert_array_equal(run_c(clib, g, op, x), run_ref(g, op, x), str(case))


def test_mean_c_matches_reference(clib: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(77)
    cases = [random_mean_case(rng) for _ in range(60)]
    # Extremes: all -128 / all 127 with a zero point at the other end, a large window.
    cases += [{"shape": (1, 40, 40, 3), "in_q": (0.1, 127), "out_q": (0.05, -128),
               "keep_dims": False},
              {"shape": (2, 7, 7, 33), "in_q": (0.02, -128), "out_q": (0.3, 127),
               "keep_dims": True}]
    for case in cases:
        g, op = mean_graph(case)
        for x in (rand_int8(rng, case["shape"]), np.full(case["shape"], -128, np.int8),
                  np.full(case["shape"], 127, np.int8)):
            np.testing.assert_array_equal(run_c(clib, g, op, x), run_ref(g, op, x), str(case))


def test_pad_c_matches_reference(clib: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        case = random_pad_case(rng)
        g, op = one_op_graph("PAD", case["shape"], {"paddings": case["paddings"]}, case["q"],
                             case["q"])
        x = rand_int8(rng, case["shape"])
        np.testing.assert_array_equal(run_c(clib, g, op, x), run_ref(g, op, x), str(case))


def test_reshape_c_copies_and_aliases(clib: tuple[Any, Any]) -> None:
    ffi, lib = clib
    x = np.arange(-12, 12, dtype=np.int8).reshape(1, 2, 3, 4)
    g, op = one_op_graph("RESHAPE", x.shape, {}, (0.1, 3), (0.1, 3), out_shape=(4, 6))
    np.testing.assert_array_equal(run_c(clib, g, op, x), x.reshape(4, 6))
    # In place (the planner may alias input and output) and overlapping (memmove).
    buf = np.arange(-20, 20, dtype=np.int8)
    p = ffi.new("te_reshape_params_t *", {"size": 24})
    base = ffi.from_buffer("int8_t[]", buf)
    assert lib.te_reshape_s8(p, base, base) == lib.TE_OK
    assert lib.te_reshape_s8(p, base, base + 8) == lib.TE_OK
    np.testing.assert_array_equal(buf[8:32], np.arange(-20, 4, dtype=np.int8))


def test_c_kernels_reject_bad_arguments(clib: tuple[Any, Any]) -> None:
    ffi, lib = clib
    buf = ffi.new("int8_t[64]")
    pool = ffi.new("te_pool_params_t *", {"input": [1, 4, 4, 1], "output": [1, 2, 2, 1],
                                          "filter_h": 2, "filter_w": 2, "stride_h": 2,
                                          "stride_w": 2, "act_min": -128, "act_max": 127})
    assert lib.te_avgpool_s8(pool, buf, buf + 32) == lib.TE_OK
    assert lib.te_avgpool_s8(ffi.NULL, buf, buf + 32) == lib.TE_ERR_ARG
    assert lib.te_maxpool_s8(pool, ffi.NULL, buf + 32) == lib.TE_ERR_ARG
    pool.output.c = 2
    assert lib.te_maxpool_s8(pool, buf, buf + 32) == lib.TE_ERR_ARG
    pool.output.c, pool.stride_h = 1, 0
    assert lib.te_avgpool_s8(pool, buf, buf + 32) == lib.TE_ERR_ARG
    # A window entirely inside the padding: TFLite fails, so do we.
    pool.stride_h, pool.pad_h = 2, 3
    assert lib.te_avgpool_s8(pool, buf, buf + 32) == lib.TE_ERR_ARG
    mean = ffi.new("te_mean_params_t *", {"input": [1, 4, 4, 2], "output": [1, 1, 1, 2],
                                          "q": [0, 0, -128, 127], "multiplier": 1 << 30,
                                          "shift": -3})
    assert lib.te_mean_s8(mean, buf, buf + 32) == lib.TE_OK
    mean.output.h = 2
    assert lib.te_mean_s8(mean, buf, buf + 32) == lib.TE_ERR_ARG
    pad = ffi.new("te_pad_params_t *", {"input": [1, 2, 2, 1], "output": [1, 4, 3, 1],
                                        "pad_before": [0, 1, 1, 0], "pad_after": [0, 1, 0, 0]})
    assert lib.te_pad_s8(pad, buf, buf + 32) == lib.TE_OK
    pad.pad_after[2] = 1
    assert lib.te_pad_s8(pad, buf, buf + 32) == lib.TE_ERR_ARG
    empty = ffi.new("te_reshape_params_t *", {"size": 0})
    assert lib.te_reshape_s8(empty, buf, buf) == lib.TE_ERR_ARG


# ------------------------------------------------------------------- 3. TFLM as the oracle

# These tests take conftest's `tflm` fixture (tinyengine.tflm): they skip without the package,
# and fail under CI=true.

def _tflm_model(builtin: str, x_shape: tuple[int, ...], in_q: tuple[float, int],
                y_shape: tuple[int, ...], out_q: tuple[float, int],
                consts: list[np.ndarray], options_type: str, options: Any) -> bytes:
    """A one-op TFLite flatbuffer: input 0 (int8), constant int32 inputs, output (int8)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    def qparams(q: tuple[float, int]) -> Any:
        p = s.QuantizationParametersT()
        p.scale, p.zeroPoint = [float(np.float32(q[0]))], [int(q[1])]
        return p

    def tensor(shape: tuple[int, ...], ttype: int, buffer: int, name: str,
               q: tuple[float, int] | None) -> Any:
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = list(shape), ttype, buffer, name
        t.quantization = qparams(q) if q is not None else None
        return t

    buffers = [s.BufferT(), s.BufferT()]  # 0: the empty sentinel, 1: the input
    tensors = [tensor(x_shape, s.TensorType.INT8, 1, "x", in_q)]
    for i, c in enumerate(consts):
        b = s.BufferT()
        b.data = list(np.ascontiguousarray(c, np.int32).tobytes())
        buffers.append(b)
        tensors.append(tensor(c.shape, s.TensorType.INT32, len(buffers) - 1, f"c{i}", None))
    buffers.append(s.BufferT())
    tensors.append(tensor(y_shape, s.TensorType.INT8, len(buffers) - 1, "y", out_q))
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = list(range(len(tensors) - 1)), [len(tensors) - 1]
    op.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
    op.builtinOptions = options
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, builtin)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs = tensors, [0], [len(tensors) - 1]
    sub.operators, sub.name = [op], "main"
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sub]
    model.buffers, model.description = buffers, "tinyengine one-op test"
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _tflm_run(tflm: Any, model: bytes, x: np.ndarray) -> np.ndarray:
    (y,) = tflm.run_tflm(model, [x], arena_size=1 << 20)
    return y


def tflm_mean(tflm: Any, case: dict[str, Any], x: np.ndarray,
              out_shape: tuple[int, ...]) -> np.ndarray:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s
    opts = s.ReducerOptionsT()
    opts.keepDims = case["keep_dims"]
    model = _tflm_model("MEAN", case["shape"], case["in_q"], out_shape, case["out_q"],
                        [np.array([1, 2], np.int32)], "ReducerOptions", opts)
    return _tflm_run(tflm, model, x)


def test_mean_matches_tflm(tflm: Any) -> None:
    rng = np.random.default_rng(31337)
    cases = [random_mean_case(rng) for _ in range(24)]
    cases += [  # equal and different quantisation, both keep_dims, a non-power-of-two count
        {"shape": (1, 7, 7, 8), "in_q": (0.05, -3), "out_q": (0.05, -3), "keep_dims": True},
        {"shape": (1, 7, 7, 8), "in_q": (0.05, -3), "out_q": (0.021, 17), "keep_dims": False},
        {"shape": (2, 5, 3, 4), "in_q": (0.1, 127), "out_q": (0.4, -128), "keep_dims": True},
        {"shape": (1, 1, 1, 5), "in_q": (0.1, 0), "out_q": (0.01, 0), "keep_dims": False},
    ]
    n_equal = 0
    for case in cases:
        g, op = mean_graph(case)
        n_equal += case["in_q"] == case["out_q"]
        for x in (rand_int8(rng, case["shape"]), np.full(case["shape"], -128, np.int8)):
            got = tflm_mean(tflm, case, x, g.tensors["y"].shape)
            np.testing.assert_array_equal(run_ref(g, op, x), got, err_msg=str(case))
    assert 0 < n_equal < len(cases)


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_matches_tflm(tflm: Any, kind: str) -> None:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s
    rng = np.random.default_rng(555)
    act_code = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
    for _ in range(20):
        case = random_pool_case(rng)
        g, op = pool_graph(kind, case)
        opts = s.Pool2DOptionsT()
        opts.padding = s.Padding.SAME if case["padding"] == "SAME" else s.Padding.VALID
        opts.strideH, opts.strideW = case["stride"]
        opts.filterHeight, opts.filterWidth = case["filter"]
        opts.fusedActivationFunction = act_code[case["activation"]]
        model = _tflm_model(kind, case["shape"], case["q"], g.tensors["y"].shape, case["q"],
                            [], "Pool2DOptions", opts)
        x = rand_int8(rng, case["shape"])
        np.testing.assert_array_equal(run_ref(g, op, x), _tflm_run(tflm, model, x), str(case))


def test_pad_matches_tflm(tflm: Any) -> None:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s
    rng = np.random.default_rng(808)
    for _ in range(10):
        case = random_pad_case(rng)
        g, op = one_op_graph("PAD", case["shape"], {"paddings": case["paddings"]}, case["q"],
                             case["q"])
        model = _tflm_model("PAD", case["shape"], case["q"], g.tensors["y"].shape, case["q"],
                            [np.array(case["paddings"], np.int32)], "PadOptions",
                            s.PadOptionsT())
        x = rand_int8(rng, case["shape"])
        np.testing.assert_array_equal(run_ref(g, op, x), _tflm_run(tflm, model, x), str(case))
