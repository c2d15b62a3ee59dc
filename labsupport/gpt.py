"""A GPT language model (chapter 6), minGPT-style, weight-compatible with Hugging Face's GPT-2.

A **decoder-only** transformer reads tokens ``x_1 … x_T`` and predicts, at every position t, the
distribution of the next token ``x_{t+1}``. Causal self-attention lets position t see only positions
≤ t, so one forward pass trains all T predictions at once (teacher forcing)::

    h = wte[idx] + wpe[0 … T−1]                      # (B, T, n_embd) token + learned position
    h = h + attn(ln_1(h)); h = h + mlp(ln_2(h))       # × n_layer pre-LN blocks (GPT-2)
    logits = ln_f(h) @ wteᵀ                            # (B, T, vocab): the head is tied to wte

Parameter names are GPT-2's (``transformer.wte``, ``transformer.h.0.attn.c_attn``, …, ``lm_head``),
so :func:`to_hf` / :func:`from_hf` copy weights to and from ``transformers.GPT2LMHeadModel`` (GPT-2
stores its projections as ``Conv1D`` with the weight transposed relative to ``nn.Linear``). The MLP
uses GPT-2's GELU, the tanh approximation (``gelu_new`` in ``transformers``).

**Key–value cache.** At generation time every step would recompute the keys and values of the whole
prefix. Each attention layer instead returns its keys and values (``present``); the next call feeds
only the new token with ``past=present``. The new queries sit at positions ``P … P+T−1`` after ``P``
cached ones, so query i may attend keys ``0 … P+i`` and the position embeddings start at ``P``.

The course's pre-trained checkpoint (:func:`load_pretrained`) is a small byte-level model trained on
Tiny Shakespeare by :func:`pretrain_checkpoint` (``python -m labsupport.pretrain gpt``).

>>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=12)).eval()
>>> logits, present = model(torch.tensor([[1, 2, 3]]))
>>> tuple(logits.shape), len(present), tuple(present[0][0].shape)  # (B, T, V); layers; (B, nh, T, hs)
((1, 3, 11), 2, (1, 2, 3, 6))
>>> generate(model, torch.tensor([[1, 2, 3]]), 4, temperature=0).shape
torch.Size([1, 7])
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.attention import attention
from labsupport.multihead import merge_heads, split_heads
from labsupport.sampling import sample_next

KV = tuple[torch.Tensor, torch.Tensor]  # (keys, values), each (B, n_head, S, head_size)


@dataclass
class GPTConfig:
    """Sizes of a GPT. Hugging Face's ``GPT2Config`` names: n_positions = block_size, n_inner."""

    vocab_size: int = 256
    block_size: int = 128  # longest context (number of learned positions)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_inner: int | None = None  # MLP width; None means 4 · n_embd
    dropout: float = 0.0  # on embeddings, attention weights and each residual branch
    layer_norm_eps: float = 1e-5
    fast: bool = False  # torch's fused attention kernel instead of the teaching path

    @property
    def mlp_width(self) -> int:
        return self.n_inner or 4 * self.n_embd


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position i sees positions ≤ i (and the cached past)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} is not a multiple of n_head={config.n_head}")
        self.config = config
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # queries, keys, values side by side
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """``x (B, T, n_embd)`` → ``(y (B, T, n_embd), (k, v))`` with k, v ``(B, nh, P+T, hs)``."""
        H = self.config.n_head
        q, k, v = self.c_attn(x).split(self.config.n_embd, dim=-1)  # 3 × (B, T, n_embd)
        q, k, v = split_heads(q, H), split_heads(k, H), split_heads(v, H)  # (B, nh, T, hs)
        if past is not None:
            k = torch.cat([past[0], k], dim=-2)  # (B, nh, P+T, hs)
            v = torch.cat([past[1], v], dim=-2)
        T, S = q.size(-2), k.size(-2)
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)  # (T, S): query i sees keys ≤ P+i
        p = self.config.dropout if self.training else 0.0
        if self.config.fast:  # is_causal aligns the mask top-left: right only without a cache (T == S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if T == S else mask,
                                               dropout_p=p, is_causal=T == S)  # (B, nh, T, hs)
        else:
            y, _ = attention(q, k, v, mask, p, self.training)  # (B, nh, T, hs)
        return self.resid_dropout(self.c_proj(merge_heads(y))), (k, v)  # (B, T, n_embd)


