"""ALiBi with the wrong sign: distant keys get a bonus instead of a penalty."""
# expect: alibi_bias_tests failed

# %% alibi_bias
def alibi_bias(n_heads, L, S=None):
    S = L if S is None else S

    def geometric(n):
        start = 2 ** (-8 / n)
        return [start ** (h + 1) for h in range(n)]

    p = 2 ** math.floor(math.log2(n_heads))
    slopes = torch.tensor(geometric(p) + geometric(2 * p)[0::2][: n_heads - p])
    q_pos = torch.arange(L) + (S - L)
    distance = q_pos[:, None] - torch.arange(S)[None, :]
    return (slopes[:, None, None] * distance).float()
