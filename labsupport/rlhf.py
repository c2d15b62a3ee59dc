"""RLHF in miniature: the reward-model loss, sequence log-probabilities, a policy-gradient loss with a
KL penalty to a frozen reference, and the DPO loss (chapter 11).

Every function works on tensors a causal language model produces (``logits (B, T, V)``) or on the
per-sequence / per-token log-probabilities computed from them, so the same code tunes the course's
GPT (:mod:`labsupport.gpt`) or any Hugging Face causal LM.

Conventions (the same as ``trl``): a batch of *B* sequences, each a prompt followed by a completion,
right-padded to length *T*; ``prompt_lengths (B,)`` counts the prompt tokens of each row and
``attention_mask (B, T)`` is 1 on real tokens and 0 on padding. Only completion tokens count.

>>> r_chosen, r_rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
>>> round(float(reward_loss(r_chosen, r_rejected)), 4)  # mean of -log σ(2) and -log σ(0)
0.41
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------- the reward model
def reward_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The pairwise (Bradley–Terry) loss ``mean(−log σ(r_chosen − r_rejected))`` over ``(B,)`` pairs.

    ``logsigmoid`` keeps it finite for any margin (``−log σ(−100) = 100``, not ``inf``).

    >>> round(float(reward_loss(torch.tensor([-100.0]), torch.tensor([0.0]))), 2)
    100.0
    """
    return -F.logsigmoid(r_chosen - r_rejected).mean()


@dataclass
class RewardModelConfig:
    """A bag-of-bytes reward model: mean byte embedding → MLP → one score."""

    vocab_size: int = 256
    n_embd: int = 32
    hidden: int = 64


