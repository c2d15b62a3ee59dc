"""With the cache, generate feeds the whole sequence again with past: every key and value is cached twice."""
# expect: kv_cache_tests failed

# %% kv_cache_generation
@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
             use_cache=True):
    past = None
    for _ in range(max_new_tokens):
        if use_cache and past is not None and past[0][0].size(-2) + idx.size(1) <= model.config.block_size:
            logits, past = model(idx, past)  # the bug: the prefix is fed again on top of its own cache
        else:
            logits, past = model(idx)
        nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
    return idx
