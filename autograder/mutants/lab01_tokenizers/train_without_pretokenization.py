"""Training counts pairs over the whole text, so merges cross word boundaries (no GPT-2 regex)."""
# expect: train_bpe_tests failed

# %% train_bpe
def train_bpe(text, vocab_size):
    ids = list(text.encode("utf-8"))
    merges = {}
    for new_id in range(256, vocab_size):
        counts = count_pairs(ids)
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges[best] = new_id
        ids = merge(ids, best, new_id)
    return merges
