"""Parameter-efficient fine-tuning (chapter 10): LoRA, adapter checkpoints and soft prompts, minGPT-style.

**LoRA** (Hu et al., 2022) freezes a pre-trained weight ``W₀ (out, in)`` and learns a low-rank update
``ΔW = B·A`` with ``A (r, in)``, ``B (out, r)`` and ``r ≪ min(in, out)``::

    h = W₀x + b + (α/r) · B·A·dropout(x)           # (…, out); dropout only on the LoRA path's input

``A`` starts like an ``nn.Linear`` weight (Kaiming-uniform with ``a=√5``: uniform in ``±1/√in``, as
``peft`` does), ``B`` at zero, so training starts exactly at the pre-trained model. The scaling ``α/r``
keeps the size of the update roughly independent of ``r``. :meth:`LoRALinear.merge` adds
``(α/r)·B·A`` into ``W₀`` (no extra cost at inference); :meth:`LoRALinear.unmerge` takes it out again.

Parameter names: a :class:`LoRALinear` holds the frozen layer as ``base`` and the factors as the
parameters ``lora_A`` and ``lora_B`` (the shapes of ``peft``'s ``lora_A.weight`` / ``lora_B.weight``).
:func:`inject_lora` swaps the ``nn.Linear`` modules named in ``target_modules`` (``peft``'s suffix
rule) for :class:`LoRALinear` and freezes everything else; :func:`adapter_state_dict` keeps only the
LoRA factors (the whole checkpoint of a fine-tuned task), :func:`load_adapter` puts them back.

**Prompt tuning** (Lester et al., 2021) instead freezes the whole model and learns ``n`` *virtual
token* embeddings prepended to the input (:class:`SoftPrompt`).

>>> torch.manual_seed(0)
<torch._C.Generator object at ...>
>>> layer = LoRALinear(nn.Linear(6, 5), r=2, alpha=4)
>>> x = torch.randn(3, 6)
>>> torch.equal(layer(x), layer.base(x))  # B = 0: the pre-trained layer, exactly
True
>>> tuple(layer.lora_A.shape), tuple(layer.lora_B.shape), layer.scaling
((2, 6), (5, 2), 2.0)
>>> with torch.no_grad():
...     _ = layer.lora_B.normal_()
>>> before = layer(x)
>>> layer.merge(); torch.allclose(layer(x), before, atol=1e-6), layer.merged
(True, True)
>>> layer.unmerge(); torch.allclose(layer(x), before, atol=1e-6), layer.merged
(True, False)
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.gpt import GPT, ByteTokenizer


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(α/r)·B·A`` (``merged`` says whether
    the update currently sits inside ``base.weight``)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"rank r={r} must be at least 1")
        self.base = base
        self.base.requires_grad_(False)  # W₀ and b stay as pre-trained
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype,
                                               device=base.weight.device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype,
                                               device=base.weight.device))  # (out, r): ΔW = 0 at the start
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # uniform in ±1/√in, like nn.Linear and peft
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """``(α/r)·B·A``, shape ``(out, in)`` like ``base.weight``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in)`` → ``(…, out)``."""
        if self.merged:  # the update already sits in base.weight
            return self.base(x)
        return self.base(x) + self.scaling * (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t())  # (…, out)

    @torch.no_grad()
    def merge(self) -> None:
        """``W₀ ← W₀ + (α/r)·B·A``: one plain linear layer at inference (nothing if already merged)."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (nothing if not merged)."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def matches(name: str, target_modules: list[str]) -> bool:
    """``peft``'s rule: a module matches a target when its full name is the target or ends with ``"." + target``.

    >>> names = ("transformer.h.0.attn.c_attn", "c_attn", "h.0.c_attn_x", "transformer.h.1.mlp.c_fc", "h.11.mlp.c_fc")
    >>> [matches(n, ["c_attn", "h.1.mlp.c_fc"]) for n in names]
    [True, True, False, True, False]
    """
    return any(name == t or name.endswith("." + t) for t in target_modules)


def inject_lora(model: nn.Module, target_modules: list[str], r: int, alpha: float,
                dropout: float = 0.0) -> nn.Module:
    """Freeze every parameter of ``model``, then replace each ``nn.Linear`` whose name matches
    ``target_modules`` (:func:`matches`) by a :class:`LoRALinear`; in place, returns ``model``.

    >>> from labsupport.gpt import GPTConfig
    >>> model = inject_lora(GPT(GPTConfig(n_layer=2, n_embd=32)), ["c_attn"], r=4, alpha=8)
    >>> type(model.transformer.h[1].attn.c_attn).__name__, count_parameters(model)
    ('LoRALinear', (1024, 38784))
    """
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and matches(n, target_modules)]
    if not names:
        raise ValueError(f"no nn.Linear module matches target_modules={target_modules}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters (a tied matrix counts once), like ``peft``'s
    ``get_nb_trainable_parameters``."""
    params = list(model.parameters())  # distinct tensors
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA factors: ``{"….lora_A": (r, in), "….lora_B": (out, r)}`` under the model's own names."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith((".lora_A", ".lora_B"))}


@torch.no_grad()
def load_adapter(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy an :func:`adapter_state_dict` into a model with the same LoRA layers (base weights untouched)."""
    own = {k: p for k, p in model.named_parameters() if k.endswith((".lora_A", ".lora_B"))}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"adapter does not fit the model: missing {missing}, unexpected {unexpected}")
    for k, p in own.items():
        p.copy_(state[k])


