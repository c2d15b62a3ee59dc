"""A correct solution in another style: softplus instead of logsigmoid, a Python loop over the rows with
explicit slicing of the completion, per-token advantages, and the DPO margin written as one log-ratio of
ratios with torch.no_grad() for the rewards."""

# %% reward_loss
def reward_loss(r_chosen, r_rejected):
    return F.softplus(r_rejected - r_chosen).sum() / r_chosen.numel()

# %% sequence_logprobs
def sequence_logprobs(logits, input_ids, prompt_lengths, attention_mask):
    rows = []
    for b in range(input_ids.size(0)):
        end = int(attention_mask[b].sum())  # right padding: the real tokens are 0 … end-1
        start = max(int(prompt_lengths[b]), 1)  # the first token is never predicted
        total = logits.new_zeros(())
        for t in range(start, end):
            total = total + logits[b, t - 1].log_softmax(-1)[input_ids[b, t]]
        rows.append(total)
    return torch.stack(rows)

# %% pg_kl_loss
def pg_kl_loss(logprobs, ref_logprobs, rewards, mask, beta):
    m = mask.to(logprobs.dtype)
    with torch.no_grad():
        kl = ((logprobs - ref_logprobs) * m).sum(dim=1)
        returns = rewards - beta * kl
        advantage = (returns - returns.sum() / returns.numel())[:, None] * m  # (B, T): per-token
    per_token = -(advantage * logprobs)
    return per_token.sum() / logprobs.size(0), kl

# %% dpo_loss
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    margin = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    loss = F.softplus(-beta * margin).mean()
    with torch.no_grad():
        chosen_rewards = beta * (policy_chosen - ref_chosen)
        rejected_rewards = beta * (policy_rejected - ref_rejected)
    return loss, chosen_rewards, rejected_rewards
