"""Property test: seeded random int8 graphs of every op kind -> generated C == numpy reference,
bit for bit. (tests/test_tflite_writer.py checks reference == TFLM on the same generator.)"""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

from .random_graphs import ALL_KINDS, random_graph, random_input


@pytest.mark.parametrize("seed", range(16))
def test_random_graph_c_equals_reference(seed, tmp_path):
    rng = np.random.default_rng(1000 + seed)
    graph = random_graph(rng, kinds=ALL_KINDS, max_ops=6)
    compile_graph(graph, tmp_path / "p", prefix=f"g{seed}")
    host = HostModel(tmp_path / "p")
    for _ in range(4):
        x = random_input(graph, rng)
        for c, r in zip(host.invoke(x), run_reference(graph, x)):
            np.testing.assert_array_equal(c, r)
