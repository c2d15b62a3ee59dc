"""The mean divides by every position, padding included, instead of by the positions that count."""
# expect: lm_loss_tests failed

# %% lm_loss
def lm_loss(logits, labels, ignore_index=-100):
    per_token = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                ignore_index=ignore_index, reduction="none")
    return per_token.mean()
