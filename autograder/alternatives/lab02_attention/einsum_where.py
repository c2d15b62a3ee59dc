"""Attention with einsum, masking with torch.where and the dtype's most negative finite value, and fully
masked rows zeroed with a second torch.where; masks built by comparing index grids."""

# %% scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum("...ld,...sd->...ls", q, k) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        shape = torch.broadcast_shapes(scores.shape, mask.shape)
        scores, mask = scores.expand(shape), mask.expand(shape)
        scores = torch.where(mask, scores, torch.finfo(scores.dtype).min)
        weights = torch.where(mask, scores.softmax(dim=-1), torch.zeros((), dtype=scores.dtype))
        weights = torch.where(mask.any(-1, keepdim=True), weights, torch.zeros((), dtype=scores.dtype))
    return torch.einsum("...ls,...sd->...ld", weights, v), weights

# %% causal_mask
def causal_mask(L):
    i = torch.arange(L)
    return i[:, None] >= i[None, :]

# %% padding_mask
def padding_mask(lengths, max_len):
    return (torch.arange(max_len, device=lengths.device).view(1, 1, 1, -1) < lengths.view(-1, 1, 1, 1))
