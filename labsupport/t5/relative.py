"""Relative position bias with logarithmic buckets (T5).

T5 adds no position vectors to the embeddings. Instead each attention score between a query at
position ``i`` and a key (memory) at position ``j`` gets a learned scalar that depends only on the
**relative position** ``j − i`` (memory minus query), one scalar per head::

    scores[b, h, i, j] = q_i · k_j + bias[h, bucket(j − i)]

Distances are grouped into ``num_buckets`` buckets: small distances each get their own bucket,
larger ones share buckets whose width grows logarithmically up to ``max_distance``; everything
farther falls into the last bucket. In the encoder (``bidirectional``) half of the buckets are for
keys on the left, half for keys on the right; in the decoder (causal) only the past counts, so
all buckets go to the left. The bias is computed once per stack, in its first layer, and shared
by every layer.

>>> relative_position_bucket(torch.tensor([-3, -1, 0, 1, 3]), bidirectional=True, num_buckets=8, max_distance=16)
tensor([2, 1, 0, 5, 6])
>>> relative_position_bucket(torch.tensor([-100, -3, 0, 3]), bidirectional=False, num_buckets=8, max_distance=16)
tensor([7, 3, 0, 0])
>>> RelativePositionBias(num_buckets=8, max_distance=16, n_heads=3)(query_length=4, key_length=6).shape
torch.Size([1, 3, 4, 6])
"""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32,
                             max_distance: int = 128) -> torch.Tensor:
    """Bucket ids ``[0, num_buckets)`` for integer relative positions ``memory − query`` (any shape).

    Bidirectional: buckets ``[0, n/2)`` for keys at or left of the query, ``[n/2, n)`` for keys on the
    right. Causal: keys on the right (the future) go to bucket 0, like distance 0. Within each half
    of ``n`` buckets, distances below ``n/2`` are exact; the rest are spaced logarithmically up to
    ``max_distance`` and clipped to the last bucket.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets  # keys on the right: upper half
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp_min(0)  # only the past; the future counts as 0
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # log-spaced buckets: max_exact at distance max_exact, num_buckets at distance max_distance (float32, as T5)
    log_ratio = torch.log(distance.float().clamp_min(1) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    large = large.clamp_max(num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """One learned scalar per (bucket, head), looked up for every (query, key) pair.

    ``relative_attention_bias`` is an ``nn.Embedding(num_buckets, n_heads)`` (Hugging Face's name).
    """

    def __init__(self, num_buckets: int, max_distance: int, n_heads: int, bidirectional: bool = True):
        super().__init__()
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)

    def forward(self, query_length: int, key_length: int) -> torch.Tensor:
        """The bias ``(1, n_heads, query_length, key_length)`` to add to the attention scores."""
        device = self.relative_attention_bias.weight.device
        query = torch.arange(query_length, device=device)[:, None]  # (L, 1)
        memory = torch.arange(key_length, device=device)[None, :]  # (1, S)
        buckets = relative_position_bucket(memory - query, self.bidirectional, self.num_buckets,
                                           self.max_distance)  # (L, S)
        values = self.relative_attention_bias(buckets)  # (L, S, H)
        return values.permute(2, 0, 1).unsqueeze(0)  # (1, H, L, S)
