"""A correct solution in another style: the KL divergence and the cross-entropy written out as explicit sums
with a 0/1 weight per position (no boolean indexing, no kl_div, no cross_entropy), train(False)/train(True)
for the modes, the gradients cleared before the forward pass, and the MSE as a weighted sum over an
expanded mask with the projection written as a matrix product."""

# %% distillation_loss
def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5, ignore_index=-100):
    w = (labels != ignore_index).to(student_logits.dtype)  # (...,) 1 where a position counts
    n = w.sum()
    log_q = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits.to(student_logits.dtype) / temperature, dim=-1)
    kl_rows = (log_p.exp() * (log_p - log_q)).sum(-1)  # (...,)
    safe = torch.where(labels == ignore_index, torch.zeros_like(labels), labels)
    nll_rows = -torch.log_softmax(student_logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return alpha * temperature * temperature * (kl_rows * w).sum() / n + (1 - alpha) * (nll_rows * w).sum() / n

# %% distill_step
def distill_step(student, teacher, batch, optimizer, temperature=2.0, alpha=0.5):
    inputs, targets = batch
    teacher.train(False)
    with torch.no_grad():
        soft_targets = teacher(inputs)[0].detach()
    student.train(True)
    optimizer.zero_grad()
    student_logits, _ = student(inputs)
    loss = distillation_loss(student_logits, soft_targets, targets, temperature=temperature, alpha=alpha)
    loss.backward()
    optimizer.step()
    return float(loss.detach())

# %% hidden_matching
class HiddenMatcher(nn.Module):
    def __init__(self, student_dim, teacher_dim):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim, bias=True)

    def forward(self, student_hidden, teacher_hidden, mask=None):
        target = teacher_hidden.detach()
        projected = student_hidden @ self.proj.weight.T + self.proj.bias  # (..., d_t)
        if mask is None:
            mask = torch.ones(student_hidden.shape[:-1], dtype=torch.bool, device=student_hidden.device)
        w = mask.unsqueeze(-1).to(projected.dtype).expand_as(projected)
        return (((projected - target) ** 2) * w).sum() / w.sum()
