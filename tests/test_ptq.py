"""Post-training quantisation: observers, weight/bias/activation rules, calibration data, int8
graphs from float graphs (verified, compiled, C == reference), and the ONNX QDQ export.

Hand-built float graphs run through a small numpy float executor written here (`float_run`),
so that the quantised graph's reference output can be compared with an independent float
computation. The end-to-end tests at the bottom go through torch -> ONNX -> the ONNX frontend.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import TinyEngineError
from tinyengine.ir import Graph, Op, Tensor, verify
from tinyengine.ops.common import window_padding
from tinyengine.quantize import calibrate, ptq, qdq
from tinyengine.reference import run_reference

# ---------------------------------------------------------------------------------------------
# A float executor for the float IR (NHWC, TFLite weight layouts), batch along axis 0
# ---------------------------------------------------------------------------------------------


def _act(y: np.ndarray, op: Op) -> np.ndarray:
    act = op.attrs.get("activation", "NONE")
    if act == "RELU":
        return np.maximum(y, 0)
    if act == "RELU6":
        return np.clip(y, 0, 6)
    assert act == "NONE", act
    return y


def _windows(x: np.ndarray, op: Op, fh: int, fw: int, fill: float):
    n, ih, iw, c = x.shape
    oh, ow, ph, pw = window_padding(op, ih, iw, fh, fw)
    sh, sw = op.attrs["stride"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    need_h, need_w = (oh - 1) * sh + (fh - 1) * dh + 1, (ow - 1) * sw + (fw - 1) * dw + 1
    xp = np.full((n, max(need_h, ph + ih), max(need_w, pw + iw), c), fill, np.float64)
    xp[:, ph:ph + ih, pw:pw + iw] = x
    for ky in range(fh):
        for kx in range(fw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]


def _float_op(g: Graph, op: Op, v: dict[str, np.ndarray]) -> np.ndarray:
    x = v[op.inputs[0]]
    w = g.tensor(op.inputs[1]).data if len(op.inputs) > 1 and op.inputs[1] else None
    b = g.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] else None
    out = g.tensor(op.outputs[0])
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        assert w is not None
        m = w.shape[3] // x.shape[3]
        acc = 0.0
        for ky, kx, win in _windows(x, op, w.shape[1], w.shape[2], 0.0):
            acc = acc + (win @ w[:, ky, kx, :].T if op.kind == "CONV_2D"
                         else np.repeat(win, m, axis=3) * w[0, ky, kx])
        return _act(acc + (0 if b is None else b), op)
    if op.kind == "FULLY_CONNECTED":
        assert w is not None
        y = x.reshape(-1, w.shape[1]) @ w.T + (0 if b is None else b)
        return _act(y.reshape((-1, *out.shape[1:])), op)
    if op.kind == "ADD":
        return _act(x + v[op.inputs[1]], op)
    if op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        fh, fw = op.attrs["filter"]
        if op.kind == "MAX_POOL_2D":
            return np.max([win for _, _, win in _windows(x, op, fh, fw, -np.inf)], axis=0)
        total = sum(win for _, _, win in _windows(x, op, fh, fw, 0.0))
        count = sum(win for _, _, win in _windows(np.ones_like(x[:1, ..., :1]), op, fh, fw, 0))
        return total / count
    if op.kind == "MEAN":
        return x.mean(axis=(1, 2), keepdims=bool(op.attrs.get("keep_dims")))
    if op.kind == "RESHAPE":
        return x.reshape((-1, *out.shape[1:]))
    if op.kind == "PAD":
        return np.pad(x, op.attrs["paddings"])
    if op.kind == "SOFTMAX":
        e = np.exp(op.attrs.get("beta", 1.0) * (x - x.max(axis=-1, keepdims=True)))
        return e / e.sum(axis=-1, keepdims=True)
    raise AssertionError(op.kind)


def float_run(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every activation's float value for an NHWC input batch."""
    v = {g.inputs[0]: np.asarray(x, np.float64)}
    for op in g.ops:
        v[op.outputs[0]] = _float_op(g, op, v)
    return v


# ---------------------------------------------------------------------------------------------
# Hand-built float graphs
# ---------------------------------------------------------------------------------------------


class FloatGraphBuilder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    def act(self, name: str, shape: tuple[int, ...]) -> str:
        self.tensors[name] = Tensor(name, shape, "float32")
        return name

    def const(self, name: str, data: np.ndarray) -> str:
        data = np.asarray(data, np.float32)
        self.tensors[name] = Tensor(name, data.shape, "float32", data=data)
        return name

    def op(self, kind: str, inputs: list[str], out: str, shape: tuple[int, ...],
           **attrs: Any) -> str:
        self.act(out, shape)
        self.ops.append(Op(f"op{len(self.ops)}_{kind.lower()}", kind, inputs, [out], attrs))
        return out

    def weights(self, name: str, shape: tuple[int, ...], scale: float = 0.3) -> str:
        return self.const(name, self.rng.normal(0, scale, shape))

    def graph(self, inputs: list[str], outputs: list[str]) -> Graph:
        return Graph(self.tensors, self.ops, inputs, outputs, "hand_built")


