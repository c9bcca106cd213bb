"""The PyTorch-exported MobileNetV2 (NCHW input behind a TRANSPOSE, explicit PADs): generated C
== numpy reference == TFLM on 20 seeded random inputs, with an arena no larger than TFLM's head
(2,451,840 B, measured with the tflite-micro package: ../shared/models/MANIFEST.md)."""

from __future__ import annotations

import numpy as np

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

NAME = "tflm_mobilenet_v2_pytorch.tflite"
TFLM_HEAD_BYTES = 2_451_840


def test_mobilenet_v2_pytorch_bit_exact(shared_models, tflm, tmp_path):
    graph = load_tflite(shared_models / NAME)
    assert graph.ops[0].kind == "TRANSPOSE" and graph.tensor(graph.inputs[0]).shape == \
        (1, 3, 224, 224)
    report = compile_graph(graph, tmp_path / "p", prefix="mbv2", source=NAME)
    assert report["arena_bytes"] <= TFLM_HEAD_BYTES
    host = HostModel(tmp_path / "p")
    model = (shared_models / NAME).read_bytes()
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = random_inputs(graph, rng)
        c_out, ref, tfl = host.invoke(x), run_reference(graph, x), tflm.run_tflm(model, x)
        for c, r, t in zip(c_out, ref, tfl):
            np.testing.assert_array_equal(c, r)
            np.testing.assert_array_equal(c, t.reshape(c.shape))
