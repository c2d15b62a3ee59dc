"""The losses of the pairs are summed instead of averaged, which behaves like a learning rate that grows
with the batch size."""
# expect: reward_loss_tests failed

# %% reward_loss
def reward_loss(r_chosen, r_rejected):
    return -F.logsigmoid(r_chosen - r_rejected).sum()
