"""Attention speed and memory: teaching path vs fast path vs torch (not a test).

Forward + backward time at several sequence lengths for (batch 4 × 8 heads × d_head 64):

- ``teaching``  — :func:`labsupport.attention.attention`, which materialises the (L, L) weights;
- ``fast``      — :func:`labsupport.attention.fast_attention` (torch's fused kernel underneath);
- ``torch SDPA`` — ``torch.nn.functional.scaled_dot_product_attention``, the reference (ratio 1.00);
- ``nn.MHA``    — ``torch.nn.MultiheadAttention(512, 8)`` with ``need_weights=False``; it also runs
  the four 512×512 projections, so it is slower by their cost (listed for scale, not like for like).

Memory: on CUDA the peak is measured (``torch.cuda.max_memory_allocated``, above the inputs). On the
CPU torch's allocator keeps no statistics (and tracemalloc does not see torch's buffers), so the
column reports the bytes each path materialises, computed analytically (:func:`analytic_bytes`): the
teaching path holds three B·H·L·L float tensors at its peak; the fused kernel holds no (L, L)
matrix, only O(B·H·L·d) outputs and a log-sum-exp per row.

    python benchmarks/attention_speed.py            # 128, 512, 2048 (a few minutes on 2 CPU cores)
    python benchmarks/attention_speed.py --quick    # 128, 512, two repetitions (smoke run)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from labsupport import get_device, seed_everything
from labsupport.attention import attention, fast_attention

B, H, D = 4, 8, 64


def _paths(device: torch.device) -> dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]]:
    mha = torch.nn.MultiheadAttention(H * D, H, batch_first=True, device=device)

    def mha_path(q, k, v):
        x = q.transpose(1, 2).flatten(2)  # (B, L, H·D): the same numbers as one (B, L, E) input
        return mha(x, x, x, need_weights=False)[0]

    return {"teaching": lambda q, k, v: attention(q, k, v)[0], "fast": fast_attention,
            "torch SDPA": F.scaled_dot_product_attention, "nn.MHA": mha_path}


def _step(fn, q, k, v) -> None:
    out = fn(q, k, v)
    out.backward(torch.ones_like(out))
    q.grad = k.grad = v.grad = None


def _timed_step(fn, q, k, v, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    _step(fn, q, k, v)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _cuda_peak(fn, q, k, v) -> int:
    """Peak CUDA bytes allocated during one forward+backward, above what was allocated before."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    _step(fn, q, k, v)
    return torch.cuda.max_memory_allocated() - base


def measure(paths: dict, length: int, device: torch.device, reps: int) -> dict[str, tuple[float, int | None]]:
    """Median seconds of one forward+backward per path, and its CUDA peak bytes (None on the CPU).

    The paths are timed in turn within each repetition (round robin, starting one path later each
    round), so a slow patch of a shared machine slows every path alike instead of biasing one.
    """
    q, k, v = (torch.randn(B, H, length, D, device=device, requires_grad=True) for _ in range(3))
    for fn in paths.values():
        _step(fn, q, k, v)  # warm-up: kernel selection, allocator caches, thread pools
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:  # rotate the order each round
            times[name].append(_timed_step(paths[name], q, k, v, device))
    return {name: (statistics.median(ts), _cuda_peak(paths[name], q, k, v) if device.type == "cuda" else None)
            for name, ts in times.items()}


def analytic_bytes(name: str, length: int) -> int:
    """Bytes a path materialises beyond its inputs at the peak of forward+backward (float32, analytic).

    Every path stores its output and the input gradients (4·B·H·L·D floats) and the fused kernel a
    log-sum-exp per row (B·H·L); the teaching path adds three (L, L) matrices per head (saved
    weights, their gradient, the score gradient); nn.MHA adds its projections' activations
    (q, k, v, attention output, output: 5·B·L·H·D).
    """
    base = 4 * (4 * B * H * length * D + B * H * length)
    extra = {"teaching": 3 * B * H * length * length * 4, "nn.MHA": 5 * B * length * H * D * 4}
    return base + extra.get(name, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lengths 128 and 512, two repetitions")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths (default 128 512 2048)")
    parser.add_argument("--reps", type=int, help="timed repetitions per path (default 5; --quick: 2)")
    args = parser.parse_args(argv)
    lengths = args.lengths or ([128, 512] if args.quick else [128, 512, 2048])
    reps = args.reps or (2 if args.quick else 5)
    device = get_device()
    seed_everything(0)
    torch.set_grad_enabled(True)
    paths = _paths(device)
    kind = "measured peak, CUDA" if device.type == "cuda" else "analytic, see docstring"
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"B={B} H={H} d={D}, forward+backward, median of {reps} interleaved runs")
    print(f"{'L':>5}  {'path':<11} {'time (ms)':>10} {'× SDPA':>7}  {'memory (MiB)':>12} {'× SDPA':>7}  [{kind}]")
    for length in lengths:
        results = measure(paths, length, device, reps)
        ref_t, ref_m = results["torch SDPA"]
        for name, (t, peak) in results.items():
            mem = peak if peak is not None else analytic_bytes(name, length)
            ref = ref_m if ref_m is not None else analytic_bytes("torch SDPA", length)
            print(f"{length:>5}  {name:<11} {t * 1e3:>10.1f} {t / ref_t:>7.2f}  {mem / 2**20:>12.1f} {mem / ref:7.2f}")


if __name__ == "__main__":
    main()