class SoftPrompt(nn.Module):
    """Prompt tuning: ``n`` trainable virtual-token embeddings in front of a frozen :class:`GPT`.

    ``prompt (n, n_embd)`` starts as a copy of the embeddings of ``init_ids``; the virtual tokens take
    positions ``0 … n−1`` and the real tokens ``n … n+T−1``. ``forward(idx)`` returns the logits of
    the real tokens only, ``(B, T, vocab)``.

    >>> from labsupport.gpt import GPTConfig
    >>> sp = SoftPrompt(GPT(GPTConfig(n_layer=1, n_embd=32)), init_ids=[65, 66, 67])
    >>> tuple(sp(torch.tensor([[1, 2, 3, 4]])).shape), count_parameters(sp)[0]
    ((1, 4, 256), 96)
    """

    def __init__(self, model: GPT, init_ids: list[int]):
        super().__init__()
        self.model = model.requires_grad_(False)
        wte = model.transformer.wte.weight
        self.prompt = nn.Parameter(wte[torch.as_tensor(init_ids, device=wte.device)].detach().clone())  # (n, d)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = self.model.transformer
        B, T = idx.shape
        n = self.prompt.size(0)
        x = torch.cat([self.prompt.expand(B, -1, -1), t.wte(idx)], dim=1)  # (B, n+T, n_embd)
        pos = torch.arange(n + T, device=idx.device)  # (n+T,): virtual tokens first
        x = t.drop(x + t.wpe(pos))
        for block in t.h:
            x, _ = block(x)
        return self.model.lm_head(t.ln_f(x))[:, n:]  # (B, T, vocab): the real tokens' logits


# ---------------------------------------------------------------- the experiment: a new domain
def review_ids(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Movie-review snippets (``labsupport.data.sentence_polarity``) shuffled, one per line, as UTF-8 bytes:
    the 90 % training and 10 % validation parts (int64). A new domain for the Shakespeare GPT."""
    from labsupport.data import sentence_polarity

    texts, _ = sentence_polarity()
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    cut = len(texts) * 9 // 10
    tok = ByteTokenizer()
    return tuple(torch.tensor(tok.encode("\n".join(part)), dtype=torch.long) for part in (texts[:cut], texts[cut:]))


def checkpoint_bytes(state: dict[str, torch.Tensor]) -> int:
    """Size of ``state`` saved as a safetensors file (bytes); a tied matrix (the GPT's head) is stored once."""
    from safetensors.torch import save

    seen, unique = set(), {}
    for k, v in state.items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            unique[k] = v.detach().contiguous()
    return len(save(unique))


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[0] if isinstance(out, tuple) else out  # (B, T, vocab): a GPT returns (logits, present)


@torch.no_grad()
def val_loss(model: nn.Module, data: torch.Tensor, batches: int = 10, batch_size: int = 16, block_size: int = 64,
             seed: int = 1234) -> float:
    """Mean next-byte loss (nats) over fixed random windows of ``data``; for a GPT or a :class:`SoftPrompt`."""
    from labsupport.train import random_batches

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stream = random_batches(data, block_size, batch_size, torch.Generator().manual_seed(seed))
    losses = []
    for _ in range(batches):
        x, y = next(stream)
        losses.append(F.cross_entropy(_logits(model, x.to(device)).flatten(0, 1), y.to(device).flatten()).item())
    model.train(was_training)
    return sum(losses) / len(losses)


def finetune(model: nn.Module, train_ids: torch.Tensor, val_ids: torch.Tensor, steps: int, lr: float,
             batch_size: int = 8, block_size: int = 64, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """AdamW on the parameters that require grad; next-byte loss on random windows of ``train_ids``.

    Returns the training losses, the validation loss, the wall time, and the memory the training
    state really occupies — weights + gradients + Adam's two moments, summed over the tensors that
    exist after training (activations, the same for both methods, are not counted) — plus
    ``torch.cuda.max_memory_allocated`` on a GPU.
    """
    from tqdm.auto import tqdm

    from labsupport.train import random_batches

    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    batches = random_batches(train_ids, block_size, batch_size, torch.Generator().manual_seed(seed))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in (bar := tqdm(range(steps), desc="fine-tuning", disable=not progress)):
        x, y = (t.to(device) for t in next(batches))
        loss = F.cross_entropy(_logits(model, x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - start
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    nbytes += sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    nbytes += sum(t.numel() * t.element_size() for st in opt.state.values() for t in st.values()
                  if torch.is_tensor(t) and t.dim() > 0)
    return {"losses": losses, "val_loss": val_loss(model, val_ids, block_size=block_size),
            "seconds": seconds, "state_mb": nbytes / 2**20,
            "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}
