"""Shared fixtures: the ../shared material, TFLM availability, a compile-and-load helper.

Where ../shared or tflite-micro is missing, tests that need them skip with the reason; under
CI=true a missing one is a failure instead, so a wrong path cannot pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
DATA = SHARED / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"

MODEL_FILES_INT8 = ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
                    "tiny_pretrainedResnet_quant.tflite", "tflm_micro_speech_quantized.tflite",
                    "tflm_hello_world_int8.tflite"]
# int16 activations (16x8) and recurrent models with state (SVDF, LSTM): MANIFEST.md.
MODEL_FILES_16X8 = ["tflm_keyword_scrambled.tflite", "tflm_micro_speech_lstm.tflite",
                    *(f"tflm_seanet_{op}0.tflite" for op in (
                        "add", "conv", "leaky_relu", "pad", "quantize", "strided_slice", "sub",
                        "transpose_conv"))]
# The models the engine claims: every test that sweeps "the shared models" runs these.
MODEL_FILES = MODEL_FILES_INT8 + MODEL_FILES_16X8


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required under CI=true: {reason}")
        pytest.skip(reason)


def digits_slice(train: int, val: int):
    """A seeded slice of the digits split (train examples drawn at random, the first val):
    small data for the search tests, whose fitness only has to be a function of the weights."""
    import numpy as np

    from tinynas.data import load_digits, split

    parts = split(load_digits(), seed=0)
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(parts.train), train, replace=False))
    return parts.train.subset(picked, "t"), parts.val.subset(np.arange(val), "v")


def compiled_models(tmp_path_factory, label: str):
    """A getter, name -> (graph, project directory), compiling each shared model once (for a
    module-scoped `projects` fixture: the target tests run one project on many cores)."""
    from tinyengine.codegen import compile_graph
    from tinyengine.frontend.tflite_reader import load_tflite

    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    root = tmp_path_factory.mktemp(label)
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            graph = load_tflite(MODELS / name)
            compile_graph(graph, root / name.removesuffix(".tflite"), prefix="m")
            cache[name] = (graph, root / name.removesuffix(".tflite"))
        return cache[name]
    return get


@pytest.fixture
def shared_models() -> Path:
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    return MODELS


@pytest.fixture
def tflm():
    from tinyengine import tflm as oracle

    require(oracle.tflm_available(), "tflite-micro is not installed (pip install -e .[dev])")
    return oracle


# examples/ holds the digits CNN and the random MBConv networks the float-path tests use.
import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
