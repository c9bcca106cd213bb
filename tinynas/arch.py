"""Architecture descriptions: one network of the MCUNet / MobileNetV2 family, as plain data.

An `Arch` names every channel count explicitly instead of deriving it from a width multiplier,
so that networks built with other rounding rules (MobileNetV2-w0.35, ProxylessNAS-w0.3) are
described exactly, and a description read back from JSON means the same network forever.

The network it describes:
    stem:        3x3 conv (stride `stem_stride`) -> BN -> ReLU6
    first block: 3x3 depthwise -> BN -> ReLU6 -> 1x1 project -> BN (expand ratio 1, no shortcut)
    stages:      inverted residual blocks; the first block of a stage has the stage's stride,
                 the others stride 1. Block = 1x1 expand -> BN -> ReLU6 -> kxk depthwise -> BN ->
                 ReLU6 -> 1x1 project -> BN, the expand conv absent when the ratio is 1; an
                 identity shortcut iff stride 1 and in == out channels.
    head:        optional 1x1 conv -> BN -> ReLU6 ("feature mix"), global average pool, linear.
Middle channels = make_divisible(round(in * expand), channel_divisor), as once-for-all does.
Padding is TensorFlow's SAME (the extra row/column of a stride-2 window at the bottom/right).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import TinyNASError

FORMAT = "tinynas-arch/1"


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The TensorFlow/once-for-all channel rounding: nearest multiple of `divisor`, never more
    than 10% below `v`."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


@dataclass(frozen=True)
class Block:
    kernel: int
    expand: int


@dataclass(frozen=True)
class Stage:
    channels: int
    stride: int
    blocks: tuple[Block, ...]

    @property
    def depth(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class LayerSpec:
    """One inverted residual block with its derived shapes (what builders iterate over)."""

    index: int  # 0 = the first block, then stage blocks in order
    stage: int  # -1 for the first block
    cin: int
    cout: int
    mid: int
    kernel: int
    stride: int
    expand: int
    residual: bool


@dataclass(frozen=True)
class Arch:
    resolution: int
    stem_channels: int
    first_block_channels: int
    stages: tuple[Stage, ...]
    in_channels: int = 3
    num_classes: int = 1000
    stem_stride: int = 2
    head_channels: int = 0  # 0: no 1x1 feature-mix conv before pooling
    channel_divisor: int = 8
    width_mult: float | None = None  # informational: the multiplier the channels came from
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        _validate(self)

    def mid_channels(self, cin: int, expand: int) -> int:
        return cin if expand == 1 else make_divisible(round(cin * expand), self.channel_divisor)

    def layers(self) -> Iterator[LayerSpec]:
        """The first block, then every stage block, with channels, stride and shortcut."""
        yield LayerSpec(0, -1, self.stem_channels, self.first_block_channels,
                        self.stem_channels, 3, 1, 1, False)
        cin, index = self.first_block_channels, 1
        for s, stage in enumerate(self.stages):
            for i, b in enumerate(stage.blocks):
                stride = stage.stride if i == 0 else 1
                yield LayerSpec(index, s, cin, stage.channels, self.mid_channels(cin, b.expand),
                                b.kernel, stride, b.expand, stride == 1 and cin == stage.channels)
                cin, index = stage.channels, index + 1

    @property
    def body_channels(self) -> int:
        """Channels out of the last block (into the head, or the pooling)."""
        return self.stages[-1].channels

    @property
    def last_channels(self) -> int:
        """Channels into the classifier."""
        return self.head_channels or self.body_channels

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    def summary(self) -> str:
        """One line: name, resolution, widths and per-stage depth / kernels / expand ratios."""
        parts = [f"{self.name or 'arch'} r{self.resolution}"]
        if self.width_mult is not None:
            parts.append(f"w{self.width_mult:g}")
        parts.append(f"stem {self.stem_channels} first {self.first_block_channels}")
        for s in self.stages:
            ke = ",".join(f"k{b.kernel}e{b.expand}" for b in s.blocks)
            parts.append(f"[{s.channels}/s{s.stride}: {ke}]")
        if self.head_channels:
            parts.append(f"head {self.head_channels}")
        return " ".join(parts)

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = [{"channels": s.channels, "stride": s.stride,
                        "blocks": [{"kernel": b.kernel, "expand": b.expand} for b in s.blocks]}
                       for s in self.stages]
        if not d["extra"]:
            del d["extra"]
        return {"format": FORMAT, **d}

    def to_json(self) -> str:
        """Indented JSON with one line per block, for files people read and diff."""
        text = json.dumps(self.to_dict(), indent=1)
        return re.sub(r'\{\s*"kernel": (\d+),\s*"expand": (\d+)\s*\}',
                      r'{"kernel": \1, "expand": \2}', text)

    @staticmethod
    def from_dict(d: Any, source: str = "architecture") -> Arch:
        return _from_dict(d, source)

    @staticmethod
    def from_json(text: str, source: str = "architecture") -> Arch:
        return _from_dict(parse_json(text, source), source)

    @staticmethod
    def load(path: str | Path) -> Arch:
        p = Path(path)
        return Arch.from_json(read_text(p, "an architecture JSON"), str(p))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")


def read_text(path: Path, what: str) -> str:
    """A JSON file's text, or one line saying why not (missing, unreadable, not text)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TinyNASError(f"{path}: not a text file; expected {what}") from None
    except OSError as e:
        raise TinyNASError(f"{path}: cannot read {what} ({e.strerror})") from None


