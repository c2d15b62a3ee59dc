"""generate ignores use_cache: every step re-reads the whole sequence (right tokens, no speed-up)."""
# expect: kv_cache_tests failed

# %% kv_cache_generation
@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
             use_cache=True):
    for _ in range(max_new_tokens):
        logits, _ = model(idx)
        nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
    return idx
