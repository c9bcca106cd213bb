"""ONNX frontend: small PyTorch models exported to ONNX -> float IR.

Three kinds of check:
(a) structure: op kinds, fused activations, BatchNormalization folded away, PADs where TFLite
    padding cannot express ONNX's;
(b) semantics, op by op: onnxruntime's float value of every IR tensor (`float_activations`) is
    reproduced from the op's float inputs by a float64 reference written here from the IR's own
    weights and attrs, which proves the layout work (OIHW -> OHWI, pads, the CHW -> HWC flatten
    permutation, folded BN) without a float evaluator in the engine;
(c) errors a user can cause: not a model, a dynamic input, unsupported ops, wrong input types.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.frontend.onnx_reader import FloatModel, float_activations, load_onnx
from tinyengine.ir import Graph, Op
from tinyengine.ops.common import window_padding

# torch's TorchScript exporter (the only one here) warns about its own deprecation.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# ---------------------------------------------------------------------------------------------
# Float64 reference of the IR ops, NHWC, from the IR's weights and attrs
# ---------------------------------------------------------------------------------------------


def _act(y: np.ndarray, act: str) -> np.ndarray:
    return {"NONE": y, "RELU": np.maximum(y, 0), "RELU6": np.clip(y, 0, 6)}[act]


def _windows(g: Graph, op: Op, x: np.ndarray, fh: int, fw: int, fill: float):
    """Yield (ky, kx, x under tap (ky, kx)) with padding `fill`."""
    n, h, w, c = x.shape
    oh, ow, ph, pw = window_padding(op, h, w, fh, fw)
    sh, sw = op.attrs["stride"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    xp = np.full((n, (oh - 1) * sh + (fh - 1) * dh + 1 + ph + h,
                  (ow - 1) * sw + (fw - 1) * dw + 1 + pw + w, c), fill)
    xp[:, ph:ph + h, pw:pw + w] = x
    for ky in range(fh):
        for kx in range(fw):
            yield ky, kx, xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                             kx * dw:kx * dw + (ow - 1) * sw + 1:sw]


def ref_conv(g: Graph, op: Op, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    o, fh, fw, cg = w.shape
    groups = op.attrs.get("groups", 1)
    og = o // groups
    out = 0.0
    for ky, kx, win in _windows(g, op, x, fh, fw, 0.0):
        tap = [win[..., k * cg:(k + 1) * cg] @ w[k * og:(k + 1) * og, ky, kx].T
               for k in range(groups)]
        out = out + np.concatenate(tap, axis=-1)
    return _act(out + (0 if b is None else b), op.attrs["activation"])


def ref_depthwise(g: Graph, op: Op, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
                  ) -> np.ndarray:
    m = op.attrs["depth_multiplier"]
    out = 0.0
    for ky, kx, win in _windows(g, op, x, w.shape[1], w.shape[2], 0.0):
        out = out + np.repeat(win, m, axis=-1) * w[0, ky, kx]
    return _act(out + (0 if b is None else b), op.attrs["activation"])


def ref_fc(g: Graph, op: Op, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return _act(x.reshape(-1, w.shape[1]) @ w.T + (0 if b is None else b), op.attrs["activation"])


def ref_pool(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    fh, fw = op.attrs["filter"]
    if op.kind == "MAX_POOL_2D":
        best = -np.inf
        for _, _, win in _windows(g, op, x, fh, fw, -np.inf):
            best = np.maximum(best, win)
        return _act(best, op.attrs["activation"])
    total, count = 0.0, 0.0
    ones = np.ones(x.shape[:3] + (1,))
    for (_, _, win), (_, _, mask) in zip(_windows(g, op, x, fh, fw, 0.0),
                                         _windows(g, op, ones, fh, fw, 0.0)):
        total, count = total + win, count + mask
    return _act(total / count, op.attrs["activation"])


REFERENCE: dict[str, Callable[..., np.ndarray]] = {
    "CONV_2D": ref_conv, "DEPTHWISE_CONV_2D": ref_depthwise, "FULLY_CONNECTED": ref_fc,
    "AVERAGE_POOL_2D": ref_pool, "MAX_POOL_2D": ref_pool,
    "ADD": lambda g, op, a, b: _act(a + b, op.attrs["activation"]),
    "PAD": lambda g, op, x: np.pad(x, op.attrs["paddings"]),
    "RESHAPE": lambda g, op, x: x.reshape((x.shape[0],) + g.tensor(op.outputs[0]).shape[1:]),
    "MEAN": lambda g, op, x: x.mean(axis=(1, 2), keepdims=op.attrs["keep_dims"]),
    "SOFTMAX": lambda g, op, x: np.exp(x - x.max(-1, keepdims=True))
    / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
}


def check_semantics(model: FloatModel, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each op's output from its inputs == onnxruntime's value of that tensor; returns the
    activations. Synthetic tensors (inserted PADs) are computed here and fed on."""
    g = model.graph
    acts = float_activations(model, [x])
    names = {t.name for t in g.activations()} - set(model.shares_quant)
    assert set(acts) == names
    for n, v in acts.items():  # IR shapes are the batch-1 shapes of what ONNX computes
        assert v.shape == (x.shape[0],) + g.tensor(n).shape[1:], n
    values = {n: v.astype(np.float64) for n, v in acts.items()}
    for op in g.ops:
        ins = [None if not n else g.tensor(n).data.astype(np.float64) if g.tensor(n).is_const
               else values[n] for n in op.inputs]
        y = REFERENCE[op.kind](g, op, *ins)
        out = op.outputs[0]
        if out in model.shares_quant:
            values[out] = y
            continue
        scale = max(1.0, float(np.abs(values[out]).max()))
        np.testing.assert_allclose(y, values[out], rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{op.name} ({op.kind})")
    return acts


# ---------------------------------------------------------------------------------------------
# Export helpers
# ---------------------------------------------------------------------------------------------


def export(module: nn.Module, shape: tuple[int, ...], path: Path, fold: bool = True,
           **kw: Any) -> Path:
    torch.manual_seed(0)
    for m in module.modules():  # non-trivial BN statistics, so that folding shows
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    torch.onnx.export(module.eval(), (torch.randn(*shape),), str(path), dynamo=False,
                      opset_version=17, do_constant_folding=fold, **kw)
    return path


def load(module: nn.Module, shape: tuple[int, ...], tmp_path: Path, fold: bool = True,
         batch: int = 2) -> tuple[FloatModel, dict[str, np.ndarray]]:
    torch.manual_seed(1)
    model = load_onnx(export(module, shape, tmp_path / "m.onnx", fold))
    x = np.random.default_rng(2).standard_normal((batch,) + shape[1:]).astype(np.float32)
    return model, check_semantics(model, x)


def kinds(model: FloatModel) -> list[str]:
    return [op.kind for op in model.graph.ops]


def onnx_ops(model: FloatModel) -> list[str]:
    return [n.op_type for n in model.onnx_model.graph.node]


# ---------------------------------------------------------------------------------------------
# (a) + (b): structure and semantics
# ---------------------------------------------------------------------------------------------


def test_conv_bn_relu_folds_bn_and_fuses_relu(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 4, 3, bias=False), nn.BatchNorm2d(4))
    model, _ = load(net, (1, 3, 8, 8), tmp_path, fold=False)
    assert onnx_ops(model).count("BatchNormalization") == 2  # torch left them to us
    assert kinds(model) == ["CONV_2D", "CONV_2D"]
    first, second = model.graph.ops
    assert first.attrs == {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME",
                           "activation": "RELU", "groups": 1}
    assert first.outputs == [model.onnx_model.graph.node[2].output[0]]  # the Relu's output
    assert second.inputs[2] != ""  # a bias appears where BN's shift went
    assert model.graph.tensor(first.inputs[1]).shape == (6, 3, 3, 3)  # OHWI
    assert model.input_layouts == {model.graph.inputs[0]: "NCHW"}
    assert model.output_layouts == {model.graph.outputs[0]: "NCHW"}
    for t in model.graph.tensors.values():
        assert t.dtype == "float32" and t.quant is None
        assert t.data is None or t.data.dtype == np.float32


