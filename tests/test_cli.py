"""The command line: the happy paths, and every kind of bad input getting one clear line, exit
code 2 and no half-written output directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import MODELS


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True)


def assert_user_error(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyengine: error: "), run.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _no_leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def _edited_model(tmp_path: Path, edit) -> Path:
    """hello_world with its flatbuffer edited through TFLM's schema object API."""
    pytest.importorskip("tflite_micro")
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(
        bytearray((MODELS / "tflm_hello_world_int8.tflite").read_bytes()), 0)
    edit(fb, model)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "edited.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_compile_run_verify(shared_models, tmp_path):
    model = str(shared_models / "tiny_kws_ref_model.tflite")
    out = tmp_path / "kws"
    run = cli("compile", model, "-o", str(out), "--prefix", "kws")
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    for key in ("arena_bytes", "flash_bytes", "macs", "ops", "memory_plan"):
        assert key in report
    assert (out / "kws_model.h").is_file() and (out / "kws_weights.c").is_file()
    x = np.random.default_rng(0).integers(-128, 128, (3, 1, 49, 10, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    run = cli("run", str(out), "--input", str(tmp_path / "x.npy"), "--output",
              str(tmp_path / "y.npy"))
    assert run.returncode == 0, run.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 1, 12) and y.dtype == np.int8
    np.save(tmp_path / "x1.npy", x[0])
    assert cli("run", str(out), "--input", str(tmp_path / "x1.npy"), "--output",
               str(tmp_path / "y1.npy")).returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y1.npy"), y[0])
    run = cli("verify", model, "--random", "3", "--input", str(tmp_path / "x.npy"))
    assert run.returncode == 0, run.stderr
    assert "bit-exact" in run.stdout and "arena" in run.stdout


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_text("this is not a model")
    assert_user_error(cli("compile", str(bad), "-o", str(tmp_path / "out")), "not a TFLite")
    assert _no_leftovers(tmp_path) == ["model.tflite"]


def test_missing_file(tmp_path):
    assert_user_error(cli("compile", str(tmp_path / "nope.tflite"), "-o", str(tmp_path / "o")),
                      "no such model file")


def test_truncated_file(shared_models, tmp_path):
    bad = tmp_path / "cut.tflite"
    bad.write_bytes((shared_models / "tflm_person_detect.tflite").read_bytes()[:5000])
    assert_user_error(cli("compile", str(bad), "-o", str(tmp_path / "out")), "cut.tflite")
    assert _no_leftovers(tmp_path) == ["cut.tflite"]


def test_float_model(tmp_path):
    tflite_micro = pytest.importorskip("tflite_micro")
    sine = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    assert_user_error(cli("compile", str(sine), "-o", str(tmp_path / "out")), "float model",
                      "int8")
    assert not (tmp_path / "out").exists()


def test_unsupported_ops_listed_at_once(shared_models, tmp_path):
    def edit(fb, model):  # turn every FULLY_CONNECTED into EXP and LOG alternately (no kernels)
        for code in model.operatorCodes:
            code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.EXP
        model.operatorCodes.append(fb.OperatorCodeT())
        model.operatorCodes[-1].builtinCode = fb.BuiltinOperator.LOG
        model.operatorCodes[-1].deprecatedBuiltinCode = fb.BuiltinOperator.LOG
        model.subgraphs[0].operators[1].opcodeIndex = len(model.operatorCodes) - 1

    bad = _edited_model(tmp_path, edit)
    run = cli("compile", str(bad), "-o", str(tmp_path / "out"))
    assert_user_error(run, "unsupported ops", "EXP (op 0)", "LOG (op 1)", "EXP (op 2)", "--ops")
    assert not (tmp_path / "out").exists()


def test_unwritable_output(shared_models, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    model = str(shared_models / "tflm_hello_world_int8.tflite")
    assert_user_error(cli("compile", model, "-o", str(blocker / "project")), "cannot write")
    assert_user_error(cli("compile", model, "-o", str(blocker)), "not a tinyengine project")
    assert _no_leftovers(tmp_path) == ["file"]


def test_existing_foreign_directory_is_left_alone(shared_models, tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    assert_user_error(cli("compile", str(shared_models / "tflm_hello_world_int8.tflite"), "-o",
                          str(tmp_path)), "not a tinyengine project")
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_run_bad_inputs(shared_models, tmp_path):
    out = tmp_path / "p"
    assert cli("compile", str(shared_models / "tflm_hello_world_int8.tflite"), "-o",
               str(out)).returncode == 0
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3), np.int8))
    assert_user_error(cli("run", str(out), "--input", str(tmp_path / "wrong.npy"), "--output",
                          str(tmp_path / "y.npy")), "wrong.npy", "shape")
    (tmp_path / "junk.npy").write_text("junk")
    assert_user_error(cli("run", str(out), "--input", str(tmp_path / "junk.npy"), "--output",
                          str(tmp_path / "y.npy")), "junk.npy")
    assert_user_error(cli("run", str(tmp_path), "--input", str(tmp_path / "junk.npy"),
                          "--output", str(tmp_path / "y.npy")), "not a compiled")


