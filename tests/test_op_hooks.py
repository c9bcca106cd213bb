"""Every registered op answers every hook of the OpDef contract, or declares it not applicable;
the frontends and passes find ops through the registry alone."""

from __future__ import annotations

import pytest

from tinyengine.frontend.onnx_ops import onnx_converters
from tinyengine.ops import HOOKS, REGISTRY, OpDef, implements, register

KINDS = sorted(REGISTRY)


def test_registry_is_discovered():
    # Ops register by being modules of the package: the original twelve are all there.
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
                 "MAX_POOL_2D", "MEAN", "RESHAPE", "SOFTMAX", "PAD", "QUANTIZE", "DEQUANTIZE"):
        assert kind in REGISTRY


@pytest.mark.parametrize("kind", KINDS)
def test_every_hook_implemented_or_not_applicable(kind):
    opdef = REGISTRY[kind]
    unknown = set(opdef.not_applicable) - set(HOOKS)
    assert not unknown, f"{kind}: not_applicable names unknown hooks {sorted(unknown)}"
    for hook in HOOKS:
        done, na = implements(opdef, hook), hook in opdef.not_applicable
        assert done != na, (f"{kind}: hook {hook} is " +
                            ("both implemented and declared not applicable" if done else
                             "neither implemented nor declared not applicable"))
    assert opdef.dtypes, f"{kind}: declares no dtypes"
    assert opdef.patch in ("windowed", "elementwise", "none")
    assert (opdef.patch == "windowed") == implements(opdef, "window"), \
        f"{kind}: a windowed op needs `window`, and only a windowed one has it"
    if opdef.onnx_types:  # node types it claims must reach a converter of its own
        assert implements(opdef, "from_onnx"), f"{kind} claims {opdef.onnx_types}"


def test_onnx_types_have_one_owner():
    table = onnx_converters()  # raises when two ops claim one node type
    for kind, opdef in REGISTRY.items():
        for t in opdef.onnx_types:
            assert table[t] == opdef.from_onnx, (kind, t)


def test_register_refuses_bad_definitions():
    class NoPatch(OpDef):
        kind = "TEST_NO_PATCH"

    with pytest.raises(ValueError, match="patch"):
        register(NoPatch)

    class Twice(OpDef):
        kind = "CONV_2D"
        patch = "none"

    with pytest.raises(ValueError, match="registered twice"):
        register(Twice)
    assert "TEST_NO_PATCH" not in REGISTRY