def small_cnn(seed: int = 0) -> Graph:
    """conv3x3+RELU -> depthwise s2 +RELU6 -> 1x1 conv, + avg-pooled residual -> PAD ->
    max pool -> MEAN (keep dims) -> RESHAPE -> FC (logits, an output) -> SOFTMAX (output)."""
    b = FloatGraphBuilder(seed)
    x = b.act("input", (1, 8, 8, 3))
    c1 = b.op("CONV_2D", [x, b.weights("w1", (8, 3, 3, 3)), b.weights("b1", (8,), 0.1)],
              "c1", (1, 8, 8, 8), stride=(1, 1), padding="SAME", activation="RELU")
    dw = b.op("DEPTHWISE_CONV_2D", [c1, b.weights("w2", (1, 3, 3, 8)),
                                    b.weights("b2", (8,), 0.1)],
              "dw", (1, 4, 4, 8), stride=(2, 2), padding="SAME", activation="RELU6",
              depth_multiplier=1)
    pr = b.op("CONV_2D", [dw, b.weights("w3", (8, 1, 1, 8)), ""], "proj", (1, 4, 4, 8),
              stride=(1, 1), padding="VALID", activation="NONE")
    ap = b.op("AVERAGE_POOL_2D", [c1], "pooled", (1, 4, 4, 8), filter=(2, 2), stride=(2, 2),
              padding="VALID", activation="NONE")
    s = b.op("ADD", [pr, ap], "sum", (1, 4, 4, 8), activation="NONE")
    p = b.op("PAD", [s], "padded", (1, 6, 6, 8), paddings=[(0, 0), (1, 1), (1, 1), (0, 0)])
    mp = b.op("MAX_POOL_2D", [p], "maxed", (1, 3, 3, 8), filter=(2, 2), stride=(2, 2),
              padding="VALID", activation="NONE")
    mn = b.op("MEAN", [mp], "mean", (1, 1, 1, 8), axes=(1, 2), keep_dims=True)
    r = b.op("RESHAPE", [mn], "flat", (1, 8))
    lg = b.op("FULLY_CONNECTED", [r, b.weights("fc_w", (10, 8), 1.0),
                                  b.weights("fc_b", (10,), 0.1)],
              "logits", (1, 10), activation="NONE", keep_num_dims=False)
    pb = b.op("SOFTMAX", [lg], "probs", (1, 10), beta=1.0)
    return b.graph([x], [lg, pb])


def same_quant(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return (np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)
            and (a.axis == b.axis or a.scale.size == 1))


def calibrate_graph(g: Graph, batches: list[np.ndarray], method: str = "minmax"
                    ) -> dict[str, tuple[float, float]]:
    observers = calibrate.observe((float_run(g, x) for x in batches), method)
    return calibrate.calibration_ranges(observers, method)


@pytest.fixture(scope="module")
def cnn_int8() -> tuple[Graph, Graph, list[np.ndarray]]:
    g = small_cnn()
    rng = np.random.default_rng(1)
    batches = [rng.uniform(0, 1, (16, 8, 8, 3)) for _ in range(4)]
    return g, ptq.quantize_graph(g, calibrate_graph(g, batches)), batches


# ---------------------------------------------------------------------------------------------
# Rounding, weights, biases, activations
# ---------------------------------------------------------------------------------------------


def test_round_half_away_is_std_round():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, -0.49999999999999994,
                  2.4999999999999996, 1e300, -7.0])
    expected = [1, 2, 3, -1, -2, -3, 0, 0, 2, 1e300, -7]
    np.testing.assert_array_equal(ptq.round_half_away(x), expected)
    assert np.round(2.5) == 2.0  # numpy's half-to-even: what we must not use
    for v in (0.5, 1.5, -2.5, 3.25, -3.75):
        assert ptq.round_half_away(np.array(v)) == quant.tflite_round(v)


def test_weights_per_channel_symmetric_round_half_away():
    # Channel 0: max |w| = 127 -> scale 1; channel 1: max 63.5 -> scale 0.5; channel 2: zeros.
    w = np.zeros((3, 1, 1, 4), np.float32)
    w[0, 0, 0] = [127, 0.5, -2.5, 1.5]
    w[1, 0, 0] = [-63.5, 0.25, 0.75, -0.25]
    scales = ptq.weight_scales(w, 0)
    np.testing.assert_array_equal(scales, [1.0, 0.5, 1.0])
    q = ptq.quantize_weights(w, scales, 0)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q[0, 0, 0], [127, 1, -3, 2])  # np.round: 0, -2, 2
    np.testing.assert_array_equal(q[1, 0, 0], [-127, 1, 2, -1])
    np.testing.assert_array_equal(q[2], 0)
    # Depthwise: channels along axis 3; per tensor: one scale for everything.
    dw = np.array([[[[1.0, -4.0], [-2.0, 2.0]]]])  # (1, 1, 2, 2)
    np.testing.assert_allclose(ptq.weight_scales(dw, 3), [2 / 127, 4 / 127])
    np.testing.assert_allclose(ptq.weight_scales(dw, None), [4 / 127])
    assert np.abs(ptq.quantize_weights(w * 3, ptq.weight_scales(w * 3, 0), 0)).max() == 127


