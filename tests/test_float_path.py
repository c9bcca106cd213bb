"""The float-model road: PyTorch -> ONNX -> post-training quantisation -> generated C.

- the digits CNN (examples/digits_cnn.py): int8 accuracy of the generated C within 1 point of
  the float model on the held-out split, top-1 agreement >= 98%;
- random MBConv networks: generated C == reference bit for bit, dequantised output close to the
  float output;
- the CLI on an ONNX model: compile with --calib, run in NCHW float, --raw, and bad input.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tinyengine.codegen import compile_graph
from tinyengine.convert import export_torch, quantize_onnx
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.source_forms import source_input_batches, source_outputs


def test_digits_cnn_int8_matches_float(tmp_path):
    from digits_cnn import run

    r = run(tmp_path / "digits")
    print(f"float {r.float_accuracy:.4f} int8 C {r.int8_accuracy:.4f} agreement {r.agreement:.4f}")
    assert r.float_accuracy > 0.9  # the model learned something: the comparison means something
    assert r.int8_accuracy >= r.float_accuracy - 0.01
    assert r.agreement >= 0.98


def mbconv_case(seed: int, tmp_path):
    from mbconv_nets import random_mbconv

    torch.set_num_threads(1)
    net = random_mbconv(seed)
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 1, (32, 3, 16, 16)).astype(np.float32)
    test = rng.normal(0, 1, (8, 3, 16, 16)).astype(np.float32)
    path = export_torch(net, torch.from_numpy(calib[:1]), tmp_path / f"mb{seed}.onnx")
    model, graph = quantize_onnx(path, calib)
    return path, model, graph, test


@pytest.mark.parametrize("seed", range(6))
def test_mbconv_c_equals_reference_and_tracks_float(seed, tmp_path):
    path, model, graph, test = mbconv_case(seed, tmp_path)
    from tinyengine.convert import source_model_info

    report = compile_graph(graph, tmp_path / "p", source_model=source_model_info(model, graph))
    host = HostModel(tmp_path / "p")
    (batch,), _ = source_input_batches(report, [test], ["test"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    errors = []
    for x, b in zip(test, batch):
        c = host.invoke([b])[0]
        np.testing.assert_array_equal(c, run_reference(graph, [b])[0])
        want = session.run(None, {session.get_inputs()[0].name: x[None]})[0]
        (got,) = source_outputs(report, [c[None]], raw=False)
        errors.append(np.abs(got.reshape(want.shape) - want).max() / (np.ptp(want) + 1e-9))
    # Within a few int8 steps of the output range: the quantised network tracks the float one.
    assert max(errors) < 0.1, errors


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True)


def test_cli_onnx_compile_and_run(tmp_path):
    path, model, graph, test = mbconv_case(0, tmp_path)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(0, 1, (16, 3, 16, 16))
            .astype(np.float32))
    run = cli("compile", str(path), "--calib", str(tmp_path / "calib.npy"), "-o",
              str(tmp_path / "p"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "p" / "model_qdq.onnx").is_file()
    np.save(tmp_path / "x.npy", test)
    assert cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
               str(tmp_path / "y.npy")).returncode == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (8, 1, 10)
    assert cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
               str(tmp_path / "q.npy"), "--raw").returncode == 0
    q = np.load(tmp_path / "q.npy")
    assert q.dtype == np.int8 and q.shape == y.shape
    out = model.graph.outputs[0]
    deq = next(op for op in graph.ops if op.outputs[0] == out)
    t = graph.tensor(deq.inputs[0])
    np.testing.assert_allclose(y, (q.astype(np.float64) - t.zero_point) * t.scale, rtol=1e-6)


def _error_line(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("tinyengine: error: "), run.stderr
    for w in words:
        assert w in line[0], line[0]


def test_cli_onnx_bad_input(tmp_path):
    path, *_ = mbconv_case(1, tmp_path)
    out = str(tmp_path / "o")
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 8, 8), np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 16, 16), np.float32))
    _error_line(cli("compile", str(path), "-o", out), "--calib")
    _error_line(cli("compile", str(path), "--calib", str(tmp_path / "wrong.npy"), "-o", out),
                "wrong.npy")
    _error_line(cli("compile", str(path), "--calib", str(tmp_path / "empty.npy"), "-o", out),
                "empty.npy")
    (tmp_path / "junk.onnx").write_text("not a model")
    _error_line(cli("compile", str(tmp_path / "junk.onnx"), "--calib",
                    str(tmp_path / "wrong.npy"), "-o", out), "junk.onnx")
    unsupported = export_torch(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ELU(),
                                                   torch.nn.Conv2d(4, 4, 1), torch.nn.Softplus()),
                               torch.zeros(1, 3, 16, 16), tmp_path / "sig.onnx")
    _error_line(cli("compile", str(unsupported), "--calib", str(tmp_path / "wrong.npy"), "-o",
                    out), "Elu", "Softplus")
    dynamic = tmp_path / "dyn.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), (torch.zeros(1, 3, 16, 16),), str(dynamic),
                      dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    _error_line(cli("compile", str(dynamic), "--calib", str(tmp_path / "wrong.npy"), "-o", out),
                "--input-shape")
    assert not (tmp_path / "o").exists()
