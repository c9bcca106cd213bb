"""The resource model of the search is the engine's: what tinynas predicts for an architecture
is what `compile_torch` reports for the extracted, quantised subnet, exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tinyengine.convert import compile_torch, export_torch, quantize_onnx
from tinyengine.cost import estimate, estimate_schedule, flash_bytes, with_placeholders
from tinyengine.ir import Graph, verify
from tinynas.budget import Budget, arch_cost, check_budget
from tinynas.resources import build_graph, estimate_arch, quick_summary
from tinynas.space import PRESETS
from tinynas.subnet import recalibrate_bn
from tinynas.supernet import Supernet

# 20 random subnets: 14 of the digits space (all its widths and resolutions, 14 distinct
# (w, r) pairs), 6 at ImageNet / VWW widths and small resolutions, so that compiling them stays
# quick.
_DIGITS = PRESETS["digits"]
_NW, _NR = len(_DIGITS.width_mults), len(_DIGITS.resolutions)
CASES = [("digits", _DIGITS.width_mults[i % _NW], _DIGITS.resolutions[(i + i // _NW) % _NR], i)
         for i in range(14)]
CASES += [("imagenet", 0.2, 48, 100), ("imagenet", 0.3, 48, 101), ("imagenet", 0.5, 64, 102),
          ("vww", 0.2, 64, 103), ("vww", 0.4, 48, 104), ("vww", 0.3, 80, 105)]

_SUPERNETS: dict[tuple[str, float], Supernet] = {}


def _supernet(space: str, w: float) -> Supernet:
    if (space, w) not in _SUPERNETS:
        torch.manual_seed(0)
        _SUPERNETS[space, w] = Supernet(PRESETS[space], w)
    return _SUPERNETS[space, w]


def _subnet(space: str, w: float, r: int | None, seed: int):
    """An extracted subnet with BatchNorm recalibrated on random data (keeps activations in a
    range the int8 activation limits can express), its architecture and calibration data."""
    net = _supernet(space, w)
    arch = net.sample(np.random.default_rng(seed), r)
    sub = net.extract(arch)
    shape = (8, arch.in_channels, arch.resolution, arch.resolution)
    g = torch.Generator().manual_seed(seed)
    recalibrate_bn(sub, [torch.randn(shape, generator=g) for _ in range(2)])
    calib = [torch.randn(shape, generator=g).numpy()]
    return arch, sub, calib


def _compiled(sub, arch, calib, out, patch: str) -> dict:
    x = torch.zeros(1, arch.in_channels, arch.resolution, arch.resolution)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_torch(sub, x, calib, out, patch=patch, qdq=False)


@pytest.mark.parametrize("space, w, r, seed", CASES)
def test_prediction_equals_compiled_report(space, w, r, seed, tmp_path):
    arch, sub, calib = _subnet(space, w, r, seed)
    report = _compiled(sub, arch, calib, tmp_path / "p", "off")
    cost = arch_cost(arch)
    assert (cost.peak_sram, cost.flash_bytes, cost.macs) == \
        (report["arena_bytes"], report["flash_bytes"], report["macs"])
    # The ops the engine runs: the priced schedule's (fused blocks included), in its order.
    sched = estimate_schedule(build_graph(arch), "off")[1]
    assert [op["kind"] for op in report["ops"]] == [op.kind for op in sched.graph.ops]


def test_digits_cases_cover_the_whole_grid():
    digits = [(w, r) for space, w, r, _ in CASES if space == "digits"]
    assert len(set(digits)) == len(digits)
    assert {w for w, _ in digits} == set(_DIGITS.width_mults)
    assert {r for _, r in digits} == set(_DIGITS.resolutions)


# Two digits subnets whose whole-tensor peak patches cut. (The vww space's float32 input is
# itself its peak since memory/ sizes widening groups per step: no patch lowers it there.)
@pytest.mark.parametrize("space, w, r, seed", [("digits", 0.75, 12, 3), ("digits", 0.5, 16, 5)])
def test_prediction_equals_compiled_report_with_patches(space, w, r, seed, tmp_path):
    arch, sub, calib = _subnet(space, w, r, seed)
    report = _compiled(sub, arch, calib, tmp_path / "p", "auto")
    cost = arch_cost(arch, "auto")
    assert (cost.peak_sram, cost.flash_bytes, cost.macs) == \
        (report["arena_bytes"], report["flash_bytes"], report["macs"])
    assert cost.patches is not None  # both cases really run with patches
    assert (cost.patches is None) == (report["patches"] is None)


def test_int8_input_graph_is_the_imported_graph_without_its_quantize(tmp_path):
    arch, sub, calib = _subnet("vww", 0.3, 48, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_torch(sub, torch.zeros(1, 3, 48, 48), tmp_path / "m.onnx")
    _, graph = quantize_onnx(tmp_path / "m.onnx", calib)
    assert graph.ops[0].kind == "QUANTIZE"
    first = graph.ops[0].outputs[0]
    tensors = {n: t for n, t in graph.tensors.items() if n not in graph.inputs}
    stripped = Graph(tensors, graph.ops[1:], [first], graph.outputs)
    ours = estimate_arch(arch, int8_input=True)
    theirs = estimate(stripped)
    assert (ours.peak_sram, ours.flash_bytes, ours.macs) == \
        (theirs.peak_sram, theirs.flash_bytes, theirs.macs)


def test_fast_path_equals_estimate_on_random_subnets():
    rng = np.random.default_rng(0)
    for name in ("digits", "imagenet", "vww"):
        space = PRESETS[name]
        for _ in range(6):
            w, r = space.configs[rng.integers(len(space.configs))]
            arch = space.sample(rng, w, min(r, 112))
            graph = build_graph(arch)
            verify(with_placeholders(graph))
            ref, fast = estimate_arch(arch), arch_cost(arch)
            assert (fast.peak_sram, fast.flash_bytes, fast.macs) == \
                (ref.peak_sram, ref.flash_bytes, ref.macs)
            flash, biggest = quick_summary(arch)
            assert flash == flash_bytes(with_placeholders(graph))
            assert biggest <= ref.peak_sram


def test_fast_path_with_patches_equals_estimate():
    # (test_prediction_equals_compiled_report_with_patches covers an ImageNet-sized case)
    rng = np.random.default_rng(1)
    for arch in (PRESETS["digits"].sample(rng, 0.75, 12), PRESETS["digits"].sample(rng, 0.5, 16)):
        ref, fast = estimate_arch(arch, "auto"), arch_cost(arch, "auto")
        assert (fast.peak_sram, fast.flash_bytes, fast.macs) == \
            (ref.peak_sram, ref.flash_bytes, ref.macs)


def test_check_budget_rejects_and_accepts_like_estimate():
    rng = np.random.default_rng(2)
    space = PRESETS["digits"]
    budget = Budget(1536, 6144, macs=40_000)
    outcomes = set()
    for _ in range(40):
        arch = space.sample(rng)
        v, c = check_budget(arch, budget), estimate_arch(arch)
        fits = c.peak_sram <= budget.sram and c.flash_bytes <= budget.flash and \
            c.macs <= 40_000
        assert v.fits == fits
        assert v.flash == c.flash_bytes
        assert not v.patched
        if v.peak_sram is not None:
            assert (v.peak_sram, v.macs) == (c.peak_sram, c.macs)
        outcomes.add(v.reason)
    assert {"", "flash", "sram"} <= outcomes  # the sample tests both answers


def test_check_budget_with_auto_patches_tries_whole_tensors_first():
    """patch="auto": whole tensors when they fit (no recomputed MACs), else patches; the figures
    are those of the way it would be deployed, and `patched` says which."""
    rng = np.random.default_rng(3)
    space = PRESETS["digits"]
    budget = Budget(500, 8192)
    archs = [space.sample(rng, min(space.width_mults), r) for r in (8, 10, 12) * 2]
    archs.append(space.smallest())
    archs.append(space.extreme(max(space.width_mults), min(space.resolutions), largest=True))
    outcomes = set()
    for arch in archs:
        v, whole = check_budget(arch, budget, "auto"), estimate_arch(arch)
        assert v.flash == whole.flash_bytes
        if whole.flash_bytes > budget.flash:
            assert (v.fits, v.reason, v.patched) == (False, "flash", False)
            outcomes.add("flash")
            continue
        needs_patches = whole.peak_sram > budget.sram
        assert v.patched == needs_patches
        ref = estimate_arch(arch, "auto") if needs_patches else whole
        assert (v.peak_sram, v.macs) == (ref.peak_sram, ref.macs)
        assert v.fits == (ref.peak_sram <= budget.sram)
        assert v.reason == ("" if v.fits else "sram")
        if v.fits and v.patched:
            assert ref.patches is not None and ref.macs >= whole.macs
        outcomes.add((v.fits, v.patched))
    # whole tensors fit; only patches fit; nothing fits; flash rejects before any planning
    assert outcomes == {(True, False), (True, True), (False, True), "flash"}
