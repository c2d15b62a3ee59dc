"""Exactly 15 % of each sequence's ordinary positions are chosen (a fixed count) instead of an independent
draw per position."""
# expect: mlm_masking_tests failed

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    scores = torch.rand(input_ids.shape, generator=generator).masked_fill(special, 2.0)
    k = (p * (~special).sum(1)).round().long()  # (B,)
    rank = scores.argsort(1).argsort(1)
    chosen = (rank < k[:, None]) & ~special
    action = torch.rand(input_ids.shape, generator=generator)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs = torch.where(chosen & (action < 0.8), mask_id, input_ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(chosen, input_ids, -100)
    return inputs, labels
