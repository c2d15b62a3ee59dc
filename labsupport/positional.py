"""Positional encodings (chapter 4): how a transformer learns *where* each token is.

Attention compares every query with every key and is blind to their order: permute the tokens and
the outputs are permuted the same way. Each function here injects order in a different way:

- :class:`LearnedPositionalEmbedding` — one trained vector per position, added to the token
  embeddings (BERT, GPT-2, ViT). Simple, but positions beyond ``max_len`` do not exist.
- :func:`sinusoidal_encoding` — fixed sines and cosines of geometrically spaced frequencies
  (the original transformer), added to the token embeddings.
- :func:`offset_matrix` — why sinusoids work: ``PE(pos + k) = M_k · PE(pos)`` for a rotation ``M_k``
  that depends on the offset ``k`` only.
- :func:`apply_rotary` — rotary embeddings (RoPE, Llama): rotate queries and keys instead of adding
  anything, so that ``q_m · k_n`` depends on the positions only through ``m − n``.
- :func:`alibi_bias` — ALiBi: no vectors at all, a penalty proportional to the distance is added to
  the attention scores, with one slope per head.

:class:`TinyLM` is a small causal language model that uses any of these, for the experiments of the
chapter and the lab (training at one length, evaluating at longer ones).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ENCODINGS = ("none", "learned", "sinusoidal", "rope", "alibi")


def inverse_frequencies(dim: int, base: float = 10000.0) -> torch.Tensor:
    """The ``dim // 2`` angular frequencies ``ω_i = base^(−2i/dim)``, from 1 down to about 1/base.

    Pair ``i`` of dimensions turns by ω_i radians per position: the first pairs are fast "seconds
    hands", the last ones slow "hour hands". Sinusoidal encodings and RoPE use the same frequencies.
    Returned in float64, shape ``(dim // 2,)``.
    """
    two_i = torch.arange(0, dim - 1, 2, dtype=torch.float64)  # 0, 2, 4, … (2i for every full pair)
    return base ** (-two_i / dim)


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal encoding of the original transformer, ``(n_positions, d_model)`` float32.

        PE(pos, 2i)   = sin(pos / base^(2i/d_model))
        PE(pos, 2i+1) = cos(pos / base^(2i/d_model))

    Even dimensions hold sines, odd dimensions the cosine of the *same* angle. With an odd
    ``d_model`` the last dimension is a sine without its cosine partner. Every value lies in [−1, 1],
    so the encoding can be added to token embeddings of a similar scale.
    """
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    dims = torch.arange(d_model)
    two_i = torch.div(dims, 2, rounding_mode="floor") * 2  # 0, 0, 2, 2, 4, 4, …   (d,)
    angles = pos / base ** (two_i / d_model)  # (P, d)
    return torch.where(dims % 2 == 0, angles.sin(), angles.cos()).float()


def offset_matrix(k: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The ``(d_model, d_model)`` float32 matrix ``M_k`` with ``PE(pos + k) = M_k @ PE(pos)`` for every pos.

    From sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b − sin a sin b, each
    (sin, cos) pair of dimensions is rotated by the angle ``k·ω_i``::

        [sin((pos+k)ω)]   [ cos kω   sin kω] [sin(pos·ω)]
        [cos((pos+k)ω)] = [−sin kω   cos kω] [cos(pos·ω)]

    so ``M_k`` is block-diagonal with one 2×2 rotation per pair and does not depend on ``pos``:
    a shift of position is a fixed linear map, which a layer can learn. ``d_model`` must be even.
    """
    if d_model % 2:
        raise ValueError(f"offset_matrix needs an even d_model (sin/cos pairs), got {d_model}")
    angle = k * inverse_frequencies(d_model, base)  # (d/2,)
    c, s = angle.cos(), angle.sin()
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    even = torch.arange(0, d_model, 2)
    m[even, even], m[even, even + 1] = c, s  # sin row: cos·sin + sin·cos
    m[even + 1, even], m[even + 1, even + 1] = -s, c  # cos row: −sin·sin + cos·cos
    return m.float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x1, x2) → (−x2, x1)`` on the two halves of the last dimension (the Llama convention).

    Dimension ``j`` is paired with dimension ``j + d/2`` (not with ``j + 1``): pair ``j`` is the 2-D
    vector ``(x[j], x[j + d/2])`` and rotate_half turns every pair by 90°.
    """
    x1, x2 = x.chunk(2, dim=-1)  # (..., d/2) each
    return torch.cat((-x2, x1), dim=-1)


def rotary_cos_sin(positions: torch.Tensor, head_dim: int,
                   base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotation angles ``pos·ω_i``, shape ``positions.shape + (head_dim,)``.

    Each frequency appears twice (``cat([θ, θ])``) because pair ``i`` spans dimensions ``i`` and
    ``i + head_dim/2``. Computed in float64.
    """
    inv_freq = inverse_frequencies(head_dim, base).to(positions.device)  # (d/2,)
    angles = positions[..., None].double() * inv_freq  # (..., T, d/2)
    angles = torch.cat((angles, angles), dim=-1)  # (..., T, d)
    return angles.cos(), angles.sin()


def apply_rotary(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor,
                 base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embedding (RoPE) of queries and keys, in the Hugging Face Llama convention.

    q: ``(B, H, T, d)``, k: ``(B, H_kv, T, d)`` (any leading dimensions that broadcast work;
    ``d`` even); positions: integer ``(T,)`` shared by the batch, or ``(B, T)`` one row per sequence.
    Returns the rotated ``(q, k)``, same shapes and dtypes.

    Every pair ``(x[j], x[j + d/2])`` of a vector at position ``pos`` is rotated by the angle
    ``pos·ω_j``: ``x·cos + rotate_half(x)·sin``. Rotations preserve lengths, and rotating q by
    ``mθ`` and k by ``nθ`` leaves their dot product depending on ``(m − n)θ`` only: attention scores
    see *relative* positions, although each vector was encoded with its absolute position.
    """
    cos, sin = rotary_cos_sin(positions, q.size(-1), base)  # (T, d) or (B, T, d)
    if positions.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, d): broadcast over heads
    q_rot = q * cos.to(q.dtype) + rotate_half(q) * sin.to(q.dtype)
    k_rot = k * cos.to(k.dtype) + rotate_half(k) * sin.to(k.dtype)
    return q_rot, k_rot


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes, ``(n_heads,)`` float32: a geometric sequence starting at 2^(−8/n).

    For 8 heads: 1/2, 1/4, …, 1/256. When ``n_heads`` is not a power of two, take the slopes of the
    closest smaller power of two ``p`` and add every other slope of ``2p`` heads (the recipe of the
    ALiBi paper's code), so the slopes still spread between about 1/2 and 1/256.
    """
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (h + 1) for h in range(n)]

    p = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_two(p) + power_of_two(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_heads: int, L: int, S: int | None = None) -> torch.Tensor:
    """ALiBi's additive attention bias, ``(n_heads, L, S)`` float32, ``bias[h, i, j] = −m_h · (i' − j)``.

    ``L`` queries attend to ``S ≥ L`` keys (default ``S = L``); the queries are the *last* ``L``
    positions, so query ``i`` sits at position ``i' = i + S − L`` (as with a key–value cache). A key
    ``d`` steps in the past is penalised by ``m_h · d``; keys in the future get a positive value,
    which the causal mask removes. Add it to ``q·kᵀ/√d`` before the softmax; no position vectors.
    """
    S = L if S is None else S
    q_pos = torch.arange(L) + (S - L)  # (L,)
    distance = torch.arange(S)[None, :] - q_pos[:, None]  # (L, S): j − i', ≤ 0 in the past
    return alibi_slopes(n_heads)[:, None, None] * distance  # (H, L, S)


class LearnedPositionalEmbedding(nn.Module):
    """One trainable vector per position up to ``max_len``, added to the token embeddings (GPT-2, BERT)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)  # (max_len, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, T, d)`` token embeddings → ``x + P[:T]``; fails for ``T > max_len``."""
        T = x.size(-2)
        if T > self.max_len:
            raise ValueError(f"sequence of {T} positions, but only {self.max_len} were learned: "
                             "learned absolute embeddings cannot extrapolate")
        return x + self.weight[:T]


# ------------------------------------------------------------------ a tiny model to compare them
@dataclass
class TinyLMConfig:
    """A small causal language model; ``encoding`` is one of :data:`ENCODINGS`."""

    vocab_size: int
    encoding: str = "none"
    d_model: int = 48
    n_heads: int = 4
    n_layers: int = 2
    max_len: int = 64  # only used by the learned embedding


class TinyLM(nn.Module):
    """Pre-LN causal transformer whose position information comes from ``config.encoding`` only.

    The encoding functions are injected (``sinusoidal``, ``rotary``, ``alibi``), so a lab can plug in
    the student's implementations; by default the reference ones of this module are used.
    """

    def __init__(self, config: TinyLMConfig, sinusoidal: Callable = sinusoidal_encoding,
                 rotary: Callable = apply_rotary, alibi: Callable = alibi_bias):
        super().__init__()
        if config.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {config.encoding!r}")
        self.config, self.sinusoidal, self.rotary, self.alibi = config, sinusoidal, rotary, alibi
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d)
        self.learned = LearnedPositionalEmbedding(config.max_len, d) if config.encoding == "learned" else None
        self.blocks = nn.ModuleList(_Block(d, config.n_heads) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx``: ``(B, T)`` token ids → logits ``(B, T, vocab_size)``."""
        T, enc = idx.size(1), self.config.encoding
        x = self.embed(idx)  # (B, T, d)
        if enc == "learned":
            x = self.learned(x)
        elif enc == "sinusoidal":
            x = x + self.sinusoidal(T, self.config.d_model).to(x.device)
        bias = torch.zeros(T, T, device=idx.device)
        if enc == "alibi":
            bias = self.alibi(self.config.n_heads, T).to(idx.device)  # (nh, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
        bias = bias.masked_fill(~causal, float("-inf"))  # (nh or 1, T, T)
        positions = torch.arange(T, device=idx.device) if enc == "rope" else None
        for block in self.blocks:
            x = block(x, bias, positions, self.rotary)
        return self.head(self.norm(x))


class _Block(nn.Module):
    """Pre-LN block: x + attention(LN(x)), then x + MLP(LN(x)); RoPE inside the attention if asked."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, bias: torch.Tensor, positions: torch.Tensor | None,
                rotary: Callable) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)  # (B, T, d) each
        heads = (B, T, self.n_heads, d // self.n_heads)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if positions is not None:
            q, k = rotary(q, k, positions)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))  # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))  # (B, T, d)
        return x + self.mlp(self.ln2(x))


