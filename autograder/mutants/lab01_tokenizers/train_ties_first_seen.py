"""Training breaks ties by whichever pair was counted first (dict order), not by the smallest pair."""
# expect: train_bpe_tests failed

# %% train_bpe
from collections import Counter


def train_bpe(text, vocab_size):
    chunk_freq = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    words = [(list(chunk.encode("utf-8")), freq) for chunk, freq in chunk_freq.items()]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = {}
        for ids, freq in words:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + freq
        if not counts:
            break
        best = max(counts, key=counts.get)
        merges[best] = new_id
        words = [(merge(ids, best, new_id), freq) for ids, freq in words]
    return merges
