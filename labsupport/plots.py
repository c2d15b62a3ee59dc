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
