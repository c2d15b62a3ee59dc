"""The generator argument is ignored: random numbers come from torch's global RNG, so a seed passed in
does not make the masking reproducible."""
# expect: mlm_masking_tests failed

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    chosen = (torch.rand(input_ids.shape) < p) & ~special
    action = torch.rand(input_ids.shape)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape)]
    inputs = torch.where(chosen & (action < 0.8), mask_id, input_ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(chosen, input_ids, -100)
    return inputs, labels
