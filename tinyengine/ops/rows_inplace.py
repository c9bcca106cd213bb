"""Band by band in place (csrc/te_rows_inplace.h): the geometry twin of the C driver, and the
input offsets a convolution or depthwise convolution offers the memory planner.

A windowed op run this way computes a band of output rows at a time with its ordinary kernel,
straight into place over its own input, which starts `offset` bytes after the output. Output row
t ends at (t + 1) * out_row bytes and row t reads the input from F(t) on; a band [t0, t1) fits
when t1 * out_row <= offset + F(t0), so bands of r rows all fit from
    need(r) = max over bands of  t1 * out_row - F(t0)
on, and the kernel takes the largest r the offset allows (`band`). The two tensors then share
max(out_bytes, offset + in_bytes) bytes instead of their sum, with no scratch and no copy.

Bands of fewer than MIN_BAND_BYTES of output are not offered: a kernel call per row of a
narrow layer costs set-up per call and can leave the kernel's fast paths (te_conv2d_s8's im2col
path needs room for its work space at the end of its output), as kws's first layer showed
(+37% instructions for 2% of its arena).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Op
from .common import window_padding

ALIGN = 4  # memory/plan.py's ALIGN: an offset keeps both tensors on aligned addresses
MIN_BAND_BYTES = 1024  # the least output a kernel call is asked for


@dataclass(frozen=True)
class Rows:
    """Row geometry of a windowed op, as te_rows_t."""

    n: int
    in_h: int
    in_row: int
    out_h: int
    out_row: int
    stride: int
    pad: int
    filter_h: int
    dilation: int

    @property
    def in_bytes(self) -> int:
        return self.n * self.in_h * self.in_row

    @property
    def out_bytes(self) -> int:
        return self.n * self.out_h * self.out_row

    def in_domain(self) -> bool:
        """Every output row's window reads at least one input row (te_*_rows_geometry)."""
        return ((self.out_h - 1) * self.stride - self.pad < self.in_h
                and (self.filter_h - 1) * self.dilation >= self.pad)

    def first_byte(self, t: int) -> int:
        """F(t): the first input byte output row t reads."""
        b, r = divmod(t, self.out_h)
        return (b * self.in_h + max(0, r * self.stride - self.pad)) * self.in_row

    def bands(self, r: int) -> list[tuple[int, int]]:
        """Global row ranges [t0, t1) of bands of r rows, never across batches."""
        return [(b * self.out_h + r0, b * self.out_h + min(r0 + r, self.out_h))
                for b in range(self.n) for r0 in range(0, self.out_h, r)]

    def need(self, r: int) -> int:
        """te_rows_need: the least offset at which bands of r rows fit."""
        return max([0] + [t1 * self.out_row - self.first_byte(t0) for t0, t1 in self.bands(r)])

    def band(self, offset: int) -> int:
        """te_rows_inplace_band: the most rows per call the offset allows (0: none)."""
        return next((r for r in range(self.out_h, 0, -1) if self.need(r) <= offset), 0)

    def options(self) -> list[int]:
        """Input offsets worth running in place at, cheapest shared buffer first (ties: the
        smaller offset, which shifts the input's group least): bands of at least
        MIN_BAND_BYTES, doubling, and only where input and output together take less than
        apart."""
        r = min(self.out_h, -(-MIN_BAND_BYTES // self.out_row))
        cost: dict[int, int] = {}
        while r < self.out_h:
            offset = -(-self.need(r) // ALIGN) * ALIGN
            total = max(self.out_bytes, offset + self.in_bytes)
            if total < self.out_bytes + self.in_bytes:
                cost[offset] = total
            r *= 2
        return sorted(cost, key=lambda o: (cost[o], o))


def rows_of(graph: Graph, op: Op) -> Rows:
    """The row geometry of a CONV_2D or DEPTHWISE_CONV_2D (filter input 1, OHWI / 1HWC)."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    _, fh, fw, _ = w.shape
    _, _, pad_h, _ = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    return Rows(x.shape[0], x.shape[1], x.shape[2] * x.shape[3], y.shape[1],
                y.shape[2] * y.shape[3], int(op.attrs["stride"][0]), pad_h, fh,
                int(op.attrs.get("dilation", (1, 1))[0]))
