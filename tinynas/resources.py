"""What an architecture costs on the MCU, asked of the engine: arch -> weightless IR -> estimate().

`build_graph(arch)` writes the graph that `tinyengine`'s ONNX import + post-training
quantisation produce for the extracted PyTorch subnet, op for op: QUANTIZE of the float32 input,
CONV_2D / DEPTHWISE_CONV_2D with BatchNorm folded and ReLU6 fused (SAME padding, so no PAD),
ADD for shortcuts, AVERAGE_POOL_2D over the whole map, RESHAPE, FULLY_CONNECTED, DEQUANTIZE to
float32. Constants are described without values (`const=True`); none of the figures depends on
them. tests/test_tinynas_resources.py holds `arch_cost` equal to the compiled project's report.

Stage one prices tens of thousands of candidates; tinynas/budget.py asks the same engine
functions faster, from the pieces cached here (`segment_summary`).
"""

from __future__ import annotations

from functools import cache

from tinyengine.cost import Cost, arena_lower_bound, estimate, flash_bytes, with_placeholders
from tinyengine.ir import Graph

from .arch import Arch, LayerSpec
from .blocks.graph import GraphBuilder
from .errors import TinyNASError

# One builder for both spaces: the MBConv graph is written with the block kinds' own.
_Builder = GraphBuilder


def _emit_input(g: _Builder, r: int, cin: int, stem: int, stride: int,
                int8_input: bool) -> str:
    """Input (+ QUANTIZE of a float32 input) and the stem convolution."""
    if int8_input:
        x = g.act("input", (1, r, r, cin))
    else:
        inp = g.act("input", (1, r, r, cin), "float32")
        x = g.op("input:quantize", "QUANTIZE", [inp], g.act("input:q", (1, r, r, cin)), {})
    return g.conv("stem", x, stem, 3, stride, "RELU6")


def _emit_block(g: _Builder, x: str, layer: LayerSpec) -> str:
    p = f"b{layer.index}"
    y = x
    if layer.expand != 1:
        y = g.conv(f"{p}.expand", y, layer.mid, 1, 1, "RELU6")
    y = g.conv(f"{p}.dw", y, 0, layer.kernel, layer.stride, "RELU6", depthwise=True)
    y = g.conv(f"{p}.project", y, layer.cout, 1, 1, "NONE")
    if layer.residual:
        y = g.op(f"{p}.add", "ADD", [x, y], g.act(f"{p}.add:out", g.tensors[y].shape),
                 {"activation": "NONE"})
    return y


def _emit_head(g: _Builder, x: str, head: int, classes: int) -> str:
    """Optional 1x1 mix conv, global pooling, flatten, classifier, DEQUANTIZE."""
    if head:
        x = g.conv("head", x, head, 1, 1, "RELU6")
    _, h, w, c = g.tensors[x].shape
    x = g.op("pool", "AVERAGE_POOL_2D", [x], g.act("pool:out", (1, 1, 1, c)),
             {"stride": (1, 1), "filter": (h, w), "padding": "VALID", "activation": "NONE"})
    x = g.op("flatten", "RESHAPE", [x], g.act("flatten:out", (1, c)), {})
    wt = g.const("classifier.weights", (classes, c), "int8")
    b = g.const("classifier.bias", (classes,), "int32")
    x = g.op("classifier", "FULLY_CONNECTED", [x, wt, b], g.act("output:q", (1, classes)),
             {"activation": "NONE", "keep_num_dims": False})
    return g.op("output:dequantize", "DEQUANTIZE", [x],
                g.act("output", (1, classes), "float32"), {})


def build_graph(arch: Arch, int8_input: bool = False) -> Graph:
    """The int8 graph the engine compiles for `arch` (weights described, not given).

    int8_input: the graph takes the int8 image itself (no float32 input and QUANTIZE), as a
    TFLite model with an int8 input does; the ONNX/PyTorch path always has a float32 input.
    """
    g = _Builder()
    x = _emit_input(g, arch.resolution, arch.in_channels, arch.stem_channels, arch.stem_stride,
                    int8_input)
    for layer in arch.layers():
        x = _emit_block(g, x, layer)
    out = _emit_head(g, x, arch.head_channels, arch.num_classes)
    return Graph(g.tensors, g.ops, ["input"], [out], name=arch.name or "subnet")


