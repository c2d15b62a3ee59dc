"""labsupport.gpt and labsupport.sampling against Hugging Face's GPT-2, and the graders of lab 6."""

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from labsupport.checks import CheckFailed, property_settings
from labsupport.checks import lab06 as check
from labsupport.gpt import (
    GPT,
    Block,
    ByteTokenizer,
    GPTConfig,
    PretrainConfig,
    evaluate,
    from_hf,
    generate,
    lm_loss,
    load_pretrained,
    pretrain,
    to_hf,
)
from labsupport.sampling import filter_logits, sample_next, top_k_filter, top_p_filter

F64 = torch.float64
CFG = GPTConfig(vocab_size=37, block_size=23, n_layer=2, n_head=4, n_embd=20, n_inner=28)


@pytest.fixture(scope="module")
def pair():
    """Our GPT with large random weights and the GPT2LMHeadModel it converts to (float64, eval)."""
    model = GPT(CFG).double()
    model.load_state_dict(check.random_gpt_state(CFG, torch.Generator().manual_seed(0)))
    return model.eval(), to_hf(model.eval()).double().eval()


def test_logits_loss_and_gradients_match_gpt2(pair):
    model, hf = pair
    idx = torch.randint(37, (3, 11), generator=torch.Generator().manual_seed(1))
    labels = idx.clone()
    labels[1, 6:] = -100
    logits, present = model(idx)
    out = hf(idx, labels=labels)
    torch.testing.assert_close(logits, out.logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lm_loss(logits, labels), out.loss.double(), rtol=1e-5, atol=1e-6)  # HF: float32 loss
    assert len(present) == 2 and present[0][0].shape == (3, 4, 11, 5)
    lm_loss(logits, labels).backward()
    hf.zero_grad()
    torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()).backward()
    ours = dict(model.named_parameters())
    for name, p in hf.named_parameters():
        g = p.grad.t() if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else p.grad
        torch.testing.assert_close(ours[name].grad, g, rtol=1e-9, atol=1e-12)
    model.zero_grad()


def test_weight_tying_and_hf_round_trip(pair):
    model, hf = pair
    assert model.lm_head.weight is model.transformer.wte.weight
    assert sum(p.numel() for p in model.parameters()) == hf.num_parameters()
    back = from_hf(hf)
    idx = torch.randint(37, (2, 9))
    torch.testing.assert_close(back(idx)[0], model(idx)[0])


def test_cache_fast_path_and_generation(pair):
    model, hf = pair
    idx = torch.randint(37, (3, 12), generator=torch.Generator().manual_seed(2))
    full, _ = model(idx)
    _, past = model(idx[:, :5])
    rest, _ = model(idx[:, 5:], past)
    torch.testing.assert_close(rest, full[:, 5:])
    fast = GPT(dataclasses.replace(CFG, fast=True)).double().eval()
    fast.load_state_dict(model.state_dict())
    torch.testing.assert_close(fast(idx)[0], full)
    _, past = fast(idx[:, :5])
    torch.testing.assert_close(fast(idx[:, 5:], past)[0], full[:, 5:])
    prompt = idx[:, :4]
    greedy = generate(model, prompt, 19, temperature=0)
    expected = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=19, do_sample=False,
                           pad_token_id=0)
    assert torch.equal(greedy, expected)
    for kw in (dict(temperature=1.0), dict(temperature=0.7, top_k=5, top_p=0.9)):
        a = generate(model, prompt, 30, generator=torch.Generator().manual_seed(3), **kw)  # beyond block_size
        b = generate(model, prompt, 30, generator=torch.Generator().manual_seed(3), use_cache=False, **kw)
        assert torch.equal(a, b) and a.shape == (3, 34)


def test_block_is_causal():
    torch.manual_seed(0)
    block = Block(CFG).eval()
    x = torch.randn(2, 7, 20)
    y = x.clone()
    y[:, 4:] += 1
    torch.testing.assert_close(block(x)[0][:, :4], block(y)[0][:, :4])


