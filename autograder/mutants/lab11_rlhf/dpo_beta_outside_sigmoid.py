"""β multiplies the loss instead of the margin inside the sigmoid: −β·log σ(margin), which behaves like
DPO with β = 1 and a smaller learning rate."""
# expect: dpo_loss_tests failed

# %% dpo_loss
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen_logratios = policy_chosen - ref_chosen
    rejected_logratios = policy_rejected - ref_rejected
    loss = -beta * F.logsigmoid(chosen_logratios - rejected_logratios).mean()
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
