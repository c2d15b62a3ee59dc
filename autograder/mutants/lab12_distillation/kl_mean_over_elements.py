"""The KL term uses reduction='mean' (divides by positions × vocabulary) instead of 'batchmean' (positions)."""
# expect: distillation_loss_tests failed, distill_step_tests failed

# %% distillation_loss
def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5, ignore_index=-100):
    V = student_logits.size(-1)
    s, t, y = student_logits.reshape(-1, V), teacher_logits.reshape(-1, V).to(student_logits.dtype), labels.reshape(-1)
    keep = y != ignore_index
    s, t, y = s[keep], t[keep], y[keep]
    soft = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(t / temperature, dim=-1), reduction="mean")
    return alpha * temperature ** 2 * soft + (1 - alpha) * F.cross_entropy(s, y)
