"""The flexible space (issue 14 points 1 and 2): block kinds as a registry, each with every
hook; the search's figures are the engine's on each kind's graph, equal to what the deploy
compiles from the extracted PyTorch module; the supernet's subnets equal their extractions;
architecture files of both formats load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tinyengine.cost import with_placeholders
from tinynas.arch import Arch
from tinynas.blocks import HEAD, KINDS, Layer, Slot
from tinynas.blocks.base import BlockKind
from tinynas.blocks.graph import GraphBuilder
from tinynas.errors import TinyNASError
from tinynas.flexarch import FlexArch, load_any
from tinynas.flexcost import build_graph, flex_cost
from tinynas.flexnet import FlexNet, FlexSupernet
from tinynas.flexspace import FLEX_PRESETS, FlexSpace
from tinynas.zoo import MODELS

# Hooks the base class only declares: every kind must implement them.
DECLARED = ("elastic", "standalone", "copy_into", "emit")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_implements_every_hook(name):
    """Each hook of the kind, run: choices inside a slot that allows it, the elastic module
    equal to its standalone extraction, and an engine graph that verifies."""
    from tinyengine.ir import verify

    kind = KINDS[name]
    for hook in DECLARED:
        assert getattr(type(kind), hook) is not getattr(BlockKind, hook), (name, hook)
    head = name == HEAD
    stride = 2 if name in ("maxpool", "avgpool") else 1
    slot = Slot((name,), (0, 6) if head else (4, 6, 8), (3, 5), stride, (2, 3), False,
                not head, ("avg", "flatten"))
    rng = np.random.default_rng(0)
    cin, dims, classes = 6, 1, 5
    layers = [kind.sample(slot, cin, rng, 0) for _ in range(8)]
    layers += [kind.mutate(x, slot, cin, rng, 0.5) for x in layers]
    layers += [kind.crossover(a, b, slot, cin, rng) for a, b in zip(layers, layers[1:])]
    layers = [kind.fit(x, slot, cin) for x in layers]
    elastic = kind.elastic(slot, 8, dims, classes, (8, 16)).eval()
    for x in layers:
        kind.validate(x, cin, "layer")
        assert kind.describe(x)
        module = kind.standalone(x, cin, dims, classes, 16).eval()
        kind.copy_into(elastic, module, x, cin)
        t = torch.randn(2, cin, 16, 1)
        with torch.no_grad():
            assert torch.allclose(elastic(t, x), module(t), atol=1e-5), x
        g = GraphBuilder()
        y = kind.emit(g, g.act("x", (1, 16, 1, cin)), x, "l", dims, classes)
        graph = g.graph(["x"], [y], name)
        verify(with_placeholders(graph))
        out = graph.tensors[y].shape
        assert out[-1] == (classes if head else kind.out_channels(x, cin))


def _spaces():
    return [FLEX_PRESETS["mnist1d"], FLEX_PRESETS["digits-flex"]]


def _random_archs(space: FlexSpace, n: int, seed: int) -> list[FlexArch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_samples_cover_every_kind():
    seen = {x.kind for s in _spaces() for a in _random_archs(s, 60, 0) for x in a.layers}
    assert seen == set(KINDS)


@pytest.mark.parametrize("space", _spaces(), ids=lambda s: s.name)
def test_cost_equals_the_compiled_report(space, tmp_path):
    """Random subnets of every kind, 1-D and 2-D: the figures the search uses are the compiled
    project's (the PyTorch module through ONNX, quantised, planned and generated)."""
    from tinyengine.convert import compile_torch

    archs = _random_archs(space, 40, 1)
    # Enough to hold every kind at least once in each space, in few compiles.
    chosen, kinds = [], set()
    for a in archs:
        new = {x.kind for x in a.layers} - kinds
        if new or len(chosen) < 2:
            chosen.append(a)
            kinds |= new
    assert kinds == set(KINDS)
    for i, a in enumerate(chosen):
        net = FlexNet(a).eval()
        w = a.resolution if a.dims == 2 else 1
        calib = np.random.default_rng(i).random((4, a.in_channels, a.resolution, w),
                                                dtype=np.float32)
        rep = compile_torch(net, torch.from_numpy(calib[:1]), calib, tmp_path / f"p{i}",
                            patch="off")
        c = flex_cost(a)
        assert (rep["arena_bytes"], rep["flash_bytes"], rep["macs"]) == \
            (c.peak_sram, c.flash_bytes, c.macs), a.summary()


