"""Scores are not divided by √d_k: the softmax is too sharp and differs from torch's."""
# expect: sdpa_tests failed, sdpa_mask_tests failed

# %% scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights @ v, weights
