"""Synthetic text-to-text tasks told apart only by their prefix.

Every example is a string in, a string out, over a character vocabulary. The digits after the prefix
come from the same distribution for every task, so the model can only know what to do by reading
the prefix::

    "reverse: 40721"  →  "12704"
    "sort: 40721"     →  "01247"
    "add: 407+21"     →  "428"

>>> encode("sort: 31")
[30, 26, 29, 31, 38, 39, 5, 3, 1]
>>> decode(encode("sort: 31"))
'sort: 31'
>>> TASKS["sort"]("4071")
'0147'
>>> x, mask, labels = next(task_batches(["reverse", "sort"], 4, torch.Generator().manual_seed(0)))
>>> x.shape[0], labels.shape[0]
(4, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PAD, EOS = 0, 1
CHARS = "0123456789abcdefghijklmnopqrstuvwxyz: +"
VOCAB_SIZE = 2 + len(CHARS)  # pad, eos, characters
_ID = {c: i + 2 for i, c in enumerate(CHARS)}


def encode(text: str) -> list[int]:
    """Character ids followed by EOS."""
    return [_ID[c] for c in text] + [EOS]


def decode(ids: Sequence[int]) -> str:
    """Characters up to the first EOS; pad ids are skipped."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i != PAD:
            out.append(CHARS[i - 2])
    return "".join(out)


def _add(digits: str) -> str:
    a, b = digits.split("+")
    return str(int(a) + int(b))


TASKS: dict[str, Callable[[str], str]] = {
    "reverse": lambda s: s[::-1],
    "sort": lambda s: "".join(sorted(s)),
    "add": _add,
}


def random_digits(task: str, generator: torch.Generator, min_len: int = 3, max_len: int = 6) -> str:
    """The part after the prefix: a digit string (``add``: two numbers ``a+b``)."""
    n = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
    digits = "".join(str(int(d)) for d in torch.randint(10, (n,), generator=generator))
    if task == "add":
        cut = int(torch.randint(1, n, (1,), generator=generator))
        return f"{int(digits[:cut])}+{int(digits[cut:])}"
    return digits


def example(task: str, generator: torch.Generator, min_len: int = 3, max_len: int = 6) -> tuple[str, str]:
    """One ``(source, target)`` pair, e.g. ``("reverse: 407", "704")``."""
    digits = random_digits(task, generator, min_len, max_len)
    return f"{task}: {digits}", TASKS[task](digits)


def collate(pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids (B, S), attention_mask (B, S), labels (B, T))``; labels padded with −100."""
    src = [encode(s) for s, _ in pairs]
    tgt = [encode(t) for _, t in pairs]
    S, T = max(map(len, src)), max(map(len, tgt))
    input_ids = torch.tensor([s + [PAD] * (S - len(s)) for s in src])  # (B, S)
    attention_mask = (input_ids != PAD).long()  # (B, S)
    labels = torch.tensor([t + [-100] * (T - len(t)) for t in tgt])  # (B, T)
    return input_ids, attention_mask, labels


def task_batches(tasks: Sequence[str], batch_size: int, generator: torch.Generator, min_len: int = 3,
                 max_len: int = 6) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless mixed batches: each example's task drawn uniformly from ``tasks``."""
    while True:
        picks = torch.randint(len(tasks), (batch_size,), generator=generator).tolist()
        yield collate([example(tasks[i], generator, min_len, max_len) for i in picks])


def seq2seq_loss(model: nn.Module, batch: tuple[torch.Tensor, ...],
                 shift_right: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Teacher-forced cross-entropy of ``model(input_ids, shift_right(labels), attention_mask)``."""
    input_ids, attention_mask, labels = batch
    logits = model(input_ids, shift_right(labels), attention_mask=attention_mask)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


@torch.no_grad()
def exact_match(model: nn.Module, greedy_decode: Callable, tasks: Sequence[str], n: int = 200, seed: int = 1234,
                min_len: int = 3, max_len: int = 6, device: torch.device | None = None) -> dict[str, float]:
    """Per task, the fraction of ``n`` held-out examples whose greedy output equals the target exactly."""
    model.eval()
    device = device or next(model.parameters()).device
    scores = {}
    for k, task in enumerate(tasks):
        gen = torch.Generator().manual_seed(seed + k)
        pairs = [example(task, gen, min_len, max_len) for _ in range(n)]
        input_ids, attention_mask, _ = collate(pairs)
        out = greedy_decode(model, input_ids.to(device), max_len + 3, attention_mask=attention_mask.to(device))
        scores[task] = sum(decode(row[1:].tolist()) == t for row, (_, t) in zip(out.cpu(), pairs)) / n
    return scores
