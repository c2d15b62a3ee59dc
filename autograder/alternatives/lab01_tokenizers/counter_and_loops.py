"""count_pairs with collections.Counter (a Counter comes back when no dict is given), merge and encode
with explicit index loops (encode ranks merges by id), decode through a bytearray, WordPiece shrinking
the candidate piece from the right with a while loop."""

# %% count_pairs
from collections import Counter


def count_pairs(ids, counts=None):
    pairs = Counter(zip(ids, ids[1:]))
    if counts is None:
        return pairs
    for pair, n in pairs.items():
        counts[pair] = counts.get(pair, 0) + n
    return counts

# %% merge
def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out

# %% encode
def encode(text, bpe):
    names = sorted(bpe.special_tokens, key=len, reverse=True)
    if names:
        pieces = [p for p in regex.split("(" + "|".join(regex.escape(n) for n in names) + ")", text) if p]
    else:
        pieces = [text]
    ids = []
    for piece in pieces:
        if piece in bpe.special_tokens:
            ids.append(bpe.special_tokens[piece])
            continue
        for chunk in regex.findall(GPT2_SPLIT_PATTERN, piece):
            part = [bpe.byte_ids[b] for b in chunk.encode("utf-8")]
            while True:
                best = None
                for i in range(len(part) - 1):
                    rank = bpe.merges.get((part[i], part[i + 1]))
                    if rank is not None and (best is None or rank < best):
                        best = rank
                if best is None:
                    break
                i, out = 0, []
                while i < len(part):
                    if i + 1 < len(part) and bpe.merges.get((part[i], part[i + 1])) == best:
                        out.append(best)
                        i += 2
                    else:
                        out.append(part[i])
                        i += 1
                part = out
            ids.extend(part)
    return ids

# %% decode
def decode(ids, bpe):
    data = bytearray()
    for i in ids:
        data += bpe.vocab[i]
    return bytes(data).decode("utf-8", errors="replace")

# %% wordpiece_encode
def wordpiece_encode(word, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [vocab[unk_token]]
    out, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = ("##" if start else "") + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [vocab[unk_token]]
        out.append(vocab[piece])
        start = end
    return out
