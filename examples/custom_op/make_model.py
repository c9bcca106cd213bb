"""Write a small int8 .tflite whose middle op is the CUSTOM operator "UserSquare":
CONV_2D 3x3 -> UserSquare -> AVERAGE_POOL_2D. Then compile and check it:

    python examples/custom_op/make_model.py out/square.tflite
    tinyengine compile out/square.tflite --ops examples/custom_op/square_op.py -o out/square
    tinyengine verify out/square.tflite --ops examples/custom_op/square_op.py --no-tflm

(TFLM has no kernel for a user's op, so `verify` compares the C with the op's own reference.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import load_op_library


def qp(scale: float, zp: int, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.float32(scale)), np.atleast_1d(np.int64(zp)), axis)


def square_model() -> Graph:
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (6, 3, 3, 4), dtype=np.int8)
    tensors = {
        "x": Tensor("x", (1, 8, 8, 4), "int8", qp(0.05, 3)),
        "w": Tensor("w", w.shape, "int8", QuantParams(np.full(6, 0.01, np.float32),
                                                       np.zeros(6, np.int64), 0), w),
        "conv": Tensor("conv", (1, 8, 8, 6), "int8", qp(0.2, -5)),
        "sq": Tensor("sq", (1, 8, 8, 6), "int8", qp(0.5, -128)),
        "y": Tensor("y", (1, 4, 4, 6), "int8", qp(0.5, -128)),
    }
    ops = [Op("conv", "CONV_2D", ["x", "w", ""], ["conv"],
              {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1), "activation": "NONE"}),
           Op("square", "USER_SQUARE", ["conv"], ["sq"]),
           Op("pool", "AVERAGE_POOL_2D", ["sq"], ["y"],
              {"stride": (2, 2), "filter": (2, 2), "padding": "VALID", "activation": "NONE"})]
    graph = Graph(tensors, ops, ["x"], ["y"], name="square")
    verify(graph)
    return graph


def main(out: str) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite

    load_op_library(Path(__file__).with_name("square_op.py"))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(write_tflite(square_model()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/square.tflite")
