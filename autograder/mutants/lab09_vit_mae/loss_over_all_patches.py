"""mae_loss averages the squared error over all patches, visible ones included, instead of over the
removed patches only."""
# expect: mae_loss_tests failed

# %% mae_loss
def mae_loss(imgs, pred, mask, patch_size, norm_pix_loss=False):
    target = patchify(imgs, patch_size)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    return ((pred - target) ** 2).mean()
