"""The target ends with EOS right after the last span, without the closing sentinel."""

# expect: span_corruption_tests failed

# %% span_corruption
def span_corrupt(tokens: torch.Tensor, noise_mask: torch.Tensor, vocab_size: int,
                 eos_id: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of span corruption; sentinel i = vocab_size - 1 - i."""
    toks, noise = tokens.tolist(), noise_mask.tolist()
    inputs, targets, span = [], [], -1
    for t, (tok, is_noise) in enumerate(zip(toks, noise)):
        if is_noise and (t == 0 or not noise[t - 1]):  # a new span: one sentinel in each sequence
            span += 1
            inputs.append(vocab_size - 1 - span)
            targets.append(vocab_size - 1 - span)
        (targets if is_noise else inputs).append(tok)
    return torch.tensor(inputs + [eos_id]), torch.tensor(targets + [eos_id])
