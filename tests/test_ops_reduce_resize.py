"""MEAN and SUM over any axes, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR: numpy reference, C
kernels, TFLM, the generated C under sanitizers, invalid configurations and the ONNX path.

1. The numpy references against naive per-element models written from TFLM's source
   (reference_ops::QuantizedMeanOrSum, ResizeNearestNeighbor, ResizeBilinearInteger) and a few
   hand-computed values.
2. The C kernels (cffi) against the references, the reduce wrapper against the variant the
   Python `kernel` hook picks, and their argument checks.
3. TFLM (the oracle) against the references on seeded random single-op graphs, through the
   ops' to_tflite hooks (write_tflite); generated C == reference == TFLM on a multi-op graph.
"""

from __future__ import annotations

import math
import shutil
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops import reduce as reduce_mod
from tinyengine.ops import resize as resize_mod

from . import ckernels
from .conftest import require

RESIZE_KINDS = ("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")


# ----------------------------------------------------------------------------- graph helpers

def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def one_op(kind: str, shape: tuple[int, ...], attrs: dict[str, Any], in_q: tuple[float, int],
           out_q: tuple[float, int]) -> tuple[Graph, Op]:
    op = Op("op0", kind, ["x"], ["y"], attrs)
    g = Graph({"x": Tensor("x", tuple(shape), "int8", qp(*in_q)),
               "y": Tensor("y", (1,), "int8", qp(*out_q))}, [op], ["x"], ["y"])
    g.tensors["y"].shape = tuple(get_op(kind).infer_shapes(g, op)[0])
    verify(g)
    return g, op


def ref(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    (y,) = get_op(op.kind).reference(g, op, [x])
    assert y.dtype == np.int8 and y.shape == g.tensors["y"].shape
    return y


def rand_int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def random_reduce_case(rng: np.random.Generator, kind: str) -> tuple[Graph, Op]:
    rank = int(rng.integers(1, 6))
    shape = tuple(int(rng.integers(1, 6)) for _ in range(rank))
    n_axes = int(rng.integers(0, rank + 2))
    # Negative and repeated axes on purpose: TFLite resolves and deduplicates them.
    axes = tuple(int(a) for a in rng.integers(-rank, rank, n_axes))
    in_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
    spread = 1.0 if kind == "MEAN" else float(rng.uniform(1, 20))
    out_q = (float(in_q[0] * spread * rng.uniform(0.3, 3.0)), int(rng.integers(-128, 128)))
    return one_op(kind, shape, {"axes": axes, "keep_dims": bool(rng.integers(0, 2))}, in_q,
                  out_q)


def random_resize_case(rng: np.random.Generator, kind: str) -> tuple[Graph, Op]:
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)),
             int(rng.integers(1, 5)))
    size = (int(rng.integers(1, 17)), int(rng.integers(1, 17)))
    flag = int(rng.integers(0, 3))  # none, align_corners, half_pixel_centers
    q = (float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128)))
    return one_op(kind, shape, {"size": size, "align_corners": flag == 1,
                                "half_pixel_centers": flag == 2}, q, q)


# ----------------------------------------------------------------- 1. references vs naive

def c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


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


