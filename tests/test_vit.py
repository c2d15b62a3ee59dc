"""labsupport.vit against Hugging Face ViT / ViTMAE and PyTorch's convolution; lab 9's checks accept
the reference and reject broken variants."""

import pytest
import torch

from labsupport import data
from labsupport.checks import CheckFailed, lab09
from labsupport.vit import (
    MAEConfig,
    MaskedAutoencoder,
    PatchEmbedding,
    VisionTransformer,
    ViTConfig,
    digit_tensors,
    few_labels,
    mae_loss,
    patchify,
    random_masking,
    unpatchify,
)

F64 = torch.float64


def test_patchify_worked_example():
    """A hand-checkable case: one channel, 4×4, 2×2 patches, row-major over the grid."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert patchify(x, 2)[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    rgb = torch.stack([x[0, 0], 100 + x[0, 0]])[None]  # (1, 2, 4, 4): channels of a pixel sit together
    assert patchify(rgb, 2)[0, 0].tolist() == [0, 100, 1, 101, 4, 104, 5, 105]
    assert torch.equal(unpatchify(patchify(rgb, 2), 2, (4, 4)), rgb)


def test_patch_embedding_is_the_strided_convolution():
    cfg = ViTConfig(image_size=(6, 9), patch_size=3, in_chans=2, d_model=5)
    emb = PatchEmbedding(cfg).double()
    conv = torch.nn.Conv2d(2, 5, 3, stride=3).double()
    conv.load_state_dict({"weight": lab09.conv_weight(emb.proj.weight, 3, 2), "bias": emb.proj.bias})
    x = torch.randn(4, 2, 6, 9, dtype=F64)
    torch.testing.assert_close(emb(x), conv(x).flatten(2).transpose(1, 2))


def test_vit_matches_hugging_face_with_copied_weights():
    """Non-square image, 3 channels, patch 4, d_ff ≠ d_model: logits and last hidden state."""
    cfg = ViTConfig(image_size=(8, 12), patch_size=4, in_chans=3, d_model=12, n_heads=3, n_layers=2, d_ff=20,
                    n_classes=5)
    state = lab09.random_vit_state(cfg, torch.Generator().manual_seed(0))
    ours = VisionTransformer(cfg)
    ours.load_state_dict(state)
    ours = ours.double().eval()
    hf = lab09.hf_vit(cfg, state)
    x = torch.randn(3, 3, 8, 12, dtype=F64)
    torch.testing.assert_close(ours.features(x), hf.vit(x).last_hidden_state)
    torch.testing.assert_close(ours(x), hf(x).logits)


def test_masking_and_loss_match_hugging_face_mae():
    """random_masking with given noise = ViTMAEEmbeddings.random_masking; mae_loss = ViTMAE's loss."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    x, noise = torch.randn(3, 49, 6, dtype=F64), torch.rand(3, 49)
    for got, exp in zip(random_masking(x, 0.75, noise), lab09._hf_random_masking(x, 0.75, noise)):
        torch.testing.assert_close(got, exp.to(got.dtype))
    for norm in (False, True):
        cfg = ViTMAEConfig(image_size=8, patch_size=2, num_channels=3, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=24, decoder_hidden_size=12,
                           decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=20,
                           norm_pix_loss=norm)
        torch.manual_seed(0)
        model = ViTMAEForPreTraining(cfg).double().eval()
        imgs = torch.rand(2, 3, 8, 8, dtype=F64)
        with torch.no_grad():
            out = model(imgs, noise=torch.rand(2, 16))
        torch.testing.assert_close(mae_loss(imgs, out.logits, out.mask.to(F64), 2, norm), out.loss)


def test_masking_restores_and_counts():
    x = torch.randn(5, 14, 3)
    kept, mask, restore = random_masking(x, 0.6)
    assert kept.shape == (5, 5, 3) and mask.sum(1).tolist() == [9.0] * 5  # int(14 · 0.4) = 5 kept
    back = torch.gather(torch.cat([kept, torch.zeros(5, 9, 3)], 1), 1, restore[..., None].expand(-1, -1, 3))
    torch.testing.assert_close(back, x * (1 - mask)[..., None])


