"""Issues 15 and 16: a FULLY_CONNECTED layer calls the path it takes, chosen at compile time.

The generated code calls one entry point per layer (ops/fully_connected.py, simd_path), so a
model links only the paths it uses, and where the code generator may rearrange the weights it
calls te_fully_connected_i4_s8: four rows interleaved for one SIMD loop, the input offset folded
into the bias (keyword_scrambled's 64 -> 16 layers: 2,439 -> about 2,000 instructions on the
M4). Checked here with the SIMD algorithms emulated on the host (TE_SIMD_EMULATE) and with the
portable loops:
- the Python rule for the run-time dispatcher's path equals the C one
  (te_fully_connected_path_s8) on seeded random layers and the shared models' int8 FC layers;
- the entry point the generated code calls, and the dispatcher on the row-major weights, both
  give the numpy reference's output bit for bit, including biases near +-2^31 (sums outside
  the fast rule's |acc| < 2^30); every other path either refuses the layer or agrees;
- the interleaved layout is the one te_fc.h documents, byte for byte;
- one generated project that takes every path runs on the host and under QEMU (cortex-m4, SIMD
  and portable kernels) equal to the reference.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.ir import Graph, Op, QuantParams
from tinyengine.ops import get_op
from tinyengine.ops.fully_connected import (
    I4_ENTRY,
    dispatch_path,
    fold_input_offset,
    interleave4,
)

from .ckernels import CSRC, build
from .path_checks import check_on_host, check_on_m4, compile_project, shared_model_layers
from .random_graphs import _Builder
from .test_ops_dw_fc_add import CDEF as OPS_CDEF
from .test_ops_dw_fc_add import TE_OK, CCall, op_inputs
from .test_ops_dw_fc_add import run_reference as op_reference
from .test_simd import EMULATE, _graph, _input

FC = get_op("FULLY_CONNECTED")


def _paths() -> dict[int, str]:
    """te_fc_path_t, from te_fc.h: id -> the entry point its comment names."""
    header = (CSRC / "te_fc.h").read_text()
    found = re.findall(r"TE_FC_PATH_\w+ = (\d+),? +/\*\*< (te_\w+):", header)
    assert len(found) == 5, found
    return {int(i): name for i, name in found}


PATHS = _paths()
CDEF = OPS_CDEF + """
int te_fully_connected_path_s8(const te_fully_connected_params_t *p, const int32_t *bias);
"""


@pytest.fixture(scope="module", params=["emulated", "portable"])
def kernels(request) -> tuple[str, Any, Any]:
    flags = EMULATE if request.param == "emulated" else []
    ffi, lib = build(["te_depthwise.h", "te_fc.h", "te_add.h"],
                     ["te_depthwise.c", "te_fc.c", "te_add.c"], CDEF, tuple(flags),
                     ("te_simd.h", "te_requant16.h"))
    return request.param, ffi, lib


def _fc(b: _Builder, x: str, units: int, per_channel: bool = False, w_zp: int = 0,
        bias: bool = True, act: str = "NONE") -> str:
    if len(b.shape(x)) != 2:
        x = b.flatten(x)
    n, k = b.shape(x)
    wts, w_rms = b.weights((units, k), 0, per_channel)
    if w_zp:
        t = b.tensors[wts]
        assert t.quant is not None
        t.quant = QuantParams(t.quant.scale, np.array([w_zp]), 0)
    acc_std = math.sqrt(k) * b.rms[x] * w_rms
    bname, b_rms = b.bias(x, wts, units, acc_std) if bias else ("", 0.0)
    y = b.activation((n, units), math.hypot(acc_std, b_rms), act)
    b.op("FULLY_CONNECTED", [x, wts, bname], [y], activation=act, keep_num_dims=False)
    return y


def _huge_biases(b: _Builder, y: str) -> None:
    """Every other bias as near +-2^31 as the import's overflow check allows (|bias| + 255 *
    sum |w| < 2^31; keyword_scrambled's come within 2^20 of -2^31): sums far outside the fast
    rule's |acc| < 2^30."""
    op = next(o for o in b.ops if o.outputs[0] == y)
    if len(op.inputs) > 2 and op.inputs[2]:
        t, w = b.tensors[op.inputs[2]], b.tensors[op.inputs[1]]
        assert t.data is not None and w.data is not None
        room = 2**31 - 1 - 255 * np.abs(w.data.astype(np.int64)).sum(axis=1)
        data = t.data.astype(np.int64)
        data[::2] = np.where(data[::2] >= 0, room[::2], -room[::2])
        t.data = data.astype(np.int32)


