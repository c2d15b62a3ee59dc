"""Every chosen position becomes [MASK] (100 %): nothing is randomised or kept, so the model only learns to
represent [MASK] positions, which never occur at fine-tuning time."""
# expect: mlm_masking_tests failed

# %% mlm_masking
def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~special
    action = torch.rand(input_ids.shape, generator=generator)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs = torch.where(chosen, mask_id, input_ids)
    labels = torch.where(chosen, input_ids, -100)
    return inputs, labels
