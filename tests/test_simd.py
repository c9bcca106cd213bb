"""SIMD kernels (issue 7, item 4): the Cortex-M DSP paths of the convolution, depthwise and
fully-connected kernels equal the portable ones bit for bit.

Three builds of each project are compared with the host build (HostModel, portable C):
- on the emulated Cortex-M4, with the SIMD kernels (run_records(simd=True)) and without
  (simd=False, which defines TE_NO_SIMD), many inputs per QEMU start;
- on the host with TE_SIMD_EMULATE, which runs the same SIMD algorithms (blocking, tails,
  in-place orders) with plain-C stand-ins for the instructions; this needs no Arm tools, and one
  build also runs under AddressSanitizer and UBSan.

The graphs: every shared model, the digits CNN, and chains of layers chosen to reach every path
of the kernels: odd and even channel counts (tails of 1 to 7 after the 8- and 4-wide steps),
pixel counts odd and even, strides, dilations, padding, grouped convolutions, depth multipliers
1, 2, 4 and 8, per-tensor and per-channel weights, biases present and absent, activations that
clamp and that do not, requantisations outside the fast path's domain, and every in-place
kernel (pointwise narrowing, equal and widening; depthwise through the ring and the plane).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, QuantParams, verify
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .conftest import MODEL_FILES, require
from .random_graphs import _UNIFORM_INT8_STD, _Builder, _qp, random_graph

EMULATE = ["-DTE_SIMD_EMULATE"]
RECORDS = 4  # inputs per project and build


def _require_qemu() -> None:
    require(shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc is not installed (apt-get install --no-install-recommends "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    require(shutil.which("qemu-system-arm") is not None,
            "qemu-system-arm is not installed (apt-get install --no-install-recommends "
            "qemu-system-arm)")


# --- graphs -----------------------------------------------------------------------------------

def _input(b: _Builder, shape: tuple[int, ...]) -> str:
    scale = 10.0 ** b.rng.uniform(-2.5, -0.5)
    zp = int(b.rng.integers(-128, 128))
    x = b.tensor(shape, "int8", _qp(scale, zp))
    b.rms[x] = scale * math.hypot(_UNIFORM_INT8_STD, zp + 0.5)
    return x


def _conv(b: _Builder, x: str, oc: int, k: int = 1, stride: int = 1, dilation: int = 1,
          padding: str = "SAME", groups: int = 1, act: str = "NONE",
          per_channel: bool = True, inplace: bool = False) -> str:
    n, h, w, c = b.shape(x)
    win = {"kernel": (k, k), "stride": (stride, stride), "dilation": (dilation, dilation),
           "padding": padding}
    filt, w_rms = b.weights((oc, k, k, c // groups), 0, per_channel)
    acc_std = math.sqrt(k * k * c / groups) * b.rms[x] * w_rms
    bias, b_rms = b.bias(x, filt, oc, acc_std)
    y = b.activation((n, *b.out_hw(h, w, win), oc), math.hypot(acc_std, b_rms), act)
    attrs = {"stride": win["stride"], "dilation": win["dilation"], "padding": padding,
             "activation": act}
    if groups != 1:
        attrs["groups"] = groups
    if inplace:
        attrs["inplace"] = 0
    b.op("CONV_2D", [x, filt, bias], [y], **attrs)
    return y


def _dw(b: _Builder, x: str, m: int = 1, k: int = 3, stride: int = 1, dilation: int = 1,
        padding: str = "SAME", act: str = "NONE", per_channel: bool = True,
        inplace: bool = False) -> str:
    n, h, w, c = b.shape(x)
    win = {"kernel": (k, k), "stride": (stride, stride), "dilation": (dilation, dilation),
           "padding": padding}
    filt, w_rms = b.weights((1, k, k, c * m), 3, per_channel)
    acc_std = k * b.rms[x] * w_rms
    bias, b_rms = b.bias(x, filt, c * m, acc_std)
    y = b.activation((n, *b.out_hw(h, w, win), c * m), math.hypot(acc_std, b_rms), act)
    attrs = {"stride": win["stride"], "dilation": win["dilation"], "padding": padding,
             "depth_multiplier": m, "activation": act}
    if inplace:
        attrs["inplace"] = 0
    b.op("DEPTHWISE_CONV_2D", [x, filt, bias], [y], **attrs)
    return y


def _fc(b: _Builder, x: str, units: int, per_channel: bool = False, act: str = "NONE") -> str:
    if len(b.shape(x)) != 2:
        x = b.flatten(x)
    n, k = b.shape(x)
    wts, w_rms = b.weights((units, k), 0, per_channel)
    if not per_channel:  # a weights zero point, which only per-tensor FC may have
        t = b.tensors[wts]
        assert t.quant is not None
        t.quant = QuantParams(t.quant.scale, np.array([int(b.rng.integers(-9, 10))]), 0)
    acc_std = math.sqrt(k) * b.rms[x] * w_rms
    bias, b_rms = b.bias(x, wts, units, acc_std)
    y = b.activation((n, units), math.hypot(acc_std, b_rms), act)
    b.op("FULLY_CONNECTED", [x, wts, bias], [y], activation=act, keep_num_dims=False)
    return y


def _slow_requant(b: _Builder, y: str) -> None:
    """Shrink y's scale 64x so that its multipliers leave the fast path's domain (shift > -1):
    the kernels then take their portable loops inside a SIMD build."""
    t = b.tensors[y]
    assert t.quant is not None
    t.quant = QuantParams(t.quant.scale / 64.0, t.quant.zero_point, t.quant.axis)


def _degenerate_channels(b: _Builder, y: str) -> None:
    """Push some output channels of the per-channel layer producing y out of the fast
    requantisation's domain, the rest staying in it: two channels' weight scales grow 256x
    (multipliers above 1/2, shift >= 0), one shrinks 1e9x (multiplier 0), one 2^18x (shift
    below -22), and two biases move to +-(3 * 2^28 .. 3 * 2^29) (accumulators past 2^30). The
    kernels must keep SIMD for the other channels and give every channel the exact answer."""
    op = next(o for o in b.ops if o.outputs[0] == y)
    w = b.tensors[op.inputs[1]]
    assert w.quant is not None and w.quant.scale.size > 5
    scale = w.quant.scale.astype(np.float64).copy()
    scale[[1, 4]] *= 256.0
    scale[2] *= 1e-9
    scale[0] *= 2.0 ** -18
    w.quant = QuantParams(scale.astype(w.quant.scale.dtype), w.quant.zero_point, w.quant.axis)
    if len(op.inputs) > 2 and op.inputs[2]:
        bias = b.tensors[op.inputs[2]]
        assert bias.quant is not None and bias.data is not None
        bias.quant = QuantParams(np.float64(b.tensors[op.inputs[0]].scale) * scale,
                                 bias.quant.zero_point, bias.quant.axis)
        data = bias.data.copy()
        data[3], data[5] = 3 << 29, -(3 << 28)
        bias.data = data


def _graph(b: _Builder, x: str, y: str, name: str) -> Graph:
    g = Graph(b.tensors, b.ops, [x], [y], name=name)
    verify(g)
    return g


def pointwise_graph(seed: int) -> Graph:
    """Pointwise convolutions: both fast paths (channels a multiple of 8, activation NONE) and the
    general one, odd channel counts, odd pixel counts, and in-place narrowing, equal-width and
    widening layers (forward and backward orders, pixel pairs and an odd last pixel), and out of
    place with 16 or more input channels the widened pixel pairs with their work space at the
    output's end, on a plane where it fits and on one where only a few pairs fit."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 5, 7, 16))
    y = _conv(b, x, 24)                                    # 16 -> 24, fast path
    y = _conv(b, y, 24, act="RELU", inplace=True)          # equal width, in place
    y = _conv(b, y, 13, inplace=True)                      # narrowing: forward, pairs
    y = _conv(b, y, 13, act="RELU6", per_channel=False)    # odd channels, per tensor
    y = _conv(b, y, 40, inplace=True)                      # widening: backward
    y = _conv(b, y, 32, act="RELU", inplace=True)          # narrowing, multiple of 8
    y = _conv(b, y, 32, inplace=True)                      # equal width, fast path
    y = _conv(b, y, 24, inplace=True)                      # narrowing, fast path
    y = _conv(b, y, 17, inplace=True)                      # fast path: 8 + 16 inputs, odd outputs
    y = _conv(b, y, 7, stride=2, padding="VALID")          # strided 1x1: the generic kernel
    y = _conv(b, y, 16)                                    # 7 inputs: channel pairs only
    y = _conv(b, y, 24)                                    # 16 -> 24 on 3 x 4 pixels: widened
    y = _conv(b, y, 18, act="RELU")                        # pairs until the work space, then
    y = _conv(b, y, 9)                                     # channel pairs; 18: not 8n
    return _graph(b, x, y, f"pointwise{seed}")


