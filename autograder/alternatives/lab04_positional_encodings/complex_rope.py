"""RoPE with complex numbers (each pair (j, j + d/2) is x_j + i·x_{j+d/2}, multiplied by e^{iθ}), the
sinusoidal encoding by interleaving stacked sines and cosines, M_k with torch.block_diag, and ALiBi's
slopes and distances with explicit loops."""

# %% sinusoidal_encoding
def sinusoidal_encoding(n_positions, d_model):
    half = (d_model + 1) // 2
    omega = 10000 ** (-2 * torch.arange(half, dtype=torch.float64) / d_model)  # (ceil(d/2),)
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * omega  # (P, ceil(d/2))
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(n_positions, 2 * half)  # sin, cos, sin, ...
    return pe[:, :d_model].float()

# %% offset_matrix
def offset_matrix(k, d_model):
    blocks = []
    for i in range(d_model // 2):
        a = k * 10000 ** (-2 * i / d_model)
        blocks.append(torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], dtype=torch.float64))
    return torch.block_diag(*blocks).float()

# %% apply_rotary
def apply_rotary(q, k, positions):
    d = q.size(-1)
    omega = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    theta = positions.to(torch.float64)[..., None] * omega  # (..., T, d/2)
    rot = torch.polar(torch.ones_like(theta), theta)  # e^{iθ}
    if positions.dim() == 2:
        rot = rot[:, None]  # (B, 1, T, d/2)

    def rotate(x):
        x1, x2 = x.to(torch.float64).chunk(2, dim=-1)
        z = torch.complex(x1, x2) * rot
        return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)

    return rotate(q), rotate(k)

# %% alibi_bias
def alibi_bias(n_heads, L, S=None):
    S = L if S is None else S
    p = 1
    while p * 2 <= n_heads:
        p *= 2
    slopes = [2 ** (-8 * (h + 1) / p) for h in range(p)]
    slopes += [2 ** (-8 * (2 * j + 1) / (2 * p)) for j in range(n_heads - p)]
    bias = torch.zeros(n_heads, L, S)
    for h, m in enumerate(slopes):
        for i in range(L):
            for j in range(S):
                bias[h, i, j] = -m * (i + S - L - j)
    return bias
