"""Only [CLS] and [SEP] are excluded: padding (and the other special tokens) can be chosen for prediction,
so the model is trained to predict [PAD]."""
# expect: mlm_masking_tests failed

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    special = (input_ids == 2) | (input_ids == 3)
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~special
    action = torch.rand(input_ids.shape, generator=generator)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs = torch.where(chosen & (action < 0.8), mask_id, input_ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(chosen, input_ids, -100)
    return inputs, labels
