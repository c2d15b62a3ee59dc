"""The margin is rejected minus chosen: the loss pushes the policy towards the rejected completions,
which behaves like training on swapped preference labels."""
# expect: dpo_loss_tests failed

# %% dpo_loss
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen_logratios = policy_chosen - ref_chosen
    rejected_logratios = policy_rejected - ref_rejected
    loss = -F.logsigmoid(beta * (rejected_logratios - chosen_logratios)).mean()
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