@pytest.mark.parametrize("space", _spaces(), ids=lambda s: s.name)
def test_supernet_subnet_equals_its_extraction(space):
    rng = np.random.default_rng(2)
    for w in space.width_mults:
        net = FlexSupernet(space, w).eval()
        for _ in range(6):
            a = space.sample(rng, w)
            x = torch.randn(2, a.in_channels, a.resolution, a.resolution if a.dims == 2 else 1)
            with torch.no_grad():
                assert torch.allclose(net(x, a), net.extract(a).eval()(x), atol=1e-5), \
                    a.summary()


@pytest.mark.parametrize("space", _spaces(), ids=lambda s: s.name)
def test_genetic_operators_stay_in_the_space(space):
    rng = np.random.default_rng(3)
    for _ in range(50):
        w = space.width_mults[int(rng.integers(len(space.width_mults)))]
        a, b = space.sample(rng, w), space.sample(rng, w)
        assert space.contains(a)
        assert space.contains(space.mutate(a, rng, 0.5, space.resolutions))
        assert space.contains(space.crossover(a, b, rng))
    assert space.contains(space.smallest())
    assert space.contains(space.extreme(max(space.width_mults), None, largest=True))


def test_same_seed_same_samples():
    s = FLEX_PRESETS["mnist1d"]
    assert _random_archs(s, 10, 7) == _random_archs(s, 10, 7)
    assert _random_archs(s, 10, 7) != _random_archs(s, 10, 8)


def test_json_round_trip_and_both_formats_load(tmp_path):
    for a in _random_archs(FLEX_PRESETS["mnist1d"], 5, 4):
        p = tmp_path / "a.json"
        a.save(p)
        assert FlexArch.load(p) == a and load_any(p) == a
        assert json.loads(p.read_text())["format"] == "tinynas-arch/2"
    old = next(iter(MODELS.values()))
    p = tmp_path / "old.json"
    old.save(p)
    assert isinstance(load_any(p), Arch) and load_any(p) == old
    with pytest.raises(TinyNASError, match="tinynas-arch/1"):
        FlexArch.load(p)


@pytest.mark.parametrize("change, message", [
    ({"layers": [{"kind": "conv", "out": 8, "kernel": 3}]}, "last layer must be the dense"),
    ({"layers": [{"kind": "warp", "out": 8}, {"kind": "dense", "out": 0, "pool": "avg"}]},
     "unknown block kind 'warp'"),
    ({"layers": [{"kind": "conv", "out": 8, "kernel": 4},
                 {"kind": "dense", "out": 0, "pool": "avg"}]}, "odd kernel"),
    ({"layers": [{"kind": "conv", "out": 8, "kernel": 3, "residual": True},
                 {"kind": "dense", "out": 0, "pool": "avg"}]}, "shortcut needs"),
    ({"layers": [{"kind": "maxpool", "out": 3, "kernel": 2, "stride": 2},
                 {"kind": "dense", "out": 0, "pool": "avg"}]}, "as many channels out as in"),
    ({"layers": [{"kind": "dense", "out": 0, "pool": "max"}]}, "pool one of"),
    ({"dims": 3}, "dims must be"),
    ({"layers": [{"kind": "conv", "out": 8, "colour": 1},
                 {"kind": "dense", "out": 0, "pool": "avg"}]}, "unknown field"),
])
def test_bad_files_get_one_line(tmp_path, change, message):
    d = {"format": "tinynas-arch/2", "resolution": 16, "in_channels": 1, "num_classes": 4,
         "dims": 1, "layers": [{"kind": "conv", "out": 8, "kernel": 3},
                               {"kind": "dense", "out": 0, "pool": "avg"}]}
    d.update(change)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(TinyNASError, match=message) as e:
        load_any(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_one_dimensional_graph_uses_k_by_1_kernels():
    a = FlexArch(40, 1, 10, (Layer("conv", 8, 5, 2), Layer("dwsep", 8, 3, 1, residual=True),
                             Layer(HEAD, 0, pool="flatten")), dims=1)
    g = build_graph(a)
    conv = next(op for op in g.ops if op.kind == "CONV_2D")
    assert g.tensors[conv.inputs[1]].shape == (8, 5, 1, 1)
    assert conv.attrs["stride"] == (2, 1)
    assert g.tensors[conv.outputs[0]].shape == (1, 20, 1, 8)
    assert any(op.kind == "ADD" for op in g.ops)