# ------------------------------------------------------------------ the extrapolation experiment
def length_extrapolation(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int,
                         encodings: tuple[str, ...] = ENCODINGS, seeds: tuple[int, ...] = (0, 1),
                         steps: int = 150, train_len: int = 32, eval_lens: tuple[int, ...] = (32, 64, 128, 256),
                         d_model: int = 32, n_heads: int = 4, n_layers: int = 1, batch_size: int = 32,
                         lr: float = 3e-3, device: torch.device | None = None, progress: bool = True,
                         **encoders: Callable) -> dict[str, torch.Tensor]:
    """Train one :class:`TinyLM` per encoding and seed on ``train_len`` tokens; evaluate longer.

    Returns, per encoding, a ``(len(seeds), len(eval_lens))`` tensor of validation losses (nats per
    token, the same held-out batches for every model); NaN where the model cannot run (a learned table
    of ``train_len`` rows has no row for later positions). ``encoders`` (``sinusoidal=``, ``rotary=``,
    ``alibi=``) replace the reference implementations, e.g. by a student's. The small default budget runs
    in about a minute on a CPU; ``steps=2000, d_model=128, seeds=(0, 1, 2, 3, 4)`` is the conclusive
    setting, run once by ``python -m labsupport.results extrapolation`` (its numbers:
    ``labsupport.results.load("extrapolation")``).
    """
    from tqdm.auto import tqdm

    from labsupport.train import TrainConfig, fit, random_batches

    device = device or torch.device("cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one CPU thread is faster than several

    def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

    evals = {L: next(random_batches(val_ids, L, 32, torch.Generator().manual_seed(1))) for L in eval_lens}
    results = {}
    runs = tqdm([(e, s) for e in encodings for s in seeds], desc="models", disable=not progress)
    for encoding, seed in runs:
        torch.manual_seed(seed)
        cfg = TinyLMConfig(vocab_size, encoding, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                           max_len=train_len)
        model = TinyLM(cfg, **encoders)
        fit(model, random_batches(train_ids, train_len, batch_size, torch.Generator().manual_seed(seed)),
            lm_loss, TrainConfig(steps=steps, lr=lr, progress=False), device=device)
        model.eval()
        row = []
        with torch.no_grad():
            for L in eval_lens:
                if encoding == "learned" and L > train_len:
                    row.append(float("nan"))
                    continue
                x, y = evals[L]
                row.append(lm_loss(model, (x.to(device), y.to(device))).item())
        results.setdefault(encoding, []).append(row)
    torch.set_num_threads(threads)
    return {e: torch.tensor(rows) for e, rows in results.items()}
