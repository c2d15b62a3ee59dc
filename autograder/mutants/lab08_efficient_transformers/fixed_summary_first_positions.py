"""The fixed pattern's summary positions are the first c of every block (j % stride < c) instead of the last c: behaves like summaries that are written before the block they summarise."""

# expect: sparse_mask_tests failed

# %% sparse_masks
def strided_mask(n: int, stride: int, causal: bool = True) -> torch.Tensor:
    """(n, n) bool: key j visible to query i when |i - j| <= stride or (i - j) % stride == 0 (and j <= i if causal)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    keep = ((i - j).abs() <= stride) | ((i - j) % stride == 0)
    return keep & (j <= i) if causal else keep


def fixed_mask(n: int, stride: int, c: int, causal: bool = True) -> torch.Tensor:
    """(n, n) bool: key j visible to query i when j // stride == i // stride or j % stride >= stride - c
    (and j <= i if causal)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    keep = (i // stride == j // stride) | (j % stride < c)
    return keep & (j <= i) if causal else keep
