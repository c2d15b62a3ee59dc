"""Softmax over the queries (dim=-2) instead of the keys (dim=-1): rows do not sum to 1."""
# expect: sdpa_tests failed, sdpa_mask_tests failed

# %% scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-2).nan_to_num(0.0)
    return weights @ v, weights
