"""Correct masking with -inf, but a fully masked row is softmax(-inf, ..., -inf) = NaN, left as is."""
# expect: sdpa_mask_tests failed

# %% scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
