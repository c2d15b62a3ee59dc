"""Vision transformers and masked autoencoders (chapter 9).

A **vision transformer** (ViT) reads an image as a sequence: cut it into ``p × p`` patches, flatten
each patch, project it linearly to ``d_model`` features (the *patch embedding*), prepend a learned
[CLS] token, add learned 1-D position embeddings, run a stack of pre-LN encoder blocks
(:class:`labsupport.multihead.TransformerEncoderBlock`), normalise, and classify from [CLS]::

    imgs (B, C, H, W) ─patchify→ (B, N, p·p·C) ─proj→ (B, N, D) ─[CLS] ⊕, + pos→ (B, 1+N, D)
         ─blocks, norm→ (B, 1+N, D) ─[:, 0], head→ (B, n_classes)          with N = (H/p)·(W/p)

A **masked autoencoder** (MAE) pre-trains that encoder without labels: it hides a random 75 % of
the patches, encodes only the visible ones, and a small decoder predicts the pixels of the hidden
ones; the loss is the mean squared error on the hidden patches only.

Conventions (those of MAE's and Hugging Face's code, so weights and losses copy across):

- **patch order**: patch ``n = i·(W/p) + j`` is the one in patch-row ``i``, patch-column ``j``
  (row-major, as a strided convolution's output flattens);
- **inside a patch**: feature ``(u·p + v)·C + c`` is pixel row ``u``, column ``v``, channel ``c``
  (channels fastest);
- **masking**: ``noise (B, N)`` is sorted per sample, the ``int(N·(1 − ratio))`` patches with the
  smallest noise are kept in that order; ``mask`` is 1.0 for removed patches; gathering
  ``cat(kept, fillers)`` with ``ids_restore`` puts every token back in its place.

>>> imgs = torch.arange(2 * 3 * 4 * 6.0).view(2, 3, 4, 6)     # (B, C, H, W)
>>> patchify(imgs, 2).shape                                  # N = 2·3 patches of 2·2·3 values
torch.Size([2, 6, 12])
>>> torch.equal(unpatchify(patchify(imgs, 2), 2, (4, 6)), imgs)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from labsupport.multihead import EncoderBlockConfig, TransformerEncoderBlock


# ---------------------------------------------------------------- images ↔ sequences of patches
def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B, N, p·p·C)``, patches row-major, each flattened as (row, column, channel).

    >>> patchify(torch.arange(16.0).view(1, 1, 4, 4), 2)[0, 1]   # patch (0, 1): pixels 2, 3, 6, 7
    tensor([2., 3., 6., 7.])
    """
    B, C, H, W = imgs.shape
    p = patch_size
    x = imgs.reshape(B, C, H // p, p, W // p, p)  # (B, C, h, p, w, p): split each axis into (patch, pixel)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C): patch indices first, channel last
    return x.reshape(B, (H // p) * (W // p), p * p * C)  # (B, N, p·p·C)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """``(B, N, p·p·C)`` → ``(B, C, H, W)``: the inverse of :func:`patchify`."""
    B, N, D = patches.shape
    p, (H, W) = patch_size, image_size
    C = D // (p * p)
    x = patches.reshape(B, H // p, W // p, p, p, C)  # (B, h, w, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, p)
    return x.reshape(B, C, H, W)


# ---------------------------------------------------------------- the vision transformer
@dataclass
class ViTConfig:
    """Sizes of a ViT. ``image_size`` is (height, width); both must be multiples of ``patch_size``."""

    image_size: tuple[int, int] = (8, 8)
    patch_size: int = 2
    in_chans: int = 1
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    n_classes: int = 10
    dropout: float = 0.0
    layer_norm_eps: float = 1e-6

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row: ``(H/p, W/p)``."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def patch_dim(self) -> int:
        """Values in one flattened patch: ``p·p·C``."""
        return self.patch_size * self.patch_size * self.in_chans

    def block(self) -> EncoderBlockConfig:
        """The encoder block of a ViT: pre-LN, GELU."""
        return EncoderBlockConfig(self.d_model, self.n_heads, self.d_ff, self.dropout, activation="gelu",
                                  norm_first=True, layer_norm_eps=self.layer_norm_eps)


class PatchEmbedding(nn.Module):
    """Flatten the patches and project each to ``d_model``: the same map as ``nn.Conv2d(C, d_model,
    kernel_size=p, stride=p)`` whose weight ``(D, C, p, p)`` is ``proj.weight.view(D, p, p, C)``
    permuted to channels first."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.proj = nn.Linear(config.patch_dim, config.d_model)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, N, d_model)``."""
        return self.proj(patchify(imgs, self.patch_size))  # (B, N, D)


class VisionTransformer(nn.Module):
    """ViT classifier: patch embedding, [CLS], learned positions, pre-LN blocks, final LayerNorm, head.

    Parameter names: ``patch_embed.proj``, ``cls_token (1, 1, D)``, ``pos_embed (1, 1+N, D)`` (row 0
    belongs to [CLS]), ``blocks.{i}`` (:class:`TransformerEncoderBlock`), ``norm``, ``head``.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        D = config.d_model
        self.patch_embed = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + config.n_patches, D))
        self.blocks = nn.ModuleList(TransformerEncoderBlock(config.block()) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.head = nn.Linear(D, config.n_classes)

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → normalised tokens ``(B, 1+N, D)``; token 0 is [CLS]."""
        x = self.patch_embed(imgs)  # (B, N, D)
        cls = self.cls_token.expand(len(x), -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1+N, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → logits ``(B, n_classes)`` from the [CLS] token."""
        return self.head(self.features(imgs)[:, 0])


# ---------------------------------------------------------------- MAE: masking and loss
def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random ``int(N·(1 − mask_ratio))`` tokens of each sample (MAE's per-sample shuffle).

    ``x (B, N, D)``; ``noise (B, N)`` (default uniform) decides: the tokens with the smallest noise
    are kept, in increasing order of noise. Returns ``x_kept (B, N_keep, D)``, ``mask (B, N)``
    (float, 1.0 = removed) and ``ids_restore (B, N)`` (int64) with
    ``gather(cat(x_kept, fillers), 1, ids_restore)`` = the tokens back in their places.

    >>> kept, mask, restore = random_masking(torch.arange(4.0).view(1, 4, 1), 0.5,
    ...                                      noise=torch.tensor([[0.9, 0.1, 0.5, 0.3]]))
    >>> kept.flatten().tolist(), mask.tolist(), restore.tolist()
    ([1.0, 3.0], [[1.0, 0.0, 1.0, 0.0]], [[3, 0, 2, 1]])
    """
    B, N, D = x.shape
    n_keep = int(N * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(B, N, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)  # (B, N): token ids, kept ones first
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, N): the inverse permutation
    ids_keep = ids_shuffle[:, :n_keep]  # (B, N_keep)
    x_kept = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, D))  # (B, N_keep, D)
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[:, :n_keep] = 0  # in shuffled order: the first N_keep are kept
    mask = torch.gather(mask, 1, ids_restore)  # (B, N) back in patch order
    return x_kept, mask, ids_restore


def mae_loss(imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, patch_size: int,
             norm_pix_loss: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """Mean squared error on the removed patches only.

    ``imgs (B, C, H, W)``, ``pred (B, N, p·p·C)``, ``mask (B, N)`` with 1.0 = removed. With
    ``norm_pix_loss`` each target patch is standardised by its own mean and (unbiased) variance:
    ``(t − mean) / sqrt(var + eps)``.
    """
    target = patchify(imgs, patch_size)  # (B, N, p·p·C)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased, as MAE
        target = (target - mean) / (var + eps) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum()


# ---------------------------------------------------------------- a small MAE around any ViT
@dataclass
class MAEConfig:
    """The decoder's sizes and the pre-training task."""

    dec_d_model: int = 32
    dec_n_heads: int = 4
    dec_n_layers: int = 1
    dec_d_ff: int = 64
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False


class MaskedAutoencoder(nn.Module):
    """MAE: a ViT encoder that sees only the visible patches, and a light decoder.

    ``encoder`` is a :class:`VisionTransformer` (or any module with the same parameter names);
    ``masking`` and ``loss`` default to this module's :func:`random_masking` and :func:`mae_loss`
    and can be replaced (a lab plugs in the student's). After pre-training, ``encoder`` is an
    ordinary ViT to fine-tune: its ``head`` is never used here.
    """

    def __init__(self, encoder: nn.Module, config: MAEConfig | None = None,
                 masking: Callable = random_masking, loss: Callable = mae_loss):
        super().__init__()
        self.config = config or MAEConfig()
        self.encoder, self.masking, self.loss_fn = encoder, masking, loss
        vit, c = encoder.config, self.config
        self.decoder_embed = nn.Linear(vit.d_model, c.dec_d_model)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.dec_d_model))
        self.decoder_pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + vit.n_patches, c.dec_d_model))
        block = EncoderBlockConfig(c.dec_d_model, c.dec_n_heads, c.dec_d_ff, 0.0, "gelu", True, vit.layer_norm_eps)
        self.decoder_blocks = nn.ModuleList(TransformerEncoderBlock(block) for _ in range(c.dec_n_layers))
        self.decoder_norm = nn.LayerNorm(c.dec_d_model, eps=vit.layer_norm_eps)
        self.decoder_pred = nn.Linear(c.dec_d_model, vit.patch_dim)

    def encode(self, imgs: torch.Tensor, noise: torch.Tensor | None = None, mask_ratio: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode the visible patches: ``(latent (B, 1+N_keep, D), mask (B, N), ids_restore (B, N))``."""
        enc = self.encoder
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        x = enc.patch_embed(imgs) + enc.pos_embed[:, 1:]  # (B, N, D): positions before masking
        x, mask, ids_restore = self.masking(x, ratio, noise)  # (B, N_keep, D)
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(len(x), -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1)  # (B, 1+N_keep, D)
        for block in enc.blocks:
            x = block(x)
        return enc.norm(x), mask, ids_restore

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predict every patch's pixels ``(B, N, p·p·C)`` from the visible tokens and mask tokens."""
        x = self.decoder_embed(latent)  # (B, 1+N_keep, Dd)
        B, N = ids_restore.shape
        fillers = self.mask_token.expand(B, N + 1 - x.size(1), -1)  # (B, N−N_keep, Dd)
        x_ = torch.cat([x[:, 1:], fillers], dim=1)  # (B, N, Dd) in shuffled order
        x_ = torch.gather(x_, 1, ids_restore[..., None].expand(-1, -1, x.size(2)))  # (B, N, Dd) in patch order
        x = torch.cat([x[:, :1], x_], dim=1) + self.decoder_pos_embed  # (B, 1+N, Dd)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, N, p·p·C), [CLS] dropped

    def forward(self, imgs: torch.Tensor, noise: torch.Tensor | None = None, mask_ratio: float | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, pred (B, N, p·p·C), mask (B, N))``."""
        latent, mask, ids_restore = self.encode(imgs, noise, mask_ratio)
        pred = self.decode(latent, ids_restore)
        loss = self.loss_fn(imgs, pred, mask, self.encoder.config.patch_size, self.config.norm_pix_loss)
        return loss, pred, mask

    @torch.no_grad()
    def reconstruct(self, imgs: torch.Tensor, noise: torch.Tensor | None = None, mask_ratio: float | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masked input, reconstruction)`` as images ``(B, C, H, W)``: removed patches are 0 in the
        first; in the second the visible patches are pasted back (as in MAE's figures)."""
        _, pred, mask = self(imgs, noise, mask_ratio)
        p, size = self.encoder.config.patch_size, imgs.shape[-2:]
        m = mask[..., None]  # (B, N, 1)
        patches = patchify(imgs, p)
        if self.config.norm_pix_loss:  # the prediction is in normalised units: undo with the target's stats
            mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        return (unpatchify(patches * (1 - m), p, size),
                unpatchify(patches * (1 - m) + pred * m, p, size))


# ---------------------------------------------------------------- data and training helpers
def digit_tensors(upscale: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The course's 8×8 digits as ``(images (1797, 1, 8·u, 8·u) float32 in [0, 1], labels (1797,))``.

    ``upscale`` repeats every pixel ``u × u`` times (more patches for the same picture).
    """
    from labsupport import data

    images, labels = data.digits()
    x = torch.from_numpy(images)[:, None]  # (1797, 1, 8, 8)
    if upscale > 1:
        x = x.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)
    return x, torch.from_numpy(labels)


def split_digits(n_test: int = 297, seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """A fixed shuffled split of the digits: ``((x_train, y_train), (x_test, y_test))``, 1500 / 297."""
    x, y = digit_tensors()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def few_labels(y: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class (a balanced low-label subset)."""
    g = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(y == c).flatten() for c in range(int(y.max()) + 1)]
    return torch.cat([idx[torch.randperm(len(idx), generator=g)[:per_class]] for idx in picks])


def image_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
                  shift: int = 0):
    """Endless random ``(images, labels)`` batches; ``shift > 0`` translates each image by up to
    ``shift`` pixels (a cheap augmentation: zero padding, random crop)."""
    while True:
        idx = torch.randint(len(x), (batch_size,), generator=generator)
        imgs = x[idx]
        if shift:
            H, W = imgs.shape[-2:]
            padded = nn.functional.pad(imgs, (shift,) * 4)  # (B, C, H+2s, W+2s)
            dy, dx = torch.randint(2 * shift + 1, (2,), generator=generator).tolist()
            imgs = padded[..., dy:dy + H, dx:dx + W]
        yield imgs, y[idx]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``(x, y)``."""
    model.eval()
    dev = next(model.parameters()).device
    hits = sum((model(x[i:i + batch_size].to(dev)).argmax(-1).cpu() == y[i:i + batch_size]).sum().item()
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def classification_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of ``model(images)`` against the labels (a ``loss_fn`` for :func:`labsupport.train.fit`)."""
    imgs, labels = batch
    return nn.functional.cross_entropy(model(imgs), labels)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 3e-3,
                     batch_size: int = 128, seed: int = 0, device: torch.device | None = None,
                     progress: bool = True) -> list[float]:
    """AdamW on random batches of ``(x, y)`` for ``steps`` steps; returns the training losses."""
    from labsupport.train import TrainConfig, fit

    batches = image_batches(x, y, batch_size, torch.Generator().manual_seed(seed))
    return fit(model, batches, classification_loss, TrainConfig(steps=steps, lr=lr, progress=progress),
               device=device).losses