class MLP(nn.Module):
    """Position-wise feed-forward network ``c_proj(gelu_tanh(c_fc(x)))``, n_embd → n_inner → n_embd."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width)
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))  # (B, T, n_embd)


class Block(nn.Module):
    """A pre-LN decoder block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present  # (B, T, n_embd)


class GPT(nn.Module):
    """Token and position embeddings, ``n_layer`` blocks, a final LayerNorm, a head tied to ``wte``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one matrix, two roles
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/√(2·n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, past: Sequence[KV] | None = None) -> tuple[torch.Tensor, list[KV]]:
        """``idx (B, T)`` token ids → ``(logits (B, T, vocab), present)``, one ``(k, v)`` per layer.

        With ``past`` (the ``present`` of an earlier call), ``idx`` continues that sequence: its
        positions start at the number ``P`` of cached positions. ``P + T ≤ block_size``.
        """
        P = 0 if past is None else past[0][0].size(-2)
        T = idx.size(1)
        if P + T > self.config.block_size:
            raise ValueError(f"{P + T} positions exceed block_size={self.config.block_size}")
        pos = torch.arange(P, P + T, device=idx.device)  # (T,): absolute positions
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, n_embd)
        present = []
        for i, block in enumerate(self.transformer.h):
            x, kv = block(x, None if past is None else past[i])
            present.append(kv)
        return self.lm_head(self.transformer.ln_f(x)), present  # (B, T, vocab)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Next-token cross-entropy (nats): ``logits[:, t]`` predicts ``labels[:, t+1]``.

    ``labels (B, T)`` are the input ids themselves (Hugging Face's convention), with ``ignore_index``
    where no loss is wanted (padding); the mean runs over the predicted positions that count.
    """
    shifted = logits[:, :-1].flatten(0, 1)  # (B·(T−1), V): predictions for positions 1 … T−1
    return F.cross_entropy(shifted, labels[:, 1:].flatten(), ignore_index=ignore_index)


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx (B, T)``; returns ``(B, T + max_new_tokens)``.

    With ``use_cache`` each step feeds only the newest token and the keys/values of the others;
    without, each step re-reads the whole (cropped to ``block_size``) context. Both give the same
    tokens. When the context outgrows ``block_size`` the cache restarts on the cropped window.
    """
    block_size = model.config.block_size
    past, fresh = None, idx  # fresh: the tokens the model has not read yet
    for _ in range(max_new_tokens):
        if not use_cache or past is None or past[0][0].size(-2) + 1 > block_size:
            past, fresh = None, idx[:, -block_size:]
        logits, present = model(fresh, past)  # (B, T', V)
        past = present if use_cache else None
        nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator)  # (B,)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
        fresh = nxt[:, None]  # (B, 1)
    return idx


# ---------------------------------------------------------------- Hugging Face GPT-2
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_config(config: GPTConfig) -> Any:
    """The ``transformers.GPT2Config`` of the same model (eager attention, GPT-2's tanh GELU)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                      n_layer=config.n_layer, n_head=config.n_head, n_inner=config.n_inner,
                      activation_function="gelu_new", resid_pdrop=config.dropout, embd_pdrop=config.dropout,
                      attn_pdrop=config.dropout, layer_norm_epsilon=config.layer_norm_eps,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation="eager")


def state_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict → ``GPT2LMHeadModel``'s: the same names, Conv1D weights transposed."""
    return {k: v.t().contiguous() if k.endswith(_CONV1D) else v for k, v in state.items()}


def state_from_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``GPT2LMHeadModel``'s state dict → ours (the transpose is its own inverse)."""
    return state_to_hf(state)


