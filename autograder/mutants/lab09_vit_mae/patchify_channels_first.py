"""patchify flattens each patch channel by channel, (c, u, v), instead of pixel by pixel with the
channels of one pixel together, (u, v, c): the numbers of a patch are right but in the wrong order,
so the patch embedding, the ViT and the loss disagree with MAE's order whenever C > 1."""
# expect: patchify_tests failed, patch_embedding_tests failed, vit_classifier_tests failed, mae_loss_tests failed

# %% patchify
def patchify(imgs, patch_size):
    B, C, H, W = imgs.shape
    p = patch_size
    x = imgs.reshape(B, C, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, p, p)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(patches, patch_size, image_size):
    B, N, D = patches.shape
    p, (H, W) = patch_size, image_size
    C = D // (p * p)
    x = patches.reshape(B, H // p, W // p, C, p, p)
    x = x.permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, C, H, W)
