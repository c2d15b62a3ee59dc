"""labsupport.rlhf against trl, GPT-2 and closed forms, and the graders of lab 11."""

import math

import pytest
import torch
import torch.nn.functional as F

from labsupport import rlhf
from labsupport.checks import CheckFailed
from labsupport.checks import lab11 as check
from labsupport.checks.lab06 import random_gpt_state
from labsupport.gpt import GPT, GPTConfig, to_hf

F64 = torch.float64


def test_reward_loss_closed_form_and_gradcheck():
    rc, rr = torch.tensor([2.0, 1.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    expected = (math.log1p(math.exp(-2)) + math.log(2)) / 2
    assert rlhf.reward_loss(rc, rr).item() == pytest.approx(expected, rel=1e-12)
    assert torch.isfinite(rlhf.reward_loss(torch.tensor([-1000.0]), torch.tensor([0.0])))
    x = (torch.randn(5, dtype=F64, requires_grad=True), torch.randn(5, dtype=F64, requires_grad=True))
    assert torch.autograd.gradcheck(rlhf.reward_loss, x)


def test_sequence_logprobs_match_gpt2_with_trl_masking():
    cfg = GPTConfig(vocab_size=31, block_size=16, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    model = GPT(cfg).double()
    model.load_state_dict(random_gpt_state(cfg, torch.Generator().manual_seed(0)))
    hf = to_hf(model.eval()).double().eval()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(31, (3, 10), generator=gen)
    pl, am = torch.tensor([4, 0, 9]), torch.tensor([[1] * 10, [1] * 6 + [0] * 4, [1] * 10])
    ours = rlhf.sequence_logprobs(model(ids)[0], ids, pl, am)
    labels = ids.masked_fill((torch.arange(10)[None] < pl[:, None]) | (am == 0), -100)
    logits = hf(ids).logits
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none")
    torch.testing.assert_close(ours, -nll.sum(-1))
    assert ours[2].item() == pytest.approx(logits[2, 8].log_softmax(-1)[ids[2, 9]].item())


def test_dpo_loss_matches_trl():
    gen = torch.Generator().manual_seed(2)
    x = [-20 + 5 * torch.randn(6, generator=gen, dtype=F64) for _ in range(4)]
    loss, rc, rr = rlhf.dpo_loss(*x, beta=0.3)
    expected, metrics = check.trl_dpo_loss(*x, 0.3)
    torch.testing.assert_close(loss, expected)
    assert rc.mean().item() == pytest.approx(metrics["rewards/chosen"][0])
    assert rr.mean().item() == pytest.approx(metrics["rewards/rejected"][0])


def test_pg_kl_gradient_is_reinforce_with_constant_advantage():
    gen = torch.Generator().manual_seed(3)
    lp = (-torch.rand(4, 5, generator=gen, dtype=F64)).requires_grad_(True)
    ref = lp.detach() + 0.3 * torch.randn(4, 5, generator=gen, dtype=F64)
    rewards, mask = torch.randn(4, generator=gen, dtype=F64), torch.ones(4, 5, dtype=F64)
    mask[1, 3:] = 0
    loss, kl = rlhf.pg_kl_loss(lp, ref, rewards, mask, 0.2)
    loss.backward()
    returns = rewards - 0.2 * ((lp.detach() - ref) * mask).sum(-1)
    torch.testing.assert_close(lp.grad, -(returns - returns.mean())[:, None] * mask / 4)
    torch.testing.assert_close(kl, ((lp.detach() - ref) * mask).sum(-1))


def test_kl_optimum_maximises_the_regularised_objective():
    ref = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    r = torch.tensor([0.0, 1.0, 2.0], dtype=F64)
    beta = 0.7
    best = rlhf.kl_optimum(ref, r, beta)

    def objective(p: torch.Tensor) -> float:
        return float((p * r).sum() - beta * (p * (p / ref).log()).sum())

    for _ in range(20):
        other = torch.softmax(torch.randn(3, dtype=F64), -1)
        assert objective(best) >= objective(other)


def test_checks_accept_the_reference():
    check.reward_loss_examples(rlhf.reward_loss)
    check.reward_loss_hidden(rlhf.reward_loss, seed=5)
    check.sequence_logprobs_examples(rlhf.sequence_logprobs)
    check.sequence_logprobs_hidden(rlhf.sequence_logprobs, seed=6)
    check.pg_kl_examples(rlhf.pg_kl_loss)
    check.pg_kl_hidden(rlhf.pg_kl_loss, seed=7)
    check.dpo_examples(rlhf.dpo_loss)
    check.dpo_hidden(rlhf.dpo_loss, seed=8)


def _no_padding_mask(logits, ids, prompt_lengths, attention_mask):
    return rlhf.sequence_logprobs(logits, ids, prompt_lengths, torch.ones_like(attention_mask))


def _kl_not_detached(logprobs, ref_logprobs, rewards, mask, beta):
    kl = ((logprobs - ref_logprobs) * mask).sum(-1)
    returns = rewards - beta * kl
    return -((returns - returns.mean()) * (logprobs * mask).sum(-1)).mean(), kl.detach()


def _dpo_swapped(pc, pr, rc, rr, beta=0.1):
    return rlhf.dpo_loss(pr, pc, rr, rc, beta)


@pytest.mark.parametrize("hidden, broken", [
    (check.reward_loss_hidden, lambda rc, rr: -torch.log(torch.sigmoid(rc - rr)).mean()),
    (check.sequence_logprobs_hidden, _no_padding_mask),
    (check.pg_kl_hidden, _kl_not_detached),
    (check.dpo_hidden, _dpo_swapped),
])
def test_checks_reject_broken_variants(hidden, broken):
    with pytest.raises(CheckFailed):
        hidden(broken)


def test_experiment_helpers_are_deterministic():
    gen = torch.Generator().manual_seed(0)
    cfg = GPTConfig(vocab_size=256, block_size=32, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg).eval()
    data = torch.randint(256, (500,), generator=gen)
    prompts = rlhf.random_prompts(data, 12, 4, gen)
    p, c, r = rlhf.preference_pairs(model, prompts, 6, gen)
    assert p.shape[0] == c.shape[0] == r.shape[0] <= 12 and c.shape[1] == 6
    assert bool((rlhf.caps_reward(c) > rlhf.caps_reward(r)).all())
