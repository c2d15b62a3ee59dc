"""Choosing the next token (chapter 6): temperature, top-k and top-p (nucleus) sampling.

A language model gives one row of **logits** ``z`` (one number per vocabulary entry) for the next
token. Decoding turns it into a choice:

- **greedy**: ``argmax z`` — deterministic, and prone to loops;
- **temperature** ``τ``: sample from ``softmax(z / τ)``; ``τ < 1`` sharpens the distribution,
  ``τ > 1`` flattens it, ``τ → 0`` is greedy;
- **top-k**: keep the ``k`` largest logits (and any tied with the k-th), set the rest to ``-inf``;
- **top-p** (nucleus, Holtzman et al. 2020): keep the smallest set of most probable tokens whose
  probabilities add up to at least ``p``, i.e. token ``j`` (in order of decreasing probability)
  stays when the tokens *before* it add up to less than ``p``.

The filters work on logits and return logits (removed entries are ``-inf``), so they compose in
the order Hugging Face's ``generate`` applies them: temperature, then top-k, then top-p. They match
``transformers``' ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper``.

>>> z = torch.tensor([[2.0, 1.0, 1.0, -1.0]])
>>> top_k_filter(z, 2)  # the tie with the 2nd largest is kept
tensor([[2., 1., 1., -inf]])
>>> top_p_filter(torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), 0.7).isinf().tolist()
[[False, False, True, True]]
>>> sample_next(z, temperature=0.0).tolist()  # greedy
[0]
"""

from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """``logits (..., V)`` with every entry below the k-th largest of its row set to ``-inf``.

    Entries tied with the k-th largest are kept. ``k`` of None or 0, or ``k ≥ V``, keeps everything.
    """
    if not k or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest of each row
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """``logits (..., V)`` restricted to the nucleus: the most probable tokens until their
    probabilities reach ``p`` (the token that crosses ``p`` is kept), at least ``min_tokens_to_keep``.

    ``p`` of None or ``p ≥ 1`` keeps everything.
    """
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(-1) - probs  # (..., V): probability of the tokens ranked above each one
    remove = before >= p
    remove[..., :min_tokens_to_keep] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))  # back to vocabulary order


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Temperature, then top-k, then top-p, as ``transformers``' ``generate`` orders them (``temperature > 0``)."""
    return top_p_filter(top_k_filter(logits / temperature, top_k), top_p)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``logits (B, V)``: ``(B,)`` int64, drawn with ``generator``.

    ``temperature == 0`` is greedy decoding (the argmax; top-k and top-p do not change it).
    """
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
