"""RoPE that uses only the first row of (B, T) positions: every sequence gets the positions of sequence 0."""
# expect: apply_rotary_tests failed

# %% apply_rotary
def apply_rotary(q, k, positions):
    if positions.dim() == 2:
        positions = positions[0]
    d = q.size(-1)
    inv_freq = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions[..., None].double() * inv_freq
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos(), angles.sin()

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    return (q * cos.to(q.dtype) + rotate_half(q) * sin.to(q.dtype),
            k * cos.to(k.dtype) + rotate_half(k) * sin.to(k.dtype))
