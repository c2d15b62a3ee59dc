"""Linformer attention (Wang et al. 2020): keys and values projected along the sequence.

The ``(n, n)`` attention matrix of a trained transformer is close to low rank, so Linformer
multiplies the keys and values by learned ``(k, n)`` matrices ``E`` and ``F`` *along the sequence
axis* before attending:

    head = softmax(q (E K)ᵀ / √d) (F V)        E K: (k, d)   F V: (k, d_v)   scores: (n, k)

Time and memory O(n·k) instead of O(n²). The price: every query sees the same ``k`` mixtures of
positions, so attention can no longer pick out one position among more than ``k``; and because
each row of ``E`` mixes the whole sequence, a causal mask cannot be applied (Linformer is for
encoders). ``E`` and ``F`` fix the sequence length ``n``.

>>> n, d = 6, 4
>>> q, k, v = torch.randn(n, d), torch.randn(n, d), torch.randn(n, d)
>>> eye = torch.eye(n)  # k = n and E = F = I: plain attention
>>> torch.allclose(linformer_attention(q, k, v, eye, eye),
...                torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-6)
True
"""

from __future__ import annotations

import torch

from labsupport.attention import attention


def linformer_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, E: torch.Tensor,
                        F: torch.Tensor) -> torch.Tensor:
    """q ``(…, n, d)``, k ``(…, n, d)``, v ``(…, n, d_v)``; E, F ``(…, k, n)`` (leading dims broadcast).

    Returns ``(…, n, d_v)``.
    """
    k_proj = E @ k  # (…, k, d): k mixtures of the n keys
    v_proj = F @ v  # (…, k, d_v): k mixtures of the n values
    return attention(q, k_proj, v_proj)[0]  # (…, n, d_v): scores are only (…, n, k)
