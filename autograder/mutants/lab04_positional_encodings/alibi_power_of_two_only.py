"""ALiBi slopes 2^(−8h/n) used for every head count, ignoring the paper's rule for non-powers of two."""
# expect: alibi_bias_tests failed

# %% alibi_bias
def alibi_bias(n_heads, L, S=None):
    S = L if S is None else S
    slopes = torch.tensor([2 ** (-8 * h / n_heads) for h in range(1, n_heads + 1)])
    q_pos = torch.arange(L) + (S - L)
    distance = torch.arange(S)[None, :] - q_pos[:, None]
    return (slopes[:, None, None] * distance).float()