def test_relu6_becomes_clip_and_fuses(tmp_path: Path) -> None:
    model, _ = load(nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU6()), (1, 2, 6, 6), tmp_path)
    assert "Clip" in onnx_ops(model)
    assert [(op.kind, op.attrs["activation"]) for op in model.graph.ops] == [("CONV_2D", "RELU6")]


@pytest.mark.parametrize("cin, cout, groups, kind", [
    (4, 4, 4, "DEPTHWISE_CONV_2D"), (4, 8, 4, "DEPTHWISE_CONV_2D"), (6, 4, 2, "CONV_2D"),
    (1, 3, 1, "CONV_2D")])
def test_depthwise_and_grouped(tmp_path: Path, cin: int, cout: int, groups: int,
                               kind: str) -> None:
    net = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, groups=groups), nn.ReLU())
    model, _ = load(net, (1, cin, 7, 6), tmp_path)
    (op,) = model.graph.ops
    assert op.kind == kind
    w = model.graph.tensor(op.inputs[1])
    if kind == "DEPTHWISE_CONV_2D":
        assert w.shape == (1, 3, 3, cout) and op.attrs["depth_multiplier"] == cout // cin
    else:
        assert w.shape == (cout, 3, 3, cin // groups) and op.attrs["groups"] == groups


@pytest.mark.parametrize("k, stride, pad, size", [
    (3, 2, 1, 8), (3, 2, 1, 9), (5, 1, 2, 7), (5, 2, 2, 10), (7, 2, 3, 12), (7, 1, 3, 9),
    (3, 1, 0, 6), (1, 2, 0, 7)])
def test_kernels_strides_paddings(tmp_path: Path, k: int, stride: int, pad: int,
                                  size: int) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, k, stride, pad), nn.ReLU(),
                        nn.Conv2d(4, 4, k, stride, pad, groups=4))
    model, _ = load(net, (1, 3, size, size + 1), tmp_path)
    convs = [op for op in model.graph.ops if op.kind != "PAD"]
    assert [op.kind for op in convs] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    # Symmetric torch padding is TFLite SAME only where SAME's odd pixel is not needed.
    for op in model.graph.ops:
        if op.kind == "PAD":
            assert op.outputs[0] in model.shares_quant
            assert model.shares_quant[op.outputs[0]] == op.inputs[0]
    assert all(op.attrs["padding"] == "VALID" for op in convs) if pad == 0 else True