class RewardModel(nn.Module):
    """``r(ids, mask) (B,)``: the score of each sequence from the mean embedding of its masked tokens.

    Deliberately tiny (it sees which bytes occur, not their order), so it trains in a second.

    >>> rm = RewardModel(RewardModelConfig())
    >>> rm(torch.randint(256, (3, 7)), torch.ones(3, 7)).shape
    torch.Size([3])
    """

    def __init__(self, config: RewardModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(self.wte.weight.dtype).unsqueeze(-1)  # (B, T, 1)
        pooled = (self.wte(ids) * m).sum(1) / m.sum(1).clamp_min(1)  # (B, n_embd)
        return self.mlp(pooled).squeeze(-1)  # (B,)


# ---------------------------------------------------------------- log-probabilities of completions
def completion_mask(prompt_lengths: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` bool: True on the completion tokens (position ≥ prompt length, not padding).

    >>> completion_mask(torch.tensor([2, 1]), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])).int().tolist()
    [[0, 0, 1, 0], [0, 1, 1, 1]]
    """
    T = attention_mask.size(1)
    pos = torch.arange(T, device=attention_mask.device)  # (T,)
    return (pos[None, :] >= prompt_lengths[:, None]) & attention_mask.bool()  # (B, T)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``(B, T−1)``: ``log p(input_ids[:, t+1] | input_ids[:, :t+1])`` read off the (shifted) logits."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T−1, V): position t predicts token t+1
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T−1)


def sequence_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, prompt_lengths: torch.Tensor,
                      attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)``: ``Σ_t log p(token_t | tokens_<t)`` over the completion tokens of each row.

    The prompt and the padding do not count; the first token of a row is never predicted.

    >>> logits = torch.zeros(1, 4, 5)  # uniform over 5 tokens
    >>> out = sequence_logprobs(logits, torch.tensor([[1, 2, 3, 0]]), torch.tensor([2]), torch.tensor([[1, 1, 1, 0]]))
    >>> round(float(out[0]), 4) == round(-torch.log(torch.tensor(5.0)).item(), 4)  # one completion token
    True
    """
    mask = completion_mask(prompt_lengths, attention_mask)[:, 1:]  # (B, T−1): the predicted tokens that count
    return (token_logprobs(logits, input_ids) * mask).sum(-1)  # (B,)


# ---------------------------------------------------------------- policy gradient with a KL penalty
def pg_kl_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor,
               beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE with a batch-mean baseline on the KL-penalised reward; returns ``(loss, kl (B,))``.

    ``logprobs``, ``ref_logprobs``, ``mask``: ``(B, T)`` per-token log-probabilities of the *sampled*
    tokens under the policy (with gradient) and the frozen reference, and 1 on the completion tokens;
    ``rewards (B,)`` one score per sequence. With the per-token estimate ``kl_t = log π − log π_ref``::

        kl = Σ_t mask·kl_t,   R = reward − β·kl,   A = R − mean(R),   loss = −mean(A · Σ_t mask·log π)

    ``R``, the baseline and ``A`` are constants (no gradient through reward, reference or baseline),
    so ``∇ loss`` is the REINFORCE estimate of ``−∇ E[reward − β·KL]``.

    >>> lp = torch.zeros(2, 3, requires_grad=True)
    >>> loss, kl = pg_kl_loss(lp, torch.zeros(2, 3), torch.tensor([1.0, 0.0]), torch.ones(2, 3), 0.1)
    >>> loss.backward(); lp.grad[:, 0].tolist()  # A = (0.5, −0.5); ∂/∂ log π = −A / B
    [-0.25, 0.25]
    """
    m = mask.to(logprobs.dtype)
    kl = ((logprobs - ref_logprobs).detach() * m).sum(-1)  # (B,)
    returns = rewards.detach() - beta * kl  # (B,)
    advantages = returns - returns.mean()  # (B,): the baseline is a constant
    return -(advantages * (logprobs * m).sum(-1)).mean(), kl


# ---------------------------------------------------------------- DPO
def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss (``trl``'s ``sigmoid`` loss) from sequence log-probabilities ``(B,)`` of the chosen
    and rejected completions under the policy and the reference. Returns
    ``(loss, chosen_rewards, rejected_rewards)``: the mean of
    ``−log σ(β·[(log π_c − log π_ref,c) − (log π_r − log π_ref,r)])`` and the implicit rewards
    ``β·(log π − log π_ref)`` (detached, as ``trl`` logs them).

    >>> z = torch.zeros(3)
    >>> loss, rc, rr = dpo_loss(z, z, z, z)
    >>> round(float(loss), 4), rc.tolist()  # −log σ(0) = log 2
    (0.6931, [0.0, 0.0, 0.0])
    """
    chosen_logratios = policy_chosen - ref_chosen  # (B,)
    rejected_logratios = policy_rejected - ref_rejected  # (B,)
    loss = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def kl_optimum(ref_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """``π*(y) ∝ π_ref(y)·exp(r(y)/β)``: the maximiser of ``E_π[r] − β·KL(π‖π_ref)`` over a finite set.

    >>> [round(p, 3) for p in kl_optimum(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0]), 1.0).tolist()]
    [0.269, 0.731]
    """
    return torch.softmax(torch.log(ref_probs) + rewards / beta, dim=-1)


# ---------------------------------------------------------------- the experiment: a programmatic preference
def caps_reward(completions: torch.Tensor) -> torch.Tensor:
    """The "true" preference of the experiments: the fraction of a completion's bytes that are capitals A–Z.

    ``completions (B, L)`` byte ids → ``(B,)`` in [0, 1]. Shakespeare's speaker names ("ROMEO:") and
    line starts give the pre-trained GPT a little of this style; tuning can give it more.

    >>> [round(r, 4) for r in caps_reward(torch.tensor([list(b"ROMEO: hi"), list(b"abcdefghi")])).tolist()]
    [0.5556, 0.0]
    """
    return ((completions >= ord("A")) & (completions <= ord("Z"))).float().mean(-1)


def random_prompts(data: torch.Tensor, n: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """``(n, length)`` windows of ``data`` at random offsets (the prompts of the experiments)."""
    starts = torch.randint(len(data) - length, (n,), generator=gen)
    return torch.stack([data[s:s + length] for s in starts.tolist()])  # (n, length)


def preference_pairs(model: nn.Module, prompts: torch.Tensor, new_tokens: int, gen: torch.Generator,
                     reward=caps_reward) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two sampled completions per prompt, ordered by ``reward``; ties dropped.

    Returns ``(prompts, chosen, rejected)``: ``(N, P)``, ``(N, L)``, ``(N, L)`` with ``N ≤ len(prompts)``.
    """
    from labsupport.gpt import generate

    P = prompts.size(1)
    a = generate(model, prompts, new_tokens, generator=gen)[:, P:]  # (n, L)
    b = generate(model, prompts, new_tokens, generator=gen)[:, P:]
    ra, rb = reward(a), reward(b)
    keep = ra != rb
    a_wins = (ra > rb)[keep, None]  # (N, 1)
    a, b = a[keep], b[keep]
    return prompts[keep], torch.where(a_wins, a, b), torch.where(a_wins, b, a)


def train_reward_model(chosen: torch.Tensor, rejected: torch.Tensor, loss_fn=reward_loss, steps: int = 150,
                       lr: float = 1e-2, seed: int = 0) -> RewardModel:
    """Fit a :class:`RewardModel` to preference pairs ``(N, L)`` with ``loss_fn`` (full batch, Adam)."""
    torch.manual_seed(seed)
    rm = RewardModel(RewardModelConfig())
    opt = torch.optim.Adam(rm.parameters(), lr=lr)
    ones = torch.ones_like(chosen)
    for _ in range(steps):
        loss = loss_fn(rm(chosen, ones), rm(rejected, ones))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rm.eval()


@torch.no_grad()
def sample_and_score(model: nn.Module, ref: nn.Module, prompts: torch.Tensor, new_tokens: int,
                     gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Sample completions from ``model``; their ids, true (caps) reward and KL estimate to ``ref`` (B,)."""
    from labsupport.gpt import generate

    P = prompts.size(1)
    ids = generate(model, prompts, new_tokens, generator=gen)  # (B, P + L)
    lp = token_logprobs(model(ids)[0], ids)[:, P - 1:]  # (B, L): the completion tokens
    lp_ref = token_logprobs(ref(ids)[0], ids)[:, P - 1:]
    return {"ids": ids, "reward": caps_reward(ids[:, P:]), "kl": (lp - lp_ref).sum(-1)}


def pg_tune(policy: nn.Module, ref: nn.Module, reward_model: nn.Module, data: torch.Tensor, pg_loss=pg_kl_loss,
            beta: float = 0.05, steps: int = 25, batch: int = 16, prompt_len: int = 16, new_tokens: int = 32,
            lr: float = 3e-4, seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
    """RLHF in its simplest form: sample, score with the learned reward model, take a REINFORCE step on
    ``pg_loss`` (KL penalty ``beta`` to the frozen ``ref``). Returns the history of the learned reward, the
    true (caps) reward and the KL estimate per step (means over the batch)."""
    from tqdm.auto import trange

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    history: dict[str, list[float]] = {"reward_model": [], "true_reward": [], "kl": []}
    for _ in trange(steps, desc="policy gradient", disable=not progress):
        prompts = random_prompts(data, batch, prompt_len, gen)
        policy.eval()
        s = sample_and_score(policy, ref, prompts, new_tokens, gen)
        ids, mask = s["ids"], torch.zeros_like(s["ids"][:, 1:], dtype=torch.float)  # (B, T−1)
        mask[:, prompt_len - 1:] = 1.0  # the completion tokens
        with torch.no_grad():
            rewards = reward_model(ids[:, prompt_len:], torch.ones_like(ids[:, prompt_len:]))  # (B,)
            ref_lp = token_logprobs(ref(ids)[0], ids)
        policy.train()
        loss, kl = pg_loss(token_logprobs(policy(ids)[0], ids), ref_lp, rewards, mask, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for key, value in (("reward_model", rewards), ("true_reward", s["reward"]), ("kl", kl)):
            history[key].append(float(value.mean()))
    policy.eval()
    return history


def dpo_tune(policy: nn.Module, ref: nn.Module, prompts: torch.Tensor, chosen: torch.Tensor,
             rejected: torch.Tensor, loss_fn=dpo_loss, seq_logprobs=sequence_logprobs, beta: float = 0.1,
             steps: int = 20, batch: int = 16, lr: float = 3e-4, seed: int = 0,
             progress: bool = True) -> dict[str, list[float]]:
    """DPO on preference pairs: ``loss_fn`` on the sequence log-probabilities (``seq_logprobs``) of the
    chosen and rejected completions under the policy and the frozen ``ref``. Returns the history of the
    loss and of the implicit reward margin."""
    from tqdm.auto import trange

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    P = prompts.size(1)
    both = torch.cat([torch.cat([prompts, chosen], 1), torch.cat([prompts, rejected], 1)])  # (2N, P + L)
    n = len(prompts)
    lengths, attention = torch.full((2 * n,), P), torch.ones_like(both)
    with torch.no_grad():
        ref_lp = seq_logprobs(ref(both)[0], both, lengths, attention)  # (2N,)
    history: dict[str, list[float]] = {"loss": [], "margin": []}
    policy.train()
    for _ in trange(steps, desc="DPO", disable=not progress):
        i = torch.randint(n, (batch,), generator=gen)
        rows = torch.cat([i, i + n])  # chosen rows, then the matching rejected rows
        lp = seq_logprobs(policy(both[rows])[0], both[rows], lengths[rows], attention[rows])  # (2·batch,)
        loss, rc, rr = loss_fn(lp[:batch], lp[batch:], ref_lp[i], ref_lp[i + n], beta=beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["loss"].append(float(loss.detach()))
        history["margin"].append(float((rc - rr).mean()))
    policy.eval()
    return history