def conv_graph(seed: int) -> Graph:
    """Generic convolutions: kernel sizes, strides, dilations, padding, groups, odd channels."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 11, 9, 3))
    y = _conv(b, x, 16, k=3, act="RELU")                   # 3 input channels: tails only
    y = _conv(b, y, 21, k=3, stride=2)                     # interior pairs, odd outputs
    y = _conv(b, y, 18, k=5, dilation=2, act="RELU6")      # dilated: one run per tap
    y = _conv(b, y, 12, k=3, groups=3)                     # grouped: 6 -> 4 per group
    y = _conv(b, y, 15, k=3, groups=3, padding="VALID")    # odd channels per group
    y = _conv(b, y, 9, k=2, stride=2, per_channel=False)
    return _graph(b, x, y, f"conv{seed}")


def depthwise_graph(seed: int) -> Graph:
    """Depthwise convolutions: multipliers 1, 2, 4 and 8, 3x3 (unrolled) and other windows,
    strides, dilation, odd channel counts, and the in-place ring and plane."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 13, 14, 1))
    y = _dw(b, x, m=8, k=3, act="RELU")                    # 1 input channel -> 8 (broadcast)
    y = _dw(b, y, m=1, k=3, inplace=True)                  # 8 channels through the ring
    y = _dw(b, y, m=1, k=7, inplace=True)                  # ring too large: plane
    y = _conv(b, y, 13)
    y = _dw(b, y, m=1, k=3, act="RELU6", inplace=True)     # 13 channels: ring + 1 on the plane
    y = _dw(b, y, m=2, k=3, dilation=2, per_channel=False)  # multiplier 2: one at a time
    y = _conv(b, y, 3)
    y = _dw(b, y, m=4, k=2, stride=2, padding="VALID")     # multiplier 4, even window
    y = _dw(b, y, m=1, k=3, stride=2)                      # the 3x3 kernel, strided
    return _graph(b, x, y, f"depthwise{seed}")


