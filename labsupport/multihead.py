"""Multi-head attention and the transformer encoder block (chapter 3).

One attention head compares every query with every key through a single ``d_k``-dimensional
projection. **Multi-head attention** runs ``H`` heads side by side, each over its own slice of the
projected features (``d_head = d_model / H``), concatenates their outputs and mixes them with an
output projection ``W_O``::

    head_h  = Attention(Q W_Q^h, K W_K^h, V W_V^h)             # (B, L, d_head) each
    MHA(Q, K, V) = concat(head_1, …, head_H) W_O                # (B, L, d_model)

Each head sees every position but only ``d_head`` features: like a grouped convolution, the
heads are independent channels. The **encoder block** wraps self-attention and a position-wise
feed-forward network (FFN) in residual connections and LayerNorm, either after each residual
sum (post-LN, the original transformer) or before each sub-layer (pre-LN, GPT-2 and most
models since).

Parameter names follow ``torch.nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``,
``linear2``, ``norm1``, ``norm2``) so weights copy across; torch packs the query, key and value
projections into one ``in_proj_weight`` of shape ``(3·d_model, d_model)``, which here is split
into ``q_proj``, ``k_proj`` and ``v_proj``.

Masks are boolean, True where a query may attend to a key, broadcastable to ``(B, H, L, S)``
(see :mod:`labsupport.attention`: ``causal_mask``, ``padding_mask``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.attention import attention, fast_attention
from labsupport.train import TrainConfig, fit


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(B, T, H·d_head)`` → ``(B, H, T, d_head)``: head h gets features ``h·d_head … (h+1)·d_head − 1``."""
    B, T, D = x.shape
    x = x.view(B, T, n_heads, D // n_heads)  # (B, T, H, d_head): split the feature axis only
    return x.transpose(1, 2)  # (B, H, T, d_head): heads become a batch-like axis


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, T, d_head)`` → ``(B, T, H·d_head)``: the inverse of :func:`split_heads` (concatenation)."""
    B, H, T, d_head = x.shape
    x = x.transpose(1, 2).contiguous()  # (B, T, H, d_head): positions back in front of heads
    return x.view(B, T, H * d_head)  # (B, T, H·d_head): heads side by side = concat(head_1, …, head_H)


@dataclass
class MultiHeadConfig:
    """Sizes of a multi-head attention layer. ``d_model`` must be a multiple of ``n_heads``."""

    d_model: int
    n_heads: int
    dropout: float = 0.0  # on the attention weights, as in torch.nn.MultiheadAttention
    bias: bool = True
    kdim: int | None = None  # features of the keys for cross-attention (default d_model)
    vdim: int | None = None  # features of the values (default d_model)
    fast: bool = False  # use torch's fused kernel when the weights are not asked for

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class MultiHeadAttention(nn.Module):
    """Multi-head self- or cross-attention; weights copy to and from ``torch.nn.MultiheadAttention``."""

    def __init__(self, config: MultiHeadConfig):
        super().__init__()
        if config.d_model % config.n_heads:
            raise ValueError(f"d_model={config.d_model} is not a multiple of n_heads={config.n_heads}")
        self.config = config
        d, b = config.d_model, config.bias
        self.q_proj = nn.Linear(d, d, bias=b)  # all heads' W_Q side by side
        self.k_proj = nn.Linear(config.kdim or d, d, bias=b)
        self.v_proj = nn.Linear(config.vdim or d, d, bias=b)
        self.out_proj = nn.Linear(d, d, bias=b)  # W_O mixes the concatenated heads

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query (B, L, d_model)`` to ``key (B, S, kdim)`` / ``value (B, S, vdim)``.

        ``key`` and ``value`` default to ``query`` (self-attention). ``mask`` is boolean, True where
        a query may attend, broadcastable to ``(B, H, L, S)``. Returns ``(output (B, L, d_model),
        weights (B, H, L, S) after dropout, or None unless need_weights)``.
        """
        key = query if key is None else key
        value = key if value is None else value
        H = self.config.n_heads
        q = split_heads(self.q_proj(query), H)  # (B, H, L, d_head)
        k = split_heads(self.k_proj(key), H)  # (B, H, S, d_head)
        v = split_heads(self.v_proj(value), H)  # (B, H, S, d_head)
        p = self.config.dropout
        if self.config.fast and not need_weights:
            out, weights = fast_attention(q, k, v, mask, p, self.training), None  # (B, H, L, d_head)
        else:
            out, weights = attention(q, k, v, mask, p, self.training)  # (B, H, L, d_head), (B, H, L, S)
        return self.out_proj(merge_heads(out)), weights  # (B, L, d_model)


