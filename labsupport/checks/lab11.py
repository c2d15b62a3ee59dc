"""Named checks for lab 11 (RLHF). Test cells call these and nothing else.

Oracles: closed forms on hand-computed cases; ``trl``'s DPO loss (``DPOTrainer._compute_loss`` with
``loss_type="sigmoid"``, called on a stub trainer whose "model" returns the given log-probabilities,
see :func:`trl_dpo_loss`); Hugging Face's ``GPT2LMHeadModel`` (float64, seeded weights copied in,
non-square sizes) for the logits whose completion log-probabilities are summed, masked the way
``trl`` masks them (labels ``-100`` on the prompt and the padding); autograd gradients compared with
the closed-form gradients, and ``torch.autograd.gradcheck`` in float64.

The student's functions may live in another process (the autograder's sandbox): anything that needs
autograd through them runs next to them through :func:`labsupport.checks.on_student_side` with the
trusted helpers defined here (:func:`loss_gradients`, :func:`run_gradcheck`).
"""

from __future__ import annotations

import collections
import math
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_dtype,
    check_shape,
    check_true,
    on_student_side,
    passed,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.checks.lab06 import hf_lm, random_gpt_state
from labsupport.gpt import GPTConfig

F64 = torch.float64
NO_GRAD_HINT = "use only differentiable tensor operations on the path to the loss: no .item(), .tolist(), .detach()"


