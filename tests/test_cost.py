"""The resource model the search uses says exactly what the generated project reports."""

from __future__ import annotations

import dataclasses

import pytest

from tinyengine.codegen import compile_graph
from tinyengine.cost import estimate
from tinyengine.frontend import load_tflite
from tinyengine.ir import Graph

from .conftest import MODEL_FILES


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_estimate_equals_compiled_report(name, patch, shared_models, tmp_path):
    graph = load_tflite(shared_models / name)
    cost = estimate(graph, patch=patch)
    report = compile_graph(graph, tmp_path / "p", patch=patch)
    assert (cost.peak_sram, cost.flash_bytes, cost.macs) == \
        (report["arena_bytes"], report["flash_bytes"], report["macs"])
    assert (cost.patches is None) == (report["patches"] is None)


def _without_weights(graph: Graph) -> Graph:
    """The same network as a description: constants without values or quantisation."""
    tensors = {n: dataclasses.replace(t, data=None, const=True, quant=None) if t.is_const else t
               for n, t in graph.tensors.items()}
    return Graph(tensors, graph.ops, graph.inputs, graph.outputs, graph.name)


@pytest.mark.parametrize("name", ["tflm_person_detect.tflite",
                                  "tiny_pretrainedResnet_quant.tflite"])
def test_description_without_weights_costs_the_same(name, shared_models):
    graph = load_tflite(shared_models / name)
    real = estimate(graph, patch="auto")
    described = estimate(_without_weights(graph), patch="auto")
    assert (described.peak_sram, described.macs) == (real.peak_sram, real.macs)
    assert described.flash_bytes == real.flash_bytes  # per-channel convs, per-tensor FC


def test_a_shared_table_is_emitted_once(tmp_path):
    """TFLite's sigmoid table is the same for every int16 LOGISTIC and TANH: one array in flash
    for both ops, and the estimate counts it once too."""
    import numpy as np

    from tinyengine.ir import Op, QuantParams, Tensor

    def q(scale: float) -> QuantParams:
        return QuantParams(np.array([scale], np.float32), np.array([0], np.int64))

    t = {"x": Tensor("x", (1, 8), "int16", q(0.001)),
         "a": Tensor("a", (1, 8), "int16", q(1 / 32768)),
         "y": Tensor("y", (1, 8), "int16", q(1 / 32768))}
    g = Graph(t, [Op("sig", "LOGISTIC", ["x"], ["a"]), Op("tanh", "TANH", ["a"], ["y"])],
              ["x"], ["y"])
    report = compile_graph(g, tmp_path / "p", prefix="m")
    weights = (tmp_path / "p" / "m_weights.c").read_text()
    assert weights.count("const uint16_t m_op") == 1
    assert report["flash_bytes"] == 512 == estimate(g).flash_bytes
