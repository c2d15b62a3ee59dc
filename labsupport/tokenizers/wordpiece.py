"""WordPiece encoding (BERT): greedy longest-match-first over a fixed vocabulary.

A word is cut into the longest prefix found in the vocabulary, then the longest continuation
piece (written with the ``##`` prefix) of what is left, and so on. If some position cannot be
matched, or the word is too long, the whole word becomes the unknown token::

    >>> vocab = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3}
    >>> wordpiece_encode("unaffable", vocab)
    [1, 2, 3]
    >>> wordpiece_encode("unaffable", {**vocab, "una": 4})   # greedy: "una", then no "##f…" piece fits
    [0]
"""

from __future__ import annotations


def wordpiece_encode(word: str, vocab: dict[str, int], unk_token: str = "[UNK]",
                     max_input_chars_per_word: int = 100, prefix: str = "##") -> list[int]:
    """Ids of ``word`` by greedy longest-match-first; ``[unk]`` if any part cannot be matched."""
    if len(word) > max_input_chars_per_word:
        return [vocab[unk_token]]
    ids, start = [], 0
    while start < len(word):
        end, match = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocab:
                match = vocab[piece]
                break
            end -= 1
        if match is None:
            return [vocab[unk_token]]
        ids.append(match)
        start = end
    return ids
