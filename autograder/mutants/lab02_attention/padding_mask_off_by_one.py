"""The padding mask keeps one key too many (j <= lengths[b]): the first padding key is attended to."""
# expect: padding_mask_tests failed

# %% padding_mask
def padding_mask(lengths, max_len):
    keep = torch.arange(max_len) <= lengths[:, None]
    return keep[:, None, None, :]
