"""Stage one's results for people: a text table, a PNG (MAC CDFs of the top configurations, the
mean-MACs map over the whole grid, and the table), and the JSON written beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .budget import fmt_bytes
from .stage1 import ConfigResult, StageOneResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def mac_unit(result: StageOneResult) -> tuple[str, float]:
    """("M", 1e6) for ImageNet-sized networks, ("K", 1e3) for tiny ones."""
    top = max((c.mean_macs for c in result.configs), default=0.0)
    return ("M", 1e6) if top >= 1e6 else ("K", 1e3)


def _row(c: ConfigResult, unit: tuple[str, float]) -> list[str]:
    s = unit[1]
    return [c.label, f"{c.fits}/{c.samples}", f"{100 * c.fraction:.1f}%",
            f"{c.mean_macs / s:.2f}", f"{c.ci[0] / s:.2f}-{c.ci[1] / s:.2f}",
            f"{100 * c.p_best:.1f}%"]


def header(unit: tuple[str, float]) -> list[str]:
    return ["config", "fit", "fit %", f"mean {unit[0]}MACs", "95% CI", "P(best)"]


def table(result: StageOneResult, top: int = 10) -> str:
    """Markdown table of the best `top` configurations."""
    unit = mac_unit(result)
    rows = [_row(c, unit) for c in result.ranked[:top]]
    lines = ["| " + " | ".join(header(unit)) + " |", "|" + "---|" * len(header(unit))]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary(result: StageOneResult) -> str:
    c = result.choice
    assert c is not None
    name, s = mac_unit(result)
    second = result.ranked[1] if len(result.ranked) > 1 else None
    note = ""
    if c.p_best < 0.9 and second is not None:
        note = (f" (a close call: {c.label} is best in {100 * c.p_best:.0f}% of bootstrap "
                f"resamples, {second.label} in {100 * second.p_best:.0f}%)")
    if c.fits < 10:
        note += (f"; only {c.fits} sampled subnet(s) of {c.label} fit, so its mean, interval and "
                 "P(best) rest on them alone: raise --samples, or require a share of the "
                 "configuration to fit with --min-fraction")
    return (f"choice: {c.label}: {100 * c.fraction:.1f}% of sampled subnets fit "
            f"{result.budget.describe()}, mean {c.mean_macs / s:.2f}{name} MACs "
            f"(95% CI {c.ci[0] / s:.2f}-{c.ci[1] / s:.2f}{name}){note}")


def plot(result: StageOneResult, path: str | Path, top: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = result.ranked[:top]
    unit = mac_unit(result)
    name, scale = unit
    fig = plt.figure(figsize=(13, 8.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2], width_ratios=[1.1, 1])
    ax = fig.add_subplot(grid[0, 0])
    colors = plt.get_cmap("tab10")
    for i, c in enumerate(ranked):
        x = np.sort(np.asarray(c.macs, np.float64)) / scale
        y = np.arange(1, len(x) + 1) / len(x)
        ax.step(x, y, where="post", color=colors(i), lw=2.4 if i == 0 else 1.5,
                label=f"{c.label}: mean {c.mean_macs / scale:.2f}{name}, "
                      f"{100 * c.fraction:.0f}% fit")
        ax.axvline(c.mean_macs / scale, color=colors(i), ls=":", lw=1)
    ax.set_xlabel(f"{name}MACs of subnets that fit")
    ax.set_ylabel("cumulative fraction")
    ax.set_title(f"Top {len(ranked)} configurations (dotted: means)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower right")

    _heatmap(fig.add_subplot(grid[0, 1]), result, unit)

    tab = fig.add_subplot(grid[1, :])
    tab.axis("off")
    rows = [_row(c, unit) for c in result.ranked[:8]]
    if rows:
        t = tab.table(cellText=rows, colLabels=header(unit), loc="center", cellLoc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(10)
        t.scale(1, 1.45)
        for j in range(len(rows[0])):
            t[1, j].set_facecolor("#fff2b3")  # the choice
    b = result.budget
    fig.suptitle(f"TinyNAS stage one, {result.space.name}: SRAM {fmt_bytes(b.sram)}, flash "
                 f"{fmt_bytes(b.flash)}" + (f", MACs <= {b.macs / 1e6:g}M" if b.macs else "")
                 + f"; {result.samples} samples per config, seed {result.seed}, "
                 f"patches {result.patch}" + (", int8 input" if result.int8_input else ""),
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _heatmap(ax: Axes, result: StageOneResult, unit: tuple[str, float]) -> None:
    """Mean MACs over the (w, r) grid, written in each cell; blank where nothing fits; the
    choice boxed."""
    from matplotlib.patches import Rectangle

    ws, rs = result.space.width_mults, result.space.resolutions
    data = np.full((len(ws), len(rs)), np.nan)
    for c in result.configs:
        if c.fits:
            data[ws.index(c.width_mult), rs.index(c.resolution)] = c.mean_macs / unit[1]
    im = ax.imshow(data, origin="lower", aspect="auto", cmap="viridis")
    lo, hi = (float(np.nanmin(data)), float(np.nanmax(data))) if np.isfinite(data).any() \
        else (0.0, 1.0)
    for (y, x), v in np.ndenumerate(data):
        if np.isfinite(v):  # dark text on the bright (yellow) end of viridis
            bright = (v - lo) / (hi - lo) > 0.55 if hi > lo else True
            ax.text(x, y, f"{v:.3g}", ha="center", va="center", fontsize=7,
                    color="black" if bright else "white")
    ax.set_xticks(range(len(rs)), [str(r) for r in rs], fontsize=8)
    ax.set_yticks(range(len(ws)), [f"{w:g}" for w in ws], fontsize=8)
    ax.set_xlabel("resolution")
    ax.set_ylabel("width multiplier")
    ax.set_title(f"mean {unit[0]}MACs of fitting subnets (blank: none fit)")
    ax.figure.colorbar(im, ax=ax, fraction=0.05)
    choice = result.choice
    if choice is not None:
        x, y = rs.index(choice.resolution), ws.index(choice.width_mult)
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec="red", lw=2.5))


def write(result: StageOneResult, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, png = out / "stage1.json", out / "stage1_cdf.png"
    js.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    plot(result, png)
    return js, png
