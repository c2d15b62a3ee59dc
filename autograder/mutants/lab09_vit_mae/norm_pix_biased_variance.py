"""With norm_pix_loss, mae_loss standardises the target patches with the biased variance (divide by
p·p·C) instead of torch's default unbiased one (divide by p·p·C − 1), as MAE does."""
# expect: mae_loss_tests failed

# %% mae_loss
def mae_loss(imgs, pred, mask, patch_size, norm_pix_loss=False):
    target = patchify(imgs, patch_size)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True, unbiased=False)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()
