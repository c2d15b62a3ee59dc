"""random_masking keeps a run of n_keep consecutive patches starting at a random place: every patch
is kept equally often, but the kept patches are always neighbours — the choice of the kept set is
not uniform (pairs of distant patches are never kept together)."""
# expect: mae_masking_tests failed

# %% mae_masking
def random_masking(x, mask_ratio, noise=None):
    B, N, D = x.shape
    n_keep = int(N * (1 - mask_ratio))
    if noise is None:
        start = torch.randint(N, (B, 1), device=x.device)
        noise = (torch.arange(N, device=x.device) - start) % N + 0.5 * torch.rand(B, N, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :n_keep]
    x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[:, :n_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_kept, mask, ids_restore