def to_hf(model: GPT) -> Any:
    """A ``transformers.GPT2LMHeadModel`` with ``model``'s weights (same logits, in its eval mode)."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(hf_config(model.config)).to(next(model.parameters()).dtype)
    hf.load_state_dict(state_to_hf(model.state_dict()))
    return hf.train(model.training)


def from_hf(hf_model: Any) -> GPT:
    """Our :class:`GPT` with the weights of a ``transformers.GPT2LMHeadModel``."""
    c = hf_model.config
    model = GPT(GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                          n_embd=c.n_embd, n_inner=c.n_inner, dropout=c.resid_pdrop,
                          layer_norm_eps=c.layer_norm_epsilon))
    model.load_state_dict(state_from_hf(hf_model.state_dict()))
    return model.to(hf_model.dtype)


# ---------------------------------------------------------------- the course's checkpoint
class ByteTokenizer:
    """Text ↔ ids as UTF-8 bytes (vocabulary 256): any text encodes, Shakespeare's ASCII one id per character.

    >>> tok = ByteTokenizer()
    >>> tok.encode("Hi!")
    [72, 105, 33]
    >>> tok.decode([72, 105, 33])
    'Hi!'
    """

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


@dataclass
class PretrainConfig:
    """The recipe of the ``gpt`` checkpoint (AdamW, linear warm-up, cosine decay, CPU, one thread)."""

    model: GPTConfig = dataclasses.field(default_factory=lambda: GPTConfig(
        vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=96, fast=True))
    steps: int = 800
    batch_size: int = 16
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    eval_batches: int = 20


def shakespeare_ids(tokenizer: ByteTokenizer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiny Shakespeare as ids: the 90 % training and 10 % validation parts (int64 tensors)."""
    from labsupport.data import shakespeare_split

    tok = tokenizer or ByteTokenizer()
    return tuple(torch.tensor(tok.encode(part), dtype=torch.long) for part in shakespeare_split())


@torch.no_grad()
def evaluate(model: nn.Module, data: torch.Tensor, batches: int = 20, batch_size: int = 32,
             block_size: int | None = None, seed: int = 1234) -> float:
    """Mean next-token loss (nats) of ``model`` over ``batches`` fixed random windows of ``data``."""
    from labsupport.train import random_batches

    was_training = model.training
    model.eval()
    T = block_size or model.config.block_size
    device = next(model.parameters()).device
    stream = random_batches(data, T, batch_size, torch.Generator().manual_seed(seed))
    losses = []
    for _ in range(batches):
        x, y = next(stream)
        logits, _ = model(x.to(device))
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten()).item())
    model.train(was_training)
    return sum(losses) / len(losses)


