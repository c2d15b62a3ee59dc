"""log(sigmoid(d)) underflows: for a margin of −800 the sigmoid is 0 in floating point and the loss is
infinite, which behaves like the right formula computed without logsigmoid."""
# expect: reward_loss_tests failed

# %% reward_loss
def reward_loss(r_chosen, r_rejected):
    return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()
