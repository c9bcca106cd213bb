"""`tinyengine run` and HostModel.invoke take inputs in the model's exact shape (or a batch of
it), never another layout reshaped without a word; a bad input file or a damaged project gets one
line and exit 2 (issue 17, item 7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import TinyEngineError
from tinyengine.frontend.tflite_reader import load_tflite
from tinyengine.inputs import as_batch, load_npy
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel, load_project_report

from .conftest import MODELS

KWS_SHAPE = (1, 49, 10, 1)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True)


def assert_user_error(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyengine: error: "), run.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    path = MODELS / "tiny_kws_ref_model.tflite"
    if not path.is_file():
        pytest.skip("shared model tiny_kws_ref_model.tflite not present")
    graph = load_tflite(path)
    out = tmp_path_factory.mktemp("kws") / "p"
    compile_graph(graph, out, prefix="kws", source_model={"format": "tflite"}, patch="off")
    return graph, out


def _spec(shape, dtype="int8"):
    return {"name": "x", "shape": list(shape), "size": int(np.prod(shape)), "dtype": dtype}


def test_as_batch_takes_the_exact_shape_or_a_batch():
    x = np.zeros(KWS_SHAPE, np.int8)
    assert as_batch(x, _spec(KWS_SHAPE), "x")[0].shape == (1, *KWS_SHAPE)
    assert as_batch(np.zeros((3, *KWS_SHAPE), np.int8), _spec(KWS_SHAPE), "x")[1]
    assert as_batch(np.zeros((3, 49, 10, 1), np.int8), _spec(KWS_SHAPE), "x")[0].shape == \
        (3, *KWS_SHAPE)


@pytest.mark.parametrize("shape", [(1, 10, 49, 1), (1, 1, 49, 10), (490,), (1, 490), (49, 10)])
def test_as_batch_refuses_another_layout_of_the_same_size(shape):
    """Before: any array of 490 elements whose rank was not 5 was reshaped to (1, 49, 10, 1)."""
    with pytest.raises(TinyEngineError, match=r"\(1, 49, 10, 1\)"):
        as_batch(np.zeros(shape, np.int8), _spec(KWS_SHAPE), "x")


def test_as_batch_refuses_a_scalar_for_a_1x1_input():
    with pytest.raises(TinyEngineError, match=r"\(1, 1\)"):
        as_batch(np.array(0.5, np.float32), _spec((1, 1), "float32"), "x")


@pytest.mark.parametrize("shape", [(0, *KWS_SHAPE), (0, 49, 10, 1)])
def test_as_batch_refuses_an_empty_batch(shape):
    with pytest.raises(TinyEngineError, match="no samples"):
        as_batch(np.zeros(shape, np.int8), _spec(KWS_SHAPE), "x")


def test_as_batch_refuses_non_numeric_arrays():
    with pytest.raises(TinyEngineError, match="not numeric"):
        as_batch(np.array([["a"] * 10] * 49).reshape(KWS_SHAPE), _spec(KWS_SHAPE), "x")


def test_load_npy_refuses_empty_npz_and_garbage(tmp_path):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    with pytest.raises(TinyEngineError, match="empty"):
        load_npy(empty)
    npz = tmp_path / "x.npy"
    with open(npz, "wb") as f:
        np.savez(f, np.zeros(3))
    with pytest.raises(TinyEngineError, match="npz"):
        load_npy(npz)
    garbage = tmp_path / "g.npy"
    garbage.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': zzz}\n")
    with pytest.raises(TinyEngineError, match="not a readable .npy"):
        load_npy(garbage)


def test_invoke_refuses_a_transposed_input(kws):
    graph, project = kws
    host = HostModel(project)
    x = np.random.default_rng(0).integers(-128, 128, KWS_SHAPE).astype(np.int8)
    np.testing.assert_array_equal(host.invoke([x])[0], run_reference(graph, [x])[0])
    with pytest.raises(TinyEngineError, match=r"\(1, 49, 10, 1\)"):
        host.invoke([x.transpose(0, 3, 1, 2)])  # NCHW (1, 1, 49, 10)


def test_run_refuses_nchw_for_an_nhwc_model(kws, tmp_path):
    _, project = kws
    x = np.zeros((1, 1, 49, 10), np.int8)
    np.save(tmp_path / "x.npy", x)
    assert_user_error(cli("run", str(project), "--input", str(tmp_path / "x.npy"), "--output",
                          str(tmp_path / "y.npy")), "(1, 49, 10, 1)")
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("case", ["empty_batch", "zero_bytes", "npz"])
def test_run_bad_input_files(kws, tmp_path, case):
    _, project = kws
    path = tmp_path / "x.npy"
    if case == "empty_batch":
        np.save(path, np.zeros((0, *KWS_SHAPE), np.int8))
        words = ["no samples"]
    elif case == "zero_bytes":
        path.write_bytes(b"")
        words = ["empty"]
    else:
        with open(path, "wb") as f:
            np.savez(f, np.zeros(KWS_SHAPE, np.int8))
        words = [".npz"]
    assert_user_error(cli("run", str(project), "--input", str(path), "--output",
                          str(tmp_path / "y.npy")), str(path), *words)


@pytest.mark.parametrize("damage", ["truncated", "not_object", "no_prefix", "bad_prefix",
                                    "bad_shape", "bytes_mismatch"])
def test_damaged_report_is_one_line(kws, tmp_path, damage):
    _, project = kws
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".host"))
    text = (copy / "report.json").read_text()
    report = json.loads(text)
    if damage == "truncated":
        text = text[:len(text) // 2]
    elif damage == "not_object":
        text = "[1, 2]"
    elif damage == "no_prefix":
        del report["prefix"]
    elif damage == "bad_prefix":
        report["prefix"] = "kws(); system"
    elif damage == "bad_shape":
        report["inputs"][0]["shape"] = "1x49x10x1"
    else:
        report["inputs"][0]["bytes"] = 1 << 20  # would memmove 1 MiB into a 490-byte buffer
    if damage not in ("truncated", "not_object"):
        text = json.dumps(report)
    (copy / "report.json").write_text(text)
    with pytest.raises(TinyEngineError, match="report.json"):
        load_project_report(copy)
    np.save(tmp_path / "x.npy", np.zeros(KWS_SHAPE, np.int8))
    assert_user_error(cli("run", str(copy), "--input", str(tmp_path / "x.npy"), "--output",
                          str(tmp_path / "y.npy")), "report.json")


def test_missing_source_file_is_one_line(kws, tmp_path):
    _, project = kws
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".host"))
    (copy / "kws_weights.c").unlink()
    with pytest.raises(TinyEngineError, match="kws_weights.c is missing"):
        HostModel(copy)
    np.save(tmp_path / "x.npy", np.zeros(KWS_SHAPE, np.int8))
    assert_user_error(cli("run", str(copy), "--input", str(tmp_path / "x.npy"), "--output",
                          str(tmp_path / "y.npy")), "kws_weights.c", "missing")


def test_missing_kernel_source_is_one_line(kws, tmp_path):
    _, project = kws
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".host"))
    (copy / "kernels" / "te_conv.c").unlink()
    with pytest.raises(TinyEngineError, match="incomplete") as e:
        HostModel(copy)
    assert "te_conv2d" in str(e.value)  # the undefined symbol
