"""Merge does not skip past a replaced pair, so overlapping occurrences are merged twice."""
# expect: merge_tests failed, train_bpe_tests failed, encode_tests failed

# %% merge
def merge(ids, pair, new_id):
    out = []
    for i, x in enumerate(ids):
        if i + 1 < len(ids) and (x, ids[i + 1]) == pair:
            out.append(new_id)
        elif i > 0 and (ids[i - 1], x) == pair:
            continue
        else:
            out.append(x)
    return out