# ---------------------------------------------------------------- helpers that run next to the student's code
def loss_gradients(fn: Callable, *inputs: torch.Tensor, **kwargs: Any) -> tuple[Any, list[torch.Tensor | None], list]:
    """``fn(*inputs, **kwargs)`` and the gradients of its first output (summed) with respect to every
    floating-point input; also, for each further tensor output, whether it carries a gradient."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*leaves, **kwargs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    loss = outs[0]
    if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
        raise CheckFailed("the loss is not connected to its inputs by autograd", "a tensor with a grad_fn",
                          type(loss).__name__ if not isinstance(loss, torch.Tensor) else "a tensor without one",
                          NO_GRAD_HINT)
    loss.sum().backward()
    grads = [x.grad if x.is_floating_point() else None for x in leaves]
    tracked = [bool(isinstance(o, torch.Tensor) and o.requires_grad) for o in outs[1:]]
    return [o.detach() if isinstance(o, torch.Tensor) else o for o in outs], grads, tracked


def run_gradcheck(fn: Callable, *inputs: torch.Tensor, **kwargs: Any) -> bool:
    """``torch.autograd.gradcheck`` of the first output of ``fn`` (float64 inputs, all differentiable)."""
    leaves = tuple(x.detach().clone().requires_grad_(True) for x in inputs)

    def first(*xs: torch.Tensor) -> torch.Tensor:
        out = fn(*xs, **kwargs)
        return out[0] if isinstance(out, tuple | list) else out

    return bool(torch.autograd.gradcheck(first, leaves, eps=1e-6, atol=1e-6, raise_exception=False))


def _grads(fn: Callable, *inputs: torch.Tensor, what: str, **kwargs: Any) -> tuple[list, list, list]:
    try:
        return on_student_side(loss_gradients, fn, *inputs, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{what}: not implemented yet",
                          hint="replace `raise NotImplementedError()` with your code") from None


def _check_grad(got: torch.Tensor | None, expected: torch.Tensor, what: str, hint: str | None = None) -> None:
    check_true(got is not None, what=f"{what}: no gradient", expected="a gradient tensor", got=None, hint=NO_GRAD_HINT)
    check_close(got, expected, what=what, hint=hint)


def _check_no_grad(got: torch.Tensor | None, what: str, hint: str) -> None:
    check_true(got is None or bool((got == 0).all()), what=what, expected="no gradient (None or zeros)",
               got="a non-zero gradient", hint=hint)


def _scalar(value: Any, what: str, hint: str) -> None:
    check_shape(value, (), what=what, hint=hint)


# ---------------------------------------------------------------- part 1: the reward-model loss
def _ref_reward_loss(rc: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid(rc - rr).mean()


REWARD_HINT = "mean over the pairs of −log σ(r_chosen − r_rejected); F.logsigmoid keeps it finite"


def reward_loss_examples(reward_loss: Callable) -> None:
    """The hand-computed example of the lab: margins 2 and 0."""
    got = call(reward_loss, torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0]), what="reward_loss([2, 1], [0, 1])")
    _scalar(got, "reward_loss([2, 1], [0, 1])", "return the mean over the pairs: a scalar tensor")
    expected = (math.log1p(math.exp(-2.0)) + math.log(2.0)) / 2
    check_close(got, torch.tensor(expected), what="reward_loss([2, 1], [0, 1]) = (−log σ(2) − log σ(0)) / 2 ≈ 0.4100",
                hint=REWARD_HINT)
    passed("reward_loss gives the hand-computed value")


def reward_loss_hidden(reward_loss: Callable, seed: int = 111) -> None:
    """Random pairs (several batch sizes), extreme margins, float32, gradients (closed form, gradcheck)."""
    gen = torch.Generator().manual_seed(seed)
    for B in (1, 5, 13):
        rc, rr = 3 * torch.randn(B, generator=gen, dtype=F64), 3 * torch.randn(B, generator=gen, dtype=F64)
        got = call(reward_loss, rc, rr, what=f"reward_loss on {B} pairs")
        _scalar(got, f"reward_loss on {B} pairs", "a scalar tensor: the mean over the pairs")
        check_close(got, _ref_reward_loss(rc, rr), what=f"reward_loss on {B} random pairs (float64)", hint=REWARD_HINT)
    rc = torch.tensor([-800.0, 800.0, 0.0, 50.0], dtype=F64)
    rr = torch.tensor([0.0, 0.0, 0.0, -50.0], dtype=F64)
    check_close(call(reward_loss, rc, rr, what="reward_loss with margins −800, 800, 0, 100"),
                torch.tensor((800.0 + 0.0 + math.log(2.0) + 0.0) / 4, dtype=F64),
                what="reward_loss with margins −800, 800, 0, 100 (−log σ(−800) = 800, −log σ(800) ≈ 0)",
                hint="−log σ(d) must stay finite and exact for large |d|: F.logsigmoid(d) and softplus(−d) compute it "
                     "stably")
    rc32, rr32 = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    got32 = call(reward_loss, rc32, rr32, what="reward_loss in float32")
    check_dtype(got32, torch.float32, what="reward_loss on float32 rewards", hint="keep the dtype of the rewards")
    # gradients: ∂L/∂r_c = −(1 − σ(d)) / B = −∂L/∂r_r
    rc, rr = 2 * torch.randn(7, generator=gen, dtype=F64), 2 * torch.randn(7, generator=gen, dtype=F64)
    outs, (g_c, g_r), _ = _grads(reward_loss, rc, rr, what="reward_loss(r_chosen, r_rejected)")
    expected = -(1 - torch.sigmoid(rc - rr)) / 7
    _check_grad(g_c, expected, "gradient of reward_loss with respect to r_chosen", "∂L/∂r_chosen = −(1 − σ(d)) / B")
    _check_grad(g_r, -expected, "gradient of reward_loss with respect to r_rejected", "∂L/∂r_rejected = (1 − σ(d)) / B")
    ok = call(on_student_side, run_gradcheck, reward_loss, rc[:4], rr[:4], what="gradcheck(reward_loss)")
    check_true(ok, what="torch.autograd.gradcheck(reward_loss) in float64", expected=True, got=ok,
               hint="the analytical gradient must match finite differences")
    passed("reward_loss: values, extreme margins, dtype and gradients match −log σ(r_chosen − r_rejected)")


# ---------------------------------------------------------------- part 2: sequence log-probabilities
def _ref_seq_logprobs(logits: torch.Tensor, ids: torch.Tensor, prompt_lengths: torch.Tensor,
                      attention_mask: torch.Tensor) -> torch.Tensor:
    """trl's recipe: labels = ids with −100 on the prompt and the padding; shifted cross-entropy summed."""
    T = ids.size(1)
    prompt = torch.arange(T)[None, :] < prompt_lengths[:, None]
    labels = ids.masked_fill(prompt | (attention_mask == 0), -100)
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none")
    return -nll.sum(-1)  # (B,)


