"""Several inputs and outputs through compile, run (host and emulated Cortex-M4), verify, plan,
the generated C (header, main.c) and HostModel.

The IR graph: three int8 inputs of different shapes, four outputs.

    in0 (1,6,6,3) -> CONV_2D -> c (1,6,6,4) ----------------------------> output 2 (also read)
    in1 (1,6,6,4) ------------------------ ADD(c, in1) -> SPLIT(axis 3) -> outputs 0 and 1
    in2 (12,12) --------------------------------------------------------> output 3 (an input)

in1 and in2 hold the same number of elements in different shapes: given in each other's place
they were reshaped and run without a word, which is refused now. Valid: an output that another op
also reads, an output that is a graph input (even one an op then overwrites in place), an output
listed twice. Refused by ir.verify: a constant as input or output, an input listed twice.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.verify import verify_graph

from .conftest import require

SHAPES = [(1, 6, 6, 3), (1, 6, 6, 4), (12, 12)]
OUT_SHAPES = [(1, 6, 6, 2), (1, 6, 6, 2), (1, 6, 6, 4), (12, 12)]


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def multi_io_graph() -> Graph:
    rng = np.random.default_rng(7)
    t = {"in0": Tensor("in0", SHAPES[0], "int8", qp(0.05, 3)),
         "in1": Tensor("in1", SHAPES[1], "int8", qp(0.04, -5)),
         "in2": Tensor("in2", SHAPES[2], "int8", qp(0.1, 0)),
         "w": Tensor("w", (4, 3, 3, 3), "int8",
                     QuantParams(np.array([0.01, 0.02, 0.015, 0.012], np.float32),
                                 np.zeros(4, np.int64), 0),
                     rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)),
         "b": Tensor("b", (4,), "int32", None, rng.integers(-500, 500, 4).astype(np.int32)),
         "c": Tensor("c", (1, 6, 6, 4), "int8", qp(0.08, -2)),
         "s": Tensor("s", (1, 6, 6, 4), "int8", qp(0.1, 1)),
         "h0": Tensor("h0", (1, 6, 6, 2), "int8", qp(0.1, 1)),
         "h1": Tensor("h1", (1, 6, 6, 2), "int8", qp(0.1, 1))}
    ops = [Op("conv", "CONV_2D", ["in0", "w", "b"], ["c"],
              {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "activation": "NONE"}),
           Op("add", "ADD", ["c", "in1"], ["s"], {"activation": "NONE"}),
           Op("split", "SPLIT", ["s"], ["h0", "h1"], {"axis": 3})]
    g = Graph(t, ops, ["in0", "in1", "in2"], ["h0", "h1", "c", "in2"], name="multi_io")
    verify(g)
    return g


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyengine.cli", *args], capture_output=True,
                          text=True)


def assert_user_error(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyengine: error: "), run.stderr
    for w in words:
        assert w in lines[0], lines[0]


def inputs(n: int | None, seed: int) -> list[np.ndarray]:
    """One sample per input (n None) or a batch of n along a new first axis."""
    rng = np.random.default_rng(seed)
    lead = () if n is None else (n,)
    return [rng.integers(-128, 128, lead + s).astype(np.int8) for s in SHAPES]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, Graph]:
    """(model.tflite, compiled project via `tinyengine compile`, graph)."""
    d = tmp_path_factory.mktemp("multi_io")
    graph = multi_io_graph()
    model = d / "multi_io.tflite"
    model.write_bytes(write_tflite(graph))
    run = cli("compile", str(model), "-o", str(d / "proj"), "--prefix", "mio")
    assert run.returncode == 0, run.stderr
    return model, d / "proj", graph


def save(d: Path, arrays: list[np.ndarray], stem: str) -> list[str]:
    paths = []
    for i, x in enumerate(arrays):
        np.save(d / f"{stem}{i}.npy", x)
        paths.append(str(d / f"{stem}{i}.npy"))
    return paths


def flags(flag: str, paths: list[str]) -> list[str]:
    return [a for p in paths for a in (flag, p)]


# ------------------------------------------------------------------------ generated project

def test_header_and_report_per_input_and_output(built):
    _, proj, graph = built
    header = (proj / "mio_model.h").read_text()
    assert "#define MIO_NUM_INPUTS 3" in header and "#define MIO_NUM_OUTPUTS 4" in header
    for kind, names in (("INPUT", graph.inputs), ("OUTPUT", graph.outputs)):
        for i, n in enumerate(names):
            t = graph.tensor(n)
            dims = ", ".join(map(str, t.shape))
            for macro in (f"#define MIO_{kind}{i}_SIZE {t.size}\n",
                          f"#define MIO_{kind}{i}_BYTES {t.nbytes}\n",
                          f"#define MIO_{kind}{i}_RANK {len(t.shape)}\n",
                          f"#define MIO_{kind}{i}_DIMS {{{dims}}}\n",
                          f"#define MIO_{kind}{i}_TYPE int8_t\n",
                          f"#define MIO_{kind}{i}_ZERO_POINT {t.zero_point}\n"):
                assert macro in header, macro
            assert f"{kind.lower()} {i}: {n}," in header
    assert "void *mio_input(int index);" in header and "void *mio_output(int index);" in header
    source = (proj / "mio_model.c").read_text()
    for fn, count in (("mio_input", 3), ("mio_output", 4)):
        body = source[source.index(f"void *{fn}(int index)"):]
        body = body[:body.index("default:")]
        assert re.findall(r"case (\d+):", body) == [str(i) for i in range(count)]
    report = json.loads((proj / "report.json").read_text())
    assert [s["name"] for s in report["inputs"]] == graph.inputs
    assert [s["name"] for s in report["outputs"]] == graph.outputs
    offsets = {s["name"]: s["offset"] for s in report["inputs"] + report["outputs"]}
    assert report["outputs"][3]["offset"] == offsets["in2"]  # the pass-through output


def test_main_c_reads_every_input_and_writes_every_output(built, tmp_path):
    """The example host program: records of all inputs in, records of all outputs out."""
    _, proj, graph = built
    exe = tmp_path / "demo"
    sources = [str(p) for p in [proj / "main.c", proj / "mio_model.c", proj / "mio_weights.c",
                                *sorted((proj / "kernels").glob("*.c"))]]
    subprocess.run(["cc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(proj),
                    "-I", str(proj / "kernels"), *sources, "-o", str(exe), "-lm"], check=True)
    batch = inputs(3, seed=1)
    (tmp_path / "in.bin").write_bytes(b"".join(x[k].tobytes() for k in range(3) for x in batch))
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    raw = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8)
    at = 0
    for k in range(3):
        for y in run_reference(graph, [x[k] for x in batch]):
            np.testing.assert_array_equal(raw[at:at + y.size].reshape(y.shape), y)
            at += y.size
    assert at == raw.size


# ------------------------------------------------------------------------- Python API

def test_host_model_takes_a_list_and_returns_a_list(built):
    _, proj, graph = built
    host = HostModel(proj)
    for seed in range(3):
        x = inputs(None, seed)
        c_out = host.invoke(x)
        assert isinstance(c_out, list) and [y.shape for y in c_out] == OUT_SHAPES
        for c, r in zip(c_out, run_reference(graph, x), strict=True):
            np.testing.assert_array_equal(c, r)
        np.testing.assert_array_equal(c_out[3], x[2])  # an output that is an input
    x = inputs(None, 0)
    with pytest.raises(TinyEngineError, match=r"takes 3 input\(s\).*got 2"):
        host.invoke(x[:2])
    with pytest.raises(TinyEngineError, match="pass a list with one array per input"):
        host.invoke(x[0])
    with pytest.raises(TinyEngineError, match=r"input 1 \(in1\).*is input 2's"):
        host.invoke([x[0], x[2], x[1]])  # equal sizes: only the shapes tell them apart
    with pytest.raises(TinyEngineError, match="input 0 .*float64"):
        host.invoke([x[0].astype(np.float64), x[1], x[2]])


# ---------------------------------------------------------------------- tinyengine run

def test_run_one_output_file_each_or_one_npz(built, tmp_path):
    _, proj, graph = built
    one = inputs(None, seed=3)
    batch = inputs(4, seed=4)
    outs = [str(tmp_path / f"y{i}.npy") for i in range(4)]
    run = cli("run", str(proj), *flags("--input", save(tmp_path, one, "x")),
              *flags("--output", outs))
    assert run.returncode == 0, run.stderr
    for path, want in zip(outs, run_reference(graph, one), strict=True):
        np.testing.assert_array_equal(np.load(path), want)
    run = cli("run", str(proj), *flags("--input", save(tmp_path, batch, "b")),
              "--output", str(tmp_path / "all.npz"))
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "all.npz") as z:
        got = [z[f"arr_{i}"] for i in range(4)]
        assert len(z.files) == 4
    for k in range(4):
        for y, want in zip(got, run_reference(graph, [x[k] for x in batch]), strict=True):
            np.testing.assert_array_equal(y[k], want)
    # A name without the suffix: written where asked, not at name + ".npy".
    run = cli("run", str(proj), *flags("--input", save(tmp_path, one, "x")),
              *flags("--output", [str(tmp_path / f"bare{i}") for i in range(4)]))
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "bare3"), one[2])


def test_run_on_emulated_cortex_m4_equals_host(built, tmp_path):
    """The firmware's record protocol carries every input in and every output out."""
    require(all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm")),
            "the Arm toolchain or qemu-system-arm is not installed")
    _, proj, _ = built
    paths = save(tmp_path, inputs(3, seed=9), "q")
    for name, extra in (("m4", ["--target", "cortex-m4"]), ("host", [])):
        run = cli("run", str(proj), *flags("--input", paths), "--output",
                  str(tmp_path / f"{name}.npz"), *extra)
        assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "m4.npz") as m4, np.load(tmp_path / "host.npz") as host:
        assert m4.files == host.files and len(m4.files) == 4
        for k in m4.files:
            np.testing.assert_array_equal(m4[k], host[k])


