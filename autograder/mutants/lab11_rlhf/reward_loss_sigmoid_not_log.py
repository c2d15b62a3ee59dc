"""The loss is −σ(margin) instead of −log σ(margin), which behaves like maximising the probability of the
preference rather than its log-likelihood (gradients vanish for confidently wrong pairs)."""
# expect: reward_loss_tests failed

# %% reward_loss
def reward_loss(r_chosen, r_rejected):
    return -torch.sigmoid(r_chosen - r_rejected).mean()
