"""The im2col path of te_conv2d_s8 (issue 15, pattern 3): convolutions whose kernel row
(filter.w * filter.c) is short gather each pixel pair's patch, widen it once and run the 2x2 q15
product over all output channels, with the end of the output buffer as work space and the last
pixels through the generic SIMD loop. Bit-exact with the portable kernel on the host (emulated
SIMD, also under ASan/UBSan) and on the emulated Cortex-M4 (SIMD and portable builds).

The layers sit on the edges of its domain (te_conv2d_im2col_ok): rows of 32 values (inside)
and 40 (outside, with few output channels), longer rows with 8 or more output channels
(inside) and 7 (outside), k a multiple of 8 (the assembly) and not, odd output channels, clamping
activations, dilation (one copy per tap), padding on every side, an output too small for the
work space, zero points -128 and 127 (the padding byte), and a requantisation outside the fast
path's domain (portable loop).
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from tinyengine.ir import Graph
from tinyengine.runtime import HostModel

from .conftest import require
from .random_graphs import _UNIFORM_INT8_STD, _Builder, _qp
from .test_simd import (
    EMULATE,
    _assert_same,
    _check_on_m4,
    _compile,
    _graph,
    _records,
    _require_qemu,
    _slow_requant,
)


def _input(b: _Builder, shape: tuple[int, ...], zp: int) -> str:
    scale = 10.0 ** b.rng.uniform(-2.5, -0.5)
    x = b.tensor(shape, "int8", _qp(scale, zp))
    b.rms[x] = scale * math.hypot(_UNIFORM_INT8_STD, zp + 0.5)
    return x


def _conv(b: _Builder, x: str, oc: int, kh: int, kw: int, stride: int = 1, dilation: int = 1,
          padding: str = "SAME", act: str = "NONE", per_channel: bool = True) -> str:
    """A CONV_2D with a kh x kw kernel (the shared builder's are square)."""
    n, h, w, c = b.shape(x)
    win = {"kernel": (kh, kw), "stride": (stride, stride), "dilation": (dilation, dilation),
           "padding": padding}
    filt, w_rms = b.weights((oc, kh, kw, c), 0, per_channel)
    acc_std = math.sqrt(kh * kw * c) * b.rms[x] * w_rms
    bias, b_rms = b.bias(x, filt, oc, acc_std)
    y = b.activation((n, *b.out_hw(h, w, win), oc), math.hypot(acc_std, b_rms), act)
    b.op("CONV_2D", [x, filt, bias], [y], stride=win["stride"], dilation=win["dilation"],
         padding=padding, activation=act)
    return y


def kws_graph(seed: int) -> Graph:
    """kws's first layer (10x4 over one channel, stride 2: k = 40, the assembly), then short rows
    that are not multiples of 8, odd channels, clamping activations, a long row."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 21, 10, 1), -128 if seed == 0 else 127)
    y = _conv(b, x, 64, 10, 4, stride=2, act="RELU")       # k = 40, pixels 11 x 5 (odd)
    y = _conv(b, y, 3, 1, 1)                               # 64 -> 3: few channels again
    y = _conv(b, y, 13, 3, 3, act="RELU6")                 # row 9, k = 27, odd channels
    y = _conv(b, y, 6, 5, 2, padding="VALID")              # row 26, k = 130
    y = _conv(b, y, 4, 2, 2, dilation=2)                   # row 12, one copy per tap
    y = _conv(b, y, 8, 2, 4, stride=2, per_channel=False)  # row 16, k = 32, per tensor
    y = _conv(b, y, 5, 1, 4)                               # row 32: the longest inside
    y = _conv(b, y, 8, 1, 1)
    y = _conv(b, y, 3, 1, 5)                               # row 40: outside, generic
    return _graph(b, x, y, f"kws{seed}")


def edges_graph(seed: int) -> Graph:
    """Outputs too small for the work space, a strided 1x1 with 8 channels (row 8), a
    requantisation outside the fast path (portable loop inside a SIMD build)."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 9, 8, 8), int(b.rng.integers(-20, 20)))
    y = _conv(b, x, 10, 1, 1, stride=2)                    # strided 1x1: k = 8
    y = _conv(b, y, 2, 3, 2, stride=2, padding="VALID")    # 2 x 2 x 2 output: no room
    y = _conv(b, y, 5, 3, 3)                               # 2 x 2 x 5 = 20 B < 6 * 18 + 3
    y = _conv(b, y, 16, 3, 1)                              # room for some pairs only
    _slow_requant(b, y)
    y = _conv(b, y, 7, 2, 3)
    return _graph(b, x, y, f"edges{seed}")


def long_rows_graph(seed: int) -> Graph:
    """Rows longer than 32 values take im2col when at least 8 output channels share each widened
    pair (resnet's 3x3 over 16 channels), and the generic loop with fewer."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 12, 12, 16), int(b.rng.integers(-128, 128)))
    y = _conv(b, x, 9, 3, 3, act="RELU")                   # row 48, k = 144, 9 channels: im2col
    y = _conv(b, y, 5, 1, 1)
    y = _conv(b, y, 10, 1, 7, act="RELU6")                 # row 35, k = 35 (not 8n), 10: im2col
    y = _conv(b, y, 7, 1, 5)                               # row 50, 7 channels: generic
    y = _conv(b, y, 8, 3, 3, stride=2)                     # row 21: short
    y = _conv(b, y, 12, 3, 5, padding="VALID")             # row 40, output too small: generic
    return _graph(b, x, y, f"long{seed}")


GRAPHS = {"kws": kws_graph, "edges": edges_graph, "long": long_rows_graph}
NAMES = [f"{name}{seed}" for name in GRAPHS for seed in (0, 1)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("im2col")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            graph = GRAPHS[name[:-1]](int(name[-1]))
            project = _compile(graph, root / name)
            records = _records(graph)
            host = HostModel(project)
            cache[name] = (graph, project, records, [host.invoke(r) for r in records])
        return cache[name]
    return get


@pytest.mark.parametrize("name", NAMES)
def test_portable_equals_reference(name, built):
    from tinyengine.reference import run_reference
    graph, _, records, want = built(name)
    for r, w in zip(records, want):
        _assert_same([run_reference(graph, r)], [w], f"{name} portable")


@pytest.mark.parametrize("name", NAMES)
def test_emulated_simd_equals_portable(name, built):
    _, project, records, want = built(name)
    emulated = HostModel(project, extra_cflags=EMULATE)
    _assert_same(want, [emulated.invoke(r) for r in records], f"{name} emulated SIMD")


def test_emulated_simd_is_clean_under_sanitizers(built, tmp_path):
    """The work space lies inside the output buffer: ASan sees any byte outside it."""
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    san = "-fsanitize=address,undefined -fno-sanitize-recover=all"
    for name in ("kws0", "edges0"):
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


@pytest.mark.parametrize("name", NAMES)
def test_on_m4_simd_and_portable_equal_host(name, built):
    _require_qemu()
    _, project, records, want = built(name)
    _check_on_m4(project, records, want, name)