def dw3x3_graph(seed: int) -> Graph:
    """3x3 depthwise layers (multiplier 1) of the widened-filter paths: in place a row at a time
    (h >= 8) and through the pixel ring (h < 8: two rows of four channels do not fit the
    scratch), out of place with SAME and VALID padding, strides 1 and 2, per tensor and per
    channel, channel tails."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 10, 20, 1))
    y = _conv(b, x, 8)
    y = _dw(b, y, m=1, k=3, inplace=True)                  # 10x20: rows in place
    y = _dw(b, y, m=1, k=3, stride=2, per_channel=False)   # 5x10, strided, per tensor
    y = _dw(b, y, m=1, k=3, inplace=True)                  # 5x10: 8 * 10 > 50, pixel ring
    y = _dw(b, y, m=1, k=3, padding="VALID", act="RELU")   # 3x8, no border pixel
    y = _conv(b, y, 11)
    y = _dw(b, y, m=1, k=3, act="RELU6")                   # out of place, 11 channels
    y = _conv(b, y, 6)
    return _graph(b, x, y, f"dwrows{seed}")


def fc_graph(seed: int) -> Graph:
    """Fully connected layers: odd and even features, weights zero points, per channel with
    some channels outside the fast requantisation's domain, a whole layer outside it."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 4, 5, 3))
    y = _fc(b, x, 13, act="RELU")                          # 60 features, odd outputs
    y = _fc(b, y, 22, per_channel=True)
    _degenerate_channels(b, y)
    y = _fc(b, y, 7)
    _slow_requant(b, y)
    y = _fc(b, y, 10, act="RELU6")
    return _graph(b, x, y, f"fc{seed}")