def naive_reduce(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """QuantizedMeanOrSum one output element at a time, from TFLM's source."""
    xt, yt = g.tensors["x"], g.tensors["y"]
    rank = x.ndim
    axes = sorted({a % rank for a in op.attrs["axes"]})
    mult, shift = quant.quantize_multiplier(float(np.float64(xt.scale) / np.float64(yt.scale)))
    count = math.prod(x.shape[a] for a in axes)
    if op.kind == "MEAN":
        k = min(63 - (64 - count.bit_length()), 32, 31 + shift)  # 63 - CountLeadingZeros
        mult, shift = (mult << k) // count, shift - k
    kept = [a for a in range(rank) if a not in axes]
    out = np.zeros([x.shape[a] for a in kept], np.int8)
    for idx in np.ndindex(*out.shape):
        sel: list[Any] = [slice(None)] * rank
        for a, i in zip(kept, idx, strict=True):
            sel[a] = i
        s = sum(int(v) for v in np.asarray(x[tuple(sel)]).ravel()) - xt.zero_point * count
        s = (s + (1 << 31)) % (1 << 32) - (1 << 31)
        out[idx] = min(max(naive_mbqm(s, mult, shift) + yt.zero_point, -128), 127)
    return out.reshape(yt.shape)


@pytest.mark.parametrize("kind", ["MEAN", "SUM"])
def test_reduce_reference_matches_naive(kind: str) -> None:
    rng = np.random.default_rng(3 if kind == "MEAN" else 4)
    for _ in range(60):
        g, op = random_reduce_case(rng, kind)
        x = rand_int8(rng, g.tensors["x"].shape)
        np.testing.assert_array_equal(ref(g, op, x), naive_reduce(g, op, x), str(op.attrs))


def test_reduce_pinned_values() -> None:
    # MEAN of (1, 2) and (-1, -2), equal scales: M = 2^30, shift 0 after folding 1/2, and
    # SaturatingRoundingDoublingHighMul's nudge (1 - 2^30 for a negative product) rounds 1.5 up
    # to 2 but -1.5 toward zero, to -1.
    g, op = one_op("MEAN", (2, 2), {"axes": (1,), "keep_dims": False}, (1.0, 0), (1.0, 0))
    assert reduce_mod.mean_multiplier(1.0, 1.0, 2) == (1 << 30, 0)
    np.testing.assert_array_equal(ref(g, op, np.array([[1, 2], [-1, -2]], np.int8)), [2, -1])
    # SUM over axes 0 and 2 of a 2x2x2 block, output scale twice the input's: (28 - 8) / 2.
    g, op = one_op("SUM", (2, 2, 2), {"axes": (0, -1, 2), "keep_dims": True}, (0.5, 1), (1.0, 0))
    x = np.arange(8, dtype=np.int8).reshape(2, 2, 2)  # row 0: 0 1 4 5 (sum 10), row 1: 18
    np.testing.assert_array_equal(ref(g, op, x).ravel(), [(10 - 4) // 2, (18 - 4) // 2])
    assert g.tensors["y"].shape == (1, 2, 1)
    # SUM saturates at the int8 limits.
    g, op = one_op("SUM", (1, 40), {"axes": (1,), "keep_dims": False}, (1.0, 0), (1.0, 0))
    np.testing.assert_array_equal(ref(g, op, np.full((1, 40), 100, np.int8)), [127])


def test_reduce_collapse_and_variant_rule() -> None:
    assert reduce_mod.collapse((1, 4, 4, 8), (1, 2)) == [(16, True), (8, False)]
    assert reduce_mod.single_run(reduce_mod.collapse((1, 4, 4, 8), (1, 2))) == (1, 16, 8)
    assert reduce_mod.collapse((2, 3, 1, 5), (0, 2, 3)) == [(2, True), (3, False), (5, True)]
    assert reduce_mod.single_run(reduce_mod.collapse((2, 3, 1, 5), (0, 2, 3))) is None
    # A size-1 kept axis between two reduced ones does not separate them.
    assert reduce_mod.single_run(reduce_mod.collapse((2, 1, 5, 3), (0, 2))) == (1, 10, 3)
    assert reduce_mod.resolve_axes([-1, 3, 0, 0], 4, "w", "x") == (0, 3)


def naive_nearest(x: np.ndarray, size: tuple[int, int], align: bool, half: bool) -> np.ndarray:
    """GetNearestNeighbor in float32, written out per output pixel."""
    f32 = np.float32

    def src(v: int, n_in: int, n_out: int) -> int:
        scale = f32(n_in - 1) / f32(n_out - 1) if align and n_out > 1 else f32(n_in) / f32(n_out)
        t = f32(f32(v) + f32(0.5 if half else 0.0)) * scale
        s = int(np.floor(t + f32(0.5))) if align else int(np.floor(t))
        s = min(s, n_in - 1)
        return max(s, 0) if half else s

    n, h, w, c = x.shape
    out = np.zeros((n, *size, c), np.int8)
    for y in range(size[0]):
        for xx in range(size[1]):
            out[:, y, xx] = x[:, src(y, h, size[0]), src(xx, w, size[1])]
    return out


def naive_bilinear(x: np.ndarray, size: tuple[int, int], align: bool, half: bool) -> np.ndarray:
    """ResizeBilinearInteger written out per output element."""
    n, h, w, c = x.shape

    def interp(v: int, n_in: int, n_out: int) -> tuple[int, int, int]:
        if align and n_out > 1:
            s = (1024 * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1)
        else:
            s = (1024 * n_in + n_out // 2) // n_out
        scaled = v * s + s // 2 - 512 if half else v * s
        return scaled, max(c_div(scaled, 1024), 0), min(c_div(scaled + 1023, 1024), n_in - 1)

    out = np.zeros((n, *size, c), np.int8)
    for y in range(size[0]):
        iy, y0, y1 = interp(y, h, size[0])
        for xx in range(size[1]):
            ix, x0, x1 = interp(xx, w, size[1])
            wy, wx = iy - 1024 * y0, ix - 1024 * x0
            for b in range(n):
                for ch in range(c):
                    v = (int(x[b, y0, x0, ch]) * (1024 - wy) * (1024 - wx)
                         + int(x[b, y1, x0, ch]) * wy * (1024 - wx)
                         + int(x[b, y0, x1, ch]) * (1024 - wy) * wx
                         + int(x[b, y1, x1, ch]) * wy * wx)
                    out[b, y, xx, ch] = c_div(v + (1 << 19 if v > 0 else -(1 << 19)), 1 << 20)
    return out


@pytest.mark.parametrize("kind", RESIZE_KINDS)
def test_resize_reference_matches_naive(kind: str) -> None:
    rng = np.random.default_rng(5)
    naive = naive_nearest if kind == "RESIZE_NEAREST_NEIGHBOR" else naive_bilinear
    for _ in range(40):
        g, op = random_resize_case(rng, kind)
        x = rand_int8(rng, g.tensors["x"].shape)
        want = naive(x, op.attrs["size"], op.attrs["align_corners"], op.attrs["half_pixel_centers"])
        np.testing.assert_array_equal(ref(g, op, x), want, str(op.attrs))


def test_resize_pinned_values() -> None:
    # Nearest 2x upsampling: asymmetric repeats each pixel, align_corners maps 0..3 onto 0..1
    # as 0, round(1/3), round(2/3), 1.
    assert resize_mod.nearest_sources(2, 4, False, False).tolist() == [0, 0, 1, 1]
    assert resize_mod.nearest_sources(2, 4, True, False).tolist() == [0, 0, 1, 1]
    assert resize_mod.nearest_sources(3, 5, True, False).tolist() == [0, 1, 1, 2, 2]
    # Half-pixel downsampling by 2 picks the second pixel of each pair: floor((y + .5) * 2).
    assert resize_mod.nearest_sources(4, 2, False, True).tolist() == [1, 3]
    # Bilinear 2 -> 4 half-pixel: coordinates -0.25, 0.25, 0.75, 1.25 in 1/1024 units.
    taps = resize_mod.bilinear_taps(2, 4, False, True)
    assert taps.tolist() == [[0, 0, -256], [0, 1, 256], [0, 1, 768], [1, 1, 256]]
    g, op = one_op("RESIZE_BILINEAR", (1, 1, 2, 1), {"size": (1, 4), "align_corners": False,
                                                      "half_pixel_centers": True}, (0.1, 0),
                   (0.1, 0))
    # 0 and 10: 0, 2.5 -> 3 (half away from zero), 7.5 -> 8, 10.
    np.testing.assert_array_equal(ref(g, op, np.array([0, 10], np.int8).reshape(1, 1, 2, 1)
                                      ).ravel(), [0, 3, 8, 10])
    x = np.array([0, -10], np.int8).reshape(1, 1, 2, 1)
    np.testing.assert_array_equal(ref(g, op, x).ravel(), [0, -3, -8, -10])


# ----------------------------------------------------------------- invalid configurations

def bad_graph(kind: str, shape: tuple[int, ...], attrs: dict[str, Any], y_shape: tuple[int, ...],
              out_q: tuple[float, int] = (0.1, 0)) -> Graph:
    op = Op("bad_op", kind, ["x"], ["y"], attrs)
    return Graph({"x": Tensor("x", shape, "int8", qp(0.1, 0)),
                  "y": Tensor("y", y_shape, "int8", qp(*out_q))}, [op], ["x"], ["y"])


@pytest.mark.parametrize("kind, shape, attrs, y_shape, out_q, what", [
    ("MEAN", (1, 4, 4, 3), {"axes": (4,), "keep_dims": False}, (1, 4, 4), (0.1, 0), "axis 4"),
    ("SUM", (2, 3), {"axes": (-3,), "keep_dims": True}, (1, 3), (0.1, 0), "axis -3"),
    ("MEAN", (1, 4, 4, 3), {"axes": (1, 2), "keep_dims": False}, (1, 1, 1, 3), (0.1, 0),
     "output y"),
    ("SUM", (1, 4, 4, 3), {"axes": (1,), "keep_dims": False}, (1, 4, 3), (1e-12, 0),
     "output y"),
    ("MEAN", (1,) * 9, {"axes": (0,), "keep_dims": True}, (1,) * 9, (0.1, 0), "rank 9"),
    ("RESIZE_BILINEAR", (1, 4, 4, 3), {"size": (8, 8), "align_corners": True,
                                       "half_pixel_centers": True}, (1, 8, 8, 3), (0.1, 0),
     "align_corners"),
    ("RESIZE_NEAREST_NEIGHBOR", (1, 4, 4, 3), {"size": (8, 8)}, (1, 8, 8, 3), (0.2, 0),
     "output y"),
    ("RESIZE_NEAREST_NEIGHBOR", (1, 4, 4, 3), {"size": (8, 0)}, (1, 8, 8, 3), (0.1, 0),
     "size"),
    ("RESIZE_BILINEAR", (1, 4, 4, 3), {"size": (8, 8)}, (1, 8, 7, 3), (0.1, 0), "output y"),
    ("RESIZE_BILINEAR", (4, 4, 3), {"size": (8, 8)}, (4, 8, 8), (0.1, 0), "input x"),
])
def test_invalid_configurations_name_op_and_tensor(kind: str, shape: tuple[int, ...],
                                                   attrs: dict[str, Any],
                                                   y_shape: tuple[int, ...],
                                                   out_q: tuple[float, int], what: str) -> None:
    g = bad_graph(kind, shape, attrs, y_shape, out_q)
    with pytest.raises(UnsupportedError, match="bad_op") as e:
        verify(g)
    assert what in str(e.value) and kind in str(e.value)


# ----------------------------------------------------------------- 2. C kernels vs numpy

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct {
    te_dims_t input; te_dims_t output; te_quant_t q; int32_t multiplier; int32_t shift;
} te_mean_params_t;
typedef struct {
    int32_t rank; int32_t dims[8]; int32_t reduced[8]; te_quant_t q; int32_t multiplier;
    int32_t shift;
} te_reduce_params_t;
typedef struct { te_dims_t input; te_dims_t output; } te_resize_params_t;
te_status_t te_mean_s8(const te_mean_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_reduce_s8(const te_reduce_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_reduce_wrapper_s8(const te_reduce_params_t *p, const int8_t *input,
                                 int8_t *output);
te_status_t te_resize_nearest_s8(const te_resize_params_t *p, const int8_t *input,
                                 const int32_t *in_y, const int32_t *in_x, int8_t *output);
te_status_t te_resize_bilinear_s8(const te_resize_params_t *p, const int8_t *input,
                                  const int32_t *y_lut, const int32_t *x_lut, int8_t *output);
"""


@pytest.fixture(scope="module")
def clib() -> tuple[Any, Any]:
    return ckernels.build(["te_pool.h", "te_reduce.h", "te_resize.h"],
                          ["te_pool.c", "te_reduce.c", "te_resize.c"], CDEF)


def run_c(clib: tuple[Any, Any], g: Graph, op: Op, x: np.ndarray,
          kernel: str | None = None, params: dict[str, Any] | None = None) -> np.ndarray:
    """Call the kernel emit() chose (or `kernel` with `params`), consts as emit() lists them."""
    ffi, lib = clib
    opdef = get_op(op.kind)
    em = opdef.emit(g, op)
    assert em.kernel == opdef.kernel(g, op) and em.scratch_bytes == 0
    assert list(em.params) == [f[0] for f in ffi.typeof(em.params_type).fields]
    assert "te_common.h" in em.sources and f"{em.params_type.rsplit('_', 2)[0]}.h" in {
        s.replace("te_pool", "te_mean") for s in em.sources}
    ptype = em.params_type if params is None else "te_reduce_params_t"
    p = ffi.new(f"{ptype} *", em.params if params is None else params)
    consts = {c.name: np.ascontiguousarray(c.values) for c in em.consts}
    xc = np.ascontiguousarray(x)
    y = np.full(g.tensors["y"].shape, 99, np.int8)
    args = []
    for a in em.args:
        if a.kind == "tensor":
            arr = xc if a.ref == "x" else y
            args.append(ffi.from_buffer("int8_t[]", arr))
        else:
            args.append(ffi.from_buffer("int32_t[]", consts[a.ref]))
    status = getattr(lib, kernel or em.kernel)(p, *args)
    assert status == lib.TE_OK, (em.kernel, em.params)
    return y


def generic_params(g: Graph, op: Op) -> dict[str, Any]:
    """te_reduce_params_t for any reduction (the params emit() gives te_reduce_s8)."""
    x, y = g.tensors["x"], g.tensors["y"]
    opdef: Any = get_op(op.kind)
    _, _, _, mult, shift = opdef._requant(g, op)
    runs = reduce_mod.collapse(x.shape, opdef._axes(g, op))
    pad = [0] * (8 - len(runs))
    return {"rank": len(runs), "dims": [d for d, _ in runs] + pad,
            "reduced": [int(r) for _, r in runs] + pad,
            "q": [-x.zero_point, y.zero_point, -128, 127], "multiplier": mult, "shift": shift}


@pytest.mark.parametrize("kind", ["MEAN", "SUM"])
def test_reduce_c_matches_reference(clib: tuple[Any, Any], kind: str) -> None:
    rng = np.random.default_rng(21)
    seen = set()
    for _ in range(80):
        g, op = random_reduce_case(rng, kind)
        xs = g.tensors["x"].shape
        for x in (rand_int8(rng, xs), np.full(xs, -128, np.int8), np.full(xs, 127, np.int8)):
            want = ref(g, op, x)
            seen.add(get_op(kind).kernel(g, op))
            np.testing.assert_array_equal(run_c(clib, g, op, x), want, str(op.attrs))
            # The general kernel and the wrapper agree on every case, fast variant or not.
            gp = generic_params(g, op)
            for k in ("te_reduce_s8", "te_reduce_wrapper_s8"):
                np.testing.assert_array_equal(run_c(clib, g, op, x, k, gp), want, k)
    assert seen == {"te_mean_s8", "te_reduce_s8"}


@pytest.mark.parametrize("kind", RESIZE_KINDS)
def test_resize_c_matches_reference(clib: tuple[Any, Any], kind: str) -> None:
    rng = np.random.default_rng(22)
    for _ in range(60):
        g, op = random_resize_case(rng, kind)
        x = rand_int8(rng, g.tensors["x"].shape)
        np.testing.assert_array_equal(run_c(clib, g, op, x), ref(g, op, x), str(op.attrs))


def test_c_kernels_reject_bad_arguments(clib: tuple[Any, Any]) -> None:
    ffi, lib = clib
    buf = ffi.new("int8_t[64]")
    p = ffi.new("te_reduce_params_t *", {"rank": 2, "dims": [4, 4], "reduced": [1, 0],
                                         "q": [0, 0, -128, 127], "multiplier": 1 << 30,
                                         "shift": -1})
    for fn in (lib.te_reduce_s8, lib.te_reduce_wrapper_s8):
        assert fn(p, buf, buf + 32) == lib.TE_OK
        assert fn(ffi.NULL, buf, buf + 32) == lib.TE_ERR_ARG
        assert fn(p, buf, ffi.NULL) == lib.TE_ERR_ARG
        for field, bad in (("rank", 0), ("rank", 9), ("shift", 31), ("multiplier", -1)):
            old = getattr(p, field)
            setattr(p, field, bad)
            assert fn(p, buf, buf + 32) == lib.TE_ERR_ARG, field
            setattr(p, field, old)
        p.dims[1], p.reduced[0] = 0, 1
        assert fn(p, buf, buf + 32) == lib.TE_ERR_ARG
        p.dims[1], p.reduced[0] = 4, 2
        assert fn(p, buf, buf + 32) == lib.TE_ERR_ARG
        p.reduced[0] = 1
    rp = ffi.new("te_resize_params_t *", {"input": [1, 2, 2, 1], "output": [1, 3, 3, 1]})
    rows = ffi.new("int32_t[9]", [0, 1, 0, 0, 1, 512, 1, 1, 0])
    idx = ffi.new("int32_t[3]", [0, 1, 1])
    assert lib.te_resize_nearest_s8(rp, buf, idx, idx, buf + 32) == lib.TE_OK
    assert lib.te_resize_bilinear_s8(rp, buf, rows, rows, buf + 32) == lib.TE_OK
    idx[2] = 2  # outside the input
    assert lib.te_resize_nearest_s8(rp, buf, idx, idx, buf + 32) == lib.TE_ERR_ARG
    rows[5] = 1024  # a weight of a whole pixel is not a fraction
    assert lib.te_resize_bilinear_s8(rp, buf, rows, rows, buf + 32) == lib.TE_ERR_ARG
    rows[5] = -10  # negative only where both taps are the same pixel
    assert lib.te_resize_bilinear_s8(rp, buf, rows, rows, buf + 32) == lib.TE_ERR_ARG
    rows[5], rp.output.c = 512, 2
    assert lib.te_resize_bilinear_s8(rp, buf, rows, rows, buf + 32) == lib.TE_ERR_ARG
    assert lib.te_resize_nearest_s8(rp, buf, ffi.NULL, idx, buf + 32) == lib.TE_ERR_ARG


# ------------------------------------------------------------------- 3. TFLM as the oracle

@pytest.mark.parametrize("kind", ["MEAN", "SUM", *RESIZE_KINDS])
def test_reference_matches_tflm(tflm: Any, kind: str) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite

    rng = np.random.default_rng({"MEAN": 31, "SUM": 32}.get(kind, 33 + len(kind)))
    make = random_reduce_case if kind in ("MEAN", "SUM") else random_resize_case
    for _ in range(40):
        g, op = make(rng, kind)
        model = write_tflite(g)
        xs = g.tensors["x"].shape
        for x in (rand_int8(rng, xs), rand_int8(rng, xs), np.full(xs, 127, np.int8)):
            got = tflm.run_tflm(model, [x])[0]
            want = ref(g, op, x)
            np.testing.assert_array_equal(got.reshape(want.shape), want, str(op.attrs))


def test_tflite_round_trip_keeps_attrs(tmp_path: Any) -> None:
    from tinyengine.frontend import load_model
    from tinyengine.frontend.tflite_writer import write_tflite

    cases = [("SUM", (2, 3, 4), {"axes": (0, 2), "keep_dims": True}, (0.1, 0), (0.4, 3)),
             ("MEAN", (1, 3, 4, 5), {"axes": (3,), "keep_dims": False}, (0.1, 0), (0.1, 3)),
             ("RESIZE_BILINEAR", (1, 3, 4, 2), {"size": (5, 7), "align_corners": False,
                                                "half_pixel_centers": True}, (0.1, 2), (0.1, 2)),
             ("RESIZE_NEAREST_NEIGHBOR", (1, 3, 4, 2), {"size": (6, 2), "align_corners": True,
                                                        "half_pixel_centers": False},
              (0.1, 2), (0.1, 2))]
    for kind, shape, attrs, iq, oq in cases:
        g, _ = one_op(kind, shape, attrs, iq, oq)
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(write_tflite(g))
        back = load_model(path)
        (op2,) = [o for o in back.ops if o.kind == kind]
        assert {k: (tuple(v) if isinstance(v, list | tuple) else v)
                for k, v in op2.attrs.items()} == attrs


def chain_graph() -> Graph:
    """RESIZE_BILINEAR -> RESIZE_NEAREST_NEIGHBOR -> MEAN (over H, W: te_mean_s8) and SUM (over
    N and W: the general kernel), two outputs."""
    t = {"x": Tensor("x", (2, 3, 5, 4), "int8", qp(0.05, -3)),
         "r1": Tensor("r1", (2, 6, 4, 4), "int8", qp(0.05, -3)),
         "r2": Tensor("r2", (2, 9, 9, 4), "int8", qp(0.05, -3)),
         "m": Tensor("m", (2, 4), "int8", qp(0.03, 5)),
         "s": Tensor("s", (1, 9, 1, 4), "int8", qp(0.6, -7))}
    ops = [Op("rb", "RESIZE_BILINEAR", ["x"], ["r1"], {"size": (6, 4), "align_corners": False,
                                                      "half_pixel_centers": True}),
           Op("rn", "RESIZE_NEAREST_NEIGHBOR", ["r1"], ["r2"],
              {"size": (9, 9), "align_corners": True, "half_pixel_centers": False}),
           Op("mean", "MEAN", ["r2"], ["m"], {"axes": (1, 2), "keep_dims": False}),
           Op("sum", "SUM", ["r2"], ["s"], {"axes": (0, -2), "keep_dims": True})]
    g = Graph(t, ops, ["x"], ["m", "s"])
    verify(g)
    return g


def test_generated_c_matches_reference_and_tflm(tflm: Any) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    g = chain_graph()
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=6, seed=9)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_generated_c_is_clean_under_sanitizers(tmp_path: Any) -> None:
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs

    from .sanitized import check_sanitized_demo

    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    g = chain_graph()
    compile_graph(g, tmp_path / "p", prefix="rr")
    rng = np.random.default_rng(8)
    check_sanitized_demo(tmp_path / "p", "rr", g, [random_inputs(g, rng) for _ in range(3)])


# ------------------------------------------------------------------- 4. ONNX (via PyTorch)

def _torch_modules() -> dict[str, Any]:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Upsample(nn.Module):
        """Conv, nearest x2 (asymmetric/floor), bilinear with align_corners, SUM over C."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")
            y = F.interpolate(y, size=(5, 7), mode="bilinear", align_corners=True)
            return y.sum(dim=1, keepdim=True)

    class Means(nn.Module):
        """Bilinear half-pixel (pytorch_half_pixel), then MEAN over W kept and over H, W."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.interpolate(self.conv(x), size=(9, 6), mode="bilinear", align_corners=False)
            return y.mean(dim=3, keepdim=True).mean(dim=(2, 3))

    return {"upsample": Upsample(), "means": Means()}


@pytest.mark.parametrize("name, kinds", [
    ("upsample", {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "SUM"}),
    ("means", {"RESIZE_BILINEAR", "MEAN"}),
])
def test_onnx_model_compiles_and_c_matches_reference(name: str, kinds: set[str],
                                                     tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from tinyengine.convert import export_torch, quantize_onnx
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.quantize.qdq import qdq_model
    from tinyengine.tflm import tflm_available
    from tinyengine.verify import verify_graph

    torch.manual_seed(0)
    module = _torch_modules()[name]
    rng = np.random.default_rng(6)
    calib = rng.normal(0, 1, (16, 3, 4, 5)).astype(np.float32)
    path = export_torch(module, torch.from_numpy(calib[:1]), tmp_path / "m.onnx")
    model, graph = quantize_onnx(path, calib)
    assert kinds <= {op.kind for op in graph.ops}
    # C == reference (== TFLM where installed) on the quantised graph.
    verdicts, _ = verify_graph(graph, write_tflite(graph) if tflm_available() else None,
                               n_random=4, seed=6)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]
    # The QDQ export (to_qdq hooks) is a valid model that tracks the float one.
    session = ort.InferenceSession(qdq_model(graph, model).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    float_session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = calib[:1]
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    want = float_session.run(None, {float_session.get_inputs()[0].name: x})[0]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 0.1 * (np.ptp(want) + np.abs(want).max()) + 1e-6


def _onnx_node_model(node: Any, in_shape: list[int], out_shape: list[int],
                     inits: list[Any]) -> Any:
    from onnx import TensorProto, helper

    return helper.make_model(
        helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("case, reason", [
    ("cubic", "mode cubic"),
    ("nearest_half_floor", "no TFLite equivalent"),
    ("fractional_scale", "whole output sizes"),
    ("channel_scale", "only H and W"),
    ("mean_reorders", "different order"),
])
def test_onnx_refusals_say_why(case: str, reason: str, tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    from tinyengine.frontend.onnx_reader import load_onnx

    def scales(v: list[float]) -> Any:
        return numpy_helper.from_array(np.array(v, np.float32), "scales")

    resize = {"cubic": ({"mode": "cubic"}, [1, 1, 2, 2], [1, 3, 8, 8]),
              "nearest_half_floor": ({"mode": "nearest", "nearest_mode": "floor"},
                                     [1, 1, 2, 2], [1, 3, 8, 8]),
              "fractional_scale": ({"mode": "linear"}, [1, 1, 1.3, 1.3], [1, 3, 5, 5]),
              "channel_scale": ({"mode": "linear"}, [1, 2, 2, 2], [1, 6, 8, 8])}
    if case in resize:
        attrs, sc, out = resize[case]
        node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="rs", **attrs)
        m = _onnx_node_model(node, [1, 3, 4, 4], out, [scales(sc)])
    else:  # a mean over H of NCHW without keepdims leaves (N, C, W), the engine (N, W, C)
        node = helper.make_node("ReduceMean", ["x"], ["y"], name="rm", axes=[2], keepdims=0)
        m = _onnx_node_model(node, [1, 3, 4, 5], [1, 3, 5], [])
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    with pytest.raises(UnsupportedError) as e:
        load_onnx(path)
    assert reason in str(e.value) and ("rs" in str(e.value) or "rm" in str(e.value))
