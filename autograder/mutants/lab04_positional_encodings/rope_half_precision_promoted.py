"""RoPE computes cos and sin in float32 and never casts them to the inputs' dtype: float32 and float64
inputs come back right, but float16/bfloat16 queries and keys come back as float32."""
# expect: apply_rotary_tests failed

# %% apply_rotary
def apply_rotary(q, k, positions):
    d = q.size(-1)
    inv_freq = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float32, device=positions.device) / d)
    angles = positions[..., None].float() * inv_freq  # (..., T, d/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., T, d)
    cos, sin = angles.cos(), angles.sin()
    if positions.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
