"""Exact attention computed block by block with the online softmax.

Plain attention materialises the ``(L, S)`` scores of every head: memory O(L·S). The softmax of a
row, however, can be built **incrementally** over blocks of keys, keeping three running statistics
per query instead of the row of scores (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022):

    m   running maximum of the scores seen so far             (…, bq, 1)
    l   running sum of exp(score − m)                          (…, bq, 1)
    acc running sum of exp(score − m) · value                  (…, bq, d_v)

A new block of scores ``s`` with maximum ``m' = max(m, max s)`` updates them as

    l   ← e^{m − m'} · l   + Σ_j e^{s_j − m'}
    acc ← e^{m − m'} · acc + Σ_j e^{s_j − m'} v_j

and after the last block the output is ``acc / l``: exactly softmax(scores) @ v, because every term
of ``l`` and ``acc`` carries the same factor e^{−m'} (the rescaling by e^{m − m'} keeps it so).
Memory: O(bq·bk) for one block of scores plus O(L·d_v) for the output, never O(L·S).

Masks follow chapter 2: boolean, True where a query may attend, broadcastable to ``(…, L, S)``;
``causal=True`` builds each block's causal mask from its indices (key j visible to query i iff
j ≤ i, top-left aligned like ``scaled_dot_product_attention(is_causal=True)``) and skips blocks
that lie entirely in the future. A query whose keys are all masked gets zeros, never NaN.

>>> q, k, v = torch.randn(2, 10, 4), torch.randn(2, 13, 4), torch.randn(2, 13, 3)
>>> out = blockwise_attention(q, k, v, causal=True, block_q=3, block_k=5)
>>> ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
>>> torch.allclose(out, ref, atol=1e-6)
True
"""

from __future__ import annotations

import torch


def blockwise_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                        causal: bool = False, block_q: int = 64, block_k: int = 64) -> torch.Tensor:
    """softmax(q kᵀ/√d_k + mask) v, computed ``block_q`` queries × ``block_k`` keys at a time.

    q ``(…, L, d_k)``, k ``(…, S, d_k)``, v ``(…, S, d_v)``; ``mask`` bool broadcastable to ``(…, L, S)``
    (True = may attend). Returns ``(…, L, d_v)`` in q's dtype. Differentiable by autograd.
    """
    L, S = q.size(-2), k.size(-2)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if mask is not None:
        lead = torch.broadcast_shapes(lead, mask.shape[:-2])
        mask = mask.expand(*mask.shape[:-2], L, S)  # a view: broadcast rows/columns become real strides
    q = q * q.size(-1) ** -0.5  # scale the queries once: L·d_k products instead of L·S
    out_rows = []
    for i in range(0, L, block_q):
        qi = q[..., i:i + block_q, :]  # (…, bq, d_k)
        bq = qi.size(-2)
        m = q.new_full((*lead, bq, 1), float("-inf"))  # running max per query
        l = q.new_zeros((*lead, bq, 1))  # running sum of exp(score - m)  # noqa: E741
        acc = q.new_zeros((*lead, bq, v.size(-1)))  # running sum of exp(score - m) · v
        for j in range(0, S, block_k):
            if causal and j > i + bq - 1:
                break  # this key block and all later ones lie in the future of every query of the block
            kj, vj = k[..., j:j + block_k, :], v[..., j:j + block_k, :]  # (…, bk, d_k), (…, bk, d_v)
            s = qi @ kj.transpose(-2, -1)  # (…, bq, bk): the only scores alive at any time
            keep = None if mask is None else mask[..., i:i + bq, j:j + block_k]
            if causal:
                cols = torch.arange(j, j + kj.size(-2), device=q.device)  # key indices of the tile
                future = cols[None, :] > torch.arange(i, i + bq, device=q.device)[:, None]  # (bq, bk)
                keep = ~future if keep is None else keep & ~future  # (bq, bk) built from indices
            if keep is not None:
                s = s.masked_fill(~keep, float("-inf"))
            # the max only stabilises exp (the result does not depend on it): no gradient through it
            m_new = torch.maximum(m, s.detach().amax(-1, keepdim=True))
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)  # no visible key yet: avoid -inf - -inf
            p = torch.exp(s - m_safe)  # (…, bq, bk), masked scores give exactly 0
            alpha = torch.exp(m - m_safe)  # rescales the old statistics to the new max (0 while m = -inf)
            l = alpha * l + p.sum(-1, keepdim=True)  # noqa: E741
            acc = alpha * acc + p @ vj  # (…, bq, d_v)
            m = m_new
        out_rows.append(acc / torch.where(l > 0, l, torch.ones_like(l)))  # fully masked rows: 0 / 1 = 0
    return torch.cat(out_rows, dim=-2)  # (…, L, d_v)
