"""Named checks for lab 7 (T5). Test cells call these and nothing else.

Oracles: Hugging Face ``transformers``' T5 — ``T5Attention._relative_position_bucket`` and
``T5Attention.compute_bias`` for the relative position bias, ``T5LayerNorm`` for RMSNorm, and a small
random ``T5ForConditionalGeneration`` (ReLU feed-forward, tied embeddings, as the original T5) for
the whole model, its loss and ``generate`` (greedy). Weights are drawn from a seeded generator in
Hugging Face's names, loaded into the oracle, converted to the lab's names
(:func:`labsupport.t5.state_from_hf`) and loaded explicitly into the student's module; comparisons
run in float64 on the CPU. Sizes are non-square: ``n_heads · d_kv ≠ d_model``, ``d_ff ≠ 4·d_model``,
``vocab_size ≠ d_model``, encoder and decoder of different depths, sequences longer than
``max_distance``.

Span corruption has no oracle library: the format is checked exactly against the lab's convention
on hand-made and random masks, and by reconstruction (inputs + targets give the text back); the
random mask is checked by its exact counts, its structure, seeded determinism and the distribution
of span lengths over many draws.

Student functions that need a ``torch.Generator`` or many calls run next to the student's code
through :func:`labsupport.checks.on_student_side` with the trusted helpers below (only plain data
crosses the sandbox boundary).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_dtype,
    check_equal,
    check_shape,
    check_true,
    load_state,
    module_gradients,
    on_student_side,
    passed,
    student_autograd,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.t5 import T5Config, span_corrupt, state_from_hf
from labsupport.t5 import shift_right as reference_shift_right

F64 = torch.float64
MODEL_TOL = {"rtol": 1e-4, "atol": 5e-5}  # float64 weights, but T5 takes the RMS in float32: float32 rounding
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-4}  # gradients through the float32 RMS carry float32 rounding
MODEL_NAMES = ("shared, encoder_bias, encoder.{i}.(norm1, attn, norm2, ff), encoder_norm, decoder_bias, "
               "decoder.{i}.(norm1, self_attn, norm2, cross_attn, norm3, ff), decoder_norm")


# ---------------------------------------------------------------- trusted helpers (run on the student's side)
def with_generator(fn: Callable, *args, seed: int, **kwargs):
    """``fn(*args, generator=torch.Generator().manual_seed(seed), **kwargs)``."""
    return fn(*args, generator=torch.Generator().manual_seed(seed), **kwargs)


def draw_masks(fn: Callable, n: int, length: int, noise_density: float, mean_span_length: float,
               seed: int) -> torch.Tensor:
    """``n`` masks from one seeded generator, stacked ``(n, length)`` (one call across the boundary)."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.as_tensor(fn(length, noise_density, mean_span_length, generator=g)).bool()
                        for _ in range(n)])


