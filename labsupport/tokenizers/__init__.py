"""Reference tokenizers (chapter 1), for the book and for later labs.

- :mod:`~labsupport.tokenizers.bytelevel` — GPT-2's pre-tokenisation regex, the byte↔unicode table,
  :class:`BPEVocab` (merges + byte ids + special tokens) and :func:`load_gpt2`.
- :mod:`~labsupport.tokenizers.bpe` — byte-level BPE: pair counting, merging, training (with
  incremental pair counts), encoding and decoding.
- :mod:`~labsupport.tokenizers.wordpiece` — WordPiece greedy longest-match-first encoding.
"""

from labsupport.tokenizers.bpe import count_pairs, decode, encode, merge, train_bpe
from labsupport.tokenizers.bytelevel import GPT2_SPLIT_PATTERN, BPEVocab, bytes_to_unicode, load_gpt2
from labsupport.tokenizers.wordpiece import wordpiece_encode

__all__ = [
    "GPT2_SPLIT_PATTERN", "BPEVocab", "bytes_to_unicode", "load_gpt2",
    "count_pairs", "merge", "train_bpe", "encode", "decode", "wordpiece_encode",
]
