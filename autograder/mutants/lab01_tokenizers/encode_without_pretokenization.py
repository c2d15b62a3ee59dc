"""encode skips GPT-2's pre-tokenisation and merges over the whole text, so a merge can cross a
word boundary ("o" + " ")."""
# expect: encode_tests failed

# %% encode
def encode(text: str, bpe: BPEVocab) -> list[int]:
    """Token ids of `text` under the byte-level BPE vocabulary `bpe`."""
    specials = sorted(bpe.special_tokens, key=len, reverse=True)
    pieces = regex.split("(" + "|".join(map(regex.escape, specials)) + ")", text) if specials else [text]
    ids = []
    for piece in pieces:
        if piece in bpe.special_tokens:
            ids.append(bpe.special_tokens[piece])
            continue
        for chunk in [piece] if piece else []:
            chunk_ids = [bpe.byte_ids[b] for b in chunk.encode("utf-8")]
            while len(chunk_ids) > 1:
                pair = min(zip(chunk_ids, chunk_ids[1:]), key=lambda p: bpe.merges.get(p, float("inf")))
                if pair not in bpe.merges:
                    break
                chunk_ids = merge(chunk_ids, pair, bpe.merges[pair])
            ids.extend(chunk_ids)
    return ids