def test_bias_int32_at_input_times_weight_scale():
    bias = ptq.quantize_bias(np.array([0.25, -0.125, 1.0]), 0.5, np.array([1.0, 0.5, 0.25]))
    assert bias.dtype == "int32" and bias.quant is not None
    np.testing.assert_array_equal(bias.quant.scale, np.float32([0.5, 0.25, 0.125]))
    np.testing.assert_array_equal(bias.quant.zero_point, 0)
    np.testing.assert_array_equal(bias.data, [1, -1, 8])  # 0.5 -> 1, -0.5 -> -1: half away
    # A bias far beyond its weights' scale raises that weight scale instead of overflowing.
    scales = ptq.fit_bias(np.array([1e-9, 0.01]), np.array([100.0, 1.0]), 0.01)
    assert scales[0] > 1e-9 and scales[1] == 0.01
    big = ptq.quantize_bias(np.array([100.0, 1.0]), 0.01, scales)
    assert big.data is not None and np.abs(big.data.astype(np.int64)).max() <= ptq.BIAS_LIMIT


@pytest.mark.parametrize("lo, hi, scale, zp", [
    (-1.0, 1.0, 2 / 255, -1),  # -128 + 127.5 = -0.5 rounds away to -1 (np.round: 0)
    (0.0, 6.0, 6 / 255, -128),
    (2.0, 5.0, 5 / 255, -128),  # widened to include 0
    (-3.0, -1.0, 3 / 255, 127),
    (-0.5, 2.0, 2.5 / 255, -77),  # -128 + 51 = -77
    (0.0, 0.0, 1.0, -128),  # all zero: MLIR's scale 1, zero point qmin
])
def test_activation_qparams(lo, hi, scale, zp):
    q = ptq.activation_qparams(lo, hi)
    assert q.scale.dtype == np.float32 and q.scale[0] == np.float32(scale)
    assert int(q.zero_point[0]) == zp
    # the range's ends are representable within half a step
    assert (-128 - zp) * q.scale[0] <= min(lo, 0) + q.scale[0] / 2 + 1e-9
    assert (127 - zp) * q.scale[0] >= max(hi, 0) - q.scale[0] / 2 - 1e-9


# ---------------------------------------------------------------------------------------------
# Observers
# ---------------------------------------------------------------------------------------------


def _observe(batches: list[np.ndarray], method: str) -> calibrate.TensorObserver:
    return calibrate.observe(({"t": b} for b in batches), method)["t"]


def _fake_quant_mse(x: np.ndarray, lo: float, hi: float) -> float:
    q = ptq.activation_qparams(lo, hi)
    s, zp = float(q.scale[0]), int(q.zero_point[0])
    xq = np.clip(ptq.round_half_away(x / s) + zp, -128, 127)
    return float(np.mean((x - s * (xq - zp)) ** 2))


def test_minmax_is_exact_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3, 2, (7, 5)) for _ in range(5)]
    obs = _observe(batches, "minmax")
    assert calibrate.minmax_range(obs) == (min(b.min() for b in batches),
                                           max(b.max() for b in batches))
    assert obs.histogram is None  # min/max costs no histogram


def test_histogram_grows_exactly():
    rng = np.random.default_rng(1)
    h = calibrate.Histogram(bins=64)
    data = [np.zeros(10), rng.uniform(0, 1, 100), rng.uniform(-5, 3, 100),
            np.array([1000.0]), rng.normal(0, 1, 100)]
    for d in data:
        h.update(d)
    assert h.counts.sum() == sum(d.size for d in data)
    everything = np.concatenate(data)
    assert h.lo <= everything.min() and h.hi >= everything.max()
    # every value sits in the bin the final grid assigns it
    idx = np.clip(np.floor((everything - h.lo) / h.width).astype(int), 0, h.bins - 1)
    np.testing.assert_array_equal(np.bincount(idx, minlength=h.bins), h.counts)


def test_percentile_clips_an_outlier():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 200_000)
    x[123] = 1000.0
    obs = _observe(np.array_split(x, 4), "percentile")
    lo, hi = calibrate.percentile_range(obs, 99.99)
    assert hi < 10 and lo > -10  # the outlier no longer sets the scale
    assert hi > 3 and lo < -3  # the bulk's tails are kept
    assert calibrate.minmax_range(obs)[1] == 1000.0


def test_mse_beats_minmax_on_heavy_tails():
    rng = np.random.default_rng(3)
    x = rng.standard_t(df=4, size=100_000)
    obs = _observe(np.array_split(x, 3), "mse")
    lo, hi = calibrate.mse_range(obs)
    mse = _fake_quant_mse(x, lo, hi)
    minmax = _fake_quant_mse(x, x.min(), x.max())
    assert mse < 0.9 * minmax, (mse, minmax)
    assert obs.min < lo < 0 < hi < obs.max


