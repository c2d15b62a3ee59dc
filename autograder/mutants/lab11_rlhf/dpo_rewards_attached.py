"""The implicit rewards are returned with their autograd graph attached, which behaves like logging
tensors that keep the policy's graph alive (trl detaches them)."""
# expect: dpo_loss_tests failed

# %% dpo_loss
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards, rejected_rewards
