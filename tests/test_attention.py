"""labsupport.attention against torch's scaled_dot_product_attention (non-square shapes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labsupport.attention import attention, causal_mask, fast_attention, padding_mask

B, H, L, S, DK, DV = 3, 2, 5, 7, 4, 6  # batch ≠ heads, L ≠ S ≠ d_k ≠ d_v


def _qkv(seed: int = 0, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, L, DK, generator=g, dtype=dtype),
            torch.randn(B, H, S, DK, generator=g, dtype=dtype),
            torch.randn(B, H, S, DV, generator=g, dtype=dtype))


def _masks() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    full = torch.rand(B, H, L, S, generator=g) > 0.4
    full[..., 0] = True  # every row sees at least one key
    return {"none": None, "(L,S)": causal_mask(S)[-L:], "(B,1,1,S)": padding_mask(torch.tensor([7, 3, 1]), S),
            "(B,H,L,S)": full}


@pytest.mark.parametrize("name", list(_masks()))
def test_matches_torch_sdpa(name):
    q, k, v = _qkv()
    mask = _masks()[name]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, weights = attention(q, k, v, mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(fast_attention(q, k, v, mask), expected)
    # the weights are attention applied to the identity: SDPA(q, k, I) = softmax(...)
    eye = torch.eye(S).expand(B, H, S, S)
    torch.testing.assert_close(weights, F.scaled_dot_product_attention(q, k, eye, attn_mask=mask))
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, L))


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = _qkv()
    mask = torch.ones(L, S, dtype=torch.bool)
    mask[2] = False
    q.requires_grad_(True)
    out, weights = attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert (out[..., 2, :] == 0).all() and (weights[..., 2, :] == 0).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    assert (fast_attention(q, k, v, mask)[..., 2, :] == 0).all()


def test_gradcheck_float64():
    q, k, v = (t.requires_grad_(True) for t in _qkv(dtype=torch.float64))
    mask = padding_mask(torch.tensor([7, 3, 1]), S)
    assert torch.autograd.gradcheck(lambda q, k, v: attention(q, k, v, mask), (q, k, v), fast_mode=True)


def test_is_causal_equals_causal_mask():
    q = torch.randn(B, H, L, DK)
    k, v = torch.randn(B, H, L, DK), torch.randn(B, H, L, DV)
    torch.testing.assert_close(fast_attention(q, k, v, is_causal=True), attention(q, k, v, causal_mask(L))[0])


def test_mask_builders():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    pm = padding_mask(torch.tensor([2, 0, 3]), 4)
    assert pm.shape == (3, 1, 1, 4)
    assert pm[:, 0, 0].tolist() == [[True, True, False, False], [False] * 4, [True, True, True, False]]
    assert padding_mask(torch.tensor([1, 2])).shape == (2, 1, 1, 2)


def test_mask_check_follows_gradients_through_fully_masked_rows():
    """Zeroing dead rows by assignment into the softmax's output passes the forward checks only."""
    import math

    from labsupport.checks import CheckFailed
    from labsupport.checks import lab02 as check

    def assign_dead_rows(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        dead = torch.isnan(weights)
        if dead.any():
            weights[dead] = 0.0
        return weights @ v, weights

    check.sdpa_mask_examples(assign_dead_rows)  # the forward pass is right
    with pytest.raises(CheckFailed, match="fully masked rows"):
        check.sdpa_mask_hidden(assign_dead_rows)
    check.sdpa_mask_hidden(lambda q, k, v, mask=None: attention(q, k, v, mask))