# The engine's patch search plans every split point and grid within its MAC budget, and each
# plan walks the whole graph, so its time grows faster than the square of the depth (measured on
# stride-1 blocks: 10-20 s at 64, 25-45 s at 200, tens of minutes at 1,000, with no progress
# shown). The deepest network of any preset space has 22 blocks.
MAX_PATCH_SEARCH_BLOCKS = 64


def check_patch_search(arch: Arch, patch: str) -> None:
    """Refuse patch="auto" on a network too deep to search in reasonable time."""
    blocks = 1 + sum(s.depth for s in arch.stages)
    if patch == "auto" and blocks > MAX_PATCH_SEARCH_BLOCKS:
        raise TinyNASError(f"{arch.name or 'the architecture'} has {blocks:,} blocks: the "
                           f"patch-based inference search (--patch auto) takes up to "
                           f"{MAX_PATCH_SEARCH_BLOCKS} (its time grows faster than the square "
                           "of the depth: minutes beyond); price it with --patch off")


def estimate_arch(arch: Arch, patch: str = "off", int8_input: bool = False) -> Cost:
    """tinyengine.cost.estimate of the architecture's graph: the reference for every figure."""
    check_patch_search(arch, patch)
    return estimate(build_graph(arch, int8_input), patch=patch)


def _segment(kind: str, h: int, cin: int, params: tuple) -> tuple[Graph, int]:
    """One piece of build_graph's graph: the input and stem ("input"), one block ("block") or
    the head ("head"), on an h x h input; with its output height."""
    g = _Builder()
    if kind == "input":
        stem, stride, int8_input = params
        y = _emit_input(g, h, cin, stem, stride, int8_input)
        inputs = ["input"]
    else:
        x = g.act("x", (1, h, h, cin))
        y = _emit_block(g, x, LayerSpec(*params)) if kind == "block" else \
            _emit_head(g, x, *params)
        inputs = [x]
    out_h = g.tensors[y].shape[1] if kind != "head" else 1
    return Graph(g.tensors, g.ops, inputs, [y]), out_h


@cache
def segment_flash(kind: str, cin: int, params: tuple) -> int:
    """The engine's `flash_bytes` of one piece. Constants are emitted per op and depend on
    channel counts, not on the spatial size, so one entry serves every resolution and the
    pieces sum to the whole graph's figure (tests hold the two equal)."""
    graph, _ = _segment(kind, 8, cin, params)
    return flash_bytes(with_placeholders(graph))


@cache
def segment_activations(kind: str, h: int, cin: int, params: tuple) -> tuple[int, int]:
    """(largest activation bytes, output height) of one piece on an h x h input."""
    graph, out_h = _segment(kind, h, cin, params)
    return arena_lower_bound(graph), out_h


def quick_summary(arch: Arch, int8_input: bool = False) -> tuple[int, int]:
    """(flash bytes, largest activation bytes) of build_graph(arch) from cached pieces: the
    flash figure is estimate()'s, the largest activation a lower bound of its peak SRAM."""
    pieces: list[tuple[str, int, tuple]] = [
        ("input", arch.in_channels, (arch.stem_channels, arch.stem_stride, int8_input))]
    pieces += [("block", layer.cin, (0, 0, layer.cin, layer.cout, layer.mid, layer.kernel,
                                     layer.stride, layer.expand, layer.residual))
               for layer in arch.layers()]
    pieces.append(("head", arch.body_channels, (arch.head_channels, arch.num_classes)))
    flash, biggest, h = 0, 0, arch.resolution
    for kind, cin, params in pieces:
        flash += segment_flash(kind, cin, params)
        big, h = segment_activations(kind, h, cin, params)
        biggest = max(biggest, big)
    return flash, biggest