def _lr(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def pretrain(cfg: PretrainConfig, seed: int = 0, progress: bool = True) -> tuple[GPT, dict[str, Any]]:
    """Train a :class:`GPT` on Tiny Shakespeare bytes on the CPU, deterministically from ``seed``."""
    from tqdm.auto import tqdm

    from labsupport.train import random_batches

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and fastest for a model this small
    torch.manual_seed(seed)
    model = GPT(cfg.model)
    train, val = shakespeare_ids()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    stream = random_batches(train, cfg.model.block_size, cfg.batch_size, torch.Generator().manual_seed(seed))
    t0, losses, curve = time.perf_counter(), [], []
    bar = tqdm(range(cfg.steps), desc="pre-training gpt", disable=not progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        x, y = next(stream)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % 200 == 0 or step + 1 == cfg.steps:
            curve.append((step + 1, round(evaluate(model, val, cfg.eval_batches, cfg.batch_size), 4)))
    model.eval()
    summary = {"seed": seed, "steps": cfg.steps, "seconds": round(time.perf_counter() - t0, 1),
               "train_loss_last100": round(sum(losses[-100:]) / len(losses[-100:]), 4),
               "val_loss": curve[-1][1], "val_curve": curve, "train_tokens": len(train), "val_tokens": len(val),
               "recipe": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "model"}}
    torch.set_num_threads(threads)
    return model, summary


def model_card(meta: dict[str, Any]) -> str:
    """The model card (``gpt.md``) of a checkpoint from its metadata (``gpt.json``)."""
    c, t = meta["config"], meta["training"]
    r, loss = t["recipe"], t["val_loss"]
    n_params = meta["parameters"]
    return f"""# `gpt` — the course's tiny GPT (chapter 6)

A {n_params:,}-parameter GPT-2-style language model over **bytes** (vocabulary 256; Tiny Shakespeare
is ASCII, so one id per character), trained by the course itself. Loaded by chapters 6 (GPT),
10 (LoRA), 11 (RLHF) and 12 (distillation) through `labsupport.gpt.load_pretrained()`.

- **Architecture**: {c["n_layer"]} pre-LN blocks, {c["n_head"]} heads, n_embd {c["n_embd"]},
  MLP {c["n_inner"] or 4 * c["n_embd"]}, context {c["block_size"]} bytes, learned positions,
  tanh GELU, output head tied to the token embedding.
- **Data**: Tiny Shakespeare (public domain): the first 90 % for training ({t["train_tokens"]:,} bytes),
  the last 10 % for validation ({t["val_tokens"]:,} bytes).
- **Recipe**: AdamW (betas 0.9, 0.95; weight decay {r["weight_decay"]} on matrices), learning rate
  {r["lr"]} with {r["warmup"]} warm-up steps and cosine decay to {r["min_lr"]}, {t["steps"]} steps of
  {r["batch_size"]} × {c["block_size"]} bytes, gradient clipping 1.0, seed {t["seed"]}, CPU, one thread.
- **Result**: validation loss **{loss:.3f} nats/byte** = {loss / math.log(2):.2f} bits per byte
  (perplexity {math.exp(loss):.2f}; uniform: 8 bits, perplexity 256); training loss over the last
  100 steps {t["train_loss_last100"]:.3f}; {t["seconds"]:.0f} s of training on the build machine
  (two CPU cores shared with other jobs: an idle machine is faster).
- **Validation curve** (step, loss): {t["val_curve"]}.
- **Licence**: weights MIT, like the course code; data public domain.

Rebuild (deterministic on the CPU, about {t["seconds"] / 60:.0f} minutes on the build machine):
`python -m labsupport.pretrain gpt`. The
weights are `gpt.safetensors` (GPT-2's parameter names; the tied head is stored once, as
`transformer.wte.weight`; `labsupport.gpt.to_hf` gives a `transformers.GPT2LMHeadModel`); the
configuration and the training summary are in `gpt.json`.

Limitations: a tiny model trained for a quarter of an hour on a CPU. It has learned the look of a
play (speaker names in capitals, line breaks, common words, some grammar) but not meaning; samples are English-like
words in Shakespearean layout.
"""


def pretrain_checkpoint(seed: int = 0) -> Path:
    """Train the course's ``gpt`` checkpoint and store it (weights, config, model card, checksums)."""
    from labsupport.checkpoints import save

    cfg = PretrainConfig()
    model, summary = pretrain(cfg, seed)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied: stored once
    meta = {"config": dataclasses.asdict(cfg.model), "tokenizer": "bytes (UTF-8)", "training": summary,
            "parameters": sum(p.numel() for p in model.parameters())}
    return save("gpt", state, meta, model_card(meta))


def load_pretrained(device: torch.device | str | None = None) -> tuple[GPT, ByteTokenizer]:
    """The course's pre-trained GPT (eval mode, verified checksum) and its tokenizer.

    >>> model, tok = load_pretrained()
    >>> ids = generate(model, torch.tensor([tok.encode("ROMEO:")]), 40, temperature=0.8,
    ...                generator=torch.Generator().manual_seed(0))
    >>> ids.shape, type(tok.decode(ids[0]))
    (torch.Size([1, 46]), <class 'str'>)
    """
    from labsupport.checkpoints import load

    state, meta = load("gpt")
    model = GPT(GPTConfig(**meta["config"]))
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    return model.to(device or "cpu").eval(), ByteTokenizer()