@pytest.mark.parametrize("kind", ["t2", "normal", "relu", "laplace_outliers"])
def test_mse_never_much_worse_than_minmax(kind):
    """The error model (clipping at bin centres, uniform rounding inside bins) must not mislead
    the search where clipping does not pay, e.g. Student-t with 2 degrees of freedom."""
    rng = np.random.default_rng(6)
    x = {"t2": lambda: rng.standard_t(df=2, size=50_000),
         "normal": lambda: rng.normal(0, 1, 50_000),
         "relu": lambda: np.maximum(rng.normal(0, 1, 50_000), 0),
         "laplace_outliers": lambda: np.concatenate([rng.laplace(0, 1, 50_000),
                                                     rng.uniform(-200, 200, 10)])}[kind]()
    lo, hi = calibrate.mse_range(_observe([x], "mse"))
    assert _fake_quant_mse(x, lo, hi) <= 1.03 * _fake_quant_mse(x, x.min(), x.max())


def test_mse_keeps_a_bounded_uniform_range():
    x = np.random.default_rng(4).uniform(-1, 3, 50_000)
    lo, hi = calibrate.mse_range(_observe([x], "mse"))
    assert lo < -0.95 and hi > 2.85  # nothing worth clipping


def test_observer_rejects_nan_and_unknown_method():
    with pytest.raises(TinyEngineError, match="NaN"):
        _observe([np.array([1.0, np.nan])], "minmax")
    with pytest.raises(TinyEngineError, match="unknown calibration method"):
        _observe([np.ones(3)], "kl")


# ---------------------------------------------------------------------------------------------
# Calibration data
# ---------------------------------------------------------------------------------------------

SHAPE = (1, 3, 6, 5)  # ONNX NCHW input with batch axis


def test_load_images(tmp_path: Path):
    from PIL import Image

    rgb = np.zeros((12, 10, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "b.png")
    Image.fromarray(np.full((4, 4), 51, np.uint8)).save(tmp_path / "a.bmp")  # grey -> RGB
    Image.fromarray(rgb).save(tmp_path / "c.JPG")
    (tmp_path / "notes.txt").write_text("ignored")
    batches = calibrate.load_calibration(tmp_path, SHAPE, batch_size=2)
    assert [b.shape for b in batches] == [(2, 3, 6, 5), (1, 3, 6, 5)]
    assert batches[0].dtype == np.float32
    np.testing.assert_allclose(batches[0][0], 0.2, atol=1e-6)  # a.bmp first, 51/255
    np.testing.assert_allclose(batches[0][1, 0], 1.0)  # red channel of b.png
    np.testing.assert_allclose(batches[0][1, 1:], 0.0)
    grey = calibrate.load_calibration(tmp_path, (1, 1, 6, 5), max_samples=1)
    assert len(grey) == 1 and grey[0].shape == (1, 1, 6, 5)
    nhwc = calibrate.load_calibration(tmp_path, (1, 6, 5, 3))
    assert nhwc[0].shape == (3, 6, 5, 3)


def test_load_npy_and_npz(tmp_path: Path):
    data = np.random.default_rng(0).normal(size=(70, 3, 6, 5))
    np.save(tmp_path / "batch.npy", data)
    batches = calibrate.load_calibration(tmp_path / "batch.npy", SHAPE)
    assert [len(b) for b in batches] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate(batches), data.astype(np.float32))
    np.save(tmp_path / "one.npy", data[0])
    assert calibrate.load_calibration(tmp_path / "one.npy", SHAPE)[0].shape == (1, 3, 6, 5)
    np.savez(tmp_path / "d.npz", labels=np.arange(70.0), images=data)
    named = calibrate.load_calibration(tmp_path / "d.npz", SHAPE, input_name="images")
    assert sum(len(b) for b in named) == 70
    np.savez(tmp_path / "e.npz", data[:3])
    assert calibrate.load_calibration(tmp_path / "e.npz", SHAPE)[0].shape == (3, 3, 6, 5)


def test_load_iterables():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.randn(10, 3, 6, 5)
    loader = DataLoader(TensorDataset(x, torch.zeros(10)), batch_size=4)
    batches = calibrate.load_calibration(loader, SHAPE)
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), x.numpy())
    single = calibrate.load_calibration([np.ones((3, 6, 5))] * 3, SHAPE, max_samples=2)
    assert len(single) == 2 and single[0].shape == (1, 3, 6, 5)
    array = calibrate.load_calibration(x.numpy(), SHAPE, batch_size=8, max_samples=9)
    assert [b.shape[0] for b in array] == [8, 1]
    req_grad = [torch.ones(2, 3, 6, 5, requires_grad=True)]
    assert calibrate.load_calibration(req_grad, SHAPE)[0].shape == (2, 3, 6, 5)


