"""The scores are divided by √k_rows (the projected length) instead of √d (the feature size): a softmax with the wrong temperature."""

# expect: linformer_tests failed

# %% linformer_attention
def linformer_attention(q, k, v, E, F):
    k_proj, v_proj = E @ k, F @ v
    scores = q @ k_proj.transpose(-2, -1) / math.sqrt(E.size(-2))  # the bug: √k_rows
    return torch.softmax(scores, -1) @ v_proj