class ScriptedModel(nn.Module):
    """A stand-in seq2seq model whose greedy path is known: the next token is a fixed function of the
    source and of the whole decoder prefix, and EOS comes at a step that depends on the source."""

    def __init__(self, vocab_size: int, eos_id: int, eos_steps: list[int]):
        super().__init__()
        self.vocab_size, self.eos_id, self.eos_steps = vocab_size, eos_id, eos_steps

    def forward(self, input_ids: torch.Tensor, decoder_input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T = decoder_input_ids.shape
        logits = torch.zeros(B, T, self.vocab_size, dtype=F64)
        for b in range(B):
            source = int(input_ids[b].sum())
            for t in range(T):
                prefix = decoder_input_ids[b, : t + 1].tolist()
                nxt = 3 + (source + 7 * sum((i + 1) * p for i, p in enumerate(prefix)) + 5 * t) % (self.vocab_size - 3)
                if t + 1 == self.eos_steps[b]:
                    nxt = self.eos_id
                logits[b, t] = torch.linspace(0, 1, self.vocab_size, dtype=F64).roll(b + t)
                logits[b, t, nxt] = 5.0
        return logits


def scripted_greedy(greedy_decode: Callable, input_ids: torch.Tensor, max_new_tokens: int, vocab_size: int,
                    eos_steps: list[int], **kwargs) -> torch.Tensor:
    """``greedy_decode`` on a :class:`ScriptedModel`, built where the student's function lives."""
    model = ScriptedModel(vocab_size, kwargs.get("eos_id", 1), eos_steps)
    return greedy_decode(model, input_ids, max_new_tokens, **kwargs)


def reference_greedy(model: nn.Module, input_ids: torch.Tensor, max_new_tokens: int, start_id: int = 0,
                     eos_id: int = 1, pad_id: int = 0, **kwargs) -> torch.Tensor:
    """Greedy decoding written out for the checks (same contract as the lab's)."""
    out = torch.full((input_ids.size(0), 1), start_id, dtype=torch.long)
    done = torch.zeros(input_ids.size(0), dtype=torch.bool)
    for _ in range(max_new_tokens):
        token = model(input_ids, out, **kwargs)[:, -1].argmax(-1).masked_fill(done, pad_id)
        out = torch.cat([out, token[:, None]], 1)
        done |= token == eos_id
        if done.all():
            break
    return out


# ---------------------------------------------------------------- Hugging Face oracles
def hf_config(cfg: T5Config):
    """The ``transformers.T5Config`` of the same sizes (ReLU feed-forward, tied embeddings)."""
    from transformers import T5Config as HFConfig

    return HFConfig(vocab_size=cfg.vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv, num_heads=cfg.n_heads,
                    d_ff=cfg.d_ff, num_layers=cfg.n_layers, num_decoder_layers=cfg.decoder_layers,
                    relative_attention_num_buckets=cfg.num_buckets,
                    relative_attention_max_distance=cfg.max_distance, dropout_rate=cfg.dropout,
                    layer_norm_epsilon=cfg.layer_norm_eps, feed_forward_proj="relu",
                    decoder_start_token_id=cfg.decoder_start_id, pad_token_id=cfg.pad_id,
                    eos_token_id=cfg.eos_id)


def random_hf_model(cfg: T5Config, seed: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A ``T5ForConditionalGeneration`` with seeded weights (float64, eval) and the same weights in our names."""
    from transformers import T5ForConditionalGeneration

    hf = T5ForConditionalGeneration(hf_config(cfg))
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, p in sorted(hf.state_dict().items()):
        if name.endswith("layer_norm.weight"):
            state[name] = 1 + 0.2 * torch.randn(p.shape, generator=gen, dtype=F64)
        elif "relative_attention_bias" in name:
            state[name] = torch.randn(p.shape, generator=gen, dtype=F64)
        elif name.endswith("embed_tokens.weight") or name == "lm_head.weight":
            continue  # tied to shared.weight
        elif name == "shared.weight":
            state[name] = torch.randn(p.shape, generator=gen, dtype=F64)
        else:  # (out, in) linear maps
            state[name] = torch.randn(p.shape, generator=gen, dtype=F64) / p.shape[1] ** 0.5
    for name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state[name] = state["shared.weight"]
    hf = hf.double()
    hf.load_state_dict(state)
    hf.eval()
    return hf, state_from_hf(state)


def hf_bucket(relative_position: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int):
    from transformers.models.t5.modeling_t5 import T5Attention

    return T5Attention._relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance)


def hf_bias_module(num_buckets: int, max_distance: int, n_heads: int, bidirectional: bool, weight: torch.Tensor):
    from transformers.models.t5.modeling_t5 import T5Attention

    cfg = hf_config(T5Config(vocab_size=8, d_model=8, d_kv=2, n_heads=n_heads, num_buckets=num_buckets,
                             max_distance=max_distance, dropout=0.0))
    cfg.is_decoder = not bidirectional
    attn = T5Attention(cfg, has_relative_attention_bias=True, layer_idx=0).double()
    attn.relative_attention_bias.weight.data.copy_(weight)
    return attn


def _mask_runs(mask: list[bool]) -> list[tuple[bool, int]]:
    """Runs of equal values: ``[(value, length), …]``."""
    runs: list[tuple[bool, int]] = []
    for m in mask:
        if runs and runs[-1][0] == m:
            runs[-1] = (m, runs[-1][1] + 1)
        else:
            runs.append((m, 1))
    return runs


def _expected_counts(length: int, density: float, mean: float) -> tuple[int, int]:
    noise = min(max(round(length * density), 1), length - 1)
    return noise, max(1, round(noise / mean))


# ---------------------------------------------------------------- part 1: the noise mask
def _one_mask(fn: Callable, length: int, density: float, mean: float, seed: int, what: str) -> list[bool]:
    try:
        mask = on_student_side(with_generator, fn, length, density, mean, seed=seed)
    except NotImplementedError:
        raise CheckFailed(f"{what}: not implemented yet",
                          hint="replace `raise NotImplementedError()` with your code") from None
    check_shape(mask, (length,), what=what, hint="one boolean per token: shape (length,)")
    check_dtype(mask, torch.bool, what=what, hint="return a bool tensor (True = noise)")
    return mask.tolist()


def _check_mask_structure(mask: list[bool], length: int, density: float, mean: float, what: str) -> None:
    noise, spans = _expected_counts(length, density, mean)
    runs = _mask_runs(mask)
    got_noise = sum(mask)
    check_equal(got_noise, noise, what=f"{what}: number of noise tokens",
                hint=f"round(length * noise_density) = round({length} * {density}), at least 1 and at most length - 1")
    got_spans = sum(1 for v, _ in runs if v)
    check_equal(got_spans, spans, what=f"{what}: number of noise spans (runs of True)",
                hint="max(1, round(num_noise / mean_span_length)); noise runs must be separated by kept tokens")
    check_true(not runs[0][0], what=f"{what}: the first run must be kept tokens", expected="mask[0] is False",
               got="mask[0] is True", hint="runs alternate kept, noise, kept, noise, …, starting with kept tokens")
    check_true(runs[-1][0], what=f"{what}: the last run must be noise", expected="mask[-1] is True",
               got="mask[-1] is False", hint="there are as many kept runs as noise runs, kept first, noise last")


def noise_mask_examples(random_spans_noise_mask: Callable) -> None:
    """20 tokens at 15 % noise, mean span 3: 3 noise tokens in one span; seeded determinism."""
    what = "random_spans_noise_mask(20, 0.15, 3.0, generator=seeded)"
    mask = _one_mask(random_spans_noise_mask, 20, 0.15, 3.0, 0, what)
    _check_mask_structure(mask, 20, 0.15, 3.0, what)
    again = _one_mask(random_spans_noise_mask, 20, 0.15, 3.0, 0, what)
    check_equal(again, mask, what="the same seed must give the same mask",
                hint="draw every random number from the `generator` argument")
    passed("random_spans_noise_mask has T5's counts and structure")


def _composition_pmf(n: int, k: int) -> dict[int, float]:
    """P(one part = j) for a uniform composition of n into k positive parts."""
    if k == 1:
        return {n: 1.0}
    total = math.comb(n - 1, k - 1)
    return {j: math.comb(n - j - 1, k - 2) / total for j in range(1, n - k + 2)}


def _total_variation(counts: Counter, pmf: dict[int, float]) -> float:
    n = sum(counts.values())
    keys = set(counts) | set(pmf)
    return 0.5 * sum(abs(counts.get(j, 0) / n - pmf.get(j, 0.0)) for j in keys)


def noise_mask_hidden(random_spans_noise_mask: Callable, seed: int = 71) -> None:
    """Counts and structure over many sizes; determinism; uniformly random span lengths (statistics)."""
    gen = torch.Generator().manual_seed(seed)
    cases = [(20, 0.15, 3.0), (100, 0.15, 3.0), (512, 0.15, 3.0), (37, 0.3, 2.0), (64, 0.5, 1.0), (9, 0.15, 3.0),
             (2, 0.15, 3.0), (50, 0.25, 4.0), (30, 0.1, 5.0), (73, 0.2, 2.5),
             (2, 0.9, 3.0), (10, 0.99, 20.0)]  # the last two: round(length * density) clipped to length - 1
    for length, density, mean in cases:
        s = int(torch.randint(10**6, (1,), generator=gen))
        what = f"random_spans_noise_mask({length}, {density}, {mean})"
        mask = _one_mask(random_spans_noise_mask, length, density, mean, s, what)
        _check_mask_structure(mask, length, density, mean, what)
        check_equal(_one_mask(random_spans_noise_mask, length, density, mean, s, what), mask,
                    what=f"{what}: the same seed must give the same mask",
                    hint="draw every random number from the `generator` argument, none from the global RNG")
    masks = {tuple(_one_mask(random_spans_noise_mask, 100, 0.15, 3.0, seed + i, "mask")) for i in range(8)}
    check_true(len(masks) > 4, what="different seeds must give different masks", expected="mostly different masks",
               got=f"{len(masks)} distinct masks from 8 seeds", hint="use the generator for the random segmentation")

    # statistics: 100 tokens → 15 noise tokens in 5 spans, 85 kept tokens in 5 runs; every split equally likely
    n_draws = 3000
    try:
        many = on_student_side(draw_masks, random_spans_noise_mask, n_draws, 100, 0.15, 3.0, seed)
    except NotImplementedError:
        raise CheckFailed("random_spans_noise_mask: not implemented yet") from None
    check_shape(many, (n_draws, 100), what="3000 masks of length 100")
    noise_runs, kept_runs = Counter(), Counter()
    for row in many.tolist():
        for value, n in _mask_runs(row):
            (noise_runs if value else kept_runs)[n] += 1
    fraction = many.double().mean().item()
    check_true(abs(fraction - 0.15) < 1e-9, what="fraction of noise tokens over 3000 masks of length 100",
               expected=0.15, got=round(fraction, 4))
    mean_span = sum(k * v for k, v in noise_runs.items()) / max(1, sum(noise_runs.values()))
    check_true(abs(mean_span - 3.0) < 1e-9, what="mean noise span length over 3000 masks", expected=3.0,
               got=round(mean_span, 4))
    for name, counts, n, k, tol in (("noise span lengths (15 tokens in 5 spans)", noise_runs, 15, 5, 0.04),
                                    ("kept run lengths (85 tokens in 5 runs)", kept_runs, 85, 5, 0.06)):
        pmf = _composition_pmf(n, k)
        tv = _total_variation(counts, pmf)
        common = [j for j, _ in Counter(counts).most_common(3)]
        check_true(tv < tol, what=f"distribution of {name} over 3000 masks",
                   expected=f"every split equally likely (total variation < {tol} from the exact law; "
                            f"P(length 1) = {pmf.get(1, 0):.3f})",
                   got=f"total variation {tv:.3f}; most common lengths {common}",
                   hint="split the tokens into runs uniformly at random: choose the cut points "
                        "without replacement among the gaps (e.g. torch.randperm)")
    passed("random_spans_noise_mask: counts, structure, determinism and span-length statistics")


# ---------------------------------------------------------------- part 2: span corruption
def _uncorrupt(inputs: list[int], targets: list[int], vocab_size: int, eos_id: int) -> list[int]:
    """Independent inverse of the format: sentinels s_i = vocab_size - 1 - i, in order."""
    spans: list[list[int]] = []
    for t in targets[:-1]:
        if t == vocab_size - 1 - len(spans):
            spans.append([])
        else:
            spans[-1].append(t)
    out, used = [], 0
    for t in inputs[:-1]:
        if used < len(spans) and t == vocab_size - 1 - used:
            out += spans[used]
            used += 1
        else:
            out.append(t)
    return out


def _check_corruption(fn: Callable, tokens: torch.Tensor, mask: torch.Tensor, vocab_size: int, eos_id: int,
                      what: str) -> None:
    res = call(fn, tokens, mask, vocab_size, eos_id=eos_id, what=what)
    check_true(isinstance(res, tuple) and len(res) == 2, what=f"{what}: must return (inputs, targets)",
               expected="a tuple of two tensors", got=type(res).__name__)
    inputs, targets = res
    for name, t in (("inputs", inputs), ("targets", targets)):
        check_dtype(t, torch.long, what=f"{what}: {name}", hint="token ids are a 1-D long tensor")
        check_true(t.dim() == 1, what=f"{what}: {name} must be 1-D", expected="shape (n,)", got=tuple(t.shape))
    exp_in, exp_tg = span_corrupt(tokens, mask, vocab_size, eos_id)
    hint = ("inputs: kept tokens, each noise span replaced by ONE sentinel, then EOS; targets: for each span its "
            "sentinel and its tokens, then the sentinel after the last span, then EOS; "
            "sentinel i = vocab_size - 1 - i, numbered in order of the spans from 0")
    check_equal(inputs.tolist(), exp_in.tolist(), what=f"{what}: inputs", hint=hint)
    check_equal(targets.tolist(), exp_tg.tolist(), what=f"{what}: targets", hint=hint)
    back = _uncorrupt(inputs.tolist(), targets.tolist(), vocab_size, eos_id)
    check_equal(back, tokens.tolist(), what=f"{what}: inputs + targets must give the text back")


def span_corruption_examples(span_corrupt: Callable) -> None:
    """The paper's example: 'Thank you <X> me to your party <Y> week .'"""
    words = "Thank you for inviting me to your party last week .".split()
    tokens = torch.arange(10, 10 + len(words))  # one id per word
    mask = torch.tensor([w in ("for", "inviting", "last") for w in words])
    _check_corruption(span_corrupt, tokens, mask, 100, 1, "span_corrupt(the paper's sentence, vocab_size=100)")
    passed("span_corrupt writes T5's inputs and targets for the paper's example")


def span_corruption_hidden(span_corrupt: Callable, seed: int = 72) -> None:
    """Random tokens and masks of every shape: leading/trailing noise, single-token spans, no noise, all noise."""
    gen = torch.Generator().manual_seed(seed)
    special = {"no noise": [0] * 7, "all noise": [1] * 6, "noise first": [1, 1, 0, 0, 1, 0, 0],
               "noise last": [0, 1, 0, 0, 1, 1], "one-token spans": [1, 0, 1, 0, 1, 0, 1, 0],
               "single token kept": [0], "single token dropped": [1]}
    for name, m in special.items():
        tokens = torch.randint(2, 50, (len(m),), generator=gen)
        _check_corruption(span_corrupt, tokens, torch.tensor(m, dtype=torch.bool), 64, 1,
                          f"span_corrupt with {name}: mask {m}")
    for trial in range(12):
        length = int(torch.randint(1, 60, (1,), generator=gen))
        vocab = int(torch.randint(80, 300, (1,), generator=gen))
        eos = int(torch.randint(0, 3, (1,), generator=gen))
        tokens = torch.randint(3, vocab - 40, (length,), generator=gen)
        mask = torch.rand(length, generator=gen) < (0.1 + 0.6 * trial / 12)
        _check_corruption(span_corrupt, tokens, mask, vocab, eos,
                          f"span_corrupt(random tokens of length {length}, vocab_size={vocab}, eos_id={eos})")
    passed("span_corrupt matches T5's format on every kind of mask and round-trips")


# ---------------------------------------------------------------- part 3: relative position buckets
def _check_buckets(fn: Callable, rel: torch.Tensor, bidirectional: bool, nb: int, md: int, what: str) -> None:
    got = call(fn, rel, bidirectional=bidirectional, num_buckets=nb, max_distance=md, what=what)
    expected = hf_bucket(rel, bidirectional, nb, md)
    check_shape(got, tuple(rel.shape), what=what, hint="one bucket per relative position, same shape")
    check_true(not got.is_floating_point(), what=f"{what}: bucket ids must be integers", expected="a long tensor",
               got=str(got.dtype), hint="convert with .long() after the logarithm")
    if not torch.equal(got.long(), expected):
        idx = (got.long() != expected).nonzero()[0]
        r = int(rel[tuple(idx)])
        raise CheckFailed(f"{what}: wrong bucket for relative position {r} (memory - query)",
                          int(expected[tuple(idx)]), int(got[tuple(idx)]),
                          "bidirectional: half the buckets for each side (keys on the right, r > 0, in the upper "
                          "half); causal: max(-r, 0); exact buckets below num_buckets // 2 of the half; then "
                          "max_exact + floor(log(n / max_exact) / log(max_distance / max_exact) * (n_half - "
                          "max_exact)), clipped to the last bucket",
                          detail=f"{int((got.long() != expected).sum())} of {rel.numel()} positions differ")


def relative_buckets_examples(relative_position_bucket: Callable) -> None:
    """num_buckets=8, max_distance=16 for relative positions −20..20, encoder and decoder."""
    rel = torch.arange(-20, 21)
    for bidirectional in (True, False):
        _check_buckets(relative_position_bucket, rel, bidirectional, 8, 16,
                       f"relative_position_bucket(-20..20, bidirectional={bidirectional}, 8 buckets, max_distance=16)")
    passed("relative_position_bucket matches Hugging Face's T5 on a small table")


def relative_buckets_hidden(relative_position_bucket: Callable, seed: int = 73) -> None:
    """T5's defaults and other sizes, distances far beyond max_distance, (L, S) matrices."""
    gen = torch.Generator().manual_seed(seed)
    for nb, md in [(32, 128), (32, 64), (16, 20), (12, 10), (64, 256), (10, 9), (40, 100)]:
        for bidirectional in (True, False):
            rel = torch.arange(-3 * md, 3 * md + 1)
            _check_buckets(relative_position_bucket, rel, bidirectional, nb, md,
                           f"relative_position_bucket(±3·max_distance, bidirectional={bidirectional}, "
                           f"num_buckets={nb}, max_distance={md})")
    L, S = 23, 300
    rel = torch.arange(S)[None, :] - torch.arange(L)[:, None] * 13  # (L, S) memory − query
    for bidirectional in (True, False):
        _check_buckets(relative_position_bucket, rel, bidirectional, 32, 128,
                       f"relative_position_bucket of a ({L}, {S}) matrix, bidirectional={bidirectional}")
    rel = torch.randint(-5000, 5000, (7, 11), generator=gen)
    _check_buckets(relative_position_bucket, rel, True, 32, 128, "relative_position_bucket of random distances ±5000")
    passed("relative_position_bucket matches Hugging Face's T5 for every size and distance")


# ---------------------------------------------------------------- part 4: relative bias
def _check_bias(cls: Callable, nb: int, md: int, H: int, bidirectional: bool, L: int, S: int, seed: int) -> None:
    what = (f"RelativePositionBias(num_buckets={nb}, max_distance={md}, n_heads={H}, "
            f"bidirectional={bidirectional})(query_length={L}, key_length={S})")
    weight = torch.randn(nb, H, generator=torch.Generator().manual_seed(seed), dtype=F64)
    module = call(cls, nb, md, H, bidirectional=bidirectional, what=what)
    load_state(module, {"relative_attention_bias.weight": weight}, what=what,
               names="relative_attention_bias (an nn.Embedding(num_buckets, n_heads))")
    module = module.double()
    got = call(module, L, S, what=what)
    expected = hf_bias_module(nb, md, H, bidirectional, weight).compute_bias(L, S, device="cpu")
    check_shape(got, (1, H, L, S), what=what, hint="(1, n_heads, query_length, key_length)")
    check_close(got, expected, what=what,
                hint="relative position = key (memory) position - query position; look up its bucket's "
                     "row of the embedding and move the heads in front: (L, S, H) → (1, H, L, S)")


def relative_bias_examples(RelativePositionBias: Callable) -> None:
    """Encoder (bidirectional) and decoder (causal) bias of 3 heads against Hugging Face's compute_bias."""
    for bidirectional in (True, False):
        _check_bias(RelativePositionBias, 8, 16, 3, bidirectional, 5, 5, 0)
    passed("RelativePositionBias matches Hugging Face's T5Attention.compute_bias")


def relative_bias_hidden(RelativePositionBias: Callable, seed: int = 74) -> None:
    """Non-square (L ≠ S), lengths beyond max_distance, T5's default sizes."""
    for i, (nb, md, H, L, S) in enumerate([(32, 128, 4, 7, 11), (12, 10, 3, 37, 29), (32, 40, 5, 45, 50),
                                           (16, 20, 2, 1, 9), (10, 9, 6, 13, 1)]):
        for bidirectional in (True, False):
            _check_bias(RelativePositionBias, nb, md, H, bidirectional, L, S, seed + i)
    passed("RelativePositionBias matches Hugging Face for every size, both directions, beyond max_distance")


# ---------------------------------------------------------------- part 5: RMSNorm
def _hf_norm(weight: torch.Tensor, eps: float):
    from transformers.models.t5.modeling_t5 import T5LayerNorm

    norm = T5LayerNorm(weight.numel(), eps=eps).to(weight.dtype)
    norm.weight.data.copy_(weight)
    return norm


def _student_norm(cls: Callable, weight: torch.Tensor, eps: float, what: str):
    norm = call(cls, weight.numel(), eps=eps, what=what)
    load_state(norm, {"weight": weight.float()}, what=what, names="weight (a Parameter of shape (d_model,))")
    return norm.half() if weight.dtype == torch.float16 else norm.double()


def rms_norm_examples(RMSNorm: Callable) -> None:
    """A (2, 3, 10) input in float64 against Hugging Face's T5LayerNorm."""
    gen = torch.Generator().manual_seed(5)
    weight = 1 + 0.2 * torch.randn(10, generator=gen, dtype=F64)
    x = 2 + torch.randn(2, 3, 10, generator=gen, dtype=F64)
    norm = _student_norm(RMSNorm, weight, 1e-6, "RMSNorm(10, eps=1e-6)")
    check_close(call(norm, x, what="RMSNorm(10)(x)"), _hf_norm(weight, 1e-6)(x), what="RMSNorm(10)(x)", **MODEL_TOL,
                hint="x / sqrt(mean(x²) + eps) * weight: no mean subtracted, no bias")
    passed("RMSNorm matches Hugging Face's T5LayerNorm")


def rms_norm_hidden(RMSNorm: Callable, seed: int = 75) -> None:
    """Shapes, eps, inputs with a large mean, float16 inputs whose squares overflow, gradients."""
    gen = torch.Generator().manual_seed(seed)
    for shape, eps, shift in [((4, 7, 13), 1e-6, 3.0), ((5, 9), 1e-3, -10.0), ((2, 3, 4, 6), 0.5, 0.0),
                              ((1, 1, 1), 1e-6, 0.0)]:
        d = shape[-1]
        weight = 1 + 0.3 * torch.randn(d, generator=gen, dtype=F64)
        x = shift + torch.randn(shape, generator=gen, dtype=F64)
        what = f"RMSNorm({d}, eps={eps})(x of shape {shape}, mean {shift})"
        norm = _student_norm(RMSNorm, weight, eps, what)
        check_close(call(norm, x, what=what), _hf_norm(weight, eps)(x), what=what, **MODEL_TOL,
                    hint="divide by the root mean square sqrt(mean(x²) + eps) over the last axis, times weight; "
                         "do not subtract the mean, add no bias")
    # float16: x² overflows half precision (max 65504), T5 accumulates the mean of squares in float32
    weight = (1 + 0.1 * torch.randn(16, generator=gen)).half()
    x = (300 * torch.randn(3, 16, generator=gen)).half()
    what = "RMSNorm(16) on float16 inputs of size ~300 (x² overflows float16)"
    norm = _student_norm(RMSNorm, weight, 1e-6, what)
    got = call(norm, x, what=what)
    check_dtype(got, torch.float16, what=what, hint="return the weight's dtype for half-precision weights")
    check_close(got.float(), _hf_norm(weight, 1e-6)(x).float(), what=what, rtol=1e-2, atol=1e-2,
                hint="compute mean(x²) in float32 (x.float().pow(2).mean(-1, keepdim=True)), then cast back")
    # gradients through the norm (input and weight)
    weight = 1 + 0.3 * torch.randn(11, generator=gen, dtype=F64)
    x = torch.randn(3, 5, 11, generator=gen, dtype=F64)
    norm = _student_norm(RMSNorm, weight, 1e-6, "RMSNorm(11)")
    out, (g_x,), grads = student_autograd(module_gradients, norm, x, what="RMSNorm(11)(x)")
    exp_out, (e_x,), exp = module_gradients(_hf_norm(weight, 1e-6), x)
    check_close(out, exp_out, what="RMSNorm(11)(x)", **MODEL_TOL)
    check_true(g_x is not None and grads.get("weight") is not None, what="RMSNorm: gradients must reach x and weight",
               expected="gradient tensors", got=None, hint="no .detach() or .item() inside forward")
    check_close(g_x, e_x, what="RMSNorm: gradient with respect to x", **GRAD_TOL)
    check_close(grads["weight"], exp["weight"], what="RMSNorm: gradient of weight", **GRAD_TOL)
    passed("RMSNorm matches T5LayerNorm: shapes, eps, float16, gradients")


# ---------------------------------------------------------------- part 6: the model
def _student_model(cls: Callable, cfg: T5Config, seed: int) -> tuple[nn.Module, nn.Module]:
    hf, state = random_hf_model(cfg, seed)
    what = f"T5Model({cfg})"
    model = call(cls, cfg, what=what)
    load_state(model, {k: v.float() for k, v in state.items()}, what=what, names=MODEL_NAMES)
    return model.double().eval(), hf


def _hf_logits(hf: nn.Module, input_ids, decoder_input_ids, attention_mask=None) -> torch.Tensor:
    with torch.no_grad():
        return hf(input_ids=input_ids, decoder_input_ids=decoder_input_ids, attention_mask=attention_mask).logits


def _compare_logits(model, hf, input_ids, dec, mask, what: str, hint: str | None = None) -> torch.Tensor:
    kwargs = {} if mask is None else {"attention_mask": mask}
    got = call(model, input_ids, dec, what=what, **kwargs)
    exp = _hf_logits(hf, input_ids, dec, mask)
    check_shape(got, tuple(exp.shape), what=what, hint="logits are (B, T_decoder, vocab_size)")
    check_close(got, exp, what=what, **MODEL_TOL, hint=hint or (
        "check, in order: unscaled scores q·k (no 1/√d_kv); the relative bias computed once per stack "
        "(bidirectional in the encoder, causal in the decoder) and added in every self-attention layer; "
        "no position bias in cross-attention; the causal mask; pre-norm residuals; the final norms; "
        "logits = (decoder output · d_model^-0.5) @ shared.weightᵀ"))
    return got


def t5_model_examples(T5Model: Callable, shift_right: Callable) -> None:
    """One small model with copied weights: the logits of Hugging Face's T5ForConditionalGeneration."""
    cfg = T5Config(vocab_size=40, d_model=24, d_kv=5, n_heads=3, d_ff=36, n_layers=2, num_buckets=8,
                   max_distance=16, dropout=0.0)
    model, hf = _student_model(T5Model, cfg, 0)
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(2, 40, (2, 7), generator=gen)
    labels = torch.randint(2, 40, (2, 5), generator=gen)
    dec = call(shift_right, labels, 0, 0, what="shift_right(labels, 0, 0)")
    check_equal(dec.tolist(), hf._shift_right(labels).tolist(), what="shift_right(labels, start_id=0, pad_id=0)",
                hint="decoder inputs = [start_id, labels[:, :-1]]")
    _compare_logits(model, hf, src, dec, None, "T5Model(src, shift_right(labels)) vs T5ForConditionalGeneration")
    passed("T5Model gives the logits of Hugging Face's T5ForConditionalGeneration")


def t5_model_hidden(T5Model: Callable, shift_right: Callable, seed: int = 76) -> None:
    """Non-square sizes, deeper decoder, sequences beyond max_distance, padding, causality, loss, gradients, dropout."""
    gen = torch.Generator().manual_seed(seed)
    # shift_right: start id, −100 labels become pad
    labels = torch.randint(2, 37, (3, 9), generator=gen)
    labels[0, 6:] = -100
    labels[2, 2:] = -100
    for start, pad in ((0, 0), (5, 3)):
        got = call(shift_right, labels, start, pad, what=f"shift_right(labels, start_id={start}, pad_id={pad})")
        exp = torch.cat([torch.full((3, 1), start), labels[:, :-1]], 1)
        exp = exp.masked_fill(exp == -100, pad)
        check_equal(got.tolist(), exp.tolist(), what=f"shift_right(labels with -100, start_id={start}, pad_id={pad})",
                    hint="prepend start_id, drop the last label, replace -100 (ignored labels) by pad_id")

    cfg = T5Config(vocab_size=37, d_model=20, d_kv=6, n_heads=3, d_ff=28, n_layers=2, n_decoder_layers=3,
                   num_buckets=12, max_distance=10, dropout=0.0)
    model, hf = _student_model(T5Model, cfg, seed)
    B, S, T = 3, 17, 13  # longer than max_distance = 10
    src = torch.randint(2, 37, (B, S), generator=gen)
    attn = (torch.arange(S)[None, :] < torch.tensor([S, 11, 4])[:, None]).long()  # (B, S) right padding
    src = src.masked_fill(attn == 0, 0)
    tgt = torch.randint(2, 37, (B, T), generator=gen)
    dec = reference_shift_right(tgt)
    _compare_logits(model, hf, src, dec, None, "T5Model on sequences longer than max_distance (no padding)")
    got = _compare_logits(model, hf, src, dec, attn, "T5Model with an attention_mask (padded sources)",
                          hint="attention_mask (B, S): 1 = token, 0 = padding; mask the padded keys in the encoder's "
                               "self-attention AND in the decoder's cross-attention")
    # causality: changing the last decoder token changes no earlier logits
    dec2 = dec.clone()
    dec2[:, -1] = (dec2[:, -1] + 5) % 37
    got2 = call(model, src, dec2, attention_mask=attn, what="T5Model with the last decoder token changed")
    check_close(got2[:, :-1], got[:, :-1], what="decoder logits before the changed token", **MODEL_TOL,
                hint="the decoder's self-attention must be causal: position t sees positions ≤ t only")
    # one decoder step at a time gives the same logits as teacher forcing
    short = call(model, src, dec[:, :4], attention_mask=attn, what="T5Model on the first 4 decoder tokens")
    check_close(short, got[:, :4], what="logits of a 4-token decoder prefix", **MODEL_TOL)
    # loss with −100 labels
    tgt_ignored = tgt.clone()
    tgt_ignored[1, 9:] = -100
    logits = call(model, src, shift_right(tgt_ignored), attention_mask=attn, what="T5Model(src, shift_right(labels))")
    loss = F.cross_entropy(logits.flatten(0, 1), tgt_ignored.flatten(), ignore_index=-100)
    hf_loss = hf(input_ids=src, attention_mask=attn, labels=tgt_ignored).loss.detach()
    check_close(loss, hf_loss, what="loss of T5Model with shift_right(labels) vs T5ForConditionalGeneration(labels=…)",
                **MODEL_TOL, hint="the decoder inputs are shift_right(labels) with -100 replaced by pad_id")
    # gradients of every parameter (tied embedding included)
    _check_model_gradients(model, hf, src, dec, attn)
    # dropout: random in train mode, off in eval mode
    cfg_drop = T5Config(**{**cfg.__dict__, "dropout": 0.3})
    model_d, _ = _student_model(T5Model, cfg_drop, seed + 1)
    model_d.train()
    a = call(model_d, src, dec, what="T5Model(dropout=0.3) in train mode")
    b = call(model_d, src, dec, what="T5Model(dropout=0.3) in train mode")
    check_true(not torch.allclose(a, b), what="T5Model with dropout=0.3 in train mode must be random",
               expected="two calls differ", got="identical outputs", hint="apply dropout with p = config.dropout")
    model_d.eval()
    a, b = call(model_d, src, dec, what="eval mode"), call(model_d, src, dec, what="eval mode")
    check_close(a, b, what="T5Model in eval mode must be deterministic", hint="dropout only when self.training")
    passed("T5Model matches T5ForConditionalGeneration: non-square sizes, padding, causality, loss, gradients")


def _check_model_gradients(model, hf, src, dec, attn) -> None:
    out, _, grads = student_autograd(module_gradients, model, src, dec, attention_mask=attn, what="T5Model")
    for p in hf.parameters():
        p.grad = None
    logits = hf(input_ids=src, decoder_input_ids=dec, attention_mask=attn).logits
    g = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0), dtype=logits.dtype)
    (logits * g).sum().backward()
    expected = state_from_hf({n: p.grad for n, p in hf.named_parameters() if p.grad is not None})
    check_close(out, logits.detach(), what="T5Model in train mode with dropout 0", **MODEL_TOL)
    for name, e in expected.items():
        got = grads.get(name)
        check_true(got is not None, what=f"gradient of {name}", expected="a gradient tensor", got=None,
                   hint="every parameter must be used, and no .detach() on the way")
        check_close(got, e, what=f"gradient of {name}", **GRAD_TOL)


