"""labsupport.t5 against Hugging Face's T5, and the graders of lab 7."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from labsupport.checks import CheckFailed, property_settings
from labsupport.checks import lab07 as check
from labsupport.t5 import (
    RelativePositionBias,
    RMSNorm,
    T5Config,
    T5Model,
    greedy_decode,
    random_segmentation,
    random_spans_noise_mask,
    relative_position_bucket,
    shift_right,
    span_corrupt,
    span_uncorrupt,
)
from labsupport.t5.tasks import TASKS, collate, decode, encode, example

F64 = torch.float64
CFG = T5Config(vocab_size=37, d_model=20, d_kv=6, n_heads=3, d_ff=28, n_layers=2, n_decoder_layers=3,
               num_buckets=12, max_distance=10, dropout=0.0)


@pytest.fixture(scope="module")
def pair():
    """Our T5Model and a T5ForConditionalGeneration with the same seeded weights (float64, eval)."""
    hf, state = check.random_hf_model(CFG, 0)
    model = T5Model(CFG).double()
    model.load_state_dict(state)
    return model.eval(), hf


# ---------------------------------------------------------------- the reference against Hugging Face
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 20), (12, 10), (64, 256), (10, 9)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_buckets_match_hf_far_beyond_max_distance(num_buckets, max_distance, bidirectional):
    rel = torch.arange(-4 * max_distance, 4 * max_distance + 1)
    got = relative_position_bucket(rel, bidirectional, num_buckets, max_distance)
    assert torch.equal(got, check.hf_bucket(rel, bidirectional, num_buckets, max_distance))
    assert int(got.min()) >= 0 and int(got.max()) < num_buckets


def test_t5_default_bucket_boundaries():
    """The worked example of the chapter: where T5's 16 encoder buckets per side start."""
    rel = torch.arange(0, 200)
    b = relative_position_bucket(-rel, True, 32, 128)
    starts = [int(rel[b == k][0]) for k in range(16)]
    assert starts == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 23, 32, 46, 64, 91]


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_bias_matches_compute_bias(bidirectional):
    bias = RelativePositionBias(12, 10, 3, bidirectional).double()
    torch.nn.init.normal_(bias.relative_attention_bias.weight)
    hf = check.hf_bias_module(12, 10, 3, bidirectional, bias.relative_attention_bias.weight.detach())
    torch.testing.assert_close(bias(17, 23), hf.compute_bias(17, 23, device="cpu"))


def test_rmsnorm_matches_t5_layernorm_in_half_precision():
    norm = RMSNorm(16).half()
    x = (300 * torch.randn(4, 16)).half()  # x² overflows float16
    expected = check._hf_norm(norm.weight.detach(), 1e-6)(x)
    assert torch.isfinite(norm(x)).all()
    torch.testing.assert_close(norm(x), expected)


def test_logits_loss_and_generation_match_hf(pair):
    model, hf = pair
    g = torch.Generator().manual_seed(1)
    src = torch.randint(2, 37, (3, 17), generator=g)
    mask = (torch.arange(17)[None] < torch.tensor([17, 12, 5])[:, None]).long()
    labels = torch.randint(2, 37, (3, 13), generator=g)
    labels[1, 8:] = -100
    logits = model(src, shift_right(labels), attention_mask=mask)
    out = hf(input_ids=src, attention_mask=mask, labels=labels)
    torch.testing.assert_close(logits, out.logits, rtol=1e-5, atol=1e-6)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(loss, out.loss, rtol=1e-5, atol=1e-6)
    ours = greedy_decode(model, src, 10, attention_mask=mask)
    theirs = hf.generate(input_ids=src, attention_mask=mask, max_new_tokens=10, do_sample=False, num_beams=1,
                         use_cache=False)  # HF's cache assumes as many decoder layers as encoder layers
    assert ours.tolist() == theirs.tolist()


def test_bias_is_shared_across_layers(pair):
    model, _ = pair
    names = [n for n, _ in model.named_parameters() if "relative_attention_bias" in n]
    assert names == ["encoder_bias.relative_attention_bias.weight", "decoder_bias.relative_attention_bias.weight"]


# ---------------------------------------------------------------- span corruption
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(60, 500), st.integers(0, 2))
@property_settings(200)
def test_span_corruption_round_trips(mask, vocab_size, eos_id):
    tokens = torch.arange(3, 3 + len(mask))
    inputs, targets = span_corrupt(tokens, torch.tensor(mask), vocab_size, eos_id)
    assert span_uncorrupt(inputs, targets, vocab_size, eos_id).tolist() == tokens.tolist()
    n_spans = sum(1 for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1]))
    assert len(inputs) == len(mask) - sum(mask) + n_spans + 1
    assert len(targets) == sum(mask) + n_spans + 2


def test_paper_example():
    words = "Thank you for inviting me to your party last week .".split()
    mask = torch.tensor([w in ("for", "inviting", "last") for w in words])
    inputs, targets = span_corrupt(torch.arange(10, 21), mask, vocab_size=100)
    assert inputs.tolist() == [10, 11, 99, 14, 15, 16, 17, 98, 19, 20, 1]
    assert targets.tolist() == [99, 12, 13, 98, 18, 97, 1]