@given(st.integers(0, 10_000), st.integers(1, 12), st.floats(0.05, 0.99), st.floats(0.2, 3.0))
@property_settings(max_examples=40)
def test_filters_match_transformers_warpers(seed, k, p, temperature):
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(-4, 5, (4, 10), generator=g).to(F64) + 1e-3 * torch.randn(4, 10, generator=g, dtype=F64)
    z[0, :3] = 1.0  # ties
    torch.testing.assert_close(top_k_filter(z, k), check._hf_top_k(z, min(k, 10)))
    zp = check._nucleus_logits(g, 4, 10, p)
    torch.testing.assert_close(top_p_filter(zp, p), check._hf_top_p(zp, p))
    torch.testing.assert_close(filter_logits(zp, temperature, k, p), check._hf_chain(zp, temperature, k, p))


def test_sampling_examples():
    z = torch.tensor([[2.0, 1.0, 1.0, -1.0]])
    assert top_k_filter(z, 2).isinf().tolist() == [[False, False, False, True]]
    assert sample_next(z, temperature=0).tolist() == [0]
    a = sample_next(z.expand(50, 4), generator=torch.Generator().manual_seed(0))
    b = sample_next(z.expand(50, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.int64


@pytest.mark.parametrize("part", ["causal_block", "gpt_model", "lm_loss", "sampling", "kv_cache"])
def test_reference_passes_the_lab_checks(part):
    args = {"causal_block": (Block,), "gpt_model": (GPT,), "lm_loss": (lm_loss,),
            "sampling": (top_k_filter, top_p_filter, sample_next), "kv_cache": (generate, GPT)}[part]
    getattr(check, f"{part}_examples")(*args)
    getattr(check, f"{part}_hidden")(*args, seed=7)


def test_checks_reject_broken_variants():
    class ExactGeluBlock(Block):
        def __init__(self, config):
            super().__init__(config)
            self.mlp.forward = lambda x: self.mlp.c_proj(torch.nn.functional.gelu(self.mlp.c_fc(x)))

    with pytest.raises(CheckFailed, match="GPT2Block"):
        check.causal_block_examples(ExactGeluBlock)
    with pytest.raises(CheckFailed):
        check.lm_loss_hidden(lambda logits, labels, ignore_index=-100: torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=ignore_index))

    def top_p_wrong_side(logits, p, min_tokens_to_keep=1):
        kept = top_p_filter(logits, p, min_tokens_to_keep)
        return logits.masked_fill(torch.isfinite(kept), float("-inf")) if p and p < 1 else logits

    with pytest.raises(CheckFailed, match="wrong tokens kept"):
        check.sampling_examples(top_k_filter, top_p_wrong_side, sample_next)

    def never_cached(model, idx, n, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
        return generate(model, idx, n, temperature, top_k, top_p, generator, use_cache=False)

    with pytest.raises(CheckFailed, match="with the cache, the model reads the prompt once"):
        check.kv_cache_hidden(never_cached, GPT)


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    text = "ROMEO: café ♥\n"
    assert tok.decode(tok.encode(text)) == text and max(tok.encode(text)) < 256


def test_pretrain_is_deterministic():
    cfg = PretrainConfig(model=GPTConfig(256, 16, 1, 2, 8), steps=3, batch_size=2, warmup=1, eval_batches=1)
    a, sa = pretrain(cfg, seed=0, progress=False)
    b, sb = pretrain(cfg, seed=0, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert sa["val_loss"] == sb["val_loss"]


def test_shipped_checkpoint_loads_and_matches_its_card():
    model, tok = load_pretrained()
    assert not model.training and model.lm_head.weight is model.transformer.wte.weight
    from labsupport.checkpoints import load

    meta = load("gpt")[1]
    _, val = __import__("labsupport.gpt", fromlist=["shakespeare_ids"]).shakespeare_ids()
    loss = evaluate(model, val, meta["training"]["recipe"]["eval_batches"], meta["training"]["recipe"]["batch_size"])
    assert abs(loss - meta["training"]["val_loss"]) < 1e-3
    out = generate(model, torch.tensor([tok.encode("ROMEO:")]), 20, temperature=0)
    assert out.shape == (1, 26)


@pytest.mark.slow
def test_alternative_solutions_earn_full_marks():
    from autograder.course import lab
    from autograder.grade import grade_notebook
    from autograder.mutants import alternatives_of, mutant_notebook

    alternatives = alternatives_of("lab06_gpt")
    assert alternatives
    for alt in alternatives:
        result = grade_notebook("lab06_gpt", mutant_notebook(lab("lab06").source_notebook, alt), alt.name)
        lost = [(p.grade_id, p.reason[:300]) for p in result.auto_parts if p.points < p.max_points]
        assert not lost, lost