SEQ_HINT = ("logits[:, t] predicts input_ids[:, t+1]; sum log-softmax at the next token over the positions "
            "t+1 ≥ prompt_length that are not padding")


def _batch(gen: torch.Generator, B: int, T: int, V: int, prompt_lengths: list[int], lengths: list[int]):
    ids = torch.randint(V, (B, T), generator=gen)  # padding positions hold random ids on purpose
    attention_mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, torch.tensor(prompt_lengths), attention_mask


def sequence_logprobs_examples(sequence_logprobs: Callable) -> None:
    """Uniform logits (closed form), then a GPT-2 with random weights against the trl-style oracle."""
    V = 5
    ids, pl, am = torch.tensor([[1, 2, 3, 4, 0], [4, 3, 2, 1, 0]]), torch.tensor([2, 1]), torch.tensor(
        [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    got = call(sequence_logprobs, torch.zeros(2, 5, V, dtype=F64), ids, pl, am,
               what="sequence_logprobs(uniform logits)")
    check_shape(got, (2,), what="sequence_logprobs", hint="one number per sequence: shape (B,)")
    check_close(got, torch.tensor([-2 * math.log(V), -4 * math.log(V)], dtype=F64),
                what="uniform logits over 5 tokens: row 0 has 2 completion tokens, row 1 has 4", hint=SEQ_HINT)
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=1, n_head=2, n_embd=12)
    hf = hf_lm(cfg, random_gpt_state(cfg, torch.Generator().manual_seed(0)))
    ids, pl, am = _batch(torch.Generator().manual_seed(1), 3, 9, 23, [3, 1, 4], [9, 6, 7])
    logits = hf(ids).logits.detach()
    check_close(call(sequence_logprobs, logits, ids, pl, am, what="sequence_logprobs(GPT-2 logits)"),
                _ref_seq_logprobs(logits, ids, pl, am), what="sequence_logprobs of GPT-2's logits (float64)",
                hint=SEQ_HINT)
    passed("sequence_logprobs sums the completion tokens' log-probabilities")


def sequence_logprobs_hidden(sequence_logprobs: Callable, seed: int = 112) -> None:
    """Several shapes, prompt lengths 0 and T, full rows, float32, gradients with respect to the logits."""
    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=37, block_size=20, n_layer=2, n_head=3, n_embd=15, n_inner=22)
    hf = hf_lm(cfg, random_gpt_state(cfg, torch.Generator().manual_seed(seed + 1)))
    cases = [(4, 11, [5, 2, 0, 3], [11, 8, 6, 4]),  # prompt length 0: the first token is still never predicted
             (2, 13, [13, 4], [13, 13]),  # a prompt that fills the row: nothing to sum
             (5, 7, [1, 1, 2, 6, 3], [7, 2, 5, 7, 3])]  # a row with nothing after its prompt
    for B, T, pl, lengths in cases:
        ids, p, am = _batch(gen, B, T, 37, pl, lengths)
        logits = hf(ids).logits.detach()
        got = call(sequence_logprobs, logits, ids, p, am, what=f"sequence_logprobs, B={B}, T={T}")
        check_shape(got, (B,), what=f"sequence_logprobs, B={B}, T={T}", hint="one number per sequence: shape (B,)")
        check_close(got, _ref_seq_logprobs(logits, ids, p, am),
                    what=f"sequence_logprobs vs GPT2LMHeadModel, prompt lengths {pl}, lengths {lengths}",
                    hint=SEQ_HINT)
    # random logits, float32, sharper distributions
    ids, p, am = _batch(gen, 3, 10, 29, [2, 5, 1], [10, 7, 9])
    logits = 4 * torch.randn(3, 10, 29, generator=gen)
    got32 = call(sequence_logprobs, logits, ids, p, am, what="sequence_logprobs in float32")
    check_dtype(got32, torch.float32, what="sequence_logprobs of float32 logits", hint="keep the dtype of the logits")
    check_close(got32, _ref_seq_logprobs(logits, ids, p, am), what="sequence_logprobs of float32 logits",
                hint=SEQ_HINT)
    # gradients with respect to the logits: softmax − one-hot on counted positions, zero elsewhere
    logits = 2 * torch.randn(3, 10, 29, generator=gen, dtype=F64)
    outs, grads, _ = _grads(sequence_logprobs, logits, ids, p, am, what="sequence_logprobs")
    leaf = logits.clone().requires_grad_(True)
    _ref_seq_logprobs(leaf, ids, p, am).sum().backward()
    check_true(outs[0].shape == (3,), what="sequence_logprobs: shape", expected=(3,), got=tuple(outs[0].shape))
    _check_grad(grads[0], leaf.grad, "gradient of sequence_logprobs(...).sum() with respect to the logits",
                "only the logits at positions that predict a completion token receive a gradient")
    passed("sequence_logprobs matches GPT-2 with trl's masking: shapes, edge prompts, padding, dtype, gradients")