def slow_requant_graph(seed: int) -> Graph:
    """Convolutions whose requantisation leaves te_simd_rq_ok's domain (portable fallback)."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 6, 6, 8))
    y = _conv(b, x, 8)
    _slow_requant(b, y)
    y = _dw(b, y, m=1, k=3)
    _slow_requant(b, y)
    y = _conv(b, y, 6, k=3)
    _slow_requant(b, y)
    return _graph(b, x, y, f"slow{seed}")


def partial_requant_graph(seed: int) -> Graph:
    """Out-of-place convolutions, pointwise and depthwise layers with some channels outside the
    fast requantisation's domain (_degenerate_channels): SIMD for all, then those channels
    again, exactly."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 9, 8, 8))
    y = _conv(b, x, 12, k=3, stride=2, act="RELU")         # generic conv
    _degenerate_channels(b, y)
    y = _dw(b, y, m=1, k=3, stride=2)                      # depthwise 3x3, strided
    _degenerate_channels(b, y)
    y = _dw(b, y, m=1, k=5, padding="SAME")                # depthwise, generic window
    _degenerate_channels(b, y)
    y = _conv(b, y, 20)                                    # pointwise 12 -> 20, out of place
    _degenerate_channels(b, y)
    return _graph(b, x, y, f"partial{seed}")


BUILT_GRAPHS = {"pointwise": pointwise_graph, "conv": conv_graph, "depthwise": depthwise_graph,
                "dwrows": dw3x3_graph, "fc": fc_graph, "slow": slow_requant_graph,
                "partial": partial_requant_graph}
RANDOM_SEEDS = (11, 13)
GRAPH_NAMES = [f"{name}{seed}" for name in BUILT_GRAPHS for seed in (0, 1)] + \
    [f"random{s}" for s in RANDOM_SEEDS]


def make_graph(name: str) -> Graph:
    if name.startswith("random"):
        return random_graph(np.random.default_rng(int(name[6:])), max_ops=5)
    return BUILT_GRAPHS[name[:-1]](int(name[-1]))


def _compile(graph: Graph, project: Path, patch: str = "off") -> Path:
    # inplace=False keeps the in-place marks set above (and adds none): every kernel named in
    # the graph is the one that runs.
    inplace = not any("inplace" in op.attrs for op in graph.ops)
    compile_graph(graph, project, prefix="m", patch=patch, inplace=inplace)
    return project


