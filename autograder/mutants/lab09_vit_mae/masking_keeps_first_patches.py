"""random_masking ignores the noise and always keeps the first n_keep patches: the count is right
but the mask is not random (the top rows of every image are always visible)."""
# expect: mae_masking_tests failed

# %% mae_masking
def random_masking(x, mask_ratio, noise=None):
    B, N, D = x.shape
    n_keep = int(N * (1 - mask_ratio))
    ids_shuffle = torch.arange(N, device=x.device).expand(B, N)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    x_kept = x[:, :n_keep]
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[:, :n_keep] = 0
    return x_kept, mask, ids_restore