def test_mae_trains_and_reconstructs():
    """A few steps on the digits lower the loss; reconstructions paste back the visible patches."""
    torch.manual_seed(0)
    x, _ = digit_tensors()
    mae = MaskedAutoencoder(VisionTransformer(ViTConfig(d_model=32, d_ff=64)), MAEConfig())
    opt = torch.optim.AdamW(mae.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        loss, _, _ = mae(x[step * 32:(step + 1) * 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])
    noise = torch.rand(4, 16)
    masked, recon = mae.reconstruct(x[:4], noise=noise)
    visible = (1 - random_masking(patchify(x[:4], 2), 0.75, noise)[1])[..., None]
    torch.testing.assert_close(patchify(recon, 2) * visible, patchify(x[:4], 2) * visible)
    torch.testing.assert_close(patchify(masked, 2), patchify(x[:4], 2) * visible)


def test_digits_data():
    images, labels = data.digits()
    assert images.shape == (1797, 8, 8) and images.dtype.name == "float32"
    assert 0 <= images.min() and images.max() == 1 and sorted(set(labels.tolist())) == list(range(10))
    idx = few_labels(torch.from_numpy(labels), 3)
    assert torch.bincount(torch.from_numpy(labels)[idx]).tolist() == [3] * 10


def test_digits_are_scikit_learns():
    """The shipped copy is scikit-learn's data set, pixel for pixel (when scikit-learn is installed)."""
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    images, labels = data.digits()
    assert (images * 16 == ref.images).all() and (labels == ref.target).all()


@pytest.mark.parametrize("part", ["patchify", "patch_embedding", "vit", "masking", "mae_loss"])
def test_reference_passes_the_lab_checks(part):
    fns = {"patchify": (patchify, unpatchify), "patch_embedding": (PatchEmbedding,), "vit": (VisionTransformer,),
           "masking": (random_masking,), "mae_loss": (mae_loss,)}[part]
    getattr(lab09, f"{part}_examples")(*fns)
    getattr(lab09, f"{part}_hidden")(*fns)


# ---------------------------------------------------------------- the checks reject broken variants
def _channels_first_patchify(imgs, p):
    B, C, H, W = imgs.shape
    return imgs.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, p * p * C)


def _first_patches(x, ratio, noise=None):
    B, N, _ = x.shape
    return random_masking(x, ratio, torch.arange(N, dtype=torch.float32).expand(B, N))


def _contiguous_block(x, ratio, noise=None):
    B, N, _ = x.shape
    if noise is None:
        start = torch.randint(N, (B, 1))
        noise = (torch.arange(N) - start) % N + 0.5 * torch.rand(B, N)
    return random_masking(x, ratio, noise)


def _restore_not_inverted(x, ratio, noise=None):
    kept, mask, restore = random_masking(x, ratio, noise)
    return kept, mask, torch.argsort(restore, dim=1)  # = ids_shuffle


def _loss_all_patches(imgs, pred, mask, p, norm=False):
    return mae_loss(imgs, pred, torch.ones_like(mask), p, norm)


def _loss_biased_var(imgs, pred, mask, p, norm=False):
    t = patchify(imgs, p)
    if norm:
        t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True, unbiased=False) + 1e-6) ** 0.5
    return (((pred - t) ** 2).mean(-1) * mask).sum() / mask.sum()


class _NoClsPosition(VisionTransformer):
    def features(self, imgs):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class _ConvOrderEmbedding(PatchEmbedding):
    def forward(self, imgs):
        return self.proj(_channels_first_patchify(imgs, self.patch_size))


@pytest.mark.parametrize("part, fns", [
    ("patchify", (_channels_first_patchify, unpatchify)),
    ("patch_embedding", (_ConvOrderEmbedding,)),
    ("vit", (_NoClsPosition,)),
    ("masking", (_first_patches,)),
    ("masking", (_contiguous_block,)),
    ("masking", (_restore_not_inverted,)),
    ("mae_loss", (_loss_all_patches,)),
    ("mae_loss", (_loss_biased_var,)),
])
def test_checks_reject_broken_variants(part, fns):
    with pytest.raises(CheckFailed):
        getattr(lab09, f"{part}_hidden")(*fns)