# ---------------------------------------------------------------- part 7: greedy decoding
def _check_scripted(fn: Callable, vocab: int, eos_steps: list[int], max_new: int, what: str, **kwargs) -> None:
    B = len(eos_steps)
    src = torch.arange(B * 5).view(B, 5) % vocab
    try:
        got = on_student_side(scripted_greedy, fn, src, max_new, vocab, eos_steps, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{what}: not implemented yet") from None
    exp = reference_greedy(ScriptedModel(vocab, kwargs.get("eos_id", 1), eos_steps), src, max_new, **kwargs)
    check_type_long = got.dtype == torch.long
    check_true(check_type_long, what=f"{what}: token ids must be a long tensor", expected="torch.int64",
               got=str(got.dtype))
    check_equal(got.tolist(), exp.tolist(), what=what, hint=(
        "start from start_id; at each step call model(input_ids, tokens_so_far, attention_mask=attention_mask), "
        "append the argmax of the last position; after a sequence's EOS append pad_id; stop when every "
        "sequence has its EOS or after max_new_tokens tokens"))


def greedy_decode_examples(greedy_decode: Callable, T5Model: Callable) -> None:
    """A scripted model whose greedy path is known; then your T5Model against Hugging Face's generate."""
    _check_scripted(greedy_decode, 20, [4, 6], 10, "greedy_decode on a scripted model (EOS after 4 and 6 tokens)")
    _check_generate(greedy_decode, T5Model, 0, B=2, max_new=6)
    passed("greedy_decode follows the argmax path and matches Hugging Face's generate")


def _check_generate(greedy_decode: Callable, T5Model: Callable, seed: int, B: int, max_new: int,
                    padded: bool = False) -> None:
    cfg = T5Config(vocab_size=31, d_model=16, d_kv=6, n_heads=2, d_ff=24, n_layers=2, n_decoder_layers=1,
                   num_buckets=8, max_distance=12, dropout=0.0)
    model, hf = _student_model(T5Model, cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(2, 31, (B, 9), generator=gen)
    kwargs = {}
    if padded:
        mask = (torch.arange(9)[None, :] < torch.randint(3, 10, (B, 1), generator=gen)).long()
        src, kwargs = src.masked_fill(mask == 0, 0), {"attention_mask": mask}
    what = f"greedy_decode(your T5Model, {B} sources, max_new_tokens={max_new}{', padded' if padded else ''})"
    got = call(greedy_decode, model, src, max_new, what=what, **kwargs)
    with torch.no_grad():
        exp = hf.generate(input_ids=src, max_new_tokens=max_new, do_sample=False, num_beams=1, **kwargs)
    check_equal(got.tolist(), exp.tolist(), what=f"{what} vs T5ForConditionalGeneration.generate",
                hint="output = [start_id, greedy tokens…]; pad after EOS; if this fails but the scripted model "
                     "passes, re-run the T5Model tests")


def greedy_decode_hidden(greedy_decode: Callable, T5Model: Callable, seed: int = 77) -> None:
    """EOS at different steps, none before max_new_tokens, other special ids; Hugging Face generate."""
    gen = torch.Generator().manual_seed(seed)
    _check_scripted(greedy_decode, 23, [3, 9, 1, 5], 12, "greedy_decode, EOS at steps 3, 9, 1, 5")
    _check_scripted(greedy_decode, 23, [30, 40], 7, "greedy_decode with no EOS before max_new_tokens=7")
    _check_scripted(greedy_decode, 17, [2, 4, 6], 8, "greedy_decode(start_id=2, eos_id=5, pad_id=3)",
                    start_id=2, eos_id=5, pad_id=3)
    _check_scripted(greedy_decode, 17, [2], 0, "greedy_decode with max_new_tokens=0")
    for i in range(3):
        s = int(torch.randint(10**6, (1,), generator=gen))
        _check_generate(greedy_decode, T5Model, s, B=3 + i, max_new=8 + 3 * i, padded=i > 0)
    passed("greedy_decode matches the argmax path and Hugging Face's generate")
