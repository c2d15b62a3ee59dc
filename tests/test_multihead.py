"""labsupport.multihead against torch.nn.MultiheadAttention and torch.nn.TransformerEncoderLayer."""

import pytest
import torch

from labsupport.attention import causal_mask
from labsupport.checks import lab03
from labsupport.multihead import (
    EncoderBlockConfig,
    MultiHeadAttention,
    MultiHeadConfig,
    TransformerEncoderBlock,
    lookup_batches,
    merge_heads,
    split_heads,
)


def test_split_heads_worked_example():
    x = torch.arange(12.0).view(1, 1, 12)  # one position, 12 features
    heads = split_heads(x, 4)  # (1, 4, 1, 3)
    assert heads.shape == (1, 4, 1, 3)
    assert heads[0, 2, 0].tolist() == [6.0, 7.0, 8.0]  # head 2 = features 6..8
    assert torch.equal(merge_heads(heads), x)


@pytest.mark.parametrize("check", ["split_merge", "multihead", "encoder_block"])
def test_reference_passes_the_lab_checks(check):
    """The named checks of lab 3 compare with torch's modules after copying weights."""
    fns = {"split_merge": (split_heads, merge_heads), "multihead": (MultiHeadAttention,),
           "encoder_block": (TransformerEncoderBlock,)}[check]
    getattr(lab03, f"{check}_examples")(*fns)
    getattr(lab03, f"{check}_hidden")(*fns)


def test_weights_copy_from_torch_mha():
    """torch → ours: unpack in_proj_weight into q/k/v projections; same outputs and weights."""
    torch.manual_seed(0)
    oracle = torch.nn.MultiheadAttention(18, 3, batch_first=True).eval()
    mine = MultiHeadAttention(MultiHeadConfig(18, 3)).eval()
    sd = oracle.state_dict()
    q, k, v = sd["in_proj_weight"].chunk(3)
    qb, kb, vb = sd["in_proj_bias"].chunk(3)
    mine.load_state_dict({"q_proj.weight": q, "k_proj.weight": k, "v_proj.weight": v, "q_proj.bias": qb,
                          "k_proj.bias": kb, "v_proj.bias": vb, "out_proj.weight": sd["out_proj.weight"],
                          "out_proj.bias": sd["out_proj.bias"]})
    x = torch.randn(2, 5, 18)
    out, w = mine(x, mask=causal_mask(5), need_weights=True)
    exp_out, exp_w = oracle(x, x, x, attn_mask=~causal_mask(5), average_attn_weights=False)
    torch.testing.assert_close(out, exp_out)
    torch.testing.assert_close(w, exp_w)


def test_fast_path_equals_plain_path():
    torch.manual_seed(1)
    plain = MultiHeadAttention(MultiHeadConfig(20, 4, kdim=7, vdim=9)).eval()
    fast = MultiHeadAttention(MultiHeadConfig(20, 4, kdim=7, vdim=9, fast=True)).eval()
    fast.load_state_dict(plain.state_dict())
    x, mem = torch.randn(3, 6, 20), torch.randn(3, 8, 7)
    val = torch.randn(3, 8, 9)
    mask = (torch.arange(8) < torch.tensor([8, 3, 0])[:, None])[:, None, None, :]  # batch 2: no key at all
    out_fast, w = fast(x, mem, val, mask=mask)
    assert w is None
    torch.testing.assert_close(out_fast, plain(x, mem, val, mask=mask)[0])


def test_block_is_permutation_equivariant_and_rejects_bad_sizes():
    torch.manual_seed(2)
    block = TransformerEncoderBlock(EncoderBlockConfig(16, 4, d_ff=24, norm_first=True)).eval()
    x, perm = torch.randn(2, 7, 16), torch.randperm(7)
    torch.testing.assert_close(block(x)[:, perm], block(x[:, perm]))
    with pytest.raises(ValueError, match="multiple"):
        MultiHeadAttention(MultiHeadConfig(10, 4))


def test_lookup_task():
    x, y = next(lookup_batches(5, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (5, 9) and y.shape == (5, 4)
    assert (x[:, 0] == 16).all()
    assert torch.equal(y, x[:, 1:][:, [0, 2, 5, 7]])


class _NoFFNDropout(TransformerEncoderBlock):
    """The reference block with the feed-forward network's inner dropout removed."""

    def __init__(self, config):
        super().__init__(config)
        self.dropout = torch.nn.Identity()


class _AttentionWithoutDropout(TransformerEncoderBlock):
    """The reference block whose self-attention never drops weights."""

    def __init__(self, config):
        super().__init__(config)
        self.self_attn = MultiHeadAttention(MultiHeadConfig(config.d_model, config.n_heads))


class _ValueFromQuery(MultiHeadAttention):
    """mha(x, memory) reading its values from x (value defaults to the query, not the key)."""

    def forward(self, query, key=None, value=None, mask=None, need_weights=False):
        return super().forward(query, key, query if value is None else value, mask, need_weights)


@pytest.mark.parametrize("broken", [_NoFFNDropout, _AttentionWithoutDropout])
def test_block_check_needs_every_dropout(broken):
    from labsupport.checks import CheckFailed

    with pytest.raises(CheckFailed, match="dropout"):
        lab03.encoder_block_hidden(broken)


def test_multihead_check_calls_the_defaults():
    from labsupport.checks import CheckFailed

    with pytest.raises(CheckFailed, match="memory"):
        lab03.multihead_hidden(_ValueFromQuery)