def test_stride2_even_input_pads_explicitly(tmp_path: Path) -> None:
    model, _ = load(nn.Conv2d(2, 3, 3, 2, 1), (1, 2, 8, 8), tmp_path)
    assert kinds(model) == ["PAD", "CONV_2D"]
    pad, conv = model.graph.ops
    assert pad.attrs["paddings"] == [(0, 0), (1, 1), (1, 1), (0, 0)]
    assert conv.attrs["padding"] == "VALID" and conv.inputs[0] == pad.outputs[0]
    # The same padding on an odd input is exactly SAME: no PAD.
    model, _ = load(nn.Conv2d(2, 3, 3, 2, 1), (1, 2, 9, 9), tmp_path)
    assert kinds(model) == ["CONV_2D"] and model.graph.ops[0].attrs["padding"] == "SAME"


class ZeroPadConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 3))  # left, right, top, bottom
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(self.conv(self.pad(x)), (0, 1, 2, 0))


def test_asymmetric_padding_becomes_pad(tmp_path: Path) -> None:
    model, _ = load(ZeroPadConv(), (1, 3, 6, 5), tmp_path)
    assert kinds(model) == ["PAD", "CONV_2D", "PAD"]
    assert model.graph.ops[0].attrs["paddings"] == [(0, 0), (0, 3), (1, 2), (0, 0)]
    assert model.graph.ops[2].attrs["paddings"] == [(0, 0), (2, 0), (0, 1), (0, 0)]
    assert model.shares_quant == {}  # these PADs are ONNX's own tensors


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(F.relu(self.a(x))) + x)


def test_maxpool_padding_needs_a_relu_before(tmp_path: Path) -> None:
    path = export(nn.Sequential(nn.Conv2d(2, 3, 1), nn.MaxPool2d(3, 2, 1)), (1, 2, 8, 8),
                  tmp_path / "p.onnx")
    with pytest.raises(UnsupportedError, match=r"MaxPool \(/1/MaxPool\): pads .* unless the "
                                               "input follows a ReLU"):
        load_onnx(path)