# ---------------------------------------------------------------- part 3: policy gradient with a KL penalty
def _ref_pg(logprobs, ref_logprobs, rewards, mask, beta):
    m = mask.to(logprobs.dtype)
    kl = ((logprobs - ref_logprobs).detach() * m).sum(-1)
    returns = rewards.detach() - beta * kl
    adv = returns - returns.mean()
    return -(adv * (logprobs * m).sum(-1)).mean(), kl, adv


PG_HINT = ("kl = Σ_t mask·(log π − log π_ref); R = reward − β·kl; A = R − mean(R); "
           "loss = −mean(A · Σ_t mask·log π)")


def _pg_inputs(gen: torch.Generator, B: int, T: int, lengths: list[int], dtype=F64):
    logprobs = -3 * torch.rand(B, T, generator=gen, dtype=dtype)
    ref = logprobs + 0.5 * torch.randn(B, T, generator=gen, dtype=dtype)
    rewards = torch.randn(B, generator=gen, dtype=dtype)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).to(dtype)
    return logprobs, ref, rewards, mask


def _check_pg(pg_kl_loss: Callable, inputs, beta: float, label: str) -> None:
    res = call(pg_kl_loss, *inputs, beta, what=f"pg_kl_loss, {label}")
    check_true(isinstance(res, tuple | list) and len(res) == 2, what=f"pg_kl_loss, {label}: must return (loss, kl)",
               expected="a pair (loss, kl)", got=type(res).__name__)
    loss, kl = res
    exp_loss, exp_kl, _ = _ref_pg(*inputs, beta)
    check_shape(kl, exp_kl.shape, what=f"pg_kl_loss, {label}: kl", hint="one KL estimate per sequence: shape (B,)")
    check_close(kl, exp_kl, what=f"pg_kl_loss, {label}: kl per sequence",
                hint="kl = Σ_t mask·(log π − log π_ref), summed over the completion tokens only")
    _scalar(loss, f"pg_kl_loss, {label}: loss", "a scalar tensor")
    check_close(loss, exp_loss, what=f"pg_kl_loss, {label}: loss", hint=PG_HINT)


