"""No baseline is subtracted: the loss weights each sequence by R itself, which behaves like plain
REINFORCE (same expected gradient, but a different loss and much noisier gradients)."""
# expect: pg_kl_loss_tests failed

# %% pg_kl_loss
def pg_kl_loss(logprobs, ref_logprobs, rewards, mask, beta):
    mask = mask.to(logprobs.dtype)
    kl = ((logprobs - ref_logprobs).detach() * mask).sum(-1)
    returns = rewards.detach() - beta * kl
    return -(returns * (logprobs * mask).sum(-1)).mean(), kl