def test_residual_add_fuses_relu(tmp_path: Path) -> None:
    model, _ = load(Residual(), (1, 4, 5, 5), tmp_path)
    assert [(op.kind, op.attrs["activation"]) for op in model.graph.ops] == [
        ("CONV_2D", "RELU"), ("CONV_2D", "NONE"), ("ADD", "RELU")]
    assert model.graph.ops[2].inputs[1] == model.graph.inputs[0]


@pytest.mark.parametrize("pool, expect", [
    (nn.MaxPool2d(2), ("MAX_POOL_2D", "VALID")), (nn.AvgPool2d(2), ("AVERAGE_POOL_2D", "VALID")),
    (nn.MaxPool2d(3, 1, 1), ("MAX_POOL_2D", "SAME")),
    (nn.AvgPool2d(3, 2, 1, count_include_pad=False), ("AVERAGE_POOL_2D", "SAME")),
    (nn.AvgPool2d(3, 1, 1), ("PAD", "AVERAGE_POOL_2D")),  # padding counted: explicit zeros
    (nn.MaxPool2d(2, 2, 1), ("PAD", "MAX_POOL_2D")),  # zero padding is exact after a ReLU
    (nn.MaxPool2d(2, ceil_mode=True), ("MAX_POOL_2D", "SAME")),
    (nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), ("AVERAGE_POOL_2D", "SAME"))])
def test_pools(tmp_path: Path, pool: nn.Module, expect: tuple[str, str]) -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.ReLU(), pool, nn.ReLU())
    model, _ = load(net, (1, 2, 7, 9), tmp_path)
    ops = model.graph.ops[1:]
    if expect[0] == "PAD":
        assert [op.kind for op in ops] == list(expect)
        assert ops[0].outputs[0] in model.shares_quant
    else:
        assert (ops[0].kind, ops[0].attrs["padding"]) == expect
    assert ops[-1].attrs["activation"] == "RELU"  # ReLU after a pool fuses into it


class GlobalHead(nn.Module):
    def __init__(self, mean: bool) -> None:
        super().__init__()
        self.conv, self.pool, self.fc = nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), \
            nn.Linear(5, 4)
        self.mean = mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y.mean((2, 3)) if self.mean else torch.flatten(self.pool(y), 1)
        return torch.softmax(self.fc(y), dim=-1)


def test_global_average_pool_flatten_fc_softmax(tmp_path: Path) -> None:
    model, _ = load(GlobalHead(mean=False), (1, 3, 6, 7), tmp_path)
    assert kinds(model) == ["CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
                            "SOFTMAX"]
    pool = model.graph.ops[1]
    assert pool.attrs == {"stride": (1, 1), "filter": (4, 5), "padding": "VALID",
                          "activation": "NONE"}
    assert model.graph.tensor(pool.outputs[0]).shape == (1, 1, 1, 5)
    assert model.chw_flattened == {}  # 1x1 spatial: no reordering needed
    assert model.graph.ops[4].attrs == {"beta": 1.0}
    assert model.output_layouts == {model.graph.outputs[0]: "NC"}
    model, _ = load(GlobalHead(mean=True), (1, 3, 6, 7), tmp_path)
    assert kinds(model)[:2] == ["CONV_2D", "MEAN"]


class SpatialFlatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3 * 4 * 5, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


def test_flatten_with_spatial_permutes_fc_columns(tmp_path: Path) -> None:
    model, acts = load(SpatialFlatten(), (1, 2, 4, 5), tmp_path)
    assert kinds(model) == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    flat = model.graph.ops[1].outputs[0]
    assert model.chw_flattened == {flat: (3, 4, 5)}
    # The IR holds the flatten in HWC order: the conv output (NHWC) reshaped.
    conv_out = acts[model.graph.ops[0].outputs[0]]
    np.testing.assert_array_equal(acts[flat], conv_out.reshape(conv_out.shape[0], -1))
    # The FC weights are torch's with columns moved from CHW to HWC order.
    w_torch = numpy_helper.to_array(next(t for t in model.onnx_model.graph.initializer
                                         if t.name == "fc.weight"))
    w_ir = model.graph.tensor(model.graph.ops[2].inputs[1]).data
    np.testing.assert_array_equal(w_ir[:, 1], w_torch[:, 20])  # HWC index 1 = (0, 0, c=1)


