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
