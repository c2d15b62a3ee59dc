"""Figures shared by the book and the labs (matplotlib; one function per kind of figure)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def loss_curve(losses: Sequence[float], val_losses: Sequence[tuple[int, float]] = (),
               ax: Axes | None = None, title: str = "training loss") -> Axes:
    """Plot per-step training loss (and optional ``(step, loss)`` validation points)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    ax.plot(range(1, len(losses) + 1), losses, label="train", lw=1)
    if val_losses:
        steps, values = zip(*val_losses)
        ax.plot(steps, values, "o-", label="validation")
    ax.set(xlabel="step", ylabel="cross-entropy (nats)", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def compression_plot(vocab_sizes: Sequence[int], tokens_per_byte: Sequence[float],
                     ax: Axes | None = None, label: str | None = None) -> Axes:
    """Tokens per byte of text against vocabulary size (lower = shorter sequences)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    ax.plot(vocab_sizes, tokens_per_byte, "o-", label=label)
    ax.set(xlabel="vocabulary size (ids)", ylabel="tokens per byte",
           title="BPE compression vs vocabulary size", ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    return ax


def heatmap_html(matrix: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str],
                 title: str = "", vmax: float = 1.0, xlabel: str = "key", ylabel: str = "query") -> str:
    """A small heatmap as an HTML table (viridis colours, the value in each cell's tooltip).

    Light to draw and to ship in a page: the explorers of chapters 2 and 3 use it for attention
    weights (``matrix[i][j]`` = weight of query ``i`` on key ``j``).

    >>> "<table" in heatmap_html([[0.2, 0.8]], ["q"], ["a", "b"])
    True
    """
    import html

    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["viridis"]
    cell = "width:1.9em;height:1.9em;padding:0;border:1px solid #fff"
    head = "".join(f"<th style='writing-mode:vertical-rl;font-weight:normal;font-size:12px'>{html.escape(c)}</th>"
                   for c in cols)
    body = []
    for label, values in zip(rows, matrix, strict=True):
        tds = "".join(f"<td title='{v:.3f}' style='{cell};background:{to_hex(cmap(min(max(v / vmax, 0), 1)))}'></td>"
                      for v in values)
        body.append(f"<tr><th style='text-align:right;font-weight:normal;font-size:12px;padding-right:4px'>"
                    f"{html.escape(label)}</th>{tds}</tr>")
    return (f"<figure style='margin:0'><figcaption style='font-size:14px'>{html.escape(title)}</figcaption>"
            f"<div style='overflow-x:auto'><table style='border-collapse:collapse;width:auto;margin:0'>"
            f"<tr><th style='font-size:12px;font-weight:normal'>{html.escape(ylabel)} ↓ / "
            f"{html.escape(xlabel)} →</th>{head}</tr>" + "".join(body) + "</table></div></figure>")


def book_style() -> None:
    """Readable figures at the book's column width: call once at the top of a chapter or lab.

    A figure is scaled to the column (about 750 px); with these sizes tick labels stay at 9 pt or more
    on the page for figures up to 12 inches wide.
    """
    plt.rcParams.update({"figure.dpi": 100, "font.size": 13, "axes.titlesize": 13, "axes.labelsize": 13,
                         "xtick.labelsize": 12, "ytick.labelsize": 12, "legend.fontsize": 11})
