"""Issue 16: the generated code calls the path of a kernel a layer takes, not the kernel's run-time
dispatcher, so a model links only the paths it uses (DEPTHWISE_CONV_2D).

The path is chosen twice: in Python at compile time (ops/depthwise.py, simd_path, from the
emitted params and constants) and in C at run time (te_depthwise_path_s8, which the dispatchers
te_depthwise_conv_s8 / _3x3_s8 / _inplace_s8 follow). A wrong Python predicate would call a
slower path, or one that refuses the layer. Checked here, with the SIMD algorithms emulated on
the host (TE_SIMD_EMULATE): the two choose the same path for the shared models' depthwise layers
and for seeded random layers (kernel sizes, strides, dilations, multipliers, one input channel,
in place or not, every channel, some or none inside the fast requantisation's domain); the path
the generated code calls, and the dispatcher, both give the numpy reference's output bit for
bit; every path refuses a layer outside its domain. One generated project that takes every path
runs on the host and under QEMU (cortex-m4, SIMD and portable kernels) equal to the reference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.ir import Graph, Op
from tinyengine.ops import get_op

from .ckernels import CSRC, build
from .path_checks import (
    check_on_host,
    check_on_m4,
    compile_project,
    run_kernel,
    shared_model_layers,
)
from .random_graphs import _Builder
from .test_kernel_wrappers import CDEF as WRAPPER_CDEF
from .test_ops_dw_fc_add import TE_OK, CCall, op_inputs
from .test_ops_dw_fc_add import run_reference as op_reference
from .test_simd import (
    EMULATE,
    _conv,
    _degenerate_channels,
    _dw,
    _graph,
    _input,
    _slow_requant,
)

DW = get_op("DEPTHWISE_CONV_2D")
VARIANT = {"te_depthwise_conv_s8": 0, "te_depthwise_conv_3x3_s8": 1,
           "te_depthwise_conv_inplace_s8": 2}  # te_depthwise_variant_t


def _paths() -> dict[int, str]:
    """te_depthwise_path_t, from te_depthwise.h: id -> the entry point its comment names."""
    header = (CSRC / "te_depthwise.h").read_text()
    found = re.findall(r"TE_DW_PATH_\w+ = (\d+),? +/\*\*< (te_\w+) \*/", header)
    assert len(found) == 16, found
    return {int(i): name for i, name in found}


PATHS = _paths()
OUT_OF_PLACE = [n for n in PATHS.values() if "_inplace_" not in n]
IN_PLACE = [n for n in PATHS.values() if "_inplace_" in n]
CDEF = WRAPPER_CDEF + """
int te_depthwise_path_s8(const te_depthwise_conv_params_t *p, const int32_t *bias, int variant);
te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_inplace_s8(const te_depthwise_conv_params_t *p,
    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output,
    int8_t *scratch);
