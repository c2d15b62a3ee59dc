"""Transformer-XL's segment-level recurrence (Dai et al. 2019): attend to a cached memory.

A long text is processed in segments of ``T`` tokens. Each layer keeps the hidden states that
entered it during the previous segment(s) as a **memory** ``(B, M, d_model)`` and lets the current
segment's queries attend over ``[memory; x]``:

    context = concat(stop_gradient(memory), x)                 (B, M + T, d_model)
    out     = MHA(query = x, key = value = context, causal in the concatenation)
    memory' = last mem_len positions of context, detached      (B, min(mem_len, M + T), d_model)

Query ``t`` of the segment sits at position ``M + t`` of the context and sees keys ``0 … M + t``:
the whole memory and the segment's past. No gradient flows into the memory (it belongs to a segment
whose backward pass is done), so training cost stays that of one segment, while the reach grows by
``mem_len`` per layer. (The paper also replaces absolute positions by relative ones, so that cached
states keep their meaning when the segment moves; this module uses no positions at all.)

>>> layer = XLMemoryAttention(XLConfig(d_model=8, n_heads=2, mem_len=5)).eval()
>>> out, mem = layer(torch.randn(1, 3, 8))            # first segment: no memory
>>> out, mem = layer(torch.randn(1, 3, 8), mem)       # second segment attends to 3 cached states
>>> tuple(out.shape), tuple(mem.shape), mem.requires_grad
((1, 3, 8), (1, 5, 8), False)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labsupport.multihead import MultiHeadAttention, MultiHeadConfig


@dataclass(frozen=True)
class XLConfig:
    """Sizes of a Transformer-XL attention layer; ``mem_len`` ≥ 1 states are kept between segments."""

    d_model: int
    n_heads: int
    mem_len: int


def memory_mask(T: int, M: int, device: torch.device | None = None) -> torch.Tensor:
    """``(T, M + T)`` bool: query t (context position M + t) may attend to keys 0 … M + t."""
    keys = torch.arange(M + T, device=device)  # (M+T,)
    return keys[None, :] <= M + torch.arange(T, device=device)[:, None]  # (T, M+T)


class XLMemoryAttention(nn.Module):
    """Causal multi-head self-attention over ``[memory; x]``; returns ``(output, new_memory)``."""

    def __init__(self, config: XLConfig):
        super().__init__()
        self.config = config
        self.attn = MultiHeadAttention(MultiHeadConfig(config.d_model, config.n_heads))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``(B, T, d_model)``, memory ``(B, M, d_model)`` or None.

        Returns ``(output (B, T, d_model), new memory (B, min(mem_len, M + T), d_model))``.
        """
        context = x if memory is None else torch.cat([memory.detach(), x], dim=1)  # (B, M+T, d)
        T, M = x.size(1), context.size(1) - x.size(1)
        out, _ = self.attn(x, context, mask=memory_mask(T, M, x.device))  # (B, T, d)
        start = max(0, M + T - self.config.mem_len)
        return out, context[:, start:].detach()  # the newest mem_len states, cut off from the graph