@dataclass
class EncoderBlockConfig:
    """Sizes of one encoder block; the defaults of ``torch.nn.TransformerEncoderLayer``."""

    d_model: int
    n_heads: int
    d_ff: int = 2048
    dropout: float = 0.1
    activation: str = "relu"  # "relu" or "gelu"
    norm_first: bool = False  # False: post-LN (original transformer); True: pre-LN
    layer_norm_eps: float = 1e-5
    bias: bool = True
    fast: bool = False


class TransformerEncoderBlock(nn.Module):
    """Self-attention and a position-wise FFN, each inside a residual connection with LayerNorm.

    post-LN: ``x = norm1(x + drop(attn(x)));  x = norm2(x + drop(ffn(x)))``
    pre-LN:  ``x = x + drop(attn(norm1(x)));  x = x + drop(ffn(norm2(x)))``
    """

    def __init__(self, config: EncoderBlockConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.self_attn = MultiHeadAttention(MultiHeadConfig(d, config.n_heads, config.dropout, config.bias,
                                                            fast=config.fast))
        self.linear1 = nn.Linear(d, config.d_ff, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)  # inside the FFN, after the activation
        self.linear2 = nn.Linear(config.d_ff, d, bias=config.bias)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps, bias=config.bias)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps, bias=config.bias)
        self.dropout1 = nn.Dropout(config.dropout)  # on the attention sub-layer's output
        self.dropout2 = nn.Dropout(config.dropout)  # on the FFN sub-layer's output
        self.activation = {"relu": F.relu, "gelu": F.gelu}[config.activation]

    def _attn(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.dropout1(self.self_attn(x, mask=mask)[0])  # (B, T, d_model)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        """The same two-layer MLP applied to every position independently."""
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))  # (B, T, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, d_model)`` → ``(B, T, d_model)``; ``mask`` as in :class:`MultiHeadAttention`."""
        if self.config.norm_first:
            x = x + self._attn(self.norm1(x), mask)
            return x + self._ffn(self.norm2(x))
        x = self.norm1(x + self._attn(x, mask))
        return self.norm2(x + self._ffn(x))


# ------------------------------------------------------------------ the heads ablation
def lookup_batches(batch_size: int, seq_len: int = 8, vocab: int = 16, targets: Sequence[int] = (0, 2, 5, 7),
                   generator: torch.Generator | None = None):
    """Endless ``(x, y)`` batches of a task that needs one attention head per looked-up position.

    ``x (B, 1 + seq_len)``: a read-out token (id ``vocab``) followed by random tokens; ``y (B, K)``:
    the tokens at the positions ``targets``. One head reading several positions only gets a
    weighted *sum* of their embeddings, in which it cannot tell which token stood where.
    """
    while True:
        tokens = torch.randint(vocab, (batch_size, seq_len), generator=generator)  # (B, T)
        readout = torch.full((batch_size, 1), vocab)  # (B, 1)
        yield torch.cat([readout, tokens], 1), tokens[:, list(targets)]  # (B, 1+T), (B, K)


class LookupModel(nn.Module):
    """Token + learned position embeddings → one encoder block → classify K tokens from position 0."""

    def __init__(self, block: nn.Module, d_model: int, seq_len: int = 8, vocab: int = 16, n_targets: int = 4):
        super().__init__()
        self.tok = nn.Embedding(vocab + 1, d_model)
        self.pos = nn.Embedding(seq_len + 1, d_model)
        self.block = block
        self.head = nn.Linear(d_model, n_targets * vocab)
        self.vocab = vocab

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x) + self.pos(torch.arange(x.size(1), device=x.device))  # (B, 1+T, d_model)
        h = self.block(h)[:, 0]  # (B, d_model): the read-out position
        return self.head(h).view(len(x), -1, self.vocab)  # (B, K, vocab)


def heads_ablation(make_block: Callable[[int], nn.Module], heads: Sequence[int] = (1, 2, 4, 8),
                   d_model: int = 32, steps: int = 250, batch_size: int = 128, seed: int = 0,
                   device: torch.device | None = None, progress: bool = True) -> dict[int, float]:
    """Train one :class:`LookupModel` per head count; return held-out accuracy per head count.

    ``make_block(n_heads)`` builds the encoder block; with ``d_model`` fixed the parameter count is
    the same for every head count (only how the features are split changes).
    """
    results, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train fastest on one CPU thread
    for n_heads in heads:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = LookupModel(make_block(n_heads), d_model)
        batches = lookup_batches(batch_size, generator=gen)
        fit(model, batches, lambda m, b: F.cross_entropy(m(b[0]).flatten(0, 1), b[1].flatten()),
            TrainConfig(steps=steps, lr=1e-2, progress=progress), device=device)
        x, y = next(lookup_batches(2048, generator=torch.Generator().manual_seed(seed + 1)))
        model.eval()
        with torch.no_grad():
            dev = next(model.parameters()).device
            results[n_heads] = (model(x.to(dev)).argmax(-1).cpu() == y).float().mean().item()
    torch.set_num_threads(threads)
    return results
