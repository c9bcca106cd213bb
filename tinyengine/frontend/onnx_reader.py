"""ONNX frontend: a float ONNX model -> the engine's IR in float32, ready for calibration.

The model is read with the `onnx` package: checked, its inputs fixed to static shapes, constant
subgraphs folded (torch exports paddings and reshape targets as chains of small ops) and shapes
inferred. Each supported node type has one converter in `_CONVERTERS`; everything the engine cannot
run is collected and reported in one error, not one at a time.

Layout: ONNX activations are NCHW, the engine's NHWC. Every 4-D activation is transposed, weights
go to TFLite's layouts (CONV_2D OHWI, DEPTHWISE_CONV_2D 1HW(C*m), FULLY_CONNECTED [out, in]), and
a Flatten of an NCHW tensor with C > 1 and H*W > 1 (CHW order, where the engine holds HWC) is
absorbed by permuting the columns of the Gemm/MatMul that reads it.

Fusion: BatchNormalization and per-channel constant Adds after a Conv/Gemm/MatMul fold into its
weights and bias; a Relu or Clip(0, 6) after a Conv/Gemm/MatMul/Add/pool becomes its fused
activation. A fused chain's IR output is the last node's ONNX output, so onnxruntime can produce
every IR activation by name (`float_activations`); the only exceptions are PAD ops we insert for
paddings that TFLite's SAME/VALID cannot express, listed in `FloatModel.shares_quant`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Tensor
from .onnx_ops import Unsupported, _opset, _prepare, _static_shapes, nhwc, onnx_converters


@dataclass
class FloatModel:
    graph: Graph  # float32 IR, NHWC activations, TFLite weight layouts, quant None
    onnx_model: onnx.ModelProto  # the source model as imported (static shapes, folded constants)
    source: str  # file name
    input_layouts: dict[str, str]  # IR input -> "NCHW" (IR holds NHWC), "NC" or "AS_IS"
    output_layouts: dict[str, str]  # IR output -> "NCHW" (IR holds NHWC), "NC" or "AS_IS"
    shares_quant: dict[str, str]  # IR tensor with no ONNX counterpart -> tensor it shares with
    # IR tensors holding a Flatten of an NCHW (C, H, W) tensor: ONNX has them in CHW order, the
    # IR in HWC order.
    chw_flattened: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    _runner: Any = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------------------------------
# Reading: load, fix input shapes, fold constants, infer shapes
# ---------------------------------------------------------------------------------------------

def _layout(rank: int) -> str:
    return {4: "NCHW", 2: "NC"}.get(rank, "AS_IS")


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise TinyEngineError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError and friends on a non-ONNX file
        raise TinyEngineError(f"{path}: not an ONNX model ({type(e).__name__}); pass a .onnx "
                              "file exported with torch.onnx.export or similar") from None
    if not isinstance(model, onnx.ModelProto) or not model.HasField("graph") \
            or len(model.graph.node) == 0:
        raise TinyEngineError(f"{path}: not an ONNX model (no graph); pass a .onnx file exported "
                              "with torch.onnx.export or similar")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TinyEngineError(f"{path}: the ONNX checker rejects the model: {first}") from None
    for init in model.graph.initializer:  # the checker does not compare data with dims
        try:
            numpy_helper.to_array(init)
        except Exception as e:
            raise TinyEngineError(f"{path}: initializer {init.name}: its data does not match "
                                  f"its dims {list(init.dims)} ({type(e).__name__}); the file "
                                  "is corrupt") from None
    return model


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _fix_input_shapes(model: onnx.ModelProto, source: str,
                      input_shape: tuple[int, ...] | None) -> None:
    """Make every input static and float32, batch 1; `input_shape` replaces the first one's.
    Recorded intermediate and output shapes are dropped: shape inference redoes them."""
    del model.graph.value_info[:]
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")
    for k, v in enumerate(_graph_inputs(model)):
        tt = v.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            name = onnx.TensorProto.DataType.Name(tt.elem_type)
            raise TinyEngineError(f"{source}: input '{v.name}' is {name}; the engine imports "
                                  "float32 models (re-export the model with float32 inputs)")
        dims = tt.shape.dim
        if k == 0 and input_shape is not None:
            if len(input_shape) != len(dims) or any(int(d) < 1 for d in input_shape):
                raise TinyEngineError(
                    f"{source}: --input-shape {','.join(map(str, input_shape))} does not fit "
                    f"input '{v.name}' of rank {len(dims)}; give {len(dims)} positive sizes")
            for d, size in zip(dims, input_shape):
                d.Clear()
                d.dim_value = int(size)
        shown = tuple(d.dim_param or d.dim_value or "?" for d in dims)
        for i, d in enumerate(dims):
            if d.dim_value <= 0:
                example = ",".join(str(e.dim_value) if e.dim_value > 0 else "1" if j == 0
                                   else "SIZE" for j, e in enumerate(dims))
                fix = (f"pass --input-shape {example} (Python: input_shape=...)" if k == 0
                       else "re-export the model with a fixed shape for it")
                raise TinyEngineError(
                    f"{source}: input '{v.name}' has a dynamic dimension {i} "
                    f"('{d.dim_param or '?'}') in shape {shown}; the engine needs fixed shapes: "
                    f"{fix}")
        if len(dims) > 1 and dims[0].dim_value != 1:
            raise TinyEngineError(f"{source}: input '{v.name}' has batch {dims[0].dim_value}; "
                                  "the engine runs one sample at a time: pass --input-shape with "
                                  "batch 1")


def _infer(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, data_prop=True)
    except Exception as e:
        raise TinyEngineError(f"{source}: ONNX shape inference fails: "
                              f"{str(e).strip().splitlines()[0]}") from None


# Nodes never folded even with constant inputs: random, or with subgraphs.
_NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
            "Multinomial", "Bernoulli", "If", "Loop", "Scan"}


def _fold_node(node: onnx.NodeProto, consts: dict[str, np.ndarray],
               shapes: dict[str, tuple[int, ...]], opset: int) -> list[np.ndarray] | None:
    """The node's outputs if they are constants (all inputs constant, or a Shape of a static
    tensor), else None."""
    from onnx.reference import ReferenceEvaluator

    if node.domain not in ("", "ai.onnx") or node.op_type in _NO_FOLD:
        return None
    if node.op_type == "Shape" and node.input[0] in shapes:
        a = {x.name: x.i for x in node.attribute}
        dims = shapes[node.input[0]]
        return [np.array(dims[a.get("start", 0):a.get("end", len(dims))], np.int64)]
    inputs = [n for n in node.input if n]
    if (not inputs and node.op_type != "Constant") or any(n not in consts for n in inputs):
        return None
    try:
        ev = ReferenceEvaluator(node, opsets={"": opset})
        return [np.asarray(v) for v in ev.run(None, {n: consts[n] for n in inputs})]
    except Exception:  # leave it to the converters, which report what they cannot run
        return None


def _fold_constants(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """Replace nodes that compute constants by initializers, re-inferring shapes each round."""
    opset = _opset(model)
    for _ in range(8):
        model = _infer(model, source)
        g = model.graph
        consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        shapes = _static_shapes(model)
        keep: list[onnx.NodeProto] = []
        folded: list[onnx.TensorProto] = []
        for node in g.node:
            values = _fold_node(node, consts, shapes, opset)
            if values is None or len(values) != len(node.output):
                keep.append(node)
                continue
            for name, v in zip(node.output, values):
                consts[name] = v
                folded.append(numpy_helper.from_array(v, name))
        if not folded:
            return model
        used = {n for node in keep for n in node.input} | {o.name for o in g.output}
        inits = [t for t in list(g.initializer) + folded if t.name in used]
        del g.node[:]
        g.node.extend(keep)
        del g.initializer[:]
        g.initializer.extend(inits)
        inputs = [v for v in g.input if v.name in used or v.name not in consts]
        del g.input[:]
        g.input.extend(inputs)
    return _infer(model, source)


# ---------------------------------------------------------------------------------------------
# The converter's view of the ONNX graph, and the IR being built
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------

def load_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> FloatModel:
    """Import a float ONNX model; `input_shape` (ONNX layout, e.g. (1, 1, 8, 8)) fixes the
    first input's shape. Raises TinyEngineError on bad input, listing every unsupported node."""
    path = Path(path)
    source = str(path)
    model = _read(path)
    _fix_input_shapes(model, source, input_shape)
    model = _fold_constants(model, source)
    b = _prepare(model, source)
    inputs = [v.name for v in _graph_inputs(model)]
    for n in inputs:
        b.tensors[n] = Tensor(n, nhwc(b.shape(n)), "float32")
    unsupported: list[str] = []
    converters = onnx_converters()
    for i, node in enumerate(b.nodes):
        if i in b.fused:
            continue
        convert = converters.get(node.op_type)
        label = f"{node.op_type} ({node.name or node.output[0]})"
        if convert is None or node.domain not in ("", "ai.onnx"):
            unsupported.append(label)
            continue
        try:
            convert(b, i, node)
        except Unsupported as e:
            unsupported.append(f"{label}: {e}")
    if unsupported:
        raise UnsupportedError(f"{source}: unsupported ops: {'; '.join(unsupported)}; a missing "
                               "op can be registered from your own file with `--ops FILE.py` "
                               "(README: user-defined ops)")
    outputs = [b.name(o.name) for o in model.graph.output]
    for n in outputs:
        if n not in b.tensors or b.tensors[n].is_const:
            raise UnsupportedError(f"{source}: graph output {n} is not computed by any op")
    graph = Graph(b.tensors, b.ops, inputs, outputs, name=path.stem)
    return FloatModel(graph, model, source,
                      {n: _layout(len(b.shape(n))) for n in inputs},
                      {n: _layout(len(b.shape(n))) for n in outputs},
                      b.shares_quant, b.chw_flattened)


