"""Inputs and outputs in the source model's own form.

An ONNX float model takes float NCHW tensors and gives float outputs; its compiled engine takes
float NHWC (the QUANTIZE op inside converts with the input's parameters) and gives float NHWC
(DEQUANTIZE inside). report.json's "source_model" records the layouts and the output
quantisation so that `tinyengine run` can speak the source model's language, and give the raw
int8 outputs on request. A float TFLite model is NHWC already (layout "AS_IS": nothing to move).

Compiled with int8 I/O (`--io int8`, source_model "io": "int8"), the engine takes and gives the
int8 tensors themselves: `run` then takes int8 inputs in the source layout (quantised by the
caller with the "scale" and "zero_point" recorded for each input) and gives the int8 outputs,
as `--raw` does for float I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import TinyEngineError
from .inputs import as_batch
from .ir import QRANGE

_NCHW_TO_NHWC = (0, 2, 3, 1)
_NHWC_TO_NCHW = (0, 3, 1, 2)


def source_input_batches(report: dict[str, Any], arrays: list[np.ndarray],
                         names: list[str]) -> tuple[list[np.ndarray], bool]:
    """User arrays (one per input, in the source layout) -> engine batches (N, *engine shape)."""
    specs = report["inputs"]
    src = {s["name"]: s for s in report.get("source_model", {}).get("inputs", [])}
    out, batched_all = [], []
    for x, spec, what in zip(arrays, specs, names):
        s = src.get(spec["name"])
        layout = s["layout"] if s else "engine"
        shape = s["shape"] if s else spec["shape"]
        batch, batched = as_batch(x, {"shape": shape, "size": int(np.prod(shape)),
                                      "dtype": spec["dtype"]}, what)
        if layout == "NCHW":
            batch = batch.transpose((0,) + tuple(1 + a for a in _NCHW_TO_NHWC))
        out.append(np.ascontiguousarray(batch.reshape((len(batch), *spec["shape"]))))
        batched_all.append(batched)
    if len({len(b) for b in out}) > 1:
        raise TinyEngineError("the --input batches have different lengths")
    return out, all(batched_all)


def source_outputs(report: dict[str, Any], outputs: list[np.ndarray], raw: bool
                   ) -> list[np.ndarray]:
    """Engine outputs (N, *engine shape) -> the source form: layout restored, and with `raw`
    the int8 (or int16) values the model computed before its final DEQUANTIZE."""
    src = {s["name"]: s for s in report.get("source_model", {}).get("outputs", [])}
    result = []
    for y, spec in zip(outputs, report["outputs"]):
        s = src.get(spec["name"])
        if raw and y.dtype.kind == "f":
            if s is None or s.get("scale") is None:
                raise TinyEngineError(f"output {spec['name']} has no integer form to give with "
                                      "--raw")
            # DEQUANTIZE computed y = scale * (q - zp) exactly in double then rounded to float:
            # dividing back and rounding recovers q.
            qtype = s.get("quant_dtype", "int8")  # int16 for a 16x8 model's output
            lo, hi = QRANGE[qtype]
            y = np.clip(np.rint(y.astype(np.float64) / s["scale"]) + s["zero_point"], lo,
                        hi).astype(qtype)
        if s is not None and s.get("layout") == "NCHW":
            y = y.transpose((0,) + tuple(1 + a for a in _NHWC_TO_NCHW))
        result.append(y)
    return result
