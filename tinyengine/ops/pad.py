"""PAD: constant padding of an int8 or int16 tensor of rank 1 to 4.

Semantics: TFLM's pad.cc without a constant_values input (PAD; the engine does not import
PADV2). For int8 the padding holds the output zero point (real 0.0); for int16 TFLM's Eval pads
with the literal 0 whatever the zero point, which is real 0.0 only because 16x8 activations are
symmetric (check_io insists on it, so the two rules never disagree here). The input values are
copied unchanged, whatever the two tensors' quantisation (TFLM does not requantise, and the
converter gives them the same). Tensors of lower rank are extended to 4-D with leading unpadded
dimensions of 1, as TFLite's reference Pad does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import (
    Arg,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    Window,
    register,
)
from .common import (
    CTYPE,
    SUFFIX,
    check_io,
    io_dtype,
    tflite_const,
    tflite_import,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


def _paddings(op: Op) -> list[tuple[int, int]]:
    return [(int(b), int(a)) for b, a in op.attrs["paddings"]]


def pad_value(graph: Graph, op: Op) -> int:
    """The value TFLM's PAD writes: the output zero point for int8, 0 for int16."""
    out = graph.tensor(op.outputs[0])
    return out.zero_point if out.dtype == "int8" else 0


def _extend4(shape: tuple[int, ...], pads: list[tuple[int, int]]
             ) -> tuple[list[int], list[tuple[int, int]]]:
    lead = 4 - len(shape)
    return [1] * lead + list(shape), [(0, 0)] * lead + pads


@register
class Pad(OpDef):
    kind = "PAD"
    dtypes = ("int8", "int16")
    # Spatial padding of an NHWC tensor is a 1x1 window with padding (torch exports a stride-2
    # convolution as PAD + VALID conv): it runs patch by patch, each patch padded only where its
    # window meets the image border.
    patch = "windowed"
    onnx_types = ("Pad",)
    not_applicable = frozenset({"scratch_bytes", "macs"})

    def window(self, graph: Graph, op: Op) -> Window | None:
        pads = _paddings(op)
        if len(pads) != 4 or pads[0] != (0, 0) or pads[3] != (0, 0):
            return None  # batch or channel padding: not a spatial window
        return 1, 1, 1, 1, 1, 1, pads[1][0], pads[2][0]

    def patch_attrs(self, op: Op, window: tuple[int, int, int, int],
                    input_shape: tuple[int, ...]) -> dict[str, Any]:
        oh, ow, top, left = window
        _, ih, iw, _ = input_shape
        return {"paddings": [(0, 0), (top, oh - ih - top), (left, ow - iw - left), (0, 0)]}

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        pads = tflite_const(inputs, 1, "PAD paddings").reshape(-1, 2)
        return tflite_import({"paddings": [(int(a), int(b)) for a, b in pads]}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        paddings = np.array(op.attrs["paddings"], np.int32).reshape(-1, 2)
        return TfliteLowering("PadOptions", fb.PadOptionsT(), [paddings])

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        _pad_from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _pad_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_pad_{SUFFIX[io_dtype(graph, op)]}"

    def check(self, graph: Graph, op: Op) -> None:
        check_io(graph, op, 1, self.dtypes)
        x = graph.tensor(op.inputs[0])
        pads = op.attrs.get("paddings")
        if not 1 <= len(x.shape) <= 4:
            raise UnsupportedError(f"op {op.name} (PAD): input {x.name} has rank {len(x.shape)}; "
                                   "only ranks 1 to 4 are supported")
        if pads is None or len(pads) != len(x.shape) or any(len(p) != 2 for p in pads):
            raise UnsupportedError(f"op {op.name} (PAD): paddings {pads} must hold one "
                                   f"(before, after) pair for each of the {len(x.shape)} dims")
        if any(v < 0 for p in _paddings(op) for v in p):
            raise UnsupportedError(f"op {op.name} (PAD): negative paddings {pads} (cropping) "
                                   "are not supported")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        return [tuple(d + b + a for d, (b, a) in zip(x.shape, _paddings(op), strict=True))]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        dtype = graph.tensor(op.outputs[0]).dtype
        return [np.pad(inputs[0].astype(dtype), _paddings(op),
                       constant_values=pad_value(graph, op))]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        in4, pads4 = _extend4(x.shape, _paddings(op))
        out4 = [d + b + a for d, (b, a) in zip(in4, pads4, strict=True)]
        ctype = CTYPE[out.dtype]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_pad_params_t",
            params={
                "input": in4, "output": out4,
                "pad_before": [b for b, _ in pads4], "pad_after": [a for _, a in pads4],
                "pad_value": pad_value(graph, op),
            },
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=["te_common.h", "te_pad.h", "te_pad.c"],
        )


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _pad_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    a = ox.node_attrs(node)
    x = b.activation(node.input[0])
    if a.get("mode", "constant") != "constant":
        raise ox.Unsupported(f"mode {a['mode']}: only constant padding is supported")
    if len(node.input) > 3 and node.input[3]:
        raise ox.Unsupported("the axes input is not supported")
    if len(node.input) > 2 and node.input[2] and np.any(b.const(node.input[2], "value") != 0):
        raise ox.Unsupported("only padding with 0 is supported")
    pads = a.get("pads") if len(node.input) < 2 or not node.input[1] else \
        b.const(node.input[1], "pads").astype(np.int64).tolist()
    rank = len(b.shape(x))
    if pads is None or len(pads) != 2 * rank or min(pads) < 0:
        raise ox.Unsupported(f"pads {pads}: need {2 * rank} non-negative values")
    order = (0, 2, 3, 1) if rank == 4 else tuple(range(rank))
    b.emit("PAD", node, [x], node.output[0],
           {"paddings": [(int(pads[d]), int(pads[d + rank])) for d in order]})


def _pad_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    pads = [(int(p), int(q)) for p, q in op.attrs["paddings"]]
    if len(pads) == 4:
        pads = [pads[i] for i in qx.NCHW]
    amounts = b.const("pads", np.array([p for p, _ in pads] + [q for _, q in pads], np.int64))
    return b.node("Pad", [b.dequantized(op.inputs[0]), amounts], op.name)
