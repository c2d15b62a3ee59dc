"""Byte-level byte-pair encoding (BPE), as in GPT-2.

Training starts from the 256 byte tokens and repeatedly merges the most frequent adjacent pair
into a new token. Text is first split into chunks by :data:`GPT2_SPLIT_PATTERN`, and pairs are
counted inside chunks only. Ties between equally frequent pairs go to the smallest pair
``(left_id, right_id)``, so training is deterministic and hand-checkable::

    >>> merges = train_bpe("aaabdaaabac", 256 + 3)
    >>> [(bytes(BPEVocab(merges).vocab[i])) for i in merges.values()]
    [b'aa', b'ab', b'aaab']

Encoding applies the learned merges to each chunk in the order they were learned (lowest id
first); decoding concatenates the bytes and decodes them as UTF-8, showing invalid sequences as
U+FFFD rather than dropping them.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import regex

from labsupport.tokenizers.bytelevel import GPT2_SPLIT_PATTERN, BPEVocab

Pair = tuple[int, int]


def count_pairs(ids: Iterable[int], counts: dict[Pair, int] | None = None, weight: int = 1
                ) -> dict[Pair, int]:
    """Add ``weight`` for every adjacent pair of ``ids`` into ``counts`` (a new dict if None)."""
    counts = {} if counts is None else counts
    ids = list(ids)
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right.

    Occurrences do not overlap: ``merge([7, 7, 7], (7, 7), 9) == [9, 7]``.
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def chunk_counts(text: str, pattern: str = GPT2_SPLIT_PATTERN) -> Counter[bytes]:
    """How often each pre-tokenised chunk (as UTF-8 bytes) occurs in ``text``."""
    return Counter(m.encode("utf-8") for m in regex.findall(pattern, text))


def train_bpe(text: str, vocab_size: int, pattern: str = GPT2_SPLIT_PATTERN) -> dict[Pair, int]:
    """Learn ``vocab_size - 256`` merges from ``text``; return ``{(left, right): new_id}``.

    Training stops early when no pair is left to merge.
    """
    return {step.pair: step.new_id for step in merge_steps(text, vocab_size, pattern)}


@dataclass(frozen=True)
class MergeStep:
    """One training step: ``pair`` (seen ``count`` times) became ``new_id``.

    ``tied`` is True when another pair had the same count, i.e. the choice rested on the
    tie-breaking rule (smallest pair) rather than on the data alone.
    """

    pair: Pair
    new_id: int
    count: int
    tied: bool


def merge_steps(text: str, vocab_size: int, pattern: str = GPT2_SPLIT_PATTERN) -> Iterator[MergeStep]:
    """Train byte-level BPE, yielding each merge as it is learned.

    Pair counts are kept up to date incrementally: a merge only revisits the chunks that contain
    the merged pair, and a heap (stale entries skipped) yields the next most frequent pair.
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (the byte tokens), got {vocab_size}")
    chunks = chunk_counts(text, pattern)
    words = [list(chunk) for chunk in chunks]
    freqs = list(chunks.values())
    counts: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}
    for w, (ids, f) in enumerate(zip(words, freqs)):
        count_pairs(ids, counts, f)
        for pair in zip(ids, ids[1:]):
            where.setdefault(pair, set()).add(w)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)

    def drop_stale(merged: Pair | None = None) -> None:
        # an entry is stale when its pair's count changed since it was pushed (or was merged)
        while heap and (heap[0][1] == merged or counts.get(heap[0][1], 0) != -heap[0][0]):
            heapq.heappop(heap)

    for new_id in range(256, vocab_size):
        drop_stale()
        if not heap:
            return
        neg_count, best = heapq.heappop(heap)
        drop_stale(merged=best)
        yield MergeStep(best, new_id, -neg_count, bool(heap) and heap[0][0] == neg_count)
        changed: set[Pair] = set()
        for w in where.pop(best):
            old, f = words[w], freqs[w]
            new = merge(old, best, new_id)
            for pair in zip(old, old[1:]):
                counts[pair] -= f
                changed.add(pair)
            for pair in zip(new, new[1:]):
                counts[pair] = counts.get(pair, 0) + f
                where.setdefault(pair, set()).add(w)
                changed.add(pair)
            words[w] = new
        counts.pop(best, None)
        for pair in changed - {best}:
            if counts.get(pair, 0) > 0:
                heapq.heappush(heap, (-counts[pair], pair))
            else:
                counts.pop(pair, None)


def _split_special(text: str, special: dict[str, int]) -> list[str]:
    """Split ``text`` around special tokens (longest first), keeping them as separate pieces."""
    if not special:
        return [text]
    alternatives = "|".join(regex.escape(s) for s in sorted(special, key=len, reverse=True))
    return [piece for piece in regex.split(f"({alternatives})", text) if piece]


def encode(text: str, bpe: BPEVocab, pattern: str = GPT2_SPLIT_PATTERN) -> list[int]:
    """Token ids of ``text``: special tokens first, then each chunk merged in learned order."""
    encode_chunk = _chunk_encoder(bpe)
    ids: list[int] = []
    for piece in _split_special(text, bpe.special_tokens):
        if piece in bpe.special_tokens:
            ids.append(bpe.special_tokens[piece])
            continue
        for chunk in regex.findall(pattern, piece):
            ids.extend(encode_chunk(chunk.encode("utf-8")))
    return ids


def _chunk_encoder(bpe: BPEVocab):
    """A cached function bytes → ids for one vocabulary (chunks repeat a lot in real text)."""
    merges, byte_ids = bpe.merges, bpe.byte_ids

    @lru_cache(maxsize=1 << 16)
    def encode_chunk(chunk: bytes) -> tuple[int, ...]:
        ids = [byte_ids[b] for b in chunk]
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            ids = merge(ids, pair, merges[pair])
        return tuple(ids)

    return encode_chunk


def decode(ids: Iterable[int], bpe: BPEVocab) -> str:
    """Text of ``ids``; invalid UTF-8 (e.g. half a character) becomes U+FFFD, never disappears."""
    vocab = bpe.vocab
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
