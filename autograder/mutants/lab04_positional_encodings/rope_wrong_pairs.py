"""RoPE rotates adjacent dimensions (2i, 2i+1), as in the RoFormer paper, instead of Llama's halves (j, j + d/2).

Scores still depend only on m − n, but the result differs from Hugging Face's Llama, so pre-trained
Llama weights would see scrambled positions.
"""
# expect: apply_rotary_tests failed

# %% apply_rotary
def apply_rotary(q, k, positions):
    d = q.size(-1)
    inv_freq = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions[..., None].double() * inv_freq
    angles = angles.repeat_interleave(2, dim=-1)  # θ0, θ0, θ1, θ1, …
    cos, sin = angles.cos(), angles.sin()
    if positions.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]

    def rotate_pairs(x):
        x_even, x_odd = x[..., 0::2], x[..., 1::2]
        return torch.stack([-x_odd, x_even], dim=-1).flatten(-2)

    return (q * cos.to(q.dtype) + rotate_pairs(q) * sin.to(q.dtype),
            k * cos.to(k.dtype) + rotate_pairs(k) * sin.to(k.dtype))
