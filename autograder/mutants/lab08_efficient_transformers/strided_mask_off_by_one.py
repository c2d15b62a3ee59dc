"""The strided pattern's local part keeps |i - j| <= stride + 1 instead of |i - j| <= stride: behaves like a
window of the previous stride + 1 positions, one too many. (One too few, |i - j| < stride, happens to give the
same union: position i - stride is also on the stride.)"""

# expect: sparse_mask_tests failed

# %% sparse_masks
def strided_mask(n: int, stride: int, causal: bool = True) -> torch.Tensor:
    """(n, n) bool: key j visible to query i when |i - j| <= stride or (i - j) % stride == 0 (and j <= i if causal)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    keep = ((i - j).abs() <= stride + 1) | ((i - j) % stride == 0)  # the bug: stride + 1
    return keep & (j <= i) if causal else keep


def fixed_mask(n: int, stride: int, c: int, causal: bool = True) -> torch.Tensor:
    """(n, n) bool: key j visible to query i when j // stride == i // stride or j % stride >= stride - c
    (and j <= i if causal)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    keep = (i // stride == j // stride) | (j % stride >= stride - c)
    return keep & (j <= i) if causal else keep
