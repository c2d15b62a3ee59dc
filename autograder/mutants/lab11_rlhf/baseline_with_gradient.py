"""The KL term of the return and the baseline are not detached: gradient flows through R and its mean,
which behaves like differentiating the penalty a second time instead of treating the advantage as a constant."""
# expect: pg_kl_loss_tests failed

# %% pg_kl_loss
def pg_kl_loss(logprobs, ref_logprobs, rewards, mask, beta):
    mask = mask.to(logprobs.dtype)
    kl = ((logprobs - ref_logprobs) * mask).sum(-1)
    returns = rewards - beta * kl
    advantages = returns - returns.mean()
    return -(advantages * (logprobs * mask).sum(-1)).mean(), kl.detach()
