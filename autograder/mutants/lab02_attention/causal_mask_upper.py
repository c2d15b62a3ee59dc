"""The causal mask is transposed (triu): every position sees the future instead of the past."""
# expect: causal_mask_tests failed

# %% causal_mask
def causal_mask(L):
    return torch.ones(L, L, dtype=torch.bool).triu()