@pytest.mark.parametrize("length,density,mean", [(512, 0.15, 3.0), (20, 0.15, 3.0), (2, 0.15, 3.0), (64, 0.5, 1.0)])
def test_noise_mask_counts(length, density, mean):
    mask = random_spans_noise_mask(length, density, mean, generator=torch.Generator().manual_seed(0))
    noise, spans = check._expected_counts(length, density, mean)
    runs = check._mask_runs(mask.tolist())
    assert int(mask.sum()) == noise and sum(v for v, _ in runs) == spans
    assert not runs[0][0] and runs[-1][0]


def test_random_segmentation_is_uniform():
    gen = torch.Generator().manual_seed(0)
    counts = {}
    for _ in range(6000):
        key = tuple(random_segmentation(6, 3, gen).tolist())
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == math.comb(5, 2)  # every composition of 6 into 3 positive parts
    assert max(counts.values()) / min(counts.values()) < 1.3


# ---------------------------------------------------------------- tasks
def test_tasks_are_told_apart_only_by_the_prefix():
    gen = torch.Generator().manual_seed(0)
    for task in ("reverse", "sort"):
        source, target = example(task, gen)
        assert source.startswith(task + ": ") and target == TASKS[task](source.split(": ")[1])
    assert decode(encode("add: 12+30")) == "add: 12+30"
    x, mask, labels = collate([("sort: 31", "13"), ("reverse: 4021", "1204")])
    assert x.shape == mask.shape and labels[0, 3:].eq(-100).all()


# ---------------------------------------------------------------- the checks accept the reference ...
def test_checks_accept_the_reference():
    check.noise_mask_examples(random_spans_noise_mask)
    check.span_corruption_examples(span_corrupt)
    check.span_corruption_hidden(span_corrupt)
    check.relative_buckets_examples(relative_position_bucket)
    check.relative_bias_examples(RelativePositionBias)
    check.relative_bias_hidden(RelativePositionBias)
    check.rms_norm_examples(RMSNorm)
    check.rms_norm_hidden(RMSNorm)
    check.t5_model_examples(T5Model, shift_right)
    check.greedy_decode_examples(greedy_decode, T5Model)


@pytest.mark.slow
def test_hidden_checks_accept_the_reference():
    check.noise_mask_hidden(random_spans_noise_mask)
    check.relative_buckets_hidden(relative_position_bucket)
    check.t5_model_hidden(T5Model, shift_right)
    check.greedy_decode_hidden(greedy_decode, T5Model)


# ---------------------------------------------------------------- ... and reject broken variants
def test_checks_reject_causal_buckets_in_the_encoder():
    def causal_only(rel, bidirectional=True, num_buckets=32, max_distance=128):
        return relative_position_bucket(rel, False, num_buckets, max_distance)

    with pytest.raises(CheckFailed, match="wrong bucket"):
        check.relative_buckets_examples(causal_only)


def test_checks_reject_a_missing_closing_sentinel():
    def no_closing(tokens, mask, vocab_size, eos_id=1):
        inputs, targets = span_corrupt(tokens, mask, vocab_size, eos_id)
        return inputs, torch.cat([targets[:-2], targets[-1:]])

    with pytest.raises(CheckFailed, match="targets"):
        check.span_corruption_examples(no_closing)


def test_checks_reject_equal_span_lengths():
    def equal_spans(length, noise_density=0.15, mean_span_length=3.0, generator=None):
        mask = random_spans_noise_mask(length, noise_density, mean_span_length, generator)
        runs = check._mask_runs(mask.tolist())
        noise = int(mask.sum())
        k = sum(v for v, _ in runs)
        kept = [n for v, n in runs if not v]
        lengths = [noise // k + (i < noise % k) for i in range(k)]
        out = []
        for a, b in zip(kept, lengths):
            out += [False] * a + [True] * b
        return torch.tensor(out)

    with pytest.raises(CheckFailed, match="distribution of noise span lengths"):
        check.noise_mask_hidden(equal_spans)


def test_checks_reject_a_layernorm():
    class MeanNorm(RMSNorm):
        def forward(self, x):
            return super().forward(x - x.mean(-1, keepdim=True))

    with pytest.raises(CheckFailed, match="values differ"):
        check.rms_norm_hidden(MeanNorm)


def test_checks_reject_scaled_scores():
    class Scaled(T5Model):
        def __init__(self, config):
            super().__init__(config)
            for block in [*self.encoder, *self.decoder]:
                for attn in ("attn", "self_attn", "cross_attn"):
                    if hasattr(block, attn):
                        getattr(block, attn).register_forward_pre_hook(
                            lambda mod, args, kwargs: ((args[0] / 2,) + args[1:], kwargs), with_kwargs=True)

    with pytest.raises(CheckFailed, match="values differ"):
        check.t5_model_examples(Scaled, shift_right)
