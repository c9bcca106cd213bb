"""Networks of the flexible space: a list of layers of any registered block kind, as plain data.

    input (C x r x r images, or C x r x 1 sequences of length r) -> layers -> dense head

The last layer is the dense head (global average pooling or flatten, an optional hidden dense
layer, the classifier); every other layer is a body block (tinynas/blocks/). Padding is
TensorFlow's SAME for convolutions; pooling drops an odd last row, as PyTorch does.

JSON: {"format": "tinynas-arch/2", "resolution", "in_channels", "num_classes", "dims",
"layers": [{"kind": ..., "out": ..., ...}], ...}. Files of format tinynas-arch/1 (MCUNet's
MBConv networks, tinynas/arch.py) still load through `load_any`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .arch import FORMAT as FORMAT1
from .arch import (
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_TENSOR_BYTES,
    MAX_WEIGHTS,
    Arch,
    check_common_fields,
    parse_json,
    read_text,
)
from .blocks import HEAD, Layer, get_kind
from .blocks.graph import same_out
from .errors import TinyNASError

FORMAT = "tinynas-arch/2"


@dataclass(frozen=True)
class Step:
    """One layer with the shape it reads: what builders iterate over."""

    index: int
    layer: Layer
    cin: int
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.h * self.w


@dataclass(frozen=True)
class FlexArch:
    resolution: int  # image side, or sequence length
    in_channels: int
    num_classes: int
    layers: tuple[Layer, ...]  # body blocks, then the dense head
    dims: int = 2  # 2: images (k x k kernels), 1: sequences (k x 1)
    width_mult: float | None = None  # informational: the space's multiplier
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def head(self) -> Layer:
        return self.layers[-1]

    def steps(self) -> Iterator[Step]:
        """Every layer with its input channels and spatial size."""
        cin, h = self.in_channels, self.resolution
        w = h if self.dims == 2 else 1
        for i, layer in enumerate(self.layers):
            yield Step(i, layer, cin, h, w)
            kind = get_kind(layer.kind)
            cin = kind.out_channels(layer, cin)
            if layer.kind in ("maxpool", "avgpool"):
                h, w = (h - 2) // 2 + 1, (w - 2) // 2 + 1 if self.dims == 2 else 1
            else:
                h, w = same_out(h, layer.stride), same_out(w, layer.stride if self.dims == 2
                                                           else 1)

    def summary(self) -> str:
        parts = [f"{self.name or 'net'} {'seq' if self.dims == 1 else 'img'} r{self.resolution}"]
        if self.width_mult is not None:
            parts.append(f"w{self.width_mult:g}")
        parts += [get_kind(s.layer.kind).describe(s.layer) for s in self.steps()]
        return " ".join(parts)

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [_layer_dict(x) for x in self.layers]
        if not d["extra"]:
            del d["extra"]
        return {"format": FORMAT, **d}

    def to_json(self) -> str:
        """Indented JSON with one line per layer."""
        text = json.dumps(self.to_dict(), indent=1)
        return re.sub(r"\{\n\s+(\"kind\"[^{}]*?)\n\s*\}",
                      lambda m: "{" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "}", text)

    @staticmethod
    def from_dict(d: Any, source: str = "architecture") -> FlexArch:
        return _from_dict(d, source)

    @staticmethod
    def load(path: str | Path) -> FlexArch:
        arch = load_any(path)
        if not isinstance(arch, FlexArch):
            raise TinyNASError(f"{path}: a {FORMAT1} (MBConv) architecture, not {FORMAT}")
        return arch

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")


_DEFAULTS = {f.name: f.default for f in fields(Layer)}


def _layer_dict(layer: Layer) -> dict[str, Any]:
    """Only the fields that differ from the defaults (and always kind and out)."""
    d = asdict(layer)
    return {k: v for k, v in d.items() if k in ("kind", "out") or v != _DEFAULTS[k]}


def load_any(path: str | Path) -> Arch | FlexArch:
    """An architecture file of either format."""
    p = Path(path)
    source = str(p)
    d = parse_json(read_text(p, "an architecture JSON"), source)
    if isinstance(d, dict) and d.get("format") == FORMAT:
        return _from_dict(d, source)
    return Arch.from_dict(d, source)


_TOP = {"format", "resolution", "in_channels", "num_classes", "layers", "dims", "width_mult",
        "name", "extra"}


def _int(v: Any, where: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= MAX_FIELD:
        raise TinyNASError(f"{where} must be an integer from {lo} to {MAX_FIELD:,}, got {v!r}")
    return v


def _from_dict(d: Any, source: str) -> FlexArch:
    if not isinstance(d, dict):
        raise TinyNASError(f"{source}: an architecture is a JSON object")
    unknown = sorted(set(d) - _TOP)
    if unknown:
        raise TinyNASError(f"{source}: unknown field(s) {', '.join(unknown)}; expected some of "
                           f"{', '.join(sorted(_TOP))}")
    missing = [k for k in ("resolution", "in_channels", "num_classes", "layers") if k not in d]
    if missing:
        raise TinyNASError(f"{source}: missing field(s) {', '.join(missing)}")
    if not isinstance(d["layers"], list) or len(d["layers"]) > MAX_BLOCKS:
        raise TinyNASError(f"{source}: layers must be a list of at most {MAX_BLOCKS} objects")
    layers = []
    for i, x in enumerate(d["layers"]):
        where = f"{source}: layers[{i}]"
        if not isinstance(x, dict) or not isinstance(x.get("kind"), str):
            raise TinyNASError(f"{where} must be an object with a kind")
        bad = sorted(set(x) - set(_DEFAULTS))
        if bad:
            raise TinyNASError(f"{where}: unknown field(s) {', '.join(bad)}")
        for k in ("out", "kernel", "stride", "expand", "slot"):
            if k in x:
                _int(x[k], f"{where}.{k}", lo=-1 if k == "slot" else 0)
        if not isinstance(x.get("residual", False), bool) or \
                not isinstance(x.get("pool", ""), str):
            raise TinyNASError(f"{where}: residual must be true/false and pool a string")
        layers.append(Layer(**x))
    kw = {k: d[k] for k in ("resolution", "in_channels", "num_classes", "dims", "width_mult",
                            "name", "extra") if k in d}
    for k in ("resolution", "in_channels", "num_classes", "dims"):
        if k in kw:
            _int(kw[k], f"{source}: {k}")
    check_common_fields(kw, source)
    try:
        return FlexArch(layers=tuple(layers), **kw)
    except TinyNASError as e:
        raise TinyNASError(f"{source}: {e}") from None


def _validate(a: FlexArch) -> None:
    """Structure, every layer by its kind, and the sizes no microcontroller could hold."""
    for k in ("resolution", "in_channels", "num_classes"):
        _int(getattr(a, k), k)
    if a.dims not in (1, 2):
        raise TinyNASError(f"dims must be 1 (sequences) or 2 (images), got {a.dims!r}")
    if not a.layers or a.layers[-1].kind != HEAD:
        raise TinyNASError(f"the last layer must be the {HEAD} head")
    if len(a.layers) > MAX_BLOCKS:
        raise TinyNASError(f"{len(a.layers):,} layers: more than {MAX_BLOCKS:,}")
    weights, biggest = 0, a.resolution * a.resolution * a.in_channels * 4
    for s in a.steps():
        where = f"layers[{s.index}]"
        if s.layer.kind == HEAD and s.index != len(a.layers) - 1:
            raise TinyNASError(f"{where}: the {HEAD} head must be the last layer")
        kind = get_kind(s.layer.kind)
        kind.validate(s.layer, s.cin, where)
        for k in ("out", "kernel", "expand"):
            _int(getattr(s.layer, k), f"{where}.{k}", lo=0)
        if s.h < 1 or s.w < 1:
            raise TinyNASError(f"{where} ({s.layer.kind}): the input is already smaller than "
                               "one position; use fewer strides or a larger resolution")
        cout = kind.out_channels(s.layer, s.cin)
        mid = s.cin * max(1, s.layer.expand)
        weights += (s.cin + s.layer.kernel ** 2 + 2) * mid + (mid + 1) * cout
        biggest = max(biggest, s.size * max(mid, cout))
    weights += a.layers[-1].out * (a.num_classes + 1)
    if biggest > MAX_TENSOR_BYTES:
        raise TinyNASError(f"an activation would take {biggest:,} bytes, more than a 32-bit "
                           f"microcontroller can address")
    if weights > MAX_WEIGHTS:
        raise TinyNASError(f"about {weights:,} weights: more than {MAX_WEIGHTS:,}, far beyond any "
                           "microcontroller's flash")

