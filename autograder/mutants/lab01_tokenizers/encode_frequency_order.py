"""Encode applies merges in frequency order (the most common pair in the chunk first) instead of
the order they were learned."""
# expect: encode_tests failed

# %% encode
def encode(text, bpe):
    specials = sorted(bpe.special_tokens, key=len, reverse=True)
    pieces = regex.split("(" + "|".join(map(regex.escape, specials)) + ")", text) if specials else [text]
    ids = []
    for piece in pieces:
        if piece in bpe.special_tokens:
            ids.append(bpe.special_tokens[piece])
            continue
        for chunk in regex.findall(GPT2_SPLIT_PATTERN, piece):
            chunk_ids = [bpe.byte_ids[b] for b in chunk.encode("utf-8")]
            while True:
                counts = count_pairs(chunk_ids)
                known = [p for p in counts if p in bpe.merges]
                if not known:
                    break
                pair = max(known, key=lambda p: counts[p])
                chunk_ids = merge(chunk_ids, pair, bpe.merges[pair])
            ids.extend(chunk_ids)
    return ids
