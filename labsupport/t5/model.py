"""The T5 encoder–decoder (original T5: ReLU feed-forward, tied output embedding).

What differs from the transformer of chapter 3:

- **RMSNorm** instead of LayerNorm: ``x / sqrt(mean(x²) + eps) · weight`` — no mean subtracted, no
  bias; the mean of squares is computed in float32 even for half-precision inputs. Pre-norm:
  every sub-layer reads ``norm(x)`` and adds its output to the residual stream ``x``.
- **Unscaled scores** ``q·k + bias``: T5 does not divide by ``√d_kv`` (its initialisation of the
  query projection absorbs the factor), and adds the relative position bias of
  :mod:`labsupport.t5.relative`, computed once per stack and shared by all its layers.
  Cross-attention has no position bias.
- **Heads of their own size**: ``n_heads · d_kv`` need not equal ``d_model``.
- **Tied output embedding**: logits = ``(decoder output · d_model^-0.5) @ shared.weightᵀ``.
- The decoder starts from ``decoder_start_id`` (= pad, 0) and the labels are shifted right
  (:func:`shift_right`); :func:`greedy_decode` appends the most likely token until EOS.

Parameter names (ours; :func:`state_from_hf` converts Hugging Face's ``T5ForConditionalGeneration``)::

    shared                                   (vocab_size, d_model) token embedding = output embedding
    encoder_bias.relative_attention_bias     (num_buckets, n_heads), bidirectional buckets
    encoder.{i}.norm1 / attn.{q,k,v,o} / norm2 / ff.{wi,wo}
    encoder_norm
    decoder_bias.relative_attention_bias     (num_buckets, n_heads), causal buckets
    decoder.{i}.norm1 / self_attn / norm2 / cross_attn / norm3 / ff
    decoder_norm

>>> cfg = T5Config(vocab_size=40, d_model=24, d_kv=5, n_heads=3, d_ff=36, n_layers=2, dropout=0.0)
>>> model = T5Model(cfg).eval()
>>> src = torch.randint(2, 40, (2, 7))
>>> model(src, torch.zeros(2, 4, dtype=torch.long)).shape   # (B, T, vocab_size)
torch.Size([2, 4, 40])
>>> greedy_decode(model, src, max_new_tokens=5).shape[0]
2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.multihead import merge_heads, split_heads
from labsupport.t5.relative import RelativePositionBias


@dataclass
class T5Config:
    """Sizes of a T5 model; the defaults are a tiny one. ``n_decoder_layers`` defaults to ``n_layers``."""

    vocab_size: int = 64
    d_model: int = 64
    d_kv: int = 16  # features per head; n_heads · d_kv need not equal d_model
    n_heads: int = 4
    d_ff: int = 128
    n_layers: int = 2
    n_decoder_layers: int | None = None
    num_buckets: int = 32
    max_distance: int = 128
    dropout: float = 0.1
    layer_norm_eps: float = 1e-6
    pad_id: int = 0
    eos_id: int = 1
    decoder_start_id: int = 0  # T5 starts decoding from the pad id

    @property
    def decoder_layers(self) -> int:
        return self.n_layers if self.n_decoder_layers is None else self.n_decoder_layers


class RMSNorm(nn.Module):
    """T5's LayerNorm: scale by the root mean square, no mean, no bias."""

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)  # (..., 1), in float32 even for half inputs
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


class T5Attention(nn.Module):
    """Multi-head attention without score scaling and without biases; optional additive position bias."""

    def __init__(self, config: T5Config):
        super().__init__()
        inner = config.n_heads * config.d_kv
        self.n_heads, self.dropout = config.n_heads, config.dropout
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, d_model)`` attends to ``memory (B, S, d_model)`` (default: ``x``).

        ``bias`` broadcasts to ``(B, H, L, S)``; ``mask`` is boolean, True where a query may attend.
        """
        memory = x if memory is None else memory
        q = split_heads(self.q(x), self.n_heads)  # (B, H, L, d_kv)
        k = split_heads(self.k(memory), self.n_heads)  # (B, H, S, d_kv)
        v = split_heads(self.v(memory), self.n_heads)  # (B, H, S, d_kv)
        scores = q @ k.transpose(-2, -1)  # (B, H, L, S): no 1/√d_kv
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)  # (B, H, L, S)
        return self.o(merge_heads(weights @ v))  # (B, L, d_model)


class T5FeedForward(nn.Module):
    """``wo(dropout(relu(wi(x))))``, no biases."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.dropout(F.relu(self.wi(x))))


class T5EncoderBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, each added to the residual stream."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x), bias=bias, mask=mask))
        return x + self.dropout(self.ff(self.norm2(x)))


