"""A small training loop: progress bar, gradient clipping, loss history, periodic validation.

The labs plug their own model and data into :func:`fit`; the loop itself stays the same in
every chapter::

    history = fit(model, batches, loss_fn, TrainConfig(steps=200, lr=3e-3))
    loss_curve(history.losses)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from labsupport.device import get_device

Batch = tuple[torch.Tensor, ...]


@dataclass
class TrainConfig:
    """Budget and optimiser settings. Keep ``steps`` small on CPU; raise it on a GPU."""

    steps: int = 200
    lr: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    eval_every: int = 0  # 0: never
    progress: bool = True


@dataclass
class History:
    """Per-step training losses and ``(step, loss)`` validation points."""

    losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)


def fit(model: torch.nn.Module, batches: Iterator[Batch],
        loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor], config: TrainConfig,
        evaluate: Callable[[torch.nn.Module], float] | None = None,
        device: torch.device | None = None) -> History:
    """Train ``model`` with AdamW for ``config.steps`` batches drawn from ``batches``.

    ``loss_fn(model, batch)`` returns a scalar loss; batches are moved to ``device`` (default: the
    best available). ``evaluate(model)``, if given, runs every ``config.eval_every`` steps under
    ``torch.no_grad`` with the model in eval mode.
    """
    device = device or get_device()
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = History()
    bar = tqdm(range(1, config.steps + 1), desc="training", disable=not config.progress)
    for step in bar:
        model.train()
        batch = tuple(t.to(device) for t in next(batches))
        loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        history.losses.append(loss.item())
        bar.set_postfix(loss=f"{history.losses[-1]:.3f}")
        if evaluate and config.eval_every and (step % config.eval_every == 0 or step == config.steps):
            model.eval()
            with torch.no_grad():
                history.val_losses.append((step, float(evaluate(model))))
    return history


def random_batches(data: torch.Tensor, block_size: int, batch_size: int,
                   generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Endless ``(x, y)`` batches of ``block_size`` consecutive ids from a 1-D tensor, y = x shifted by one."""
    while True:
        starts = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
        x = torch.stack([data[s:s + block_size] for s in starts.tolist()])  # (B, T)
        y = torch.stack([data[s + 1:s + 1 + block_size] for s in starts.tolist()])  # (B, T)
        yield x, y
