"""Measuring attention: time and peak memory of one call, and the accuracy cost of Linformer's k.

**Memory on the CPU.** torch's CPU allocator keeps no statistics and ``tracemalloc`` does not see it,
so :class:`PeakMemory` counts tensors itself: a ``TorchDispatchMode`` sees every operation, adds the
bytes of each new storage an operation returns and subtracts them when the storage is freed. Its
``peak`` is the largest total of live tensor bytes created during the ``with`` block (inputs that
existed before are not counted); ``largest`` is the biggest single tensor. On a GPU,
:func:`peak_memory` uses ``torch.cuda.max_memory_allocated`` instead.

**The retrieval task.** :func:`reversal_batches` gives sequences of ``n`` random tokens whose target
at position ``i`` is the token at position ``n − 1 − i``: every query must pick *one* position out of
``n``, which full attention can learn and attention through ``k < n`` mixtures cannot do exactly.
:func:`linformer_ablation` trains :class:`RetrievalModel` (token and position embeddings, one
attention layer, a read-out) with full attention and with Linformer for several ``k``.

>>> with PeakMemory() as pm:
...     x = torch.ones(256, 256)   # 256 KiB
...     y = x @ x                  # another 256 KiB
>>> pm.peak, pm.largest
(524288, 262144)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from labsupport.attention import fast_attention
from labsupport.train import TrainConfig, fit


class PeakMemory(TorchDispatchMode):
    """Peak bytes of live tensors created inside the ``with`` block (``.peak``) and the largest one."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = self.largest = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self.live:
                    self.live[key] = size
                    self.current += size
                    self.peak, self.largest = max(self.peak, self.current), max(self.largest, size)
                    weakref.finalize(storage, self._free, key)
        return out


def peak_memory(fn: Callable[..., Any], *args: Any) -> int:
    """Peak bytes allocated by ``fn(*args)`` under ``torch.no_grad()`` (inputs excluded).

    On CUDA, ``fn`` runs once before the measured run: the first call of a kernel allocates
    workspaces that stay (cuBLAS's, some MiB) and would count as the function's own memory."""
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
    with torch.no_grad():
        if device.type == "cuda":
            fn(*args)  # warm-up
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            fn(*args)
            torch.cuda.synchronize(device)
            return torch.cuda.max_memory_allocated(device) - base
        with PeakMemory() as pm:
            fn(*args)
        return pm.peak


def seconds(fn: Callable[..., Any], *args: Any, repeat: int = 3) -> float:
    """Best wall-clock time of ``fn(*args)`` under ``torch.no_grad()`` over ``repeat`` runs, after a warm-up."""
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = float("inf")
    with torch.no_grad():
        for run in range(repeat + 1):
            sync()
            start = time.perf_counter()
            fn(*args)
            sync()
            if run:  # the first run is a warm-up
                best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- the retrieval task
def reversal_batches(batch_size: int, n: int, vocab: int, generator: torch.Generator) -> Iterator[tuple]:
    """Endless ``(tokens (B, n), targets (B, n))`` with ``targets[:, i] = tokens[:, n − 1 − i]``."""
    while True:
        tokens = torch.randint(vocab, (batch_size, n), generator=generator)
        yield tokens, tokens.flip(1)


class RetrievalModel(nn.Module):
    """Token + position embeddings, one single-head attention layer (full or Linformer), a read-out.

    ``linformer(q, k, v, E, F)`` is used when ``k_rows`` is set (E, F are learned ``(k_rows, n)``
    parameters); otherwise ``full(q, k, v)``.
    """

    def __init__(self, n: int, vocab: int, d: int = 32, k_rows: int | None = None,
                 linformer: Callable[..., torch.Tensor] | None = None,
                 full: Callable[..., torch.Tensor] = fast_attention):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(n, d)
        self.q, self.k, self.v = (nn.Linear(d, d) for _ in range(3))
        self.head = nn.Linear(d, vocab)
        self.full, self.linformer = full, linformer
        if k_rows is not None:
            self.E = nn.Parameter(torch.randn(k_rows, n) / n ** 0.5)  # (k, n): mixes positions
            self.F = nn.Parameter(torch.randn(k_rows, n) / n ** 0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok(tokens) + self.pos(torch.arange(tokens.size(1), device=tokens.device))  # (B, n, d)
        q, k, v = self.q(x), self.k(x), self.v(x)  # (B, n, d) each
        if hasattr(self, "E"):
            out = self.linformer(q, k, v, self.E, self.F)  # (B, n, d) through (B, k, d) keys/values
        else:
            out = self.full(q, k, v)  # (B, n, d)
        return self.head(x + out)  # (B, n, vocab)


def linformer_ablation(linformer: Callable[..., torch.Tensor], ks: Sequence[int], n: int = 32, vocab: int = 16,
                       d: int = 32, steps: int = 300, batch_size: int = 64, lr: float = 1e-2, seed: int = 0,
                       device: torch.device | None = None,
                       full: Callable[..., torch.Tensor] = fast_attention) -> dict[str, float]:
    """Held-out accuracy on the reversal task: ``{"full": …, "k=4": …, …}`` (one model per entry)."""
    device = device or torch.device("cpu")
    test_x, test_y = next(reversal_batches(1000, n, vocab, torch.Generator().manual_seed(seed + 1)))
    results = {}
    for k_rows in (None, *ks):
        torch.manual_seed(seed)
        model = RetrievalModel(n, vocab, d, k_rows, linformer, full)
        fit(model, reversal_batches(batch_size, n, vocab, torch.Generator().manual_seed(seed)),
            lambda m, b: nn.functional.cross_entropy(m(b[0]).flatten(0, 1), b[1].flatten()),
            TrainConfig(steps=steps, lr=lr, progress=False), device=device)
        model.eval()
        with torch.no_grad():
            pred = model(test_x.to(device)).argmax(-1).cpu()
        results["full" if k_rows is None else f"k={k_rows}"] = (pred == test_y).float().mean().item()
    return results
