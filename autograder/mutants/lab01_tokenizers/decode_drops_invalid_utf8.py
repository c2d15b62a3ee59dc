"""Decode silently drops invalid UTF-8 bytes (errors="ignore") instead of showing U+FFFD."""
# expect: decode_tests failed

# %% decode
def decode(ids, bpe):
    return b"".join(bpe.vocab[i] for i in ids).decode("utf-8", errors="ignore")