def test_run_and_verify_refuse_bad_inputs(built, tmp_path):
    model, proj, _ = built
    one = save(tmp_path, inputs(None, seed=5), "x")
    out = ["--output", str(tmp_path / "y.npz")]
    for cmd, target in (("run", str(proj)), ("verify", str(model))):
        extra = out if cmd == "run" else ["--random", "0", "--no-tflm"]
        assert_user_error(cli(cmd, target, *flags("--input", one[:2]), *extra),
                          "takes 3 input(s)", "got 2", "in0 1x6x6x3", "in2 12x12")
        # in1 and in2 have 144 elements each: swapped, their shapes give them away.
        assert_user_error(cli(cmd, target, *flags("--input", [one[0], one[2], one[1]]), *extra),
                          "is input 2's", "not input 1's", "order")
    batch = inputs(3, seed=6)
    short = save(tmp_path, [batch[0], batch[1], batch[2][:2]], "short")
    assert_user_error(cli("run", str(proj), *flags("--input", short), *out), "different")
    assert_user_error(cli("verify", str(model), *flags("--input", short), "--random", "0",
                          "--no-tflm"), "different numbers of samples", "short2.npy 2")
    assert_user_error(cli("run", str(proj), *flags("--input", one), "--output",
                          str(tmp_path / "y.npy")), "4 output(s)", "got 1", ".npz")
    assert_user_error(cli("run", str(proj), *flags("--input", one),
                          *flags("--output", [str(tmp_path / "a.npy")] * 2)), "got 2")


