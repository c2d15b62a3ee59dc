"""random_masking returns ids_shuffle as ids_restore (and builds the mask with it): the kept tokens
are right, but gathering with the restore indices does not put them back in their places."""
# expect: mae_masking_tests failed

# %% mae_masking
def random_masking(x, mask_ratio, noise=None):
    B, N, D = x.shape
    n_keep = int(N * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(B, N, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_keep = ids_shuffle[:, :n_keep]
    x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[:, :n_keep] = 0
    mask = torch.gather(mask, 1, ids_shuffle)
    return x_kept, mask, ids_shuffle