def pg_kl_examples(pg_kl_loss: Callable) -> None:
    """The worked example of the lab, then one random batch."""
    lp = torch.log(torch.tensor([[0.5, 0.5], [0.5, 1.0]], dtype=F64))
    ref = torch.log(torch.tensor([[0.25, 0.5], [0.5, 0.5]], dtype=F64))
    rewards, mask = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=F64)
    loss, kl = call(pg_kl_loss, lp, ref, rewards, mask, 0.5, what="pg_kl_loss(worked example)")
    check_close(kl, torch.tensor([math.log(2), 0.0], dtype=F64),
                what="worked example: kl = [log 2, 0] (row 1's second token is padding)",
                hint="kl = Σ_t mask·(log π − log π_ref)")
    # R = [1 − 0.5 log 2, 0]; A = ±(1 − 0.5 log 2)/2; Σ mask·log π = [2 log 0.5, log 0.5]
    a = (1 - 0.5 * math.log(2)) / 2
    expected = -(a * 2 * math.log(0.5) - a * math.log(0.5)) / 2  # 0.1132
    check_close(loss, torch.tensor(expected, dtype=F64), what="worked example: loss", hint=PG_HINT)
    _check_pg(pg_kl_loss, _pg_inputs(torch.Generator().manual_seed(0), 4, 6, [6, 3, 5, 1]), 0.2, "random batch")
    passed("pg_kl_loss gives the worked example and a random batch")


def pg_kl_hidden(pg_kl_loss: Callable, seed: int = 113) -> None:
    """Several β and shapes, float32, and the gradients: only through log π, with the constant advantage."""
    gen = torch.Generator().manual_seed(seed)
    for B, T, lengths, beta in ((5, 8, [8, 2, 5, 7, 3], 0.1), (3, 12, [12, 12, 1], 1.0), (7, 4, [4] * 7, 0.0)):
        _check_pg(pg_kl_loss, _pg_inputs(gen, B, T, lengths), beta, f"B={B}, T={T}, β={beta}")
    inputs32 = _pg_inputs(gen, 4, 5, [5, 4, 3, 2], torch.float32)
    loss32, _ = call(pg_kl_loss, *inputs32, 0.3, what="pg_kl_loss in float32")
    check_dtype(loss32, torch.float32, what="pg_kl_loss on float32 inputs", hint="keep the dtype of the inputs")
    for beta in (0.05, 0.7):
        inputs = _pg_inputs(gen, 6, 9, [9, 4, 6, 2, 9, 7])
        outs, grads, _ = _grads(pg_kl_loss, *inputs, beta=beta, what=f"pg_kl_loss, β={beta}")
        _, _, adv = _ref_pg(*inputs, beta)
        expected = -adv[:, None] * inputs[3] / 6  # ∂loss/∂log π_t = −A·mask_t / B
        _check_grad(grads[0], expected, f"gradient of pg_kl_loss with respect to log π (β={beta})",
                    "the advantage A = R − mean(R) is a constant (no gradient through the KL term of R or the "
                    "baseline): ∂loss/∂log π_t = −A·mask_t / B")
        _check_no_grad(grads[1], f"gradient of pg_kl_loss with respect to log π_ref (β={beta})",
                       "the reference model is frozen: no gradient may reach its log-probabilities")
        _check_no_grad(grads[2], f"gradient of pg_kl_loss with respect to the rewards (β={beta})",
                       "the reward is a constant for the policy gradient")
    passed("pg_kl_loss: KL estimate, penalised advantage, baseline and gradients as REINFORCE with a KL penalty")