def test_tinynas_entry_point_reports_user_errors():
    run = subprocess.run([sys.executable, "-m", "tinynas.cli", "space", "--sram", "1KB",
                          "--flash", "lots", "-o", "x"], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("tinynas: error: "), run.stderr


def test_demo_main_job(tmp_path):
    run = cli("demo", "-o", str(tmp_path / "demo"))
    assert run.returncode == 0, run.stderr
    assert "bit-exact" in run.stdout and "MISMATCH" not in run.stdout
    assert (tmp_path / "demo" / "project" / "demo_model.h").is_file()


def test_int16_model_with_an_int8_only_op_is_one_line(tmp_path):
    """An int16 tensor at an op with no int16 path (TFLM has no int16 HARD_SWISH either): the op
    and the type in one line, exit 2, no project left behind."""
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.ir import Graph, Op, QuantParams, Tensor

    q = QuantParams(np.array([0.001], np.float32), np.array([0], np.int64))
    g = Graph({"x": Tensor("x", (1, 8), "int16", q), "y": Tensor("y", (1, 8), "int16", q)},
              [Op("hs", "HARD_SWISH", ["x"], ["y"])], ["x"], ["y"])
    path = tmp_path / "hs16.tflite"
    path.write_bytes(write_tflite(g))
    run = cli("compile", str(path), "-o", str(tmp_path / "out"))
    assert_user_error(run, "HARD_SWISH", "int16")
    assert not (tmp_path / "out").exists()


def test_run_feeds_a_stateful_model_one_stream(tmp_path):
    """`run` gives the records of a batch to one engine, in order, state carried; with
    --independent each starts from a reset state. A one-op LSTM shows the difference."""
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.inputs import random_inputs
    from tinyengine.reference import ReferenceSession, run_reference

    from .test_ops_lstm import lstm_graph

    g = lstm_graph(5, "int8", batches=1, steps=3, n_in=6, n_state=4)
    path = tmp_path / "lstm.tflite"
    path.write_bytes(write_tflite(g))
    rng = np.random.default_rng(0)
    xs = np.stack([random_inputs(g, rng)[0] for _ in range(6)])
    np.save(tmp_path / "x.npy", xs)
    assert cli("compile", str(path), "-o", str(tmp_path / "p")).returncode == 0
    session = ReferenceSession(g)
    streamed = np.stack([session.invoke([x])[0] for x in xs])
    independent = np.stack([run_reference(g, [x])[0] for x in xs])
    assert not np.array_equal(streamed, independent), "the state must change the outputs"
    for extra, want in (((), streamed), (("--independent",), independent)):
        out = tmp_path / f"y{len(extra)}.npy"
        run = cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
                  str(out), *extra)
        assert run.returncode == 0, run.stderr
        np.testing.assert_array_equal(np.load(out), want)
