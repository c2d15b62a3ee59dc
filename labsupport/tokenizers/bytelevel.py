"""Byte-level vocabularies: GPT-2's pre-tokenisation and the :class:`BPEVocab` container.

A byte-level BPE vocabulary has three parts:

- the 256 *byte tokens* (every possible byte, so no text is ever out of vocabulary);
- the *merges*, in the order they were learned: ``(left_id, right_id) -> new_id``. The new id
  grows with the order, so a lower id means an earlier (higher-priority) merge;
- optional *special tokens* such as ``<|endoftext|>``, matched before anything else.

For a freshly trained tokenizer byte ``b`` has id ``b`` and merge number ``r`` has id ``256 + r``.
GPT-2's released files use the same layout for merges but list the byte tokens in another order,
which ``byte_ids`` records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, cached_property

from labsupport import data

#: GPT-2's pre-tokenisation: contractions, letters, numbers, other symbols, each optionally
#: preceded by one space; runs of whitespace. Merges never cross these chunks.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to printable characters.

    Printable Latin-1 bytes map to themselves; the others (control characters, space, …) to
    code points from 256 upward. The released vocabulary stores tokens in this alphabet, so
    ``" world"`` appears as ``"Ġworld"``.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@dataclass
class BPEVocab:
    """Merges, byte ids and special tokens of a byte-level BPE tokenizer."""

    merges: dict[tuple[int, int], int]
    byte_ids: tuple[int, ...] = tuple(range(256))
    special_tokens: dict[str, int] = field(default_factory=dict)
    recipe: str | None = field(default=None, compare=False, repr=False)  # importable function rebuilding it

    @cached_property
    def vocab(self) -> dict[int, bytes]:
        """Id → the bytes it stands for (special tokens as their UTF-8 text)."""
        table = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for (left, right), new in sorted(self.merges.items(), key=lambda item: item[1]):
            table[new] = table[left] + table[right]
        for text, i in self.special_tokens.items():
            table[i] = text.encode("utf-8")
        return table

    @property
    def size(self) -> int:
        """Number of ids: bytes + merges + special tokens."""
        return len(self.byte_ids) + len(self.merges) + len(self.special_tokens)

    def truncated(self, n_merges: int) -> BPEVocab:
        """The vocabulary after only the first ``n_merges`` merges (special tokens dropped)."""
        kept = sorted(self.merges.items(), key=lambda item: item[1])[:n_merges]
        return BPEVocab(dict(kept), self.byte_ids)

    def token_str(self, i: int) -> str:
        """Printable form of token ``i`` (invalid UTF-8 fragments shown as U+FFFD)."""
        return self.vocab[i].decode("utf-8", errors="replace")


@cache
def load_gpt2() -> BPEVocab:
    """GPT-2's released vocabulary: 256 bytes + 50,000 merges + ``<|endoftext|>`` = 50,257 ids.

    Loaded once per process and shared: treat it as read-only.
    """
    encoder: dict[str, int] = json.loads(data.read_text("gpt2_tokenizer/encoder.json"))
    byte_ids = tuple(encoder[ch] for ch in bytes_to_unicode().values())
    merges = {}
    for line in data.read_text("gpt2_tokenizer/vocab.bpe").splitlines()[1:]:
        if line:
            left, right = line.split(" ")
            merges[encoder[left], encoder[right]] = encoder[left + right]
    vocab = BPEVocab(merges, byte_ids, {"<|endoftext|>": encoder["<|endoftext|>"]})
    vocab.recipe = f"{__name__}.load_gpt2"  # another process can rebuild it by this call, not by copy
    return vocab
