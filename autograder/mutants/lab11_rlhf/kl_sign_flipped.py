"""The KL penalty is added to the reward instead of subtracted: the policy is paid for drifting away from
the reference, which behaves like R = reward + β·kl."""
# expect: pg_kl_loss_tests failed

# %% pg_kl_loss
def pg_kl_loss(logprobs, ref_logprobs, rewards, mask, beta):
    mask = mask.to(logprobs.dtype)
    kl = ((logprobs - ref_logprobs).detach() * mask).sum(-1)
    returns = rewards.detach() + beta * kl
    advantages = returns - returns.mean()
    return -(advantages * (logprobs * mask).sum(-1)).mean(), kl