class T5DecoderBlock(nn.Module):
    """Pre-norm causal self-attention, cross-attention to the encoder output, feed-forward."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.self_attn = T5Attention(config)
        self.norm2 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.cross_attn = T5Attention(config)
        self.norm3 = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = T5FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor, self_mask: torch.Tensor,
                cross_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.norm1(x), bias=bias, mask=self_mask))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory, mask=cross_mask))  # no position bias
        return x + self.dropout(self.ff(self.norm3(x)))


class T5Model(nn.Module):
    """Encoder–decoder with shared embeddings; ``forward`` returns the logits ``(B, T, vocab_size)``."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        c = config
        self.shared = nn.Embedding(c.vocab_size, c.d_model)
        self.encoder_bias = RelativePositionBias(c.num_buckets, c.max_distance, c.n_heads, bidirectional=True)
        self.encoder = nn.ModuleList([T5EncoderBlock(c) for _ in range(c.n_layers)])
        self.encoder_norm = RMSNorm(c.d_model, c.layer_norm_eps)
        self.decoder_bias = RelativePositionBias(c.num_buckets, c.max_distance, c.n_heads, bidirectional=False)
        self.decoder = nn.ModuleList([T5DecoderBlock(c) for _ in range(c.decoder_layers)])
        self.decoder_norm = RMSNorm(c.d_model, c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids (B, S)``, ``attention_mask (B, S)`` (1 = token, 0 = padding) → ``(B, S, d_model)``."""
        S = input_ids.size(1)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        bias = self.encoder_bias(S, S)  # (1, H, S, S): computed once, shared by every layer
        x = self.dropout(self.shared(input_ids))  # (B, S, d_model)
        for block in self.encoder:
            x = block(x, bias, mask)
        return self.dropout(self.encoder_norm(x))

    def decode(self, decoder_input_ids: torch.Tensor, memory: torch.Tensor,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)`` for ``decoder_input_ids (B, T)`` given the encoder output."""
        T = decoder_input_ids.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=memory.device).tril()  # (T, T)
        cross = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        bias = self.decoder_bias(T, T)  # (1, H, T, T)
        x = self.dropout(self.shared(decoder_input_ids))  # (B, T, d_model)
        for block in self.decoder:
            x = block(x, memory, bias, causal, cross)
        x = self.dropout(self.decoder_norm(x)) * self.config.d_model ** -0.5  # scaled for the tied embedding
        return x @ self.shared.weight.T  # (B, T, vocab_size)

    def forward(self, input_ids: torch.Tensor, decoder_input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(decoder_input_ids, self.encode(input_ids, attention_mask), attention_mask)


def shift_right(labels: torch.Tensor, start_id: int = 0, pad_id: int = 0) -> torch.Tensor:
    """Decoder inputs for teacher forcing: ``[start, y_0, …, y_{T−2}]``; ignored labels (−100) → ``pad_id``."""
    shifted = torch.cat([torch.full_like(labels[:, :1], start_id), labels[:, :-1]], dim=1)  # (B, T)
    return shifted.masked_fill(shifted == -100, pad_id)


@torch.no_grad()
def greedy_decode(model: nn.Module, input_ids: torch.Tensor, max_new_tokens: int,
                  attention_mask: torch.Tensor | None = None, start_id: int = 0, eos_id: int = 1,
                  pad_id: int = 0) -> torch.Tensor:
    """Append the most likely token, one step at a time, until every sequence has emitted ``eos_id``.

    Returns ``(B, 1 + n)``, ``n ≤ max_new_tokens``: the start token, then the generated tokens;
    after its EOS a sequence is filled with ``pad_id`` (as Hugging Face's ``generate``).
    """
    out = torch.full((input_ids.size(0), 1), start_id, dtype=torch.long, device=input_ids.device)  # (B, 1)
    done = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)  # (B,)
    for _ in range(max_new_tokens):
        logits = model(input_ids, out, attention_mask=attention_mask)[:, -1]  # (B, vocab_size)
        token = logits.argmax(-1).masked_fill(done, pad_id)  # (B,)
        out = torch.cat([out, token[:, None]], dim=1)
        done = done | (token == eos_id)
        if done.all():
            break
    return out


def state_from_hf(hf_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face ``T5ForConditionalGeneration`` names → ours (ReLU feed-forward, tied embeddings)."""
    out = {"shared.weight": hf_state["shared.weight"]}
    rename = {"encoder.final_layer_norm.weight": "encoder_norm.weight",
              "decoder.final_layer_norm.weight": "decoder_norm.weight",
              "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
                  "encoder_bias.relative_attention_bias.weight",
              "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
                  "decoder_bias.relative_attention_bias.weight"}
    enc = {"layer.0.layer_norm": "norm1", "layer.0.SelfAttention": "attn", "layer.1.layer_norm": "norm2",
           "layer.1.DenseReluDense": "ff"}
    dec = {"layer.0.layer_norm": "norm1", "layer.0.SelfAttention": "self_attn", "layer.1.layer_norm": "norm2",
           "layer.1.EncDecAttention": "cross_attn", "layer.2.layer_norm": "norm3", "layer.2.DenseReluDense": "ff"}
    for name, tensor in hf_state.items():
        if name in rename:
            out[rename[name]] = tensor
            continue
        for stack, table in (("encoder", enc), ("decoder", dec)):
            prefix = f"{stack}.block."
            if name.startswith(prefix):
                index, rest = name[len(prefix):].split(".", 1)
                for hf, ours in table.items():
                    if rest.startswith(hf + "."):
                        out[f"{stack}.{index}.{ours}{rest[len(hf):]}"] = tensor
    return out
