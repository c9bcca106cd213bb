"""Every real model in ../shared/models: generated C == numpy reference == TFLM, bit for bit,
on 20 seeded random inputs and on the published sample inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.reference import ReferenceSession, run_reference
from tinyengine.runtime import HostModel

from .conftest import DATA, MODEL_FILES


def bmp_pixels(path) -> np.ndarray:
    """TFLM's person-detection test input: the raw 8-bit pixel bytes, rows top-down (BMP stores
    them bottom-up), reinterpreted as int8 (shared/models/MANIFEST.md)."""
    raw = path.read_bytes()
    offset = int.from_bytes(raw[10:14], "little")
    width = int.from_bytes(raw[18:22], "little")
    height = int.from_bytes(raw[22:26], "little", signed=True)
    stride = (width + 3) // 4 * 4
    rows = [raw[offset + r * stride: offset + r * stride + width] for r in range(abs(height))]
    if height > 0:
        rows = rows[::-1]
    return np.frombuffer(b"".join(rows), np.uint8).view(np.int8).reshape(1, abs(height), width, 1)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cache = {}

    def get(name, patch="auto"):
        if (name, patch) not in cache:
            from .conftest import MODELS
            graph = load_tflite(MODELS / name)
            out = tmp_path_factory.mktemp(name.split(".")[0]) / "project"
            report = compile_graph(graph, out, prefix="m", source=name, patch=patch)
            cache[name, patch] = (graph, HostModel(out), report)
        return cache[name, patch]
    return get


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_c_equals_reference_equals_tflm(name, patch, shared_models, tflm, compiled):
    """20 inputs as one stream on one instance of each engine (a stateful model carries its
    state from one to the next), then all three reset and the first 10 again."""
    graph, host, _ = compiled(name, patch)
    host.reset()  # the compiled project is shared between tests
    ref, oracle = ReferenceSession(graph), tflm.TflmSession((shared_models / name).read_bytes())
    rng = np.random.default_rng(1234)
    xs = [random_inputs(graph, rng) for _ in range(20)]
    for step, x in enumerate(xs + xs[:10]):
        if step == len(xs):
            host.reset(), ref.reset(), oracle.reset()
        c_out, r_out, t_out = host.invoke(x), ref.invoke(x), oracle.invoke(x)
        for c, r, t in zip(c_out, r_out, t_out):
            np.testing.assert_array_equal(c, r, err_msg=f"step {step}")
            np.testing.assert_array_equal(c, t.reshape(c.shape), err_msg=f"step {step}")


@pytest.mark.parametrize("image, expected", [("tflm_person.bmp", [-113, 113]),
                                             ("tflm_no_person.bmp", [57, -57])])
def test_person_detect_samples(image, expected, shared_models, tflm, compiled):
    graph, host, _ = compiled("tflm_person_detect.tflite")
    x = bmp_pixels(DATA / image)
    assert x.shape == (1, 96, 96, 1)
    out = host.invoke([x])[0]
    assert out.ravel().tolist() == expected
    np.testing.assert_array_equal(run_reference(graph, [x])[0], out)
    tfl = tflm.run_tflm((shared_models / "tflm_person_detect.tflite").read_bytes(), [x])[0]
    assert tfl.ravel().tolist() == expected


def test_kws_sample_is_on(shared_models, tflm, compiled):
    graph, host, _ = compiled("tiny_kws_ref_model.tflite")
    x = np.load(DATA / "tiny_kws_sample_inputs_int8_49x10x1.npy")
    out = host.invoke([x.reshape(1, 49, 10, 1)])[0]
    labels = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence",
              "unknown"]
    assert labels[int(np.argmax(out))] == "on"
    tfl = tflm.run_tflm((shared_models / "tiny_kws_ref_model.tflite").read_bytes(), [x])[0]
    np.testing.assert_array_equal(out, tfl.reshape(out.shape))


# TFLM's "head" (activations and scratch, GreedyMemoryPlanner) from shared/models/MANIFEST.md,
# measured there with the tflite-micro package; test_tflm_arena_matches_manifest re-measures it.
# (head, variable) from ../shared/models/MANIFEST.md: TFLM's activations + scratch, and the state
# its variable tensors keep between invocations (inside TFLM's tail).
TFLM_HEAD = {"tflm_person_detect.tflite": (55296, 0), "tiny_kws_ref_model.tflite": (16000, 0),
             "tiny_pretrainedResnet_quant.tflite": (49152, 0),
             "tflm_micro_speech_quantized.tflite": (5968, 0),
             "tflm_hello_world_int8.tflite": (32, 0),
             "tflm_keyword_scrambled.tflite": (672, 10240),
             "tflm_micro_speech_lstm.tflite": (17168, 240),
             "tflm_seanet_add0.tflite": (1920, 0), "tflm_seanet_conv0.tflite": (10432, 0),
             "tflm_seanet_leaky_relu0.tflite": (10240, 0), "tflm_seanet_pad0.tflite": (2608, 0),
             "tflm_seanet_quantize0.tflite": (3840, 0),
             "tflm_seanet_strided_slice0.tflite": (9296, 0),
             "tflm_seanet_sub0.tflite": (6272, 0),
             "tflm_seanet_transpose_conv0.tflite": (23696, 0)}


@pytest.mark.parametrize("name", MODEL_FILES)
def test_arena_not_above_tflm_head(name, shared_models, compiled):
    """Arena plus persistent state at most TFLM's head plus its variable bytes."""
    head, variable = TFLM_HEAD[name]
    whole = compiled(name, "off")[2]
    assert whole["arena_bytes"] + whole["persistent_bytes"] <= head + variable
    assert whole["persistent_bytes"] == variable  # the same state, counted once
    assert whole["patches"] is None
    assert compiled(name, "auto")[2]["arena_bytes"] <= whole["arena_bytes"]