class View(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


def test_view_through_shape_ops(tmp_path: Path) -> None:
    """x.view(x.size(0), -1) exports as Shape/Gather/Concat/Reshape: folded to one RESHAPE."""
    net = nn.Sequential(nn.Conv2d(2, 3, 3), View(), nn.Linear(3 * 3 * 3, 4))
    model, _ = load(net, (1, 2, 5, 5), tmp_path, fold=False)
    assert kinds(model) == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]


def test_linear_batchnorm1d_relu(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.BatchNorm1d(7), nn.ReLU(),
                        nn.Linear(7, 3, bias=False))
    model, _ = load(net, (1, 12), tmp_path, fold=False)
    assert "BatchNormalization" in onnx_ops(model)
    assert [(op.kind, op.attrs.get("activation")) for op in model.graph.ops] == [
        ("RESHAPE", None), ("FULLY_CONNECTED", "RELU"), ("FULLY_CONNECTED", "NONE")]
    assert model.graph.ops[2].inputs[2] == ""  # no bias stays no bias
    assert model.input_layouts == {model.graph.inputs[0]: "NC"}


class MatMulBias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.randn(6, 4)), nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x @ self.w + self.b, 0, 6)


def test_matmul_add_clip(tmp_path: Path) -> None:
    model, _ = load(MatMulBias(), (1, 6), tmp_path)
    assert onnx_ops(model) == ["MatMul", "Add", "Clip"]
    (op,) = model.graph.ops
    assert (op.kind, op.attrs["activation"]) == ("FULLY_CONNECTED", "RELU6")
    assert model.graph.tensor(op.inputs[1]).shape == (4, 6)


