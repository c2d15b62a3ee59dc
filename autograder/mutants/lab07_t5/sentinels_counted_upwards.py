"""Sentinels are numbered in the wrong order: the first span gets the lowest sentinel id and the last
span gets vocab_size - 1, instead of <extra_id_0> = vocab_size - 1 for the first span."""

# expect: span_corruption_tests failed

# %% span_corruption
def span_corrupt(tokens: torch.Tensor, noise_mask: torch.Tensor, vocab_size: int,
                 eos_id: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    toks, noise = tokens.tolist(), noise_mask.tolist()
    starts = [t for t in range(len(toks)) if noise[t] and (t == 0 or not noise[t - 1])]
    k = len(starts)
    inputs, targets, span = [], [], -1
    for t, (tok, is_noise) in enumerate(zip(toks, noise)):
        if t in starts:
            span += 1
            inputs.append(vocab_size - k + span)  # ascending sentinels: the bug
            targets.append(vocab_size - k + span)
        (targets if is_noise else inputs).append(tok)
    targets.append(vocab_size - k - 1)
    return torch.tensor(inputs + [eos_id]), torch.tensor(targets + [eos_id])
