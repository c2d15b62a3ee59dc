"""optimizer.zero_grad() is never called: every step adds the new gradients to the old ones."""
# expect: distill_step_tests failed

# %% distill_step
def distill_step(student, teacher, batch, optimizer, temperature=2.0, alpha=0.5):
    x, y = batch
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)[0]
    student.train()
    loss = distillation_loss(student(x)[0], teacher_logits, y, temperature, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
