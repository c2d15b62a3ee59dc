"""Blockwise attention (online softmax) against the naive path and torch's fused kernel (not a test).

For one batch of (1 sequence × 4 heads × d_head 64), forward only (inference), at several lengths:

- **peak memory**, blockwise ÷ naive: :func:`labsupport.efficient.blockwise_attention` (blocks of 128)
  against :func:`labsupport.attention.attention`, which materialises the (L, L) scores and weights.
  Measured: on CUDA with ``torch.cuda.max_memory_allocated``, on the CPU with
  :class:`labsupport.efficient.measure.PeakMemory` (live tensor bytes, op by op; torch's CPU allocator
  keeps no statistics). Blockwise is O(L), naive O(L²): the ratio halves each time L doubles.
- **time**, blockwise ÷ ``torch.nn.functional.scaled_dot_product_attention``: the same tiling idea in a
  Python loop against a fused C++/CUDA kernel — slower, by a factor that says what fusing is worth.

    python benchmarks/blockwise_attention.py            # L = 256 … 4096 (about a minute on 2 CPU cores)
    python benchmarks/blockwise_attention.py --quick    # L = 256, 512, 1024
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from labsupport import get_device, seed_everything
from labsupport.attention import attention
from labsupport.efficient import blockwise_attention
from labsupport.efficient.measure import peak_memory, seconds

H, D, BLOCK = 4, 64, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three short lengths")
    args = parser.parse_args()
    device = get_device()
    seed_everything(0)
    lengths = [256, 512, 1024] if args.quick else [256, 512, 1024, 2048, 4096]
    paths = {"naive": lambda q, k, v: attention(q, k, v)[0],
             "blockwise": lambda q, k, v: blockwise_attention(q, k, v, block_q=BLOCK, block_k=BLOCK),
             "sdpa": F.scaled_dot_product_attention}
    print(f"device {device}, {torch.get_num_threads()} threads; 1 × {H} heads × d_head {D}, blocks of {BLOCK}, "
          "forward only")
    print(f"{'L':>6} {'naive MiB':>10} {'blockwise MiB':>14} {'memory ratio':>13}   "
          f"{'sdpa ms':>8} {'blockwise ms':>13} {'time ratio':>11}")
    for n in lengths:
        q, k, v = (torch.randn(1, H, n, D, device=device) for _ in range(3))
        mem = {name: peak_memory(paths[name], q, k, v) / 2**20 for name in ("naive", "blockwise")}
        ms = {name: seconds(paths[name], q, k, v) * 1e3 for name in ("sdpa", "blockwise")}
        print(f"{n:>6} {mem['naive']:>10.2f} {mem['blockwise']:>14.2f} {mem['blockwise'] / mem['naive']:>13.3f}   "
              f"{ms['sdpa']:>8.2f} {ms['blockwise']:>13.2f} {ms['blockwise'] / ms['sdpa']:>11.2f}")
    print("memory ratio = blockwise peak / naive peak (O(L) / O(L²): halves per doubling of L); "
          "time ratio = blockwise / torch SDPA")


if __name__ == "__main__":
    main()