def parse_json(text: str, source: str) -> Any:
    """json.loads with every failure as one line: syntax, nesting too deep for the parser,
    and integers too long for Python to convert."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TinyNASError(f"{source}: not valid JSON ({e.msg} at line {e.lineno} column "
                           f"{e.colno})") from None
    except RecursionError:
        raise TinyNASError(f"{source}: JSON nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer of thousands of digits
        raise TinyNASError(f"{source}: not valid JSON ({str(e).split(';')[0]})") from None


_TOP_KEYS = {"format", "resolution", "stem_channels", "first_block_channels", "stages",
             "in_channels", "num_classes", "stem_stride", "head_channels", "channel_divisor",
             "width_mult", "name", "extra"}
_REQUIRED = ("resolution", "stem_channels", "first_block_channels", "stages")


def _int(v: Any, where: str, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise TinyNASError(f"{where} must be an integer >= {lo}, got {v!r}")
    return v


def _from_dict(d: Any, source: str) -> Arch:
    """Parse with messages that name the field and the file, never a KeyError traceback."""
    if not isinstance(d, dict):
        raise TinyNASError(f"{source}: an architecture is a JSON object, got "
                           f"{type(d).__name__}")
    if d.get("format", FORMAT) != FORMAT:
        raise TinyNASError(f"{source}: format {d.get('format')!r} is not {FORMAT!r}")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise TinyNASError(f"{source}: unknown field(s) {', '.join(unknown)}; expected some of "
                           f"{', '.join(sorted(_TOP_KEYS))}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise TinyNASError(f"{source}: missing field(s) {', '.join(missing)}")
    if not isinstance(d["stages"], list):
        raise TinyNASError(f"{source}: stages must be a list of stage objects")
    stages = []
    for i, s in enumerate(d["stages"]):
        where = f"{source}: stages[{i}]"
        if not isinstance(s, dict) or set(s) != {"channels", "stride", "blocks"}:
            raise TinyNASError(f"{where} must be an object with exactly channels, stride, blocks")
        if not isinstance(s["blocks"], list):
            raise TinyNASError(f"{where}.blocks must be a list")
        blocks = []
        for j, b in enumerate(s["blocks"]):
            if not isinstance(b, dict) or set(b) != {"kernel", "expand"}:
                raise TinyNASError(f"{where}.blocks[{j}] must be an object with exactly kernel "
                                   "and expand")
            blocks.append(Block(_int(b["kernel"], f"{where}.blocks[{j}].kernel"),
                                _int(b["expand"], f"{where}.blocks[{j}].expand")))
        stages.append(Stage(_int(s["channels"], f"{where}.channels"),
                            _int(s["stride"], f"{where}.stride"), tuple(blocks)))
    kw = {k: d[k] for k in _TOP_KEYS - {"format", "stages"} if k in d}
    for k in ("resolution", "stem_channels", "first_block_channels", "in_channels",
              "num_classes", "stem_stride", "channel_divisor"):
        if k in kw:
            _int(kw[k], f"{source}: {k}")
    if "head_channels" in kw:
        _int(kw["head_channels"], f"{source}: head_channels", lo=0)
    check_common_fields(kw, source)
    try:
        return Arch(stages=tuple(stages), **kw)
    except TinyNASError as e:
        raise TinyNASError(f"{source}: {e}") from None


def check_common_fields(kw: dict[str, Any], source: str) -> None:
    """width_mult, name and extra: the fields both architecture formats share."""
    wm = kw.get("width_mult")
    if wm is not None and (isinstance(wm, bool) or not isinstance(wm, (int, float)) or wm <= 0):
        raise TinyNASError(f"{source}: width_mult must be a positive number or null")
    if not isinstance(kw.get("name", ""), str) or not isinstance(kw.get("extra", {}), dict):
        raise TinyNASError(f"{source}: name must be a string and extra an object")


# Limits of what an architecture may describe. No microcontroller network comes near them
# (MCUNet's largest has 0.74 M weights and a 176 x 176 input); they exist so that a malformed
# or hostile file is refused in microseconds instead of asking the cost model and PyTorch for
# terabytes.
MAX_FIELD = 1 << 20  # any one integer: channels, classes, resolution, kernel, expand ratio
MAX_WEIGHTS = 1 << 26  # weights and biases in all: 64 MiB as int8, beyond any MCU's flash
MAX_TENSOR_BYTES = (1 << 31) - 1  # one activation: more than a 32-bit MCU can address
MAX_BLOCKS = 1024  # blocks in all, the first included (MCUNet's deepest has 20)


def _validate(a: Arch) -> None:
    """Structural checks a network must pass before anything builds it."""
    for k in ("resolution", "stem_channels", "first_block_channels", "in_channels",
              "num_classes", "stem_stride", "channel_divisor"):
        _bounded(_int(getattr(a, k), k), k)
    _bounded(_int(a.head_channels, "head_channels", lo=0), "head_channels")
    if not a.stages:
        raise TinyNASError("an architecture needs at least one stage")
    blocks = 1 + sum(len(s.blocks) for s in a.stages)
    if blocks > MAX_BLOCKS:
        raise TinyNASError(f"{blocks:,} blocks: more than {MAX_BLOCKS:,}, far beyond any network "
                           "a microcontroller runs")
    kmax = emax = cmax = 0
    for i, s in enumerate(a.stages):
        if s.stride not in (1, 2):
            raise TinyNASError(f"stages[{i}].stride must be 1 or 2, got {s.stride}")
        if not s.blocks:
            raise TinyNASError(f"stages[{i}] has no blocks (depth must be >= 1)")
        cmax = max(cmax, s.channels)
        for j, b in enumerate(s.blocks):
            if b.kernel % 2 == 0:
                raise TinyNASError(f"stages[{i}].blocks[{j}].kernel must be odd, got {b.kernel}")
            kmax, emax = max(kmax, b.kernel), max(emax, b.expand)
    if max(kmax, emax, cmax) > MAX_FIELD:  # name the first field too large
        for i, s in enumerate(a.stages):
            _bounded(s.channels, f"stages[{i}].channels")
            for j, b in enumerate(s.blocks):
                _bounded(b.kernel, f"stages[{i}].blocks[{j}].kernel")
                _bounded(b.expand, f"stages[{i}].blocks[{j}].expand")
    # A bound from the largest values settles almost every network without the exact count.
    c = max(cmax, a.stem_channels, a.first_block_channels, a.head_channels)
    mid = c * emax + a.channel_divisor  # make_divisible never adds more than the divisor
    bound_weights = (a.in_channels * 9 + 11 + c) * c + blocks * (
        (c + kmax * kmax + 3) * mid + (mid + 1) * c) + (c + 1) * (c + a.num_classes)
    bound_act = a.resolution * a.resolution * max(a.in_channels * 4, mid, c)
    if bound_weights > MAX_WEIGHTS or bound_act > MAX_TENSOR_BYTES:
        _check_size(a)


def _bounded(v: int, where: str) -> int:
    if v > MAX_FIELD:
        raise TinyNASError(f"{where} is {v}: more than {MAX_FIELD:,}, far beyond any network a "
                           "microcontroller runs")
    return v


def _check_size(a: Arch) -> None:
    """Refuse a network whose weights or largest activation no microcontroller could hold,
    counted from the description alone (nothing is allocated; the loop is layers() inlined,
    since the search builds tens of thousands of architectures)."""
    h = -(-a.resolution // a.stem_stride)  # SAME padding
    stem, first = a.stem_channels, a.first_block_channels
    weights = (a.in_channels * 9 + 1) * stem + (9 + 1) * stem + (stem + 1) * first
    biggest, where = a.resolution * a.resolution * a.in_channels * 4, "the float32 input"
    if h * h * stem > biggest:
        biggest, where = h * h * stem, "the stem's output"
    cin = first
    for i, stage in enumerate(a.stages):
        for j, b in enumerate(stage.blocks):
            mid = a.mid_channels(cin, b.expand)
            weights += ((cin + 1) * (b.expand != 1) + b.kernel * b.kernel + 1) * mid \
                + mid * stage.channels + stage.channels
            out = -(-h // 2) if j == 0 and stage.stride == 2 else h
            size = max(h * h * mid, out * out * stage.channels)
            h = out
            if size > biggest:
                biggest, where = size, f"an activation of stages[{i}].blocks[{j}]"
            cin = stage.channels
    weights += (cin + 1) * a.head_channels + (a.last_channels + 1) * a.num_classes
    if biggest > MAX_TENSOR_BYTES:
        raise TinyNASError(f"{where} would take {biggest:,} bytes, more than a 32-bit "
                           f"microcontroller can address ({MAX_TENSOR_BYTES:,})")
    if weights > MAX_WEIGHTS:
        raise TinyNASError(f"{weights:,} weights: more than {MAX_WEIGHTS:,}, far beyond any "
                           "microcontroller's flash")