# ------------------------------------------------------------------ verify, plan, topology

def test_verify_every_output_against_reference_and_tflm(built, tmp_path, tflm):
    model, _, _ = built
    given = save(tmp_path, inputs(2, seed=8), "g")
    run = cli("verify", str(model), "--random", "4", *flags("--input", given))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 4, lines
    for i, (line, name) in enumerate(zip(lines, ["h0", "h1", "c", "in2"], strict=True)):
        assert f"output {i} ({name}): bit-exact with reference and TFLM on 6 inputs" in line


def test_plan_table_and_png(built, tmp_path):
    model, _, _ = built
    png = tmp_path / "plan.png"
    run = cli("plan", str(model), "--png", str(png))
    assert run.returncode == 0, run.stderr
    assert png.stat().st_size > 0
    assert "graph inputs: 0 in0 (1x6x6x3), 1 in1 (1x6x6x4), 2 in2 (12x12)" in run.stdout
    assert "graph outputs: 0 h0 (1x6x6x2), 1 h1 (1x6x6x2), 2 c (1x6x6x4), 3 in2 (12x12)" \
        in run.stdout
    for step, kind in enumerate(("CONV_2D", "ADD", "SPLIT")):
        assert re.search(rf"^\s+{step}\s+\S+\s+{kind}\s", run.stdout, re.M), run.stdout
    assert re.search(r"^\s+0 .*in1 144 B.*in2 144 B.*in0 108 B", run.stdout, re.M), run.stdout