def _error(source: Any, shape: tuple[int, ...] = SHAPE) -> str:
    with pytest.raises(TinyEngineError) as e:
        calibrate.load_calibration(source, shape)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_load_calibration_errors(tmp_path: Path):
    assert "does not exist" in _error(tmp_path / "nope.npy")
    (tmp_path / "empty").mkdir()
    assert "no PNG, JPEG or BMP" in _error(tmp_path / "empty")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 6, 5)))
    assert "is empty" in _error(tmp_path / "empty.npy")
    np.save(tmp_path / "wrong.npy", np.zeros((4, 6, 5, 3)))
    msg = _error(tmp_path / "wrong.npy")
    assert "expected shape (N, 3, 6, 5)" in msg and "got (4, 6, 5, 3)" in msg
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    assert "non-numeric" in _error(tmp_path / "text.npy")
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    assert "non-numeric" in _error(tmp_path / "objects.npy")
    np.save(tmp_path / "nan.npy", np.full((1, 3, 6, 5), np.nan))
    assert "NaN" in _error(tmp_path / "nan.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file")
    assert "cannot read" in _error(tmp_path / "junk.npy")
    (tmp_path / "data.csv").write_text("1,2")
    assert ".npy or .npz" in _error(tmp_path / "data.csv")
    np.savez(tmp_path / "none.npz")
    assert "no arrays" in _error(tmp_path / "none.npz")
    assert "holds no batches" in _error([])
    assert "expected shape" in _error([np.zeros((2, 3, 6))])
    assert "non-numeric" in _error([["x", "y"]])
    assert "type int" in _error(5)
    bad = tmp_path / "bad_images"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG nonsense")
    assert "broken.png: cannot read as an image" in _error(bad)
    assert "needs a model input of shape" in _error(bad, (1, 64))


# ---------------------------------------------------------------------------------------------
# Quantising hand-built float graphs
# ---------------------------------------------------------------------------------------------


def test_quantized_graph_structure(cnn_int8):
    g, q, _ = cnn_int8
    verify(q)
    assert q.inputs == ["input"] and q.outputs == ["logits", "probs"]
    assert q.tensor("input").dtype == "float32" and q.tensor("input:q").dtype == "int8"
    assert [op.kind for op in q.ops][0] == "QUANTIZE"
    assert [op.kind for op in q.ops][-2:] == ["DEQUANTIZE", "DEQUANTIZE"]
    # The FC writes logits:q, read by both SOFTMAX and the logits DEQUANTIZE.
    sm = next(op for op in q.ops if op.kind == "SOFTMAX")
    assert sm.inputs == ["logits:q"] and sm.outputs == ["probs:q"]
    probs = q.tensor("probs:q")
    assert probs.scale == np.float32(1 / 256) and probs.zero_point == -128
    for a, b in [("c1", "pooled"), ("sum", "padded"), ("padded", "maxed"), ("mean", "flat")]:
        qa, qb = q.tensor(a).quant, q.tensor(b).quant
        assert qa is not None and qb is not None
        assert qa.scale[0] == qb.scale[0] and qa.zero_point[0] == qb.zero_point[0], (a, b)
    # ReLU outputs: range from calibration starts at 0 -> zero point -128; RELU6 stays <= 6.
    assert q.tensor("c1").zero_point == -128 and q.tensor("dw").zero_point == -128
    assert q.tensor("dw").scale * 255 <= 6 + 1e-6
    w1, w2, fc = q.tensor("w1"), q.tensor("w2"), q.tensor("fc_w")
    assert w1.dtype == "int8" and w1.quant is not None and w1.quant.axis == 0
    assert w1.quant.scale.size == 8 and w2.quant is not None and w2.quant.axis == 3
    assert fc.quant is not None and fc.quant.scale.size == 1  # per tensor, as TFLite
    for w, axis in [(w1, 0), (w2, 3)]:
        assert w.data is not None and w.quant is not None
        peak = np.abs(np.moveaxis(w.data, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
        np.testing.assert_array_equal(peak, 127)
    b1 = q.tensor("b1")
    assert b1.dtype == "int32" and b1.quant is not None and w1.quant is not None
    np.testing.assert_allclose(b1.quant.scale, q.tensor("input:q").scale * w1.quant.scale,
                               rtol=1e-6)


def test_shares_quant_pairs_are_respected():
    g = small_cnn()
    rng = np.random.default_rng(1)
    ranges = calibrate_graph(g, [rng.uniform(0, 1, (8, 8, 8, 3))])
    q = ptq.quantize_graph(g, ranges, shares_quant={"proj": "pooled"})
    # proj joins the pooling group (c1, pooled) and takes the union of their ranges.
    assert same_quant(q.tensor("proj").quant, q.tensor("pooled").quant)
    assert same_quant(q.tensor("proj").quant, q.tensor("c1").quant)
    lo = min(ranges[n][0] for n in ("proj", "pooled", "c1"))
    hi = max(ranges[n][1] for n in ("proj", "pooled", "c1"))
    assert same_quant(q.tensor("proj").quant, ptq.activation_qparams(lo, hi))


def test_reference_output_close_to_float(cnn_int8):
    g, q, _ = cnn_int8
    x = np.random.default_rng(7).uniform(0, 1, (20, 8, 8, 3))
    ref = float_run(g, x)
    logits, probs = [], []
    for i in range(len(x)):
        a, b = run_reference(q, [x[i:i + 1].astype(np.float32)])
        logits.append(a[0])
        probs.append(b[0])
    span = np.ptp(ref["logits"])
    err = np.abs(np.array(logits) - ref["logits"]).max()
    assert err < 0.05 * span, (err, span)
    assert np.abs(np.array(probs) - ref["probs"]).max() < 0.03
    assert np.mean(np.argmax(logits, 1) == np.argmax(ref["logits"], 1)) >= 0.9


@pytest.mark.parametrize("method", ["percentile", "mse"])
def test_other_methods_give_verified_graphs(method):
    g = small_cnn(3)
    rng = np.random.default_rng(5)
    q = ptq.quantize_graph(g, calibrate_graph(g, [rng.uniform(0, 1, (8, 8, 8, 3))], method),
                           per_channel=False)
    verify(q)
    w1 = q.tensor("w1")
    assert w1.quant is not None and w1.quant.scale.size == 1


def test_missing_calibration_is_an_error():
    g = small_cnn()
    ranges = calibrate_graph(g, [np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3))])
    del ranges["proj"]
    with pytest.raises(TinyEngineError, match="no values for tensor proj"):
        ptq.quantize_graph(g, ranges)


