"""Sparse attention patterns as boolean masks (True = may attend), after Child et al. (2019).

With stride ``l`` the Sparse Transformer factorises attention into two sets of positions per query
``i`` (the union is what one head sees here):

- **strided** (for data with a period, e.g. image rows of width ``l``):
  ``A¹ᵢ = {j : |i − j| ≤ l}`` (the previous ``l`` positions and i itself when causal) and
  ``A²ᵢ = {j : (i − j) mod l = 0}`` (every ``l``-th position: "the same column").
- **fixed** (for text, which has no period): ``A¹ᵢ = {j : ⌊j/l⌋ = ⌊i/l⌋}`` (the query's own block)
  and ``A²ᵢ = {j : j mod l ≥ l − c}`` (the last ``c`` positions of every block, the "summary"
  positions that carry a block's information to later ones).

``causal=True`` (the paper's autoregressive setting) intersects with ``j ≤ i``. Each query sees
O(l + n/l) keys, O(√n) for l ≈ √n. A **sliding window** (Longformer, Beltagy et al. 2020) keeps
only the local band ``|i − j| ≤ w``.

>>> strided_mask(5, 2).int().tolist()
[[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [1, 0, 1, 1, 1]]
>>> fixed_mask(6, 3, 1).int().tolist()
[[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
"""

from __future__ import annotations

import torch


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.arange(n)
    return idx[:, None], idx[None, :]  # (n, 1) queries i, (1, n) keys j


def strided_mask(n: int, stride: int, causal: bool = True) -> torch.Tensor:
    """``(n, n)`` bool: ``|i − j| ≤ stride`` or ``(i − j) mod stride = 0`` (and ``j ≤ i`` if causal)."""
    i, j = _grid(n)
    keep = ((i - j).abs() <= stride) | ((i - j) % stride == 0)
    return keep & (j <= i) if causal else keep


def fixed_mask(n: int, stride: int, c: int, causal: bool = True) -> torch.Tensor:
    """``(n, n)`` bool: same block ``⌊j/l⌋ = ⌊i/l⌋`` or summary ``j mod l ≥ l − c`` (and ``j ≤ i`` if causal)."""
    i, j = _grid(n)
    keep = (i // stride == j // stride) | (j % stride >= stride - c)
    return keep & (j <= i) if causal else keep


def sliding_window_mask(n: int, window: int, causal: bool = True) -> torch.Tensor:
    """``(n, n)`` bool: ``|i − j| ≤ window`` (and ``j ≤ i`` if causal)."""
    i, j = _grid(n)
    keep = (i - j).abs() <= window
    return keep & (j <= i) if causal else keep
