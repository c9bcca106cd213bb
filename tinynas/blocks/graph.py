"""A weightless engine graph, written the way the engine's ONNX import writes a subnet.

Each block kind emits its ops here (`BlockKind.emit`); the search prices the graph with
`tinyengine.cost.estimate`, the engine's own resource model, and tests hold every kind's graph
equal to what `tinyengine.convert.compile_torch` builds from the kind's standalone module
(tests/test_tinynas_blocks.py). Constants carry no values (`const=True`): no figure depends on
them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyengine.ir import Graph, Op, QuantParams, Tensor

# Any valid per-tensor parameters: no figure depends on the values.
ACT_Q = QuantParams(np.array([0.05], np.float32), np.array([-128], np.int64))


def same_out(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


class GraphBuilder:
    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    def act(self, name: str, shape: tuple[int, ...], dtype: str = "int8") -> str:
        self.tensors[name] = Tensor(name, shape, dtype, None if dtype == "float32" else ACT_Q)
        return name

    def const(self, name: str, shape: tuple[int, ...], dtype: str) -> str:
        self.tensors[name] = Tensor(name, shape, dtype, const=True)
        return name

    def op(self, name: str, kind: str, inputs: list[str], output: str,
           attrs: dict[str, Any]) -> str:
        self.ops.append(Op(name, kind, inputs, [output], attrs))
        return output

    def shape(self, x: str) -> tuple[int, ...]:
        return self.tensors[x].shape

    def conv(self, name: str, x: str, cout: int, k: int | tuple[int, int],
             stride: int | tuple[int, int], activation: str, depthwise: bool = False) -> str:
        """CONV_2D / DEPTHWISE_CONV_2D with SAME padding, BN folded, activation fused."""
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        _, h, w, cin = self.shape(x)
        attrs: dict[str, Any] = {"stride": (sh, sw), "dilation": (1, 1), "padding": "SAME",
                                 "activation": activation}
        if depthwise:
            cout = cin
            wt = self.const(f"{name}.filter", (1, kh, kw, cin), "int8")
            attrs["depth_multiplier"] = 1
        else:
            wt = self.const(f"{name}.filter", (cout, kh, kw, cin), "int8")
            attrs["groups"] = 1
        b = self.const(f"{name}.bias", (cout,), "int32")
        y = self.act(f"{name}:out", (1, same_out(h, sh), same_out(w, sw), cout))
        return self.op(name, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, wt, b], y,
                       attrs)

    def add(self, name: str, a: str, b: str) -> str:
        return self.op(name, "ADD", [a, b], self.act(f"{name}:out", self.shape(b)),
                       {"activation": "NONE"})

    def pool(self, name: str, x: str, kind: str, k: tuple[int, int],
             stride: tuple[int, int]) -> str:
        """MAX_POOL_2D / AVERAGE_POOL_2D without padding (PyTorch's floor rule = VALID)."""
        _, h, w, c = self.shape(x)
        oh, ow = (h - k[0]) // stride[0] + 1, (w - k[1]) // stride[1] + 1
        return self.op(name, kind, [x], self.act(f"{name}:out", (1, oh, ow, c)),
                       {"stride": stride, "filter": k, "padding": "VALID",
                        "activation": "NONE"})

    def dense(self, name: str, x: str, out: int, activation: str) -> str:
        _, n = self.shape(x)
        wt = self.const(f"{name}.weights", (out, n), "int8")
        b = self.const(f"{name}.bias", (out,), "int32")
        return self.op(name, "FULLY_CONNECTED", [x, wt, b], self.act(f"{name}:out", (1, out)),
                       {"activation": activation, "keep_num_dims": False})

    def graph(self, inputs: list[str], outputs: list[str], name: str) -> Graph:
        return Graph(self.tensors, self.ops, inputs, outputs, name=name)