def _random_layer(rng: np.random.Generator) -> tuple[Graph, Op]:
    b = _Builder(rng)
    batches = int(rng.choice([1, 1, 1, 2, 3]))
    n_in = int(rng.choice([1, 2, 3, 4, 8, 12, 16, 20, 33, 64, 68]))
    units = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 13, 16]))
    x = _input(b, (batches, n_in))
    per_channel = bool(rng.random() < 0.25) and units > 1
    w_zp = 0 if per_channel or rng.random() < 0.6 else int(rng.integers(-9, 10))
    y = _fc(b, x, units, per_channel, w_zp, bias=bool(rng.random() < 0.85),
            act=str(rng.choice(["NONE", "RELU", "RELU6"])))
    if rng.random() < 0.3:
        _huge_biases(b, y)
    if rng.random() < 0.15:  # multipliers above 1/2: outside the SIMD paths' rule
        t = b.tensors[y]
        assert t.quant is not None
        t.quant = QuantParams(t.quant.scale / 64.0, t.quant.zero_point, t.quant.axis)
    g = _graph(b, x, y, "layer")
    return g, g.ops[0]


def _call(ffi: Any, lib: Any, fn: str, params: Any, x: np.ndarray, w: np.ndarray,
          bias: np.ndarray | None, out_shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
    out = np.full(out_shape, 55, np.int8)
    ctype = "int32_t[]" if w.dtype == np.int32 else "int8_t[]"
    status = getattr(lib, fn)(params, ffi.from_buffer("int8_t[]", np.ascontiguousarray(x)),
                              ffi.from_buffer(ctype, w),
                              ffi.NULL if bias is None else ffi.from_buffer("int32_t[]", bias),
                              ffi.from_buffer("int8_t[]", out))
    return int(status), out


def _check_layer(kernels: tuple[str, Any, Any], g: Graph, op: Op, rng: np.random.Generator,
                 others: bool = False) -> str:
    """The Python dispatcher rule equals the C one; the called path and the dispatcher equal
    the reference; with `others`, every other path refuses the layer or equals it too."""
    mode, ffi, lib = kernels
    em = FC.emit(g, op)
    call = CCall(ffi, em)
    wt = g.tensor(op.inputs[1])
    bt = g.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    assert wt.data is not None
    w = np.ascontiguousarray(wt.data.astype(np.int8))
    bias = None
    if bt is not None:
        assert bt.data is not None
        bias = np.ascontiguousarray(bt.data.astype(np.int32))
    c_path = PATHS[lib.te_fully_connected_path_s8(
        call.params, ffi.NULL if bias is None else ffi.from_buffer("int32_t[]", bias))]
    py_path = dispatch_path(em.params, call.consts["mult"], call.consts["shift"], bias is not None)
    if mode == "emulated":
        assert c_path == py_path, (op.name, em.params)
    else:
        assert c_path == "te_fully_connected_portable_s8", c_path
    vals = op_inputs(rng, g, op)
    want, x = op_reference(g, op, vals), vals[0]
    assert x is not None
    out_shape = g.tensor(op.outputs[0]).shape
    status, got = _call(ffi, lib, em.kernel, call.params, x, call.consts["weights"],
                        call.consts.get("bias"), out_shape)
    assert status == TE_OK, (em.kernel, op.name)
    np.testing.assert_array_equal(got, want, err_msg=f"{em.kernel} ({mode})")
    for fn in ["te_fully_connected_s8"] + (list(PATHS.values()) if others else []):
        status, got = _call(ffi, lib, fn, call.params, x, w, bias, out_shape)
        if status == TE_OK:
            np.testing.assert_array_equal(got, want, err_msg=f"{fn} ({mode})")
        else:  # a SIMD path the layer does not take refuses it
            assert mode == "emulated" and status == 1 and fn != py_path, (fn, status)
    return em.kernel


def test_paths_enum_matches_entry_points() -> None:
    assert sorted(PATHS) == list(range(5)) and len(set(PATHS.values())) == 5


def test_interleaved_layout_is_the_documented_one() -> None:
    """Word k of block b, group g, row r holds row 4b + r's inputs 4g .. 4g + 3, the first in
    the low byte; the last out % 4 rows follow row after row."""
    rng = np.random.default_rng(1500)
    for n_out, n_in in [(4, 4), (7, 8), (16, 64), (9, 12), (3, 20)]:
        w = rng.integers(-128, 128, (n_out, n_in)).astype(np.int8)
        words = interleave4(w).astype(np.int64) & 0xFFFFFFFF
        by4 = n_out - n_out % 4
        assert words.size * 4 == w.size
        for o in range(n_out):
            for i in range(n_in):
                k = ((o // 4) * n_in + (i // 4) * 4 + o % 4 if o < by4
                     else by4 * n_in // 4 + (o - by4) * (n_in // 4) + i // 4)
                byte = (int(words[k]) >> (8 * (i % 4))) & 0xFF
                assert byte - 256 * (byte > 127) == w[o, i], (n_out, n_in, o, i)


def test_folded_bias_wraps_like_the_int32_sums() -> None:
    w = np.full((2, 4), 127, np.int8)
    got = fold_input_offset(w, np.array([2**31 - 10, -(2**31) + 10]), 128)
    want = [(b + 128 * 508 + 2**31) % 2**32 - 2**31 for b in (2**31 - 10, -(2**31) + 10)]
    assert got.tolist() == want and got.dtype == np.int32


def test_random_layers(kernels) -> None:
    rng = np.random.default_rng(1515)
    seen = set()
    for i in range(150):
        g, op = _random_layer(rng)
        seen.add(_check_layer(kernels, g, op, rng, others=i % 3 == 0))
    assert {I4_ENTRY, "te_fully_connected_general_s8", "te_fully_connected_one_in_s8",
            "te_fully_connected_few_s8", "te_fully_connected_per_tensor_s8"} <= seen, seen


def test_shared_models_fc_layers(kernels) -> None:
    rng = np.random.default_rng(1516)
    layers = 0
    for g, op in shared_model_layers("FULLY_CONNECTED"):
        _check_layer(kernels, g, op, rng, others=True)
        layers += 1
    assert layers > 0


# --- one project taking every path, on the host and the emulated Cortex-M4 --------------------

def every_path_graph(seed: int) -> Graph:
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (2, 16))
    y = _fc(b, x, 12)                          # i4
    _huge_biases(b, y)
    y = _fc(b, y, 6, w_zp=3)                   # per_tensor (a weights zero point)
    y = _fc(b, y, 1)                           # few
    y = _fc(b, y, 8)                           # one_in
    y = _fc(b, y, 8, per_channel=True)         # general
    y = _fc(b, y, 5, bias=False)               # i4 without a bias: one is made, the folded one
    y = _fc(b, y, 3)                           # few, three rows
    return _graph(b, x, y, f"fcpaths{seed}")


EVERY_PATH = {I4_ENTRY, "te_fully_connected_per_tensor_s8", "te_fully_connected_few_s8",
              "te_fully_connected_one_in_s8", "te_fully_connected_general_s8"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    return compile_project(every_path_graph(0), tmp_path_factory.mktemp("fcpaths"))


def test_project_calls_each_layers_path(project) -> None:
    _, path, _, _ = project
    report = json.loads((path / "report.json").read_text())
    fcs = [o for o in report["ops"] if o["kind"] == "FULLY_CONNECTED"]
    assert {o["entry"] for o in fcs} == EVERY_PATH
    model_c = (path / "m_model.c").read_text()
    for o in fcs:  # the report's kernel is the variant (latency tables); the call is the path
        assert o["kernel"] == "te_fully_connected_s8"
        assert f"return {o['entry']}(" in model_c
    assert "return te_fully_connected_s8(" not in model_c


def test_project_on_host_portable_and_emulated(project) -> None:
    check_on_host(*project[1:])


def test_project_on_m4_simd_and_portable(project) -> None:
    check_on_m4(*project[1:])
