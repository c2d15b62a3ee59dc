"""patchify reshapes (B, C, H, W) straight to (B, N, p·p·C) without permuting: the shape is right,
but a "patch" is then a run of consecutive pixels of one row (mixing channels, rows and patches)."""
# expect: patchify_tests failed, patch_embedding_tests failed, vit_classifier_tests failed, mae_loss_tests failed

# %% patchify
def patchify(imgs, patch_size):
    B, C, H, W = imgs.shape
    p = patch_size
    return imgs.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(patches, patch_size, image_size):
    B, N, D = patches.shape
    H, W = image_size
    return patches.reshape(B, D // (patch_size * patch_size), H, W)
