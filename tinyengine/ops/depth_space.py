"""DEPTH_TO_SPACE and SPACE_TO_DEPTH: int8 NHWC rearrangements between channels and pixels.

Reference semantics: TFLM's depth_to_space.cc and space_to_depth.cc (reference_ops::DepthToSpace
/ SpaceToDepth), byte moves on 4-D tensors. With block size b and C the channels of the
shallow (wide) tensor:
  wide[n, h, w, c] = deep[n, h // b, w // b, ((h % b) * b + w % b) * C + c]
DEPTH_TO_SPACE reads deep and writes wide, SPACE_TO_DEPTH the reverse. This channel order is
ONNX's DCR mode on NCHW (ONNX's CRD mode agrees with it only when C is 1). Input and output
share one quantisation (TFLite's converter gives them one; the kernels cannot requantise).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import check_int8_io, dims4, tflite_options
from .concatenation import check_same_quant

if TYPE_CHECKING:
    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_depth_space.h", "te_depth_space.c"]


def depth_to_space(deep: np.ndarray, b: int) -> np.ndarray:
    """The wide NHWC array of a deep one (the formula in the module docstring)."""
    n, h, w, cd = deep.shape
    c = cd // (b * b)
    # deep[n, h, w, (i, j, c)] -> wide[n, (h, i), (w, j), c]
    return np.ascontiguousarray(
        deep.reshape(n, h, w, b, b, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c))


def space_to_depth(wide: np.ndarray, b: int) -> np.ndarray:
    """The deep NHWC array of a wide one: the inverse of depth_to_space."""
    n, hw, ww, c = wide.shape
    h, w = hw // b, ww // b
    return np.ascontiguousarray(
        wide.reshape(n, h, b, w, b, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, b * b * c))


class _DepthSpace(OpDef):
    dtypes = ("int8",)
    patch = "none"
    not_applicable = frozenset({"scratch_bytes", "window"})
    options = ""  # TFLite options table
    onnx_op = ""

    def _check_shape(self, op: Op, x: Tensor, b: int) -> None:
        raise NotImplementedError

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 1 or not op.inputs[0] or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs one input and one output")
        check_int8_io(graph, op)
        x = graph.tensor(op.inputs[0])
        if x.is_const:
            raise UnsupportedError(f"{where}: input {x.name} is a constant")
        if len(x.shape) != 4:
            raise UnsupportedError(f"{where}: input {x.name} {x.shape} is not 4-D NHWC; only "
                                   "4-D tensors are supported")
        b = op.attrs.get("block_size")
        if not isinstance(b, (int, np.integer)) or b < 1:
            raise UnsupportedError(f"{where}: block size {b!r} must be a positive integer")
        self._check_shape(op, x, int(b))
        check_same_quant(graph, op, [x.name], op.outputs[0])

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # a copy

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_depth_space_params_t",
            params={"input": dims4(x.shape), "output": dims4(y.shape),
                    "block_size": int(op.attrs["block_size"])},
            args=[Arg("tensor", x.name, "const int8_t"), Arg("tensor", y.name, "int8_t")],
            sources=list(SOURCES))

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, self.options)
        if o is None:
            raise UnsupportedError(f"{self.kind} without its options (the block size)")
        return TfliteImport({"block_size": int(o.BlockSize())}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = getattr(fb, f"{self.options}T")()
        o.blockSize = int(op.attrs["block_size"])
        return TfliteLowering(self.options, o)

    def _onnx_block(self, b: OnnxBuilder, node: NodeProto) -> int:
        from ..frontend import onnx_ops as ox

        a = ox.node_attrs(node)
        if "blocksize" not in a or int(a["blocksize"]) < 1:
            raise ox.Unsupported(f"blocksize {a.get('blocksize')!r} must be a positive integer")
        return int(a["blocksize"])

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        attrs: dict[str, Any] = {"blocksize": int(op.attrs["block_size"])}
        if self.onnx_op == "DepthToSpace":
            attrs["mode"] = "DCR"  # TFLite's channel order (module docstring)
        return str(b.node(self.onnx_op, [b.dequantized(op.inputs[0])], op.name, **attrs))

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])


@register
class DepthToSpace(_DepthSpace):
    kind = "DEPTH_TO_SPACE"
    onnx_types = ("DepthToSpace",)
    options = "DepthToSpaceOptions"
    onnx_op = "DepthToSpace"

    def _check_shape(self, op: Op, x: Tensor, b: int) -> None:
        if x.shape[3] % (b * b):
            raise UnsupportedError(f"op {op.name} ({op.kind}): block size {b} does not divide "
                                   f"input {x.name} {x.shape}: its {x.shape[3]} channels must "
                                   f"be a multiple of {b * b}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        n, h, w, c = graph.tensor(op.inputs[0]).shape
        b = int(op.attrs["block_size"])
        return [(n, h * b, w * b, c // (b * b))]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [depth_to_space(inputs[0], int(op.attrs["block_size"]))]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_depth_to_space_s8"

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox

        x = b.activation(node.input[0], rank=(4,))
        block = self._onnx_block(b, node)
        mode = str(ox.node_attrs(node).get("mode", "DCR"))
        out_channels = b.shape(x)[1] // (block * block)
        # CRD reads channel c * b * b + i * b + j where DCR reads (i * b + j) * C + c: the same
        # channel exactly when C is 1.
        if mode != "DCR" and not (mode == "CRD" and out_channels == 1):
            raise ox.Unsupported(f"mode {mode}: TFLite's DEPTH_TO_SPACE is ONNX's DCR mode (CRD "
                                 "only agrees with it for one output channel)")
        b.emit(self.kind, node, [x], node.output[0], {"block_size": block})


@register
class SpaceToDepth(_DepthSpace):
    kind = "SPACE_TO_DEPTH"
    onnx_types = ("SpaceToDepth",)
    options = "SpaceToDepthOptions"
    onnx_op = "SpaceToDepth"

    def _check_shape(self, op: Op, x: Tensor, b: int) -> None:
        if x.shape[1] % b or x.shape[2] % b:
            raise UnsupportedError(f"op {op.name} ({op.kind}): block size {b} does not divide "
                                   f"the height and width of input {x.name} {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        n, h, w, c = graph.tensor(op.inputs[0]).shape
        b = int(op.attrs["block_size"])
        return [(n, h // b, w // b, c * b * b)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [space_to_depth(inputs[0], int(op.attrs["block_size"]))]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_space_to_depth_s8"

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        x = b.activation(node.input[0], rank=(4,))
        b.emit(self.kind, node, [x], node.output[0], {"block_size": self._onnx_block(b, node)})