@pytest.mark.parametrize("outputs", [["h0", "h1", "c", "in2", "in1"],  # ADD may run in place
                                     ["h0", "in0", "h0"],  # an input, and one output twice
                                     ["s", "h1"]])  # an output that SPLIT also reads
def test_valid_output_choices(outputs, tflm):
    graph = multi_io_graph()
    graph.outputs = outputs
    verify(graph)
    verdicts, _ = verify_graph(graph, write_tflite(graph), n_random=3, seed=1)
    assert len(verdicts) == len(outputs)
    for v in verdicts:
        assert v.exact and v.max_diff_tflm == 0, v.line(0)


@pytest.mark.parametrize("edit,words", [
    (lambda g: setattr(g, "outputs", [*g.outputs, "w"]), ("output w", "constant")),
    (lambda g: setattr(g, "inputs", [*g.inputs, "b"]), ("input b", "constant")),
    (lambda g: setattr(g, "inputs", [*g.inputs, "in0"]), ("in0", "twice")),
])
def test_refused_inputs_and_outputs(edit, words):
    graph = multi_io_graph()
    edit(graph)
    try:
        verify(graph)
        message = "accepted"
    except TinyEngineError as e:
        message = str(e)
    assert all(w in message for w in words), message


def test_verify_given_case_with_wrong_count():
    graph = multi_io_graph()
    with pytest.raises(TinyEngineError, match=r"given case 0 must be a list"):
        verify_graph(graph, None, [inputs(None, 0)[:2]], n_random=0)


# -------------------------------------------------------------- PyTorch: two in, two out

def test_pytorch_two_inputs_two_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    from tinyengine.convert import compile_torch, export_torch, quantize_onnx

    class TwoInTwoOut(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(6, 4)

        def forward(self, image, vector):
            z = self.fc(vector)
            return torch.relu(self.conv(image)) + z[:, :, None, None], z

    torch.manual_seed(0)
    module = TwoInTwoOut()
    example = (torch.zeros(1, 3, 8, 8), torch.zeros(1, 6))
    rng = np.random.default_rng(0)
    calib = [(rng.normal(size=(8, 3, 8, 8)).astype(np.float32),
              rng.normal(size=(8, 6)).astype(np.float32), "label") for _ in range(2)]
    report = compile_torch(module, example, calib, tmp_path / "proj")
    assert [s["name"] for s in report["inputs"]] == ["input0", "input1"]
    assert [s["name"] for s in report["outputs"]] == ["output0", "output1"]

    x = [rng.normal(size=(3, 1, 3, 8, 8)).astype(np.float32),  # 3 samples of each input
         rng.normal(size=(3, 1, 6)).astype(np.float32)]
    paths = save(tmp_path, x, "x")
    outs = [str(tmp_path / "y0.npy"), str(tmp_path / "y1.npy")]
    run = cli("run", str(tmp_path / "proj"), *flags("--input", paths), *flags("--output", outs))
    assert run.returncode == 0, run.stderr
    y0, y1 = np.load(outs[0]), np.load(outs[1])
    assert y0.shape == (3, 1, 4, 8, 8) and y1.shape == (3, 1, 4)

    # The same graph again, run by the numpy reference in the engine's NHWC layout.
    onnx_path = export_torch(module, example, tmp_path / "m.onnx")
    _, graph = quantize_onnx(onnx_path, calib)
    for k in range(3):
        ref = run_reference(graph, [x[0][k].transpose(0, 2, 3, 1), x[1][k]])
        np.testing.assert_array_equal(y0[k], ref[0].transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(y1[k], ref[1])
    with torch.no_grad():  # and close to the float model (a few output steps)
        f0, f1 = module(torch.from_numpy(x[0][:, 0]), torch.from_numpy(x[1][:, 0]))
    assert np.abs(y0[:, 0] - f0.numpy()).max() < 4 * report["source_model"]["outputs"][0]["scale"]
    assert np.abs(y1[:, 0] - f1.numpy()).max() < 4 * report["source_model"]["outputs"][1]["scale"]

    with pytest.raises(TinyEngineError, match="one array per input"):
        compile_torch(module, example, x[0], tmp_path / "bad")
    with pytest.raises(TinyEngineError, match="one array per input"):
        compile_torch(module, example, [x[0]], tmp_path / "bad")
