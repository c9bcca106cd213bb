"""Float models through post-training quantisation: float32 TFLite with --calib, and --io int8.

- hello_world_float.tflite (TFLM's sine model, 1 -> 16 -> 16 -> 1, FULLY_CONNECTED x3 in float)
  compiles with calibration data, and the generated C tracks TFLM running the float model;
- without --calib the float model is refused in one line that says to pass it;
- --io int8: the engine's input and output are the int8 tensors (no float copy in the arena),
  the C equals the reference, and `tinyengine run` speaks int8;
- the CLI end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tinyengine.convert import compile_tflite, compile_torch, export_torch, quantize_onnx
from tinyengine.frontend.tflite_float import float_activations, load_float_tflite
from tinyengine.ops.quantize import affine_quantize
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

HELLO = "tflm_hello_world_float.tflite"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True)


def sine_inputs(n: int, seed: int) -> np.ndarray:
    """(n, 1) float32 uniform in [0, 2 pi]: the domain the hello_world model was trained on."""
    return np.random.default_rng(seed).uniform(0, 2 * np.pi, (n, 1)).astype(np.float32)


def tflm_float(tflm, path, xs: np.ndarray) -> np.ndarray:
    model = path.read_bytes()
    return np.array([tflm.run_tflm(model, [x[None]])[0].item() for x in xs])


def test_float_export_matches_tflm(shared_models, tflm):
    """What calibration observes is the float TFLite model's own arithmetic (TFLM's)."""
    model = load_float_tflite(shared_models / HELLO)
    xs = sine_inputs(64, 1)
    ours = float_activations(model, [xs])[model.graph.outputs[0]].ravel()
    np.testing.assert_allclose(ours, tflm_float(tflm, shared_models / HELLO, xs), atol=1e-5)


def test_hello_world_float_tracks_tflm(shared_models, tflm, tmp_path):
    report = compile_tflite(shared_models / HELLO, tmp_path / "p", sine_inputs(200, 0))
    assert [op["kind"] for op in report["ops"]] == ["QUANTIZE"] + ["FULLY_CONNECTED"] * 3 + [
        "DEQUANTIZE"]
    step = report["source_model"]["outputs"][0]["scale"]  # the int8 output step, ~2/255
    host = HostModel(tmp_path / "p")
    xs = sine_inputs(1000, 1)
    ours = np.array([host.invoke([x[None]])[0].item() for x in xs])
    err = np.abs(ours - tflm_float(tflm, shared_models / HELLO, xs))
    within = float(np.mean(err <= step))
    print(f"hello_world_float int8 C vs TFLM float: max |error| {err.max():.4f} "
          f"({err.max() / step:.2f} output steps of {step:.5f}), mean {err.mean():.4f}, "
          f"{100 * within:.1f}% within one output step")
    # The bound, in output steps: the input step (2 pi / 255) is 3.1 output steps wide and the
    # sine's slope reaches 1, so input rounding alone moves the output by up to 1.6 steps; the
    # two 16-wide hidden layers round to half their own steps (1.9 and 1.4 output steps wide),
    # errors the next layer sums over 16 units with weights up to 1.26, and the output rounds by
    # half a step. A few steps each; 8 steps (0.064, 3% of the sine's range) holds them with
    # room, while a wrong range, layout or weight scale gives tens of steps.
    assert err.max() <= 8 * step
    assert err.mean() <= 3 * step  # typically a couple of steps: the roundings partly cancel


def test_float_tflite_without_calib_is_refused(shared_models, tmp_path):
    run = cli("compile", str(shared_models / HELLO), "-o", str(tmp_path / "out"))
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyengine: error: "), run.stderr
    assert HELLO in lines[0] and "--calib" in lines[0] and "float model" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def _strided_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, stride=4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(256, 5)).eval()


def test_io_int8_drops_the_float_copy(tmp_path):
    torch.set_num_threads(1)
    net = _strided_net()
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (16, 3, 32, 32)).astype(np.float32)
    example = torch.from_numpy(calib[:1])
    floats = compile_torch(net, example, calib, tmp_path / "f", io="float")
    ints = compile_torch(net, example, calib, tmp_path / "i", io="int8")
    n = 3 * 32 * 32
    assert ints["inputs"][0]["dtype"] == "int8" and ints["outputs"][0]["dtype"] == "int8"
    assert floats["arena_counts"]["input_bytes"] == 4 * n
    assert ints["arena_counts"]["input_bytes"] == n
    assert "QUANTIZE" not in [op["kind"] for op in ints["ops"]]
    # The float input (4n bytes) is the float engine's peak; the int8 engine's peak is its int8
    # input plus the first convolution's output (4 x 8 x 8). So the arena shrinks by the float
    # copy's 3n bytes, less at most what that output may take back from the float buffer's dead
    # tail in the float engine's plan.
    first_out = 4 * 8 * 8
    saved = floats["arena_bytes"] - ints["arena_bytes"]
    print(f"--io int8 arena {ints['arena_bytes']} B vs --io float {floats['arena_bytes']} B: "
          f"saves {saved} B (float input {4 * n} B, int8 input {n} B)")
    assert saved >= 3 * n - first_out

    # The C equals the reference, and the float-I/O engine's output is its dequantisation.
    path = export_torch(net, example, tmp_path / "net.onnx")
    _, graph = quantize_onnx(path, calib, io="int8")
    q = graph.tensor(graph.inputs[0])
    host, host_f = HostModel(tmp_path / "i"), HostModel(tmp_path / "f")
    for x in rng.normal(0, 1, (6, 3, 32, 32)).astype(np.float32):
        nhwc = x.transpose(1, 2, 0)[None]
        xq = affine_quantize(nhwc, q.scale, q.zero_point)  # as the float engine's QUANTIZE
        c = host.invoke([xq])[0]
        assert c.dtype == np.int8
        np.testing.assert_array_equal(c, run_reference(graph, [xq])[0])
        deq = host_f.invoke([nhwc])[0]
        out_q = ints["source_model"]["outputs"][0]
        np.testing.assert_allclose(deq, (c.astype(np.float64) - out_q["zero_point"])
                                   * out_q["scale"], rtol=1e-6, atol=1e-7)


def test_cli_float_tflite_and_io_int8(shared_models, tflm, tmp_path):
    calib = tmp_path / "calib.npy"
    np.save(calib, sine_inputs(200, 0))
    xs = sine_inputs(50, 2)
    np.save(tmp_path / "x.npy", xs)
    model = str(shared_models / HELLO)
    run = cli("compile", model, "--calib", str(calib), "-o", str(tmp_path / "p"))
    assert run.returncode == 0, run.stderr
    run = cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
              str(tmp_path / "y.npy"))
    assert run.returncode == 0, run.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (50, 1, 1)  # N samples of the (1, 1) output
    step = json.loads((tmp_path / "p" / "report.json").read_text())["source_model"][
        "outputs"][0]["scale"]
    assert np.abs(y.ravel() - tflm_float(tflm, shared_models / HELLO, xs)).max() <= 8 * step

    # --io int8: the project takes the int8 input and gives the int8 output that the float-I/O
    # project's DEQUANTIZE would have read (its --raw output).
    run = cli("compile", model, "--calib", str(calib), "--io", "int8", "-o", str(tmp_path / "q"))
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "q" / "report.json").read_text())
    assert report["inputs"][0]["dtype"] == "int8" and report["source_model"]["io"] == "int8"
    spec = report["source_model"]["inputs"][0]
    xq = affine_quantize(xs, spec["scale"], spec["zero_point"])  # as the engine's QUANTIZE
    np.save(tmp_path / "xq.npy", xq)
    assert cli("run", str(tmp_path / "q"), "--input", str(tmp_path / "xq.npy"), "--output",
               str(tmp_path / "yq.npy")).returncode == 0
    assert cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
               str(tmp_path / "raw.npy"), "--raw").returncode == 0
    yq = np.load(tmp_path / "yq.npy")
    assert yq.dtype == np.int8
    np.testing.assert_array_equal(yq, np.load(tmp_path / "raw.npy"))
    # A float input to an int8-I/O project is a user error, in one line.
    run = cli("run", str(tmp_path / "q"), "--input", str(tmp_path / "x.npy"), "--output",
              str(tmp_path / "bad.npy"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    # --calib or --io on an int8 model has nothing to act on: refused, not ignored.
    int8_model = str(shared_models / "tflm_hello_world_int8.tflite")
    run = cli("compile", int8_model, "--io", "int8", "-o", str(tmp_path / "r"))
    assert run.returncode == 2 and "--io" in run.stderr, run.stderr
    run = cli("compile", int8_model, "--calib", str(calib), "-o", str(tmp_path / "r"))
    assert run.returncode == 2 and "without --calib" in run.stderr, run.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("io", ["float", "int8"])
def test_cli_onnx_io(io, tmp_path):
    net = _strided_net()
    rng = np.random.default_rng(3)
    path = export_torch(net, torch.zeros(1, 3, 32, 32), tmp_path / "net.onnx")
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (8, 3, 32, 32)).astype(np.float32))
    run = cli("compile", str(path), "--calib", str(tmp_path / "calib.npy"), "--io", io, "-o",
              str(tmp_path / "p"))
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    x = rng.normal(0, 1, (3, 3, 32, 32)).astype(np.float32)  # NCHW, the ONNX model's layout
    if io == "int8":
        spec = report["source_model"]["inputs"][0]
        x = affine_quantize(x, spec["scale"], spec["zero_point"])
    np.save(tmp_path / "x.npy", x)
    run = cli("run", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output",
              str(tmp_path / "y.npy"))
    assert run.returncode == 0, run.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 1, 5) and y.dtype == (np.int8 if io == "int8" else np.float32)
