"""What a stage-two search reports: its log line, the evolution curve and the accuracy-vs-SRAM
Pareto front."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .budget import Budget  # noqa: E402
from .evolve import Candidate, SearchResult  # noqa: E402


def log_line(result: SearchResult, compared_to: SearchResult | None = None) -> str:
    """One line: the method, its evaluations (beside `compared_to`'s, the search it is the
    baseline of), how many it measured itself, its best val fitness, and its note. Both
    searches count evaluations alike (evolve.py's docstring): equal figures, equally many subnets
    scored."""
    n = result.evaluations
    if compared_to is None:
        count = f"{n} evaluations"
    elif n == compared_to.evaluations:
        count = f"the same {n} evaluations as {compared_to.method}"
    else:
        count = f"{n} evaluations, {compared_to.method} {compared_to.evaluations}"
    if result.measured != n:
        count += f" ({result.measured} measured, {n - result.measured} values shared)"
    name = "random search" if result.method == "random" else result.method
    note = f" ({result.note})" if result.note else ""
    return f"{name}, {count}: best val fitness {result.best.accuracy:.4f}{note}"


def plot_evolution(search: SearchResult, baseline: SearchResult | None, path: str | Path) -> None:
    """Best-so-far val accuracy against evaluations (evolution and random search), with each
    generation's best and mean."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    n = np.arange(1, search.evaluations + 1)
    ax.plot(n, 100 * np.asarray(search.best_so_far()), color="C0", label="evolution, best so far")
    if search.generations:
        ev = [g["evaluations"] for g in search.generations]
        ax.plot(ev, [100 * g["mean"] for g in search.generations], "o--", color="C0", alpha=0.5,
                ms=3, label="evolution, population mean")
    if baseline is not None and baseline.evaluated:
        m = np.arange(1, baseline.evaluations + 1)
        ax.plot(m, 100 * np.asarray(baseline.best_so_far()), color="C1",
                label="random search, best so far")
    _save(fig, ax, "subnets evaluated", "Stage two: evolution under the budget", path,
          search.views)


def _save(fig: Figure, ax: Axes, xlabel: str, title: str, path: str | Path,
          views: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"val accuracy (%){f', {views} distorted views' if views else ''}, "
                  "inherited weights")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both SRAM (lower) and accuracy (higher), by SRAM."""
    front: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.sram, -c.accuracy)):
        if not front or c.accuracy > front[-1].accuracy:
            front.append(c)
    return front


def plot_pareto(search: SearchResult, budget: Budget, path: str | Path,
                baseline: SearchResult | None = None) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for res, color, label in ((baseline, "C1", "random search"), (search, "C0", "evolution")):
        if res is None:
            continue
        ax.scatter([c.sram for c in res.evaluated], [100 * c.accuracy for c in res.evaluated],
                   s=10, alpha=0.45, color=color, label=f"{label} ({res.evaluations})")
    front = pareto_front(search.evaluated + (baseline.evaluated if baseline else []))
    ax.step([c.sram for c in front], [100 * c.accuracy for c in front], where="post",
            color="k", lw=1, label="Pareto front")
    best = search.best
    ax.scatter([best.sram], [100 * best.accuracy], marker="*", s=160, color="C3", zorder=5,
               label=f"chosen: {best.sram} B, {100 * best.accuracy:.2f}%")
    ax.axvline(budget.sram, color="C3", ls=":", lw=1, label=f"SRAM budget {budget.sram} B")
    _save(fig, ax, "peak SRAM (bytes, engine plan: input, output and scratch counted)",
          "Accuracy vs SRAM of every evaluated subnet", path, search.views)
