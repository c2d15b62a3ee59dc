"""Efficient attention (chapter 8): exact attention in O(n) memory, and three ways to attend to less.

- :mod:`labsupport.efficient.blockwise` — exact attention block by block with the online softmax
  (the tiling of FlashAttention, in plain torch).
- :mod:`labsupport.efficient.linformer` — Linformer: keys and values projected along the sequence
  to ``k`` rows, O(n·k).
- :mod:`labsupport.efficient.sparse`    — the Sparse Transformer's strided and fixed masks and a
  sliding window.
- :mod:`labsupport.efficient.memory`    — Transformer-XL's segment memory.
- :mod:`labsupport.efficient.measure`   — time and peak memory of a call, and the chapter's small
  retrieval task for the accuracy cost of Linformer's ``k``.
"""

from labsupport.efficient.blockwise import blockwise_attention
from labsupport.efficient.linformer import linformer_attention
from labsupport.efficient.memory import XLConfig, XLMemoryAttention
from labsupport.efficient.sparse import fixed_mask, sliding_window_mask, strided_mask

__all__ = ["XLConfig", "XLMemoryAttention", "blockwise_attention", "fixed_mask", "linformer_attention",
           "sliding_window_mask", "strided_mask"]