def _records(graph: Graph, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [random_inputs(graph, rng) for _ in range(RECORDS)]


def _assert_same(want: list[list[np.ndarray]], got: list[list[np.ndarray]], what: str) -> None:
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        for i, (a, c) in enumerate(zip(w, g)):
            assert a.dtype == c.dtype and a.shape == c.shape, (what, k, i)
            np.testing.assert_array_equal(c, a, err_msg=f"{what}: record {k}, output {i}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> (graph, project, records, host outputs), each graph compiled and run on the host
    once for the module."""
    root = tmp_path_factory.mktemp("simd")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            graph = make_graph(name)
            project = _compile(graph, root / name)
            records = _records(graph)
            host = HostModel(project)
            cache[name] = (graph, project, records, [host.invoke(r) for r in records])
        return cache[name]
    return get


# --- the graphs reach every kernel ------------------------------------------------------------

def test_graphs_reach_every_kernel(built):
    kernels = set()
    for name in GRAPH_NAMES:
        report = json.loads((built(name)[1] / "report.json").read_text())
        kernels |= {op["kernel"] for op in report["ops"]}
    assert {"te_conv2d_s8", "te_conv2d_1x1_s8", "te_conv2d_1x1_inplace_s8",
            "te_depthwise_conv_s8", "te_depthwise_conv_3x3_s8", "te_depthwise_conv_inplace_s8",
            "te_fully_connected_s8"} <= kernels


def test_projects_ship_the_simd_header(built):
    """Without te_simd.h beside them the kernels quietly build their portable loops only, so the
    code generator ships it with te_conv.c, te_depthwise.c and te_fc.c."""
    for name in ("pointwise0", "depthwise0", "fc0"):
        assert (built(name)[1] / "kernels" / "te_simd.h").is_file(), name


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m55"])
def test_kernels_build_at_every_optimisation_level(cpu, tmp_path):
    """The assembly loops need 13 or 14 free registers: te_simd.h enables them only where GCC
    finds them (-O1, -Og, -Os, -O2, -O3); -O0 takes the portable loops. A failure here is
    GCC's "asm operand has impossible constraints"."""
    require(shutil.which("arm-none-eabi-gcc") is not None, "arm-none-eabi-gcc is not installed")
    csrc = Path(__file__).resolve().parent.parent / "csrc"
    files = ["te_conv.c", "te_depthwise.c", "te_fc.c"] if cpu == "cortex-m4" else ["te_conv.c"]
    for level in ("-O0", "-O1", "-Og", "-Os", "-O2", "-O3"):
        for f in files:
            cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-std=c99", level, "-Wall",
                   "-Wextra", "-Werror", f"-I{csrc}", "-c", str(csrc / f), "-o",
                   str(tmp_path / "k.o")]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, f"{cpu} {level} {f}:\n{run.stderr[-2000:]}"


# --- host: the SIMD algorithms with C stand-ins for the instructions --------------------------

@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_emulated_simd_equals_portable_on_host(name, built):
    _, project, records, want = built(name)
    emulated = HostModel(project, extra_cflags=EMULATE)
    _assert_same(want, [emulated.invoke(r) for r in records], f"{name} emulated SIMD")


def test_emulated_simd_is_clean_under_sanitizers(built, tmp_path):
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    san = "-fsanitize=address,undefined -fno-sanitize-recover=all"
    for name in ("pointwise0", "conv0", "depthwise0", "dwrows0", "fc0", "partial0"):
        _, compiled, records, want = built(name)
        project = tmp_path / name
        shutil.copytree(compiled, project, ignore=shutil.ignore_patterns(".target", ".host"))
        subprocess.run(["make", "-s", "-j2", "-C", str(project),
                        f"CFLAGS=-std=c99 -O0 -Wall -Wextra -Werror -DTE_SIMD_EMULATE {san}",
                        f"LDFLAGS={san}"], check=True, capture_output=True, text=True)
        (tmp_path / "in.bin").write_bytes(b"".join(x.tobytes() for r in records for x in r))
        run = subprocess.run([str(project / "m_demo"), str(tmp_path / "in.bin"),
                              str(tmp_path / "out.bin")], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
        assert (tmp_path / "out.bin").read_bytes() == \
            b"".join(y.tobytes() for w in want for y in w), name


# --- Cortex-M4 under QEMU: SIMD and portable kernels ------------------------------------------

def _check_on_m4(project: Path, records, want, what: str) -> None:
    for simd in (True, False):
        run = run_records(project, records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"{what} on cortex-m4 ({'SIMD' if simd else 'portable'})")


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_graph_on_m4_simd_and_portable_equal_host(name, built):
    _require_qemu()
    _, project, records, want = built(name)
    _check_on_m4(project, records, want, name)


# Patch plans differ from whole-tensor execution only for these two (benchmarks/RESULTS.md).
MODEL_CASES = [(m, "off") for m in MODEL_FILES] + \
    [("tflm_person_detect.tflite", "auto"), ("tiny_pretrainedResnet_quant.tflite", "auto")]


@pytest.mark.parametrize("model,patch", MODEL_CASES)
def test_shared_model_on_m4_simd_and_portable_equal_host(model, patch, shared_models, tmp_path):
    _require_qemu()
    graph = load_tflite(shared_models / model)
    project = tmp_path / "p"
    compile_graph(graph, project, prefix="m", patch=patch)
    records = _records(graph, seed=1)
    host = HostModel(project)
    _check_on_m4(project, records, [host.invoke(r) for r in records], f"{model} (patch {patch})")


def test_digits_cnn_on_m4_simd_and_portable_equal_host(tmp_path):
    """The float-in, float-out digits CNN of the pipeline (untrained: equality needs no
    accuracy)."""
    _require_qemu()
    torch = pytest.importorskip("torch")
    from digits_cnn import digits_split, small_cnn

    from tinyengine.convert import compile_torch

    x_train, _, x_test, _ = digits_split(0)
    torch.manual_seed(0)
    model = small_cnn().eval()
    report = compile_torch(model, torch.from_numpy(x_test[:1]), [x_train[:64]], tmp_path / "d",
                           prefix="digits")
    shape = report["inputs"][0]["shape"]
    records = [[x_test[i].reshape(shape)] for i in range(RECORDS)]
    host = HostModel(tmp_path / "d")
    _check_on_m4(tmp_path / "d", records, [host.invoke(r) for r in records], "digits CNN")
