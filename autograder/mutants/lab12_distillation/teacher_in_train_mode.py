"""The teacher is left in training mode: its dropout stays on and its soft targets are noisy."""
# expect: distill_step_tests failed

# %% distill_step
def distill_step(student, teacher, batch, optimizer, temperature=2.0, alpha=0.5):
    x, y = batch
    with torch.no_grad():
        teacher_logits = teacher(x)[0]
    student.train()
    loss = distillation_loss(student(x)[0], teacher_logits, y, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
