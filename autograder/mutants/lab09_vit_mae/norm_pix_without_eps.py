"""With norm_pix_loss, mae_loss divides by the standard deviation without adding eps = 1e-6 to the
variance: a constant patch (variance 0) gives 0/0 = NaN."""
# expect: mae_loss_tests failed

# %% mae_loss
def mae_loss(imgs, pred, mask, patch_size, norm_pix_loss=False):
    target = patchify(imgs, patch_size)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        target = (target - mean) / target.std(dim=-1, keepdim=True)
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()