def test_c_matches_reference_bit_for_bit(cnn_int8, tmp_path: Path):
    from tinyengine.codegen.project import compile_graph
    from tinyengine.runtime.host import HostModel

    _, q, _ = cnn_int8
    compile_graph(q, tmp_path / "proj")
    host = HostModel(tmp_path / "proj")
    rng = np.random.default_rng(11)
    for _ in range(5):
        x = rng.uniform(-0.2, 1.2, (1, 8, 8, 3)).astype(np.float32)
        for c, r in zip(host.invoke([x]), run_reference(q, [x])):
            np.testing.assert_array_equal(c, r)


# ---------------------------------------------------------------------------------------------
# QDQ export
# ---------------------------------------------------------------------------------------------

LAYOUTS = SimpleNamespace(input_layouts={"input": "NCHW"}, output_layouts={}, source="test")


def test_qdq_export_runs_and_agrees(cnn_int8, tmp_path: Path):
    import onnx
    import onnxruntime as ort

    _, q, _ = cnn_int8
    path = tmp_path / "q.onnx"
    qdq.export_qdq(q, LAYOUTS, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    kinds = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "Softmax"} <= kinds
    w1 = next(i for i in model.graph.initializer if i.name == "w1")
    assert w1.data_type == onnx.TensorProto.INT8 and list(w1.dims) == [8, 3, 3, 3]  # OIHW
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in sess.get_inputs()] == [[1, 3, 8, 8]]
    x = np.random.default_rng(3).uniform(0, 1, (40, 3, 8, 8)).astype(np.float32)
    for optimized in (False, True):
        agree = qdq.compare_with_onnxruntime(q, LAYOUTS, model, list(x[:, None]), optimized)
        print(f"hand-built CNN, onnxruntime optimized={optimized}: {agree}")
        assert agree.values == 40 * 20
        assert agree.identical >= 0.5 and agree.max_abs_diff <= 3


def test_per_op_agreement_hand_built(cnn_int8):
    """Each op against onnxruntime in isolation: exact where no rounding happens, within one
    int8 step where onnxruntime rounds in float (half to even) and TFLite in fixed point."""
    _, q, _ = cnn_int8
    x = np.random.default_rng(4).uniform(0, 1, (20, 1, 3, 8, 8)).astype(np.float32)
    per_op = qdq.compare_per_op(q, LAYOUTS, qdq.qdq_model(q, LAYOUTS), list(x))
    for kind, agree in per_op.items():
        print(f"{kind:18s} {agree}")
        assert agree.max_abs_diff <= 1, kind
    for kind in ("PAD", "MAX_POOL_2D", "RESHAPE"):
        assert per_op[kind].identical == 1.0
    assert per_op["CONV_2D"].identical > 0.99 and per_op["DEPTHWISE_CONV_2D"].identical > 0.99


# ---------------------------------------------------------------------------------------------
# End to end: torch -> ONNX -> load_onnx -> quantize_model -> reference / C / QDQ
# ---------------------------------------------------------------------------------------------


def _bn(c: int):
    """A BatchNorm with non-trivial statistics, so that folding it matters."""
    import torch.nn as nn

    b = nn.BatchNorm2d(c)
    b.running_mean.uniform_(-0.3, 0.3)
    b.running_var.uniform_(0.5, 2.0)
    b.weight.data.uniform_(0.5, 1.5)
    b.bias.data.uniform_(-0.2, 0.2)
    return b


def _mbconv(cin: int, cout: int, k: int, stride: int, expand: int):
    import torch.nn as nn

    class MBConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            mid = cin * expand
            layers: list[nn.Module] = [] if expand == 1 else [
                nn.Conv2d(cin, mid, 1, bias=False), _bn(mid), nn.ReLU6()]
            layers += [nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), _bn(mid),
                       nn.ReLU6(), nn.Conv2d(mid, cout, 1, bias=False), _bn(cout)]
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.block(x)
            return x + y if self.residual else y

    return MBConv()