# ---------------------------------------------------------------- part 4: DPO
def trl_dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                 ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """``trl``'s DPO loss (``DPOTrainer._compute_loss``, ``loss_type="sigmoid"``, reverse KL) on given
    sequence log-probabilities, and the metrics it logs (``rewards/chosen`` …).

    trl 1.16 computes the loss inside the trainer from the model's per-token log-probabilities; here a
    stub trainer (no model, no accelerator) feeds it the given numbers: the "model" returns per-token
    log-probabilities whose sum over the completion is ``policy_chosen`` / ``policy_rejected``, and the
    reference log-probabilities are passed as precomputed (``precompute_ref_logps``).
    """
    from trl import DPOTrainer

    B, L = policy_chosen.shape[0], 3
    per_token = torch.zeros(2 * B, L, dtype=policy_chosen.dtype)
    per_token[:, 0] = torch.cat([policy_chosen, policy_rejected])  # trl's batch is [chosen; rejected]
    out = types.SimpleNamespace(log_probs=per_token, is_top1=torch.zeros(2 * B, L, dtype=torch.bool),
                                entropy=torch.zeros_like(per_token), mean_logits=torch.zeros_like(per_token))

    def model(**kwargs: Any) -> types.SimpleNamespace:
        return out

    model.training = False
    accelerator = types.SimpleNamespace(device="cpu", gather=lambda t: t, gather_for_metrics=lambda t: t)
    stub = types.SimpleNamespace(
        model=model, accelerator=accelerator, aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=["sigmoid"], loss_weights=[1.0], beta=beta, label_smoothing=0.0,
        use_weighting=False, _total_train_tokens=0, _tp_size=1,
        _metrics={"train": collections.defaultdict(list), "eval": collections.defaultdict(list)})
    ones = torch.ones(2 * B, L + 1, dtype=torch.long)
    inputs = {"input_ids": torch.zeros_like(ones), "attention_mask": ones, "completion_mask": ones,
              "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    loss = DPOTrainer._compute_loss(stub, model, inputs, False)
    return loss, dict(stub._metrics["eval"])


DPO_HINT = ("loss = mean of −log σ(β·[(log π_c − log π_ref,c) − (log π_r − log π_ref,r)]); "
            "the implicit rewards are β·(log π − log π_ref) of each completion")


def _check_dpo(dpo_loss: Callable, inputs: list[torch.Tensor], beta: float, label: str) -> None:
    res = call(dpo_loss, *inputs, beta=beta, what=f"dpo_loss, {label}")
    check_true(isinstance(res, tuple | list) and len(res) == 3,
               what=f"dpo_loss, {label}: must return (loss, chosen_rewards, rejected_rewards)",
               expected="a triple", got=type(res).__name__)
    loss, rc, rr = res
    expected, metrics = trl_dpo_loss(*inputs, beta)
    _scalar(loss, f"dpo_loss, {label}: loss", "a scalar tensor: the mean over the pairs")
    check_close(loss, expected.to(loss.dtype), what=f"dpo_loss vs trl's DPO loss (sigmoid), {label}", hint=DPO_HINT)
    pc, pr, refc, refr = inputs
    for name, got, exp in (("chosen", rc, beta * (pc - refc)), ("rejected", rr, beta * (pr - refr))):
        check_shape(got, exp.shape, what=f"dpo_loss, {label}: {name}_rewards", hint="one reward per pair: shape (B,)")
        check_close(got, exp, what=f"dpo_loss, {label}: {name}_rewards = β·(log π − log π_ref)", hint=DPO_HINT)
    check_close(rc.mean(), torch.tensor(metrics["rewards/chosen"][0], dtype=rc.dtype),
                what=f"dpo_loss, {label}: mean chosen reward vs trl's logged rewards/chosen")


def dpo_examples(dpo_loss: Callable) -> None:
    """Zero log-ratios give log 2; a hand-computed pair; then trl on a random batch."""
    z = torch.zeros(3, dtype=F64)
    loss, rc, rr = call(dpo_loss, z, z, z, z, beta=0.1, what="dpo_loss(zeros)")
    check_close(loss, torch.tensor(math.log(2), dtype=F64), what="dpo_loss with all log-ratios 0 = log 2",
                hint=DPO_HINT)
    one = torch.tensor([-4.0], dtype=F64)  # chosen log-ratio +2, rejected −2, β = 0.5 → −log σ(2)
    loss, rc, rr = call(dpo_loss, one + 2, one - 2, one, one, beta=0.5, what="dpo_loss(hand-computed pair)")
    check_close(loss, torch.tensor(math.log1p(math.exp(-2.0)), dtype=F64),
                what="dpo_loss with log-ratios +2 (chosen) and −2 (rejected), β=0.5: −log σ(2)", hint=DPO_HINT)
    check_close(rc, torch.tensor([1.0], dtype=F64), what="chosen reward β·(+2) = 1", hint=DPO_HINT)
    check_close(rr, torch.tensor([-1.0], dtype=F64), what="rejected reward β·(−2) = −1", hint=DPO_HINT)
    gen = torch.Generator().manual_seed(0)
    _check_dpo(dpo_loss, [-20 + 5 * torch.randn(4, generator=gen, dtype=F64) for _ in range(4)], 0.1, "random batch")
    passed("dpo_loss gives the hand-computed values and trl's loss")


def dpo_hidden(dpo_loss: Callable, seed: int = 114) -> None:
    """trl on several β and batch sizes, extreme margins, float32, gradients (closed form, gradcheck),
    detached implicit rewards."""
    gen = torch.Generator().manual_seed(seed)
    for B, beta in ((1, 0.1), (6, 0.5), (9, 2.0)):
        inputs = [-30 + 8 * torch.randn(B, generator=gen, dtype=F64) for _ in range(4)]
        _check_dpo(dpo_loss, inputs, beta, f"B={B}, β={beta}")
    big = [torch.tensor([-10.0, -900.0], dtype=F64), torch.tensor([-900.0, -10.0], dtype=F64),
           torch.tensor([-50.0, -50.0], dtype=F64), torch.tensor([-50.0, -50.0], dtype=F64)]
    check_close(call(dpo_loss, *big, beta=1.0, what="dpo_loss with margins ±890")[0],
                torch.tensor(890.0 / 2, dtype=F64), what="dpo_loss with margins +890 and −890, β=1",
                hint="compute −log σ(x) with F.logsigmoid: it stays finite for large |x|")
    inputs32 = [-20 + 5 * torch.randn(5, generator=gen) for _ in range(4)]
    loss32 = call(dpo_loss, *inputs32, beta=0.3, what="dpo_loss in float32")[0]
    check_dtype(loss32, torch.float32, what="dpo_loss on float32 log-probabilities",
                hint="keep the dtype of the inputs")
    B, beta = 7, 0.4
    inputs = [-25 + 6 * torch.randn(B, generator=gen, dtype=F64) for _ in range(4)]
    outs, grads, tracked = _grads(dpo_loss, *inputs, beta=beta, what="dpo_loss")
    pc, pr, refc, refr = inputs
    w = beta * (1 - torch.sigmoid(beta * ((pc - refc) - (pr - refr)))) / B
    for n, (name, sign) in enumerate((("log π(chosen)", -1), ("log π(rejected)", 1), ("log π_ref(chosen)", 1),
                                      ("log π_ref(rejected)", -1))):
        _check_grad(grads[n], sign * w, f"gradient of dpo_loss with respect to {name}",
                    "∂loss/∂log π_c = −β·(1 − σ(β·margin))/B; the other three follow from the signs in the margin")
    check_true(tracked == [False, False], what="dpo_loss: the implicit rewards must be detached (as trl logs them)",
               expected=[False, False], got=tracked, hint="return β·(log π − log π_ref).detach()")
    ok = call(on_student_side, run_gradcheck, dpo_loss, *(x[:3] for x in inputs), beta=beta, what="gradcheck(dpo_loss)")
    check_true(ok, what="torch.autograd.gradcheck(dpo_loss) in float64", expected=True, got=ok,
               hint="the analytical gradient must match finite differences")
    passed("dpo_loss matches trl's sigmoid DPO loss: values, rewards, extreme margins, dtype, gradients")
