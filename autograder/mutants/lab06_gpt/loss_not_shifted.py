"""The loss is not shifted: logits at position t are scored against the token at t, which the model sees."""
# expect: lm_loss_tests failed

# %% lm_loss
def lm_loss(logits, labels, ignore_index=-100):
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=ignore_index)
