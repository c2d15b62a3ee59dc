"""Zeroes the fully masked rows by assigning into the softmax's output (weights[dead] = 0) when there
are any: the forward pass is right, but backward through a batch with such a row fails (the softmax's
saved output was modified in place)."""
# expect: sdpa_mask_tests failed

# %% scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    dead = torch.isnan(weights)
    if dead.any():
        weights[dead] = 0.0
    return weights @ v, weights
