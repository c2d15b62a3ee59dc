"""count_pairs adds into a copy of `counts` and returns the copy: the dict the caller passed in
is left unchanged, so counting over many chunks into one dict loses everything."""
# expect: count_pairs_tests failed

# %% count_pairs
def count_pairs(ids, counts=None):
    counts = dict(counts) if counts is not None else {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