def _handmade(tmp_path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
              shape: list[Any], out_shape: list[Any] | None = None,
              elem: int = TensorProto.FLOAT) -> Path:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, shape)],
                          [helper.make_tensor_value_info("y", elem, out_shape)], inits)
    path = tmp_path / "h.onnx"
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project, each with BatchNorm."""

    def __init__(self, c: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, h, k, stride, k // 2, groups=h, bias=False), nn.BatchNorm2d(h),
            nn.ReLU6(), nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))
        self.residual = stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + x if self.residual else y


@pytest.mark.parametrize("fold", [True, False])
def test_mbconv_network(tmp_path: Path, fold: bool) -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                        MBConv(8, 3, 5, 1), MBConv(8, 6, 7, 2), MBConv(8, 1, 3, 1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    model, _ = load(net, (1, 3, 16, 16), tmp_path, fold=fold)
    assert kinds(model) == [
        "PAD", "CONV_2D",
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD",
        "CONV_2D", "PAD", "DEPTHWISE_CONV_2D", "CONV_2D",
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD",
        "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]
    acts = [op.attrs.get("activation") for op in model.graph.ops if op.kind != "PAD"]
    assert acts[:4] == ["RELU", "RELU6", "RELU6", "NONE"]


def test_auto_pad_same_upper_and_identity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Identity", ["x"], ["xi"]),
             helper.make_node("Conv", ["xi", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
             helper.make_node("Dropout", ["c"], ["y"])]
    model = load_onnx(_handmade(tmp_path, nodes, [w], [1, 2, 8, 8], [1, 4, 4, 4]))
    (op,) = model.graph.ops
    assert op.inputs[0] == "x" and op.outputs == ["c"] and model.graph.outputs == ["c"]
    assert op.attrs["padding"] == "SAME" and model.graph.tensor("c").shape == (1, 4, 4, 4)
    check_semantics(model, rng.standard_normal((3, 2, 8, 8)).astype(np.float32))


def test_batched_run_matches_single_samples(tmp_path: Path) -> None:
    model, _ = load(SpatialFlatten(), (1, 2, 4, 5), tmp_path)
    x = np.random.default_rng(5).standard_normal((5, 2, 4, 5)).astype(np.float32)
    together = float_activations(model, [x])
    assert model._runner.batched is True
    for i in (0, 4):
        alone = float_activations(model, [x[i:i + 1]])
        for n, v in alone.items():
            np.testing.assert_allclose(together[n][i:i + 1], v, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# (c) errors a user can cause
# ---------------------------------------------------------------------------------------------


def test_not_an_onnx_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(TinyEngineError, match=r"notes\.onnx: not an ONNX model"):
        load_onnx(text)
    with pytest.raises(TinyEngineError, match="no such model file"):
        load_onnx(tmp_path / "absent.onnx")


def test_dynamic_batch_needs_input_shape(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    path = export(net, (1, 1, 8, 8), tmp_path / "dyn.onnx", input_names=["image"],
                  dynamic_axes={"image": {0: "batch"}})
    with pytest.raises(TinyEngineError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "'image'" in msg and "dimension 0" in msg and "'batch'" in msg
    assert "--input-shape" in msg and "1,1,8,8" in msg and "\n" not in msg
    model = load_onnx(path, input_shape=(1, 1, 8, 8))
    assert model.graph.tensor("image").shape == (1, 8, 8, 1)
    check_semantics(model, np.random.default_rng(0).standard_normal((4, 1, 8, 8), np.float32))
    with pytest.raises(TinyEngineError, match="--input-shape 1,8,8 does not fit"):
        load_onnx(path, input_shape=(1, 8, 8))


def test_input_shape_overrides_a_fixed_shape(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 2))
    path = export(net, (1, 1, 8, 8), tmp_path / "fixed.onnx")
    model = load_onnx(path, input_shape=(1, 1, 12, 10))
    pool = model.graph.ops[1]
    assert pool.attrs["filter"] == (12, 10)
    check_semantics(model, np.random.default_rng(0).standard_normal((2, 1, 12, 10), np.float32))


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(self.conv(F.elu(x)))
        return torch.abs(self.bn(y)) * 2


def test_unsupported_ops_listed_at_once(tmp_path: Path) -> None:
    path = export(Unsupported(), (1, 3, 6, 6), tmp_path / "u.onnx", fold=False)
    with pytest.raises(UnsupportedError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: unsupported ops: ")
    for part in ("Elu (/Elu)", "Exp (/Exp)",
                 "BatchNormalization (/bn/BatchNormalization): it follows Exp (/Exp), "
                 "and only",
                 "Abs (/Abs)"):
        assert part in msg, part
    assert "Conv" not in msg.split("unsupported ops: ")[1].replace("Conv/ConvTranspose/Gemm", "")


class FlattenToRelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.flatten(x, 1))


def test_chw_flatten_into_non_fc_is_refused(tmp_path: Path) -> None:
    path = export(nn.Sequential(nn.Conv2d(2, 3, 1), FlattenToRelu()), (1, 2, 3, 3),
                  tmp_path / "f.onnx")
    with pytest.raises(UnsupportedError, match=r"Flatten \(/1/Flatten\): flattening NCHW "
                                               r"\(1, 3, 3, 3\) gives CHW order"):
        load_onnx(path)


@pytest.mark.parametrize("elem, name", [(TensorProto.DOUBLE, "DOUBLE"),
                                        (TensorProto.FLOAT16, "FLOAT16"),
                                        (TensorProto.INT8, "INT8")])
def test_non_float32_input_refused(tmp_path: Path, elem: int, name: str) -> None:
    path = _handmade(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [], [1, 4], [1, 4],
                     elem)
    with pytest.raises(TinyEngineError, match=f"input 'x' is {name}; the engine imports float32"):
        load_onnx(path)


def test_float_activations_checks_inputs(tmp_path: Path) -> None:
    model, _ = load(nn.Conv2d(1, 2, 3), (1, 1, 8, 8), tmp_path)
    with pytest.raises(TinyEngineError, match=r"must be numbers of shape \(batch, 1, 8, 8\)"):
        float_activations(model, [np.zeros((2, 8, 8, 1), np.float32)])
    with pytest.raises(TinyEngineError, match="takes 1 input"):
        float_activations(model, [])