def random_mbconv_net(seed: int, head: bool = True):
    """Stem, four MBConv blocks (kernel 3/5/7, stride 1/2, expand 1-6, residual where the
    shapes allow), then global pooling and a classifier (or the feature map itself)."""
    import random

    import torch
    import torch.nn as nn

    r = random.Random(seed)
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, 2, 1, bias=False), _bn(8), nn.ReLU6()]
    c = 8
    for i in range(4):
        stride = r.choice([1, 2]) if i in (1, 2) else 1
        cout = c if stride == 1 and r.random() < 0.6 else r.choice([8, 12, 16])
        layers.append(_mbconv(c, cout, r.choice([3, 5, 7]), stride, r.randint(1, 6)))
        c = cout
    if head:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers).eval()


def small_torch_cnn():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), _bn(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), _bn(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1), _bn(16), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10), nn.Softmax(dim=1)).eval()


def export_and_load(module, shape: tuple[int, ...], path: Path):
    import torch

    from tinyengine.frontend.onnx_reader import load_onnx

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(module, (torch.rand(*shape),), str(path), dynamo=False,
                          opset_version=17)
    return load_onnx(path)


def torch_float(module, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def reference_outputs(q: Graph, x: np.ndarray) -> np.ndarray:
    """Reference outputs (first output) of NCHW samples, one at a time."""
    return np.concatenate([run_reference(q, [s[None].transpose(0, 2, 3, 1)])[0] for s in x])


@pytest.fixture(scope="module")
def torch_cnn(tmp_path_factory):
    m = small_torch_cnn()
    fm = export_and_load(m, (1, 1, 8, 8), tmp_path_factory.mktemp("cnn") / "cnn.onnx")
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32) for _ in range(3)]
    return m, fm, batches


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse"])
def test_torch_cnn_reference_close_to_float(torch_cnn, method):
    m, fm, batches = torch_cnn
    q = ptq.quantize_model(fm, batches, method)
    verify(q)
    kinds = [op.kind for op in q.ops]
    assert kinds[0] == "QUANTIZE" and kinds[-1] == "DEQUANTIZE" and "SOFTMAX" in kinds
    x = np.random.default_rng(1).uniform(0, 1, (40, 1, 8, 8)).astype(np.float32)
    ours, ref = reference_outputs(q, x), torch_float(m, x)
    assert np.abs(ours - ref).max() < 0.02  # probabilities, int8 steps of 1/256
    assert np.mean(ours.argmax(1) == ref.argmax(1)) >= 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_mbconv_networks(seed, tmp_path: Path):
    """Random MBConv networks: dequantised reference output close to torch's float output
    (error distribution printed), the generated C equal to the reference bit for bit."""
    from tinyengine.codegen.project import compile_graph
    from tinyengine.runtime.host import HostModel

    m = random_mbconv_net(seed)
    fm = export_and_load(m, (1, 3, 16, 16), tmp_path / "mb.onnx")
    rng = np.random.default_rng(seed)
    q = ptq.quantize_model(fm, [rng.uniform(0, 1, (32, 3, 16, 16)).astype(np.float32)
                                for _ in range(2)])
    assert {"DEPTHWISE_CONV_2D", "CONV_2D"} <= {op.kind for op in q.ops}
    x = rng.uniform(0, 1, (20, 3, 16, 16)).astype(np.float32)
    ours, ref = reference_outputs(q, x), torch_float(m, x)
    rel = np.abs(ours - ref) / np.ptp(ref)
    print(f"MBConv seed {seed}: |int8 - float| / output span: median {np.median(rel):.4f}, "
          f"p99 {np.percentile(rel, 99):.4f}, max {rel.max():.4f}")
    assert np.median(rel) < 0.01 and rel.max() < 0.05
    assert np.mean(ours.argmax(1) == ref.argmax(1)) >= 0.9
    if seed == 0:  # one compile is enough to pin C == reference on this family
        compile_graph(q, tmp_path / "proj")
        host = HostModel(tmp_path / "proj")
        for s in x[:4]:
            nhwc = s[None].transpose(0, 2, 3, 1)
            np.testing.assert_array_equal(host.invoke([nhwc])[0], run_reference(q, [nhwc])[0])


