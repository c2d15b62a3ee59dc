"""Knowledge distillation: a small student learns to mimic a large teacher (chapter 12).

Three pieces, each a few lines:

- :func:`distillation_loss` — Hinton et al.'s soft-target loss at temperature ``T`` (KL divergence
  scaled by ``T²``) mixed with the ordinary hard-label cross-entropy;
- :func:`distill_step` — one optimiser step of the student with a frozen teacher;
- :class:`HiddenMatcher` — match the student's hidden states to the teacher's through a learned
  projection (the student is narrower), with a mean squared error.

and the other two compressions the chapter measures: :func:`quantize_int8` (dynamic int8 quantisation
of the ``Linear`` layers) and :func:`magnitude_prune` (zero the smallest weights), with
:func:`parameter_count` and :func:`state_bytes` to measure what they save.

>>> _ = torch.manual_seed(0)
>>> s, t = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
>>> labels = torch.tensor([[1, 0, 4], [2, -100, 3]])
>>> abs(distillation_loss(t, t, labels, temperature=2.0, alpha=1.0).item()) < 1e-6  # student = teacher
True
>>> distillation_loss(s, t, labels).shape
torch.Size([])
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 2.0, alpha: float = 0.5, ignore_index: int = -100) -> torch.Tensor:
    """``α·T²·KL(p_teacher^T ‖ p_student^T) + (1 − α)·CE(student, labels)``, averaged over the tokens that count.

    ``student_logits`` and ``teacher_logits`` are ``(..., V)``, ``labels`` ``(...)`` int64 aligned with them
    (already shifted: ``labels[..., t]`` is the token the logits at ``t`` predict). ``p^T = softmax(z / T)``.
    The KL divergence is summed over the vocabulary and averaged over the positions whose label is not
    ``ignore_index`` (``F.kl_div(..., reduction="batchmean")`` on those rows); the cross-entropy, at
    temperature 1, is averaged over the same positions.

    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> abs(distillation_loss(z, z + 5.0, torch.tensor([0]), alpha=1.0).item()) < 1e-6  # softmax ignores a shift
    True
    >>> round(distillation_loss(z, z, torch.tensor([0]), alpha=0.0).item(), 4)  # only the cross-entropy
    0.1698
    """
    V = student_logits.size(-1)
    s = student_logits.reshape(-1, V)  # (N, V)
    t = teacher_logits.reshape(-1, V).to(s.dtype)  # (N, V)
    y = labels.reshape(-1)  # (N,)
    keep = y != ignore_index
    s, t, y = s[keep], t[keep], y[keep]  # (n, V), (n, V), (n,)
    soft = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(t / temperature, dim=-1),
                    reduction="batchmean")
    hard = F.cross_entropy(s, y)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard


def distill_step(student: nn.Module, teacher: nn.Module, batch: Sequence[torch.Tensor],
                 optimizer: torch.optim.Optimizer, temperature: float = 2.0, alpha: float = 0.5) -> float:
    """One training step of ``student`` towards a frozen ``teacher`` on ``batch = (x, y)``.

    Both models are called as ``model(x)`` and return ``(logits, ...)`` (the course's GPT). The teacher
    runs in eval mode under ``torch.no_grad()``; the student in train mode. Returns the loss (a float).

    >>> from labsupport.gpt import GPT, GPTConfig
    >>> teacher, student = GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2)), GPT(GPTConfig(n_layer=1, n_embd=8, n_head=2))
    >>> x = torch.randint(0, 256, (2, 9))
    >>> loss = distill_step(student, teacher, (x[:, :-1], x[:, 1:]), torch.optim.SGD(student.parameters(), lr=0.1))
    >>> isinstance(loss, float), all(p.grad is None for p in teacher.parameters())
    (True, True)
    """
    x, y = batch
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)[0]  # (B, T, V)
    student.train()
    loss = distillation_loss(student(x)[0], teacher_logits, y, temperature, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


class HiddenMatcher(nn.Module):
    """MSE between the projected student hidden states and the teacher's (TinyBERT-style).

    ``proj = nn.Linear(student_dim, teacher_dim)`` maps the narrow student into the teacher's width.
    ``forward(student_hidden (..., d_s), teacher_hidden (..., d_t), mask (...) bool or None)`` returns
    the mean over the kept positions and the ``d_t`` features of ``(proj(h_s) − h_t)²``; no gradient
    reaches the teacher's hidden states.

    >>> m = HiddenMatcher(4, 6)
    >>> m(torch.randn(2, 3, 4), torch.randn(2, 3, 6)).shape
    torch.Size([])
    """

    def __init__(self, student_dim: int, teacher_dim: int):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        diff = self.proj(student_hidden) - teacher_hidden.detach()  # (..., d_t)
        if mask is not None:
            diff = diff[mask]  # (n, d_t): the kept positions only
        return diff.pow(2).mean()


def final_hidden(model: nn.Module, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, h)`` of a course GPT, ``h (B, T, n_embd)`` the output of its final LayerNorm.

    >>> from labsupport.gpt import GPT, GPTConfig
    >>> logits, h = final_hidden(GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2)), torch.zeros(1, 5, dtype=torch.long))
    >>> tuple(logits.shape), tuple(h.shape)
    ((1, 5, 256), (1, 5, 16))
    """
    seen: list[torch.Tensor] = []
    handle = model.transformer.ln_f.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        logits = model(idx)[0]
    finally:
        handle.remove()
    return logits, seen[0]


# ---------------------------------------------------------------- the other compressions
def parameter_count(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def state_bytes(model: nn.Module) -> int:
    """Size in bytes of ``torch.save(model.state_dict())`` — what a checkpoint on disk costs."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers hold int8 weights (dynamic quantisation, CPU).

    Activations are quantised on the fly at each call; embeddings and LayerNorms stay float32. Uses
    ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of ``torchao``, still shipped).
    """
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


@torch.no_grad()
def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero, in place, the fraction ``sparsity`` of smallest-magnitude weights of every ``nn.Linear``
    (each layer on its own, as Han et al. prune); returns the model.

    >>> layer = nn.Linear(4, 5)
    >>> _ = magnitude_prune(layer, 0.5)
    >>> int((layer.weight == 0).sum())
    10
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            k = int(round(sparsity * w.numel()))
            if k > 0:
                threshold = w.abs().flatten().kthvalue(k).values
                w.masked_fill_(w.abs() <= threshold, 0.0)
    return model