def pretrain_mae(mae: MaskedAutoencoder, x: torch.Tensor, steps: int, lr: float = 3e-3, batch_size: int = 128,
                 seed: int = 0, device: torch.device | None = None, progress: bool = True) -> list[float]:
    """Pre-train ``mae`` on the images ``x`` (no labels); returns the losses."""
    from labsupport.train import TrainConfig, fit

    batches = image_batches(x, torch.zeros(len(x), dtype=torch.long), batch_size, torch.Generator().manual_seed(seed))
    return fit(mae, batches, lambda model, batch: model(batch[0])[0],
               TrainConfig(steps=steps, lr=lr, progress=progress), device=device).losses


def low_label_comparison(make_vit: Callable[[], nn.Module], masking: Callable = random_masking,
                         loss: Callable = mae_loss, per_class: int = 10, pre_steps: int = 400,
                         ft_steps: int = 150, seed: int = 0, device: torch.device | None = None,
                         progress: bool = True) -> dict:
    """MAE pre-training on the 1,500 training digits (labels unused), then fine-tuning on ``per_class``
    labelled digits per class, against a ViT of the same size trained from scratch with the same budget.

    Returns ``{"mae": the pre-trained MaskedAutoencoder, "mae_losses": [...], "pretrained": test accuracy,
    "scratch": test accuracy}``.
    """
    (x_train, y_train), (x_test, y_test) = split_digits()
    torch.manual_seed(seed)
    encoder = make_vit()
    mae = MaskedAutoencoder(encoder, MAEConfig(), masking=masking, loss=loss)
    mae_losses = pretrain_mae(mae, x_train, pre_steps, seed=seed, device=device, progress=progress)
    labelled = few_labels(y_train, per_class, seed)
    out = {"mae": mae, "mae_losses": mae_losses}
    for name in ("pretrained", "scratch"):
        torch.manual_seed(seed + 1)
        model = encoder if name == "pretrained" else make_vit()
        train_classifier(model, x_train[labelled], y_train[labelled], ft_steps, lr=1e-3,
                         batch_size=min(100, len(labelled)), seed=seed, device=device, progress=progress)
        out[name] = accuracy(model, x_test, y_test)
    return out