def test_qdq_of_onnx_models(tmp_path: Path):
    """QDQ export of torch models: loads in onnx.checker and onnxruntime with the source
    model's input and output names and layouts, its float output close to the source model's,
    and the agreement of onnxruntime's int8 outputs with ours measured and printed (the
    figures in the README come from here)."""
    import onnx
    import onnxruntime as ort

    rng = np.random.default_rng(9)
    cases = [("cnn", small_torch_cnn(), (1, 1, 8, 8)),
             ("mbconv", random_mbconv_net(1), (1, 3, 16, 16)),
             ("mbconv features (NCHW output)", random_mbconv_net(2, head=False), (1, 3, 16, 16))]
    for label, module, shape in cases:
        fm = export_and_load(module, shape, tmp_path / "m.onnx")
        calib = [rng.uniform(0, 1, (32, *shape[1:])).astype(np.float32) for _ in range(2)]
        q = ptq.quantize_model(fm, calib)
        qdq.export_qdq(q, fm, tmp_path / "q.onnx")
        model = onnx.load(str(tmp_path / "q.onnx"))
        onnx.checker.check_model(model, full_check=True)
        src = ort.InferenceSession(fm.onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
        sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == [i.name for i in src.get_inputs()]
        assert [o.name for o in sess.get_outputs()] == [o.name for o in src.get_outputs()]
        x = rng.uniform(0, 1, (20, *shape[1:])).astype(np.float32)
        ref = torch_float(module, x)
        theirs = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: s[None]})[0]
                                 for s in x])
        assert theirs.shape == ref.shape
        assert np.abs(theirs - ref).max() < 0.05 * np.ptp(ref)
        for optimized in (False, True):
            agree = qdq.compare_with_onnxruntime(q, fm, model, list(x[:, None]), optimized)
            print(f"{label}, onnxruntime {'optimized' if optimized else 'as written'}: "
                  f"{agree.identical:.4f} identical of {agree.values}, max |diff| "
                  f"{agree.max_abs_diff} steps, {agree.diff_histogram}")
            assert agree.max_abs_diff <= 3 and agree.identical >= 0.5
        for kind, a in qdq.compare_per_op(q, fm, model, list(x[:6, None])).items():
            print(f"  {kind:18s} alone: {a.identical:.4f} identical, max {a.max_abs_diff}")
            assert a.max_abs_diff <= 1


def test_quantize_model_user_errors(torch_cnn):
    _, fm, _ = torch_cnn
    with pytest.raises(TinyEngineError, match="no calibration batches"):
        ptq.quantize_model(fm, [])
    with pytest.raises(TinyEngineError, match="unknown calibration method"):
        ptq.quantize_model(fm, [np.zeros((1, 1, 8, 8), np.float32)], "kl")
    with pytest.raises(TinyEngineError, match="must be numbers of shape"):
        ptq.quantize_model(fm, [np.zeros((1, 3, 8, 8), np.float32)])


def test_load_calibration_feeds_quantize_model(torch_cnn, tmp_path: Path):
    """The CLI's path: images on disk -> load_calibration -> quantize_model."""
    from PIL import Image

    _, fm, _ = torch_cnn
    rng = np.random.default_rng(3)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    shape = (1, 1, 8, 8)
    q = ptq.quantize_model(fm, calibrate.load_calibration(tmp_path, shape), "percentile")
    verify(q)
    x = q.tensor(q.inputs[0] + ":q")
    assert x.zero_point == -128 and 0.5 / 255 < x.scale <= 1 / 255 + 1e-9  # pixels in [0, 1]


def test_grouped_conv_quantised_and_exported(tmp_path: Path):
    """A grouped (not depthwise) convolution: per-channel weights along axis 0 as any CONV_2D,
    and the QDQ Conv keeps its `group`."""
    import onnx
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(8, 12, 3, padding=1, groups=4), nn.ReLU()).eval()
    fm = export_and_load(m, (1, 4, 6, 6), tmp_path / "g.onnx")
    rng = np.random.default_rng(0)
    q = ptq.quantize_model(fm, [rng.uniform(0, 1, (16, 4, 6, 6)).astype(np.float32)])
    conv = [op for op in q.ops if op.kind == "CONV_2D"][1]
    w = q.tensor(conv.inputs[1])
    assert conv.attrs["groups"] == 4 and w.shape == (12, 3, 3, 2)
    assert w.quant is not None and w.quant.scale.size == 12
    x = rng.uniform(0, 1, (10, 4, 6, 6)).astype(np.float32)
    ours, ref = reference_outputs(q, x), torch_float(m, x).transpose(0, 2, 3, 1)
    out = q.tensor(q.outputs[0] + ":q")
    # 16 calibration samples need not cover every test value: compare within the output's range.
    ref = np.clip(ref, 0, (127 - out.zero_point) * out.scale)
    assert np.abs(ours - ref).max() < 0.02 * np.ptp(ref)
    model = qdq.qdq_model(q, fm)
    assert [a.i for n in model.graph.node if n.op_type == "Conv" for a in n.attribute
            if a.name == "group"] == [1, 4]
    agree = qdq.compare_with_onnxruntime(q, fm, model, list(x[:, None]), optimized=False)
    assert agree.max_abs_diff <= 1 and agree.identical > 0.95
    onnx.checker.check_model(model, full_check=True)


def test_quantisation_is_deterministic():
    g = small_cnn(4)
    rng = np.random.default_rng(8)
    batches = [rng.uniform(0, 1, (8, 8, 8, 3)) for _ in range(2)]
    for method in ("minmax", "percentile", "mse"):
        a = ptq.quantize_graph(g, calibrate_graph(g, batches, method))
        b = ptq.quantize_graph(g, calibrate_graph(g, batches, method))
        for name, t in a.tensors.items():
            u = b.tensor(name)
            assert same_quant(t.quant, u.quant), name
            assert (t.data is None and u.data is None) or np.array_equal(t.data, u.data)
