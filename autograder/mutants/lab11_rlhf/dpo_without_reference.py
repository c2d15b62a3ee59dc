"""The reference log-probabilities are ignored: the margin is log π(chosen) − log π(rejected), which
behaves like a reference model that is uniform over completions."""
# expect: dpo_loss_tests failed

# %% dpo_loss
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    loss = -F.logsigmoid(beta * (policy_chosen - policy_rejected)).mean()
    return loss, beta * policy_chosen.detach(), beta * policy_rejected.detach()