""" + "".join(f"""te_status_t {n}(const te_depthwise_conv_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
""" for n in OUT_OF_PLACE) + "".join(f"""te_status_t {n}(const te_depthwise_conv_params_t *p,
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
    em = DW.emit(g, op)
    variant = DW.kernel(g, op)
    in_place = variant == "te_depthwise_conv_inplace_s8"
    call = CCall(ffi, em)
    bias = ffi.from_buffer("int32_t[]", call.consts["bias"]) if "bias" in call.consts \
        else ffi.NULL
    c_path = PATHS[lib.te_depthwise_path_s8(call.params, bias, VARIANT[variant])]
    if mode == "emulated":
        assert c_path == em.kernel, (op.name, em.params)
    else:
        assert c_path.endswith("portable_s8"), c_path
    vals = op_inputs(rng, g, op)
    want, x = op_reference(g, op, vals), vals[0]
    assert x is not None
    out_shape = g.tensor(op.outputs[0]).shape
    for fn in (em.kernel, variant):
        status, got = run_kernel(ffi, lib, call, fn, x, out_shape, in_place, em.scratch_bytes)
        assert status == TE_OK, (fn, op.name)
        np.testing.assert_array_equal(got, want, err_msg=f"{fn} on {op.name} ({mode})")
    if others:
        family = IN_PLACE if in_place else [
            n for n in OUT_OF_PLACE if ("_3x3_" in n) == (variant == "te_depthwise_conv_3x3_s8")]
        for fn in family:
            status, got = run_kernel(ffi, lib, call, fn, x, out_shape, in_place, em.scratch_bytes)
            if status == TE_OK:
                np.testing.assert_array_equal(got, want, err_msg=f"{fn} on {op.name} ({mode})")
            else:  # outside the path's domain (geometry or requantisation): refused
                assert mode == "emulated" and status == 1, (fn, status)
    return em.kernel


def _random_layer(rng: np.random.Generator, in_place: bool) -> tuple[Graph, Op]:
    """One DEPTHWISE_CONV_2D of random geometry; some layers have channels (or all of them)
    outside the fast requantisation's domain."""
    b = _Builder(rng)
    n = int(rng.choice([1, 1, 2]))
    h, w = (int(v) for v in rng.integers(1, 13, 2))
    c = int(rng.choice([1, 2, 3, 4, 6, 8, 12, 16]))
    k = int(rng.choice([1, 2, 3, 3, 3, 3, 4, 5]))
    if in_place:
        m, stride, dil, padding, c = 1, 1, int(rng.choice([1, 1, 2])), "SAME", max(c, 2)
        if rng.random() < 0.5:  # the 3x3 window of the ring3, rows and small-plane paths
            k, dil = 3, 1
            h, w = (int(v) for v in rng.integers(1, 20, 2))
    else:
        m = int(rng.choice([1, 1, 2, 3, 4, 8])) if c > 1 else int(rng.choice([1, 4, 8]))
        stride, dil = int(rng.choice([1, 1, 2, 3])), int(rng.choice([1, 1, 1, 2]))
        if rng.random() < 0.3:  # the 3x3 window of the w9 paths
            k, m, dil = 3, 1, 1
        padding = str(rng.choice(["SAME", "VALID"]))
        if padding == "VALID" and (k - 1) * dil + 1 > min(h, w):
            padding = "SAME"
    x = _input(b, (n, h, w, c))
    y = _dw(b, x, m=m, k=k, stride=stride, dilation=dil, padding=padding, inplace=in_place)
    if not in_place and k == 3 and dil == 1 and rng.random() < 0.3:
        # Padding 2 (a patch's explicit window): outside the 3x3 kernel's domain, so the
        # generic variant, and its w9 path when the multiplier is 1.
        pad = (int(rng.integers(0, 3)), 2)
        out = [(size + 2 * p - 3) // stride + 1 for size, p in zip((h, w), pad)]
        if min(out) >= 1:
            b.ops[0].attrs["window"] = (out[0], out[1], pad[0], pad[1])
            b.tensors[y].shape = (n, out[0], out[1], c * m)
    domain = rng.choice(["all", "all", "some", "none"])
    if domain == "some" and c * m > 5:
        _degenerate_channels(b, y)
    elif domain == "none":  # 2^18x: every multiplier above 1/2 (shift >= 0)
        for _ in range(3):
            _slow_requant(b, y)
    g = _graph(b, x, y, "layer")
    return g, g.ops[0]


def test_paths_enum_matches_entry_points() -> None:
    """te_depthwise_path_t names each entry point once, and the out-of-place SIMD paths sit
    beside their partial forms (te_depthwise_path_s8 returns path + 1 for the partial one)."""
    assert len(set(PATHS.values())) == len(PATHS)
    for i, name in PATHS.items():
        if name.endswith("_partial_s8"):
            assert PATHS[i - 1] == name.replace("_partial_s8", "_s8")


@pytest.mark.parametrize("in_place", [False, True], ids=["out_of_place", "in_place"])
def test_random_layers_python_path_is_c_path(kernels, in_place: bool) -> None:
    rng = np.random.default_rng(1600 + in_place)
    seen = set()
    for i in range(120):
        g, op = _random_layer(rng, in_place)
        seen.add(_check_layer(kernels, g, op, rng, others=i % 4 == 0))
    if kernels[0] == "emulated":  # the random layers reach these paths (not all of them)
        want = {"te_depthwise_conv_inplace_plane_s8", "te_depthwise_conv_inplace_ring_s8",
                "te_depthwise_conv_inplace_small_s8", "te_depthwise_conv_inplace_rows_s8",
                "te_depthwise_conv_inplace_ring3_s8",
                "te_depthwise_conv_inplace_portable_s8"} if in_place else {
            "te_depthwise_conv_3x3_w9_s8", "te_depthwise_conv_3x3_w9_partial_s8",
            "te_depthwise_conv_w9_s8", "te_depthwise_conv_pairs_s8",
            "te_depthwise_conv_quads_s8", "te_depthwise_conv_quads_partial_s8",
            "te_depthwise_conv_portable_s8", "te_depthwise_conv_3x3_portable_s8"}
        assert want <= seen, want - seen


def test_shared_models_depthwise_layers(kernels) -> None:
    """Every int8 depthwise layer of the shared models, out of place and (where the op allows
    it) in place."""
    rng = np.random.default_rng(1616)
    layers = 0
    for g, op in shared_model_layers("DEPTHWISE_CONV_2D", DW):
        _check_layer(kernels, g, op, rng)
        layers += 1
    assert layers > 0


# --- one project taking every path, on the host and the emulated Cortex-M4 --------------------

def every_path_graph(seed: int) -> Graph:
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 16, 6, 8))
    y = _dw(b, x, k=3, inplace=True)                   # inplace_ring3 (three padded rows fit)
    y = _dw(b, y, k=3)                                 # 3x3_w9
    y = _dw(b, y, k=5, inplace=True)                   # inplace_ring (delayed outputs)
    y = _dw(b, y, k=3, stride=2)                       # 3x3_w9, strided: 8x3x8
    y = _dw(b, y, k=3, inplace=True)                   # inplace_rows (8 * w <= h * w)
    y = _dw(b, y, k=5, m=1)                            # quads
    _degenerate_channels(b, y)                         # ... partial
    y = _dw(b, y, k=3, dilation=2)                     # w9? no: dilation 2 -> quads
    y = _conv(b, y, 1)                                 # one channel: 8x3x1
    y = _dw(b, y, k=4, m=4, padding="SAME")            # pairs: 8x3x4
    y = _dw(b, y, k=3, m=2)                            # quads, multiplier 2 (one at a time)
    y = _dw(b, y, k=3, stride=2)                       # 3x3_w9: 4x2x8
    y = _dw(b, y, k=3, inplace=True)                   # inplace_small (4 * (w + 2) > h * w)
    y = _dw(b, y, k=3, dilation=2, inplace=True)       # inplace_plane
    y = _dw(b, y, k=3)                                 # 3x3_portable
    for _ in range(3):
        _slow_requant(b, y)
    return _graph(b, x, y, f"paths{seed}")


EVERY_PATH = {"te_depthwise_conv_inplace_ring3_s8", "te_depthwise_conv_3x3_w9_s8",
              "te_depthwise_conv_inplace_ring_s8", "te_depthwise_conv_inplace_rows_s8",
              "te_depthwise_conv_quads_partial_s8", "te_depthwise_conv_quads_s8",
              "te_depthwise_conv_pairs_s8", "te_depthwise_conv_inplace_small_s8",
              "te_depthwise_conv_inplace_plane_s8", "te_depthwise_conv_3x3_portable_s8"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    return compile_project(every_path_graph(0), tmp_path_factory.mktemp("paths"))


def test_project_calls_each_layers_path(project) -> None:
    graph, path, _, _ = project
    report = json.loads((path / "report.json").read_text())
    dws = [o for o in report["ops"] if o["kind"] == "DEPTHWISE_CONV_2D"]
    assert EVERY_PATH <= {o["entry"] for o in dws}
    model_c = (path / "m_model.c").read_text()
    for o in dws:  # the report's kernel is the variant (latency tables); the call is the path
        assert o["kernel"] in VARIANT
        assert f"return {o['entry']}(" in model_c
    assert not re.search(r"return te_depthwise_conv(_3x3|_inplace)?_s8\(", model_c)


def test_project_on_host_portable_and_emulated(project) -> None:
    check_on_host(*project[1:])


def test_project_on_m4_simd_and_portable(project) -> None:
    check_on_m4(*project[1:])
