"""Issue 16: the generated code calls the path of a CONV_2D kernel a layer takes, not the kernel's
run-time dispatcher, so a model links only the convolution and pointwise paths it uses.

The path is chosen twice: in Python at compile time (ops/conv.py, simd_path, from the emitted
params and constants) and in C at run time (te_conv2d_path_s8, which the dispatchers
te_conv2d_s8 / _1x1_s8 / _1x1_inplace_s8 follow). A wrong Python predicate would call a slower
path, or one that refuses the layer. Checked here, with the SIMD algorithms emulated on the host
(TE_SIMD_EMULATE): the two choose the same path for the shared models' convolutions and for
seeded random layers (kernel sizes, strides, dilations, groups, input channels a multiple of 4
or not, planes too small for the im2col or widened work space, in place or not, every channel,
some or none inside the fast requantisation's domain); the path the generated code calls, and
the dispatcher, both give the numpy reference's output bit for bit; every path refuses a layer
outside its domain. One generated project that takes every path runs on the host and under QEMU
(cortex-m4, SIMD and portable kernels) equal to the reference, and its SIMD firmware links only
the paths it calls.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.ir import Graph, Op
from tinyengine.ops import get_op
from tinyengine.target import build_firmware

from .ckernels import CSRC, build
from .path_checks import (
    check_on_host,
    check_on_m4,
    compile_project,
    run_kernel,
    shared_model_layers,
)
from .random_graphs import _Builder
from .test_firmware_totals import _require_toolchain
from .test_kernel_wrappers import CDEF as WRAPPER_CDEF
from .test_ops_dw_fc_add import TE_OK, CCall, op_inputs
from .test_ops_dw_fc_add import run_reference as op_reference
from .test_simd import (
    EMULATE,
    _conv,
    _degenerate_channels,
    _graph,
    _input,
    _slow_requant,
)

CONV = get_op("CONV_2D")
VARIANT = {"te_conv2d_s8": 0, "te_conv2d_1x1_s8": 1, "te_conv2d_1x1_inplace_s8": 2}


def _paths() -> dict[int, str]:
    """te_conv2d_path_t, from te_conv.h: id -> the entry point its comment names."""
    header = (CSRC / "te_conv.h").read_text()
    found = re.findall(r"TE_CONV_PATH_\w+ = (\d+),? +/\*\*< (te_\w+) \*/", header)
    assert len(found) == 14, found
    return {int(i): name for i, name in found}


PATHS = _paths()
IN_PLACE = [n for n in PATHS.values() if "_inplace_" in n]
POINTWISE = [n for n in PATHS.values() if "_1x1_" in n and n not in IN_PLACE]
GENERIC = [n for n in PATHS.values() if "_1x1_" not in n]
FAMILY = {"te_conv2d_s8": GENERIC, "te_conv2d_1x1_s8": POINTWISE,
          "te_conv2d_1x1_inplace_s8": IN_PLACE}
CDEF = WRAPPER_CDEF + """
int te_conv2d_path_s8(const te_conv2d_params_t *p, const int32_t *bias, int variant);
te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output, int8_t *scratch);
""" + "".join(f"""te_status_t {n}(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
""" for n in GENERIC + POINTWISE) + "".join(f"""te_status_t {n}(const te_conv2d_params_t *p,
    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output,
    int8_t *scratch);
""" for n in IN_PLACE)


@pytest.fixture(scope="module", params=["emulated", "portable"])
def kernels(request) -> tuple[str, Any, Any]:
    flags = EMULATE if request.param == "emulated" else []
    ffi, lib = build(["te_conv.h", "te_depthwise.h"], ["te_conv.c", "te_depthwise.c"], CDEF,
                     tuple(flags), ("te_simd.h", "te_requant16.h"))
    return request.param, ffi, lib


def _check_layer(kernels: tuple[str, Any, Any], g: Graph, op: Op, rng: np.random.Generator,
                 others: bool = False) -> str:
    """The Python path equals the C path (in the emulated SIMD build; the portable build takes
    the variant's portable loop); the path called and the dispatcher equal the reference. With
    `others`, every other path of the variant either refuses the layer or equals it too.
    Returns the path."""
    mode, ffi, lib = kernels
    em = CONV.emit(g, op)
    variant = CONV.kernel(g, op)
    in_place = variant == "te_conv2d_1x1_inplace_s8"
    call = CCall(ffi, em)
    bias = ffi.from_buffer("int32_t[]", call.consts["bias"]) if "bias" in call.consts \
        else ffi.NULL
    c_path = PATHS[lib.te_conv2d_path_s8(call.params, bias, VARIANT[variant])]
    if mode == "emulated":
        assert c_path == em.kernel, (op.name, em.params)
    else:
        assert c_path.endswith("portable_s8"), c_path
    assert em.kernel in FAMILY[variant], (em.kernel, variant)
    vals = op_inputs(rng, g, op)
    want, x = op_reference(g, op, vals), vals[0]
    assert x is not None
    out_shape = g.tensor(op.outputs[0]).shape
    for fn in (em.kernel, variant):
        status, got = run_kernel(ffi, lib, call, fn, x, out_shape, in_place, em.scratch_bytes)
        assert status == TE_OK, (fn, op.name)
        np.testing.assert_array_equal(got, want, err_msg=f"{fn} on {op.name} ({mode})")
    if others:
        for fn in FAMILY[variant]:
            status, got = run_kernel(ffi, lib, call, fn, x, out_shape, in_place, em.scratch_bytes)
            if status == TE_OK:
                np.testing.assert_array_equal(got, want, err_msg=f"{fn} on {op.name} ({mode})")
            else:  # outside the path's domain (geometry or requantisation): refused
                assert mode == "emulated" and status == 1, (fn, status)
    return em.kernel


def _random_layer(rng: np.random.Generator, kind: str) -> tuple[Graph, Op]:
    """One CONV_2D of random geometry ("generic", "pointwise" or "in_place"); some layers have
    channels (or all of them) outside the fast requantisation's domain, and some planes are too
    small for the im2col or widened work space at the output's end."""
    b = _Builder(rng)
    n = int(rng.choice([1, 1, 2]))
    h, w = (int(v) for v in rng.integers(1, 11, 2))
    if kind == "generic":
        c = int(rng.choice([1, 2, 3, 4, 6, 8, 12, 16]))
        oc = int(rng.choice([1, 2, 3, 6, 8, 9, 16]))
        k = int(rng.choice([1, 2, 3, 3, 3, 5]))
        stride, dil = int(rng.choice([1, 1, 2, 3])), int(rng.choice([1, 1, 1, 2]))
        groups = 2 if c % 2 == 0 and oc % 2 == 0 and rng.random() < 0.2 else 1
        padding = str(rng.choice(["SAME", "VALID"]))
        if padding == "VALID" and (k - 1) * dil + 1 > min(h, w):
            padding = "SAME"
        x = _input(b, (n, h, w, c))
        y = _conv(b, x, oc, k=k, stride=stride, dilation=dil, padding=padding, groups=groups,
                  act=str(rng.choice(["NONE", "RELU", "RELU6"])))
    else:
        c = int(rng.choice([1, 3, 7, 8, 15, 16, 17, 24, 32, 40]))
        oc = int(rng.choice([1, 2, 5, 8, 13, 16, 24]))
        x = _input(b, (n, h, w, c))
        y = _conv(b, x, oc, act=str(rng.choice(["NONE", "RELU", "RELU6"])),
                  per_channel=bool(rng.random() < 0.8), inplace=kind == "in_place")
    domain = rng.choice(["all", "all", "some", "none"])
    scales = b.tensors[b.ops[0].inputs[1]].quant
    assert scales is not None
    if domain == "some" and oc > 5 and scales.scale.size == oc:
        _degenerate_channels(b, y)
    elif domain == "none":  # 2^18x: every multiplier above 1/2 (shift >= 0)
        for _ in range(3):
            _slow_requant(b, y)
    g = _graph(b, x, y, "layer")
    return g, g.ops[0]


def test_paths_enum_matches_entry_points() -> None:
    """te_conv2d_path_t names each entry point once, and the SIMD paths sit beside their
    partial forms (te_conv2d_path_s8 returns path + 1 for the partial one)."""
    assert len(set(PATHS.values())) == len(PATHS)
    assert len(GENERIC) == 7 and len(POINTWISE) == 5 and len(IN_PLACE) == 2
    for i, name in PATHS.items():
        if name.endswith("_partial_s8"):
            assert PATHS[i - 1] == name.replace("_partial_s8", "_s8")


@pytest.mark.parametrize("kind", ["generic", "pointwise", "in_place"])
def test_random_layers_python_path_is_c_path(kernels, kind: str) -> None:
    rng = np.random.default_rng(1700 + ["generic", "pointwise", "in_place"].index(kind))
    seen = set()
    for i in range(120):
        g, op = _random_layer(rng, kind)
        seen.add(_check_layer(kernels, g, op, rng, others=i % 4 == 0))
    if kernels[0] == "emulated":  # the random layers reach every path of the variant
        want = set({"generic": GENERIC, "pointwise": POINTWISE, "in_place": IN_PLACE}[kind])
        if kind == "generic":  # some random 1x1 layers are pointwise: their paths count too
            seen &= set(GENERIC)
        assert want <= seen, want - seen


def test_shared_models_conv_layers(kernels) -> None:
    """Every int8 CONV_2D layer of the shared models, out of place and (where the op allows it)
    in place."""
    rng = np.random.default_rng(1717)
    layers = 0
    for g, op in shared_model_layers("CONV_2D", CONV):
        _check_layer(kernels, g, op, rng)
        layers += 1
    assert layers > 0


# --- one project taking every path, on the host and the emulated Cortex-M4 --------------------

def every_path_graph(seed: int) -> Graph:
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 12, 10, 3))
    y = _conv(b, x, 8, k=3)                      # im2col: 3 input channels, short rows
    y = _conv(b, y, 8, k=3)                      # im2col_q15: 8 input channels
    y = _conv(b, y, 16)                          # 1x1_pairs: 8 input channels
    y = _conv(b, y, 16, act="RELU")              # 1x1_widened: 16 input channels
    y = _conv(b, y, 16, inplace=True)            # 1x1_inplace_q15
    y = _conv(b, y, 6, k=3)                      # direct: rows of 48 values, 6 outputs
    y = _conv(b, y, 8, k=3)                      # im2col_partial: 6 input channels
    _degenerate_channels(b, y)
    y = _conv(b, y, 16, k=3)                     # im2col_q15_partial
    _degenerate_channels(b, y)
    y = _conv(b, y, 6, k=3)                      # direct_partial
    _degenerate_channels(b, y)
    y = _conv(b, y, 8)                           # 1x1_pairs_partial
    _degenerate_channels(b, y)
    y = _conv(b, y, 16)                          # 1x1_pairs
    y = _conv(b, y, 16)                          # 1x1_widened_partial
    _degenerate_channels(b, y)
    y = _conv(b, y, 8)                           # 1x1_portable
    for _ in range(3):
        _slow_requant(b, y)
    # A slowed output's scale also scales the next layer's multipliers down by as much: 2^36
    # and 2^54 here leave 2^18 each.
    y = _conv(b, y, 8, k=3)                      # portable
    for _ in range(6):
        _slow_requant(b, y)
    y = _conv(b, y, 8, inplace=True)             # 1x1_inplace_portable
    for _ in range(9):
        _slow_requant(b, y)
    return _graph(b, x, y, f"convpaths{seed}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    return compile_project(every_path_graph(0), tmp_path_factory.mktemp("convpaths"))


def test_project_calls_each_layers_path(project) -> None:
    graph, path, _, _ = project
    report = json.loads((path / "report.json").read_text())
    convs = [o for o in report["ops"] if o["kind"] == "CONV_2D"]
    assert {o["entry"] for o in convs} == set(PATHS.values())
    model_c = (path / "m_model.c").read_text()
    for o in convs:  # the report's kernel is the variant (latency tables); the call is the path
        assert o["kernel"] in VARIANT and o["entry"] in FAMILY[o["kernel"]]
        assert f"return {o['entry']}(" in model_c
    assert not re.search(r"return te_conv2d(_1x1|_1x1_inplace)?_s8\(", model_c)


def test_project_on_host_portable_and_emulated(project) -> None:
    check_on_host(*project[1:])


def test_project_on_m4_simd_and_portable(project) -> None:
    check_on_m4(*project[1:])


def _linked(elf: Path) -> set[str]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True,
                         text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_firmware_links_only_the_paths_called(tmp_path) -> None:
    """A model whose convolutions take the direct and pointwise channel-pair paths links neither
    im2col gathering, nor the widened pointwise pairs, nor the dispatchers, nor the portable
    loops (cortex-m4, SIMD, -Os, --gc-sections)."""
    _require_toolchain()
    b = _Builder(np.random.default_rng(5))
    x = _input(b, (1, 6, 6, 16))
    y = _conv(b, x, 6, k=3)                      # direct
    y = _conv(b, y, 8)                           # 1x1_pairs
    g = _graph(b, x, y, "lean")
    compile_graph(g, tmp_path / "p", prefix="m", patch="off", inplace=False)
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert [o["entry"] for o in report["ops"] if o["kind"] == "CONV_2D"] == \
        ["te_conv2d_direct_s8", "te_conv2d_1x1_pairs_s8"]
    names = _linked(build_firmware(tmp_path / "p", "stm32f412", opt="Os", runtime="bare",
                                   simd=True))
    assert {"te_conv2d_direct_s8", "te_conv2d_1x1_pairs_s8", "te_conv2d_simd"} <= names
    for absent in ("te_conv2d_s8", "te_conv2d_room_s8", "te_conv2d_1x1_s8",
                   "te_conv_im2col_q15", "te_conv_im2col_column", "te_conv_q15_acc",
                   "te_conv2d_1x1_widened_simd", "te_conv2d_value", "te_conv2d_fix_channels"):
        assert absent not in names, absent