class _Runner:
    """An onnxruntime session that also returns every IR activation, batch dimension freed.

    The first multi-sample call checks that batched results agree with one-sample results (a
    model exported for batch 1 may have reshape targets with the 1 folded in); if they do not,
    samples run one at a time.
    """

    def __init__(self, model: FloatModel, fetch: list[str]):
        import onnxruntime as ort

        m = onnx.ModelProto()
        m.CopyFrom(model.onnx_model)
        g = m.graph
        for v in _graph_inputs(m):
            dims = v.type.tensor_type.shape.dim
            if len(dims) > 0:
                dims[0].Clear()
                dims[0].dim_param = "batch"
        del g.value_info[:]
        for o in g.output:
            o.type.tensor_type.ClearField("shape")
        present = {o.name for o in g.output}
        g.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                        for n in fetch if n not in present)
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # its own log lines would reach the user's stderr
        self.source = model.source
        try:
            self.session = ort.InferenceSession(m.SerializeToString(), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise TinyEngineError(f"{model.source}: onnxruntime cannot run the model: "
                                  f"{str(e).strip().splitlines()[0]}") from None
        self.fetch = fetch
        self.batched: bool | None = None

    def _once(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return dict(zip(self.fetch, self.session.run(self.fetch, feeds)))
        except Exception as e:  # onnxruntime rejects what the checker let through
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TinyEngineError(f"{self.source}: onnxruntime cannot run the model on the "
                                  f"calibration data: {first}") from None

    def run(self, feeds: dict[str, np.ndarray], expect: dict[str, tuple[int, ...]]
            ) -> dict[str, np.ndarray]:
        n = next(iter(feeds.values())).shape[0]
        if n > 1 and self.batched is not False:
            try:
                out = self._once(feeds)
                ok = all(out[k].shape == (n,) + expect[k][1:] for k in self.fetch)
                if ok and self.batched is None:
                    one = self._once({k: v[:1] for k, v in feeds.items()})
                    ok = all(np.allclose(one[k], out[k][:1], rtol=1e-4, atol=1e-5)
                             for k in self.fetch)
            except Exception:
                ok = False
            self.batched = ok
            if ok:
                return out
        parts = [self._once({k: v[j:j + 1] for k, v in feeds.items()}) for j in range(n)]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.fetch}


def _to_ir_layout(model: FloatModel, name: str, value: np.ndarray) -> np.ndarray:
    if name in model.chw_flattened:
        c, h, w = model.chw_flattened[name]
        return value.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(value.shape[0], -1)
    return value.transpose(0, 2, 3, 1) if value.ndim == 4 else value


def float_activations(model: FloatModel, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Run the ONNX model with onnxruntime on `inputs` (in the ONNX model's own layout, e.g.
    NCHW, with a batch along axis 0), returning every IR activation tensor's float value in IR
    layout (NHWC for 4-D), keyed by IR tensor name, graph inputs and outputs included (not the
    synthetic tensors in shares_quant)."""
    graph = model.graph
    if len(inputs) != len(graph.inputs):
        raise TinyEngineError(f"{model.source}: the model takes {len(graph.inputs)} input(s), "
                              f"got {len(inputs)}")
    onnx_shapes = _static_shapes(model.onnx_model)
    feeds: dict[str, np.ndarray] = {}
    for name, x in zip(graph.inputs, inputs):
        x = np.asarray(x)
        want = onnx_shapes[name]
        if x.ndim != len(want) or tuple(x.shape[1:]) != want[1:] or x.shape[0] < 1 \
                or not np.issubdtype(x.dtype, np.number):
            raise TinyEngineError(
                f"{model.source}: input '{name}' must be numbers of shape "
                f"(batch, {', '.join(map(str, want[1:]))}) in the ONNX model's layout, got "
                f"{x.dtype} {tuple(x.shape)}")
        feeds[name] = np.ascontiguousarray(x, np.float32)
    if len({x.shape[0] for x in feeds.values()}) > 1:
        raise TinyEngineError(f"{model.source}: the inputs have different batch sizes")
    fetch = [t.name for t in graph.activations()
             if t.name not in graph.inputs and t.name not in model.shares_quant]
    if model._runner is None:
        model._runner = _Runner(model, fetch)
    raw = model._runner.run(feeds, {n: onnx_shapes[n] for n in fetch})
    values = {n: _to_ir_layout(model, n, v) for n, v in {**feeds, **raw}.items()}
    for n, v in values.items():
        assert v.shape[1:] == graph.tensor(n).shape[1:], (n, v.shape, graph.tensor(n).shape)
    return values
