"""Float32 TFLite models, ready for post-training quantisation (the road ONNX models take).

The reader (tflite_reader, `allow_float=True`) gives the float graph: TFLite's own tensors and
names, NHWC activations, weights already in the layouts the quantiser expects (CONV_2D OHWI,
DEPTHWISE_CONV_2D 1HW(C*m), FULLY_CONNECTED [out, in]). Calibration needs the float value of
every tensor of that graph on the calibration data. No op gets a second float definition for
that: the graph is written out as a float ONNX model by the ops' own `to_qdq` hooks
(quantize/qdq.float_onnx_model) and run with onnxruntime; tests hold its outputs to TFLM running
the float .tflite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TinyEngineError
from ..ir import Graph
from .tflite_reader import is_float_graph, load_tflite

_NCHW_TO_NHWC = (0, 2, 3, 1)


@dataclass
class FloatTflite:
    """A float TFLite model: what quantisation, the QDQ export and report.json need of it."""

    graph: Graph  # float32 IR, as TFLite has it (NHWC), quant None
    source: str  # file name
    # The TFLite model is in the engine's layout already: inputs and outputs "AS_IS".
    input_layouts: dict[str, str] = field(default_factory=dict)
    output_layouts: dict[str, str] = field(default_factory=dict)
    shares_quant: dict[str, str] = field(default_factory=dict)  # none: every tensor is TFLite's
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.graph.tensor(self.graph.inputs[0]).shape)


def load_float_tflite(path: str | Path) -> FloatTflite:
    """Read a float32 .tflite model; an int8 model is an error that says to leave out --calib."""
    graph = load_tflite(path, allow_float=True)
    if not is_float_graph(graph):
        raise TinyEngineError(f"{path} is already an int8 model: compile it without --calib "
                              "(calibration is for float models)")
    return FloatTflite(graph, str(path), {n: "AS_IS" for n in graph.inputs},
                       {n: "AS_IS" for n in graph.outputs})


def _session(model: FloatTflite) -> Any:
    import onnxruntime as ort

    from ..quantize.qdq import float_onnx_model

    if model._session is None:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        model._session = ort.InferenceSession(float_onnx_model(model.graph).SerializeToString(),
                                              opts, providers=["CPUExecutionProvider"])
    return model._session


def float_activations(model: FloatTflite, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Every activation of the float graph (IR layout, batch along axis 0) for `inputs`, one
    array per graph input, each (batch, *input shape[1:]) in the TFLite model's own layout."""
    graph = model.graph
    if len(inputs) != len(graph.inputs):
        raise TinyEngineError(f"{model.source}: the model takes {len(graph.inputs)} input(s), "
                              f"got {len(inputs)}")
    feeds = {}
    for name, x in zip(graph.inputs, inputs):
        want = graph.tensor(name).shape
        x = np.asarray(x)
        if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]) or x.shape[0] < 1:
            raise TinyEngineError(f"{model.source}: input '{name}' must be of shape (batch, "
                                  f"{', '.join(map(str, want[1:]))}), got {tuple(x.shape)}")
        feeds[name] = np.ascontiguousarray(x, np.float32)
    sess = _session(model)
    names = [o.name for o in sess.get_outputs()]
    n = len(next(iter(feeds.values())))
    # The exported graph has TFLite's fixed batch of 1 folded into its reshapes: one at a time.
    runs = [sess.run(names, {k: v[j:j + 1] for k, v in feeds.items()}) for j in range(n)]
    values = dict(feeds)
    for i, name in enumerate(names):
        v = np.concatenate([r[i] for r in runs])
        values[name] = v.transpose(_NCHW_TO_NHWC) if v.ndim == 4 else v
    return values


def quantize_float_tflite(model: FloatTflite, batches: Sequence[np.ndarray],
                          method: str = "minmax") -> Graph:
    """Calibrate on `batches` (single-input models: arrays in the TFLite input layout) and
    quantise with TFLite's int8 scheme (quantize/ptq.py)."""
    from ..progress import progress_bar
    from ..quantize import calibration_ranges, observe, quantize_graph

    if len(model.graph.inputs) != 1:
        raise TinyEngineError(f"{model.source}: calibration of models with "
                              f"{len(model.graph.inputs)} inputs is not supported (one input)")
    if len(batches) == 0:
        raise TinyEngineError("no calibration batches; calibration needs at least one sample")
    runs = (float_activations(model, [b]) for b in progress_bar(
        batches, desc="calibrating", unit="batch"))
    ranges = calibration_ranges(observe(runs, method), method)
    return quantize_graph(model.graph, ranges, model.shares_quant)
