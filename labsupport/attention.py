"""Scaled dot-product attention (chapter 2): a plain path that teaches and a fast path.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V

Shapes: queries ``(..., L, d_k)``, keys ``(..., S, d_k)``, values ``(..., S, d_v)``; the leading
dimensions (batch, heads) broadcast. A boolean ``mask`` broadcastable to ``(..., L, S)`` is True
where a query may attend to a key. A query whose keys are all masked attends to nothing: its
weights and its output are zeros (never NaN).

:func:`attention` materialises the ``(..., L, S)`` weights (so they can be plotted) and costs
O(L·S) memory per head; :func:`fast_attention` calls torch's fused kernel, which never stores them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """``(L, L)`` boolean mask, True on and below the diagonal: position i sees positions ≤ i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(B, 1, 1, S)`` boolean mask, True for the first ``lengths[b]`` keys of each sequence."""
    max_len = int(lengths.max()) if max_len is None else max_len
    keep = torch.arange(max_len, device=lengths.device) < lengths[:, None]  # (B, S)
    return keep[:, None, None, :]  # (B, 1, 1, S): broadcasts over heads and queries


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              dropout_p: float = 0.0, training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Teaching path: returns ``(output (..., L, d_v), weights (..., L, S))``, materialising weights.

    Scaling ``q`` before the product (rather than the scores after it) gives the same numbers and
    touches L·d_k elements instead of L·S.
    """
    scores = (q * q.size(-1) ** -0.5) @ k.transpose(-2, -1)  # (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., L, S), rows sum to 1
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # fully masked rows: softmax of all -inf is NaN -> 0
    if dropout_p and training:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights  # (..., L, d_v), (..., L, S)


def fast_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                   dropout_p: float = 0.0, training: bool = False, is_causal: bool = False) -> torch.Tensor:
    """Fast path: torch's fused kernel (no weights returned); fully masked rows give zeros.

    ``is_causal=True`` (with ``mask=None``) lets the kernel skip the future instead of reading a
    mask from memory. Recent torch already returns zeros for fully masked rows; the ``masked_fill``
    keeps that promise on older releases.
    """
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                         dropout_p=dropout_p if training else 0.0)
    if mask is not None:
        out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)  # rows with no visible key
    return out
