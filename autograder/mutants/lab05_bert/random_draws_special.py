"""Random replacements are drawn from the whole vocabulary, special tokens included: [PAD], [CLS], [SEP] or
[MASK] can appear in the middle of a sentence."""
# expect: mlm_masking_tests failed

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~special
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    inputs = torch.where(chosen & (action < 0.8), mask_id, input_ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(chosen, input_ids, -100)
    return inputs, labels
