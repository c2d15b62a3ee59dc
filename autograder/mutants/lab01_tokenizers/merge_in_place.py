"""merge edits the list it was given in place (and returns it): the right result, but the caller's
list is destroyed."""
# expect: merge_tests failed

# %% merge
def merge(ids, pair, new_id):
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            ids[i:i + 2] = [new_id]
        i += 1
    return ids
