"""random_masking keeps round(N · (1 − ratio)) patches instead of int(N · (1 − ratio)): one patch too
many whenever the fractional part is above one half (e.g. N = 14, ratio 0.6)."""
# expect: mae_masking_tests failed

# %% mae_masking
def random_masking(x, mask_ratio, noise=None):
    B, N, D = x.shape
    n_keep = round(N * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(B, N, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :n_keep]
    x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[:, :n_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_kept, mask, ids_restore
