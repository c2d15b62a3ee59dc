"""Tests of labsupport.positional against closed forms and Hugging Face, and of lab 4's named checks."""

import math

import pytest
import torch

from labsupport import positional as P
from labsupport.checks import CheckFailed
from labsupport.checks import lab04 as check


def test_sinusoidal_hand_values_and_odd_width():
    pe = P.sinusoidal_encoding(3, 5)
    assert pe.shape == (3, 5) and pe.dtype == torch.float32
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0]))
    expected = [math.sin(1), math.cos(1), math.sin(10000 ** -0.4), math.cos(10000 ** -0.4), math.sin(10000 ** -0.8)]
    torch.testing.assert_close(pe[1], torch.tensor(expected))


def test_offset_matrix_shifts_every_position():
    pe = P.sinusoidal_encoding(80, 12).double()
    for k in (0, 1, 7, -3, 40):
        M = P.offset_matrix(k, 12).double()
        pos = torch.arange(max(0, -k), 40)
        torch.testing.assert_close(pe[pos] @ M.T, pe[pos + k], atol=1e-5, rtol=0)
    torch.testing.assert_close(P.offset_matrix(5, 8).T, P.offset_matrix(-5, 8))  # inverse = transpose
    with pytest.raises(ValueError):
        P.offset_matrix(1, 7)


def test_rotary_matches_hugging_face_llama():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 1, 5, 8, generator=g)
    positions = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 30, 31]])
    ref_q, ref_k = check._hf_rotary(q, k, positions)
    got_q, got_k = P.apply_rotary(q, k, positions)
    torch.testing.assert_close(got_q, ref_q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_k, ref_k, atol=1e-5, rtol=1e-5)
    shared_q, _ = P.apply_rotary(q, k, positions[1])  # (T,) positions broadcast over the batch
    torch.testing.assert_close(shared_q[1], got_q[1])


def test_rotary_scores_depend_only_on_offset_and_keep_norms():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 16, dtype=torch.float64, generator=g).expand(1, 1, 2, 16).unbind(2)
    x = torch.stack((q, k), dim=2)  # (1, 1, 2, 16)

    def score(m, n):
        qr, kr = P.apply_rotary(x, x, torch.tensor([m, n]))
        return float(qr[0, 0, 0] @ kr[0, 0, 1])

    assert score(3, 10) == pytest.approx(score(103, 110), abs=1e-9)
    qr, _ = P.apply_rotary(x, x, torch.tensor([5, 900]))
    torch.testing.assert_close(qr.norm(dim=-1), x.norm(dim=-1))


def test_alibi_slopes_follow_the_paper():
    torch.testing.assert_close(P.alibi_slopes(8), torch.tensor([2.0 ** -h for h in range(1, 9)]))
    twelve = [2.0 ** -h for h in range(1, 9)] + [2.0 ** -(h - 0.5) for h in range(1, 5)]
    torch.testing.assert_close(P.alibi_slopes(12), torch.tensor(twelve))
    bias = P.alibi_bias(8, 2, 4)  # queries at positions 2 and 3 of 4
    assert bias.shape == (8, 2, 4)
    torch.testing.assert_close(bias[0, 1], torch.tensor([-1.5, -1.0, -0.5, 0.0]))


def test_learned_embedding_adds_and_refuses_longer_inputs():
    emb = P.LearnedPositionalEmbedding(max_len=6, d_model=4)
    x = torch.zeros(2, 5, 4)
    torch.testing.assert_close(emb(x), emb.weight[:5].expand(2, 5, 4))
    with pytest.raises(ValueError, match="extrapolate"):
        emb(torch.zeros(1, 7, 4))


@pytest.mark.parametrize("encoding", P.ENCODINGS)
def test_tiny_lm_is_causal_for_every_encoding(encoding):
    torch.manual_seed(0)
    model = P.TinyLM(P.TinyLMConfig(vocab_size=11, encoding=encoding, d_model=16, n_heads=2, max_len=12)).eval()
    idx = torch.randint(0, 11, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11  # change only the future of position 5
    logits = model(idx)
    assert logits.shape == (2, 10, 11)
    torch.testing.assert_close(model(changed)[:, :6], logits[:, :6])


def test_named_checks_pass_the_reference_and_catch_a_bug():
    for name, fn in [("sinusoidal", P.sinusoidal_encoding), ("offset", P.offset_matrix),
                     ("rope", P.apply_rotary), ("alibi", P.alibi_bias)]:
        getattr(check, f"{name}_examples")(fn)
        getattr(check, f"{name}_hidden")(fn)
    with pytest.raises(CheckFailed, match="closed form"):
        check.sinusoidal_hidden(lambda n, d: P.sinusoidal_encoding(n, d).flip(-1))
    assert check.permutation_gap(lambda x: x * 2, torch.randn(1, 6, 3)) == 0.0


def test_rope_check_keeps_half_precision():
    """A RoPE whose float32 cos/sin promote float16/bfloat16 inputs to float32 is caught."""

    def promoted(q, k, positions):
        cos, sin = P.rotary_cos_sin(positions, q.size(-1))
        cos, sin = cos.float(), sin.float()
        if positions.dim() == 2:
            cos, sin = cos[:, None], sin[:, None]
        return q * cos + P.rotate_half(q) * sin, k * cos + P.rotate_half(k) * sin

    with pytest.raises(CheckFailed, match="bfloat16|float16"):
        check.rope_hidden(promoted)
