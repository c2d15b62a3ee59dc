"""Named checks for lab 9 (vision transformers and masked autoencoders). Test cells call these only.

The oracles:

- **patchify / unpatchify**: Hugging Face ``ViTMAEForPreTraining.patchify`` / ``unpatchify`` (MAE's
  order) on square images, an explicit index formula on every image (non-square too);
- **patch embedding**: ``torch.nn.functional.conv2d`` and ``nn.Conv2d`` with kernel = stride = p, the
  convolution weight ``(D, C, p, p)`` being the student's ``proj.weight (D, p·p·C)`` viewed as
  ``(D, p, p, C)`` and permuted to channels first;
- **ViT**: Hugging Face ``ViTForImageClassification`` (and its ``ViTModel``'s last hidden state) with
  the same seeded weights, float64, eval mode, non-square images, patch ≠ 16, channels ≠ 3,
  d_ff ≠ d_model; gradients of every parameter;
- **masking**: ``ViTMAEEmbeddings.random_masking`` given the same noise (exact), the restore
  property, and statistics over thousands of per-sample draws (marginals and pairs of patches);
- **MAE loss**: a closed form, and the loss of a small random ``ViTMAEForPreTraining``.

As in lab 3, weights are always loaded explicitly and anything that needs autograd through the
student's code runs next to it (:func:`labsupport.checks.on_student_side` with the trusted helpers
below), so the checks work the same in a notebook and in the grader's sandbox.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.checks import (
    call,
    check_close,
    check_shape,
    check_true,
    gradients,
    load_state,
    module_gradients,
    passed,
    student_autograd,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.checks.lab03 import random_block_state
from labsupport.vit import ViTConfig

F64 = torch.float64
ORDER_HINT = ("patch n = i·(W/p) + j (row-major over the patch grid); inside a patch, feature (u·p + v)·C + c "
              "(pixel row u, column v, channel c: channels fastest): reshape to (B, C, H/p, p, W/p, p), "
              "permute to (B, H/p, W/p, p, p, C), reshape")
VIT_NAMES = ("patch_embed (your PatchEmbedding), cls_token (1, 1, D), pos_embed (1, 1+N, D), "
             "blocks (an nn.ModuleList of TransformerEncoderBlock), norm (nn.LayerNorm), head (nn.Linear)")
BLOCK_TO_HF = {"self_attn.q_proj": "attention.q_proj", "self_attn.k_proj": "attention.k_proj",
               "self_attn.v_proj": "attention.v_proj", "self_attn.out_proj": "attention.o_proj",
               "linear1": "mlp.fc1", "linear2": "mlp.fc2", "norm1": "layernorm_before", "norm2": "layernorm_after"}


# ---------------------------------------------------------------- references and oracles
def _ref_patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Element by element: out[b, i·w + j, (u·p + v)·C + c] = x[b, c, i·p + u, j·p + v]."""
    B, C, H, W = x.shape
    h, w = H // p, W // p
    out = torch.empty(B, h * w, p * p * C, dtype=x.dtype)
    for i, j, u, v in itertools.product(range(h), range(w), range(p), range(p)):
        out[:, i * w + j, (u * p + v) * C:(u * p + v + 1) * C] = x[:, :, i * p + u, j * p + v]
    return out


def _hf_mae(p: int, C: int, size: int = 8, ratio: float = 0.75) -> SimpleNamespace:
    """Just enough of a ``ViTMAEForPreTraining`` for its ``patchify``/``unpatchify``/``random_masking``."""
    from transformers import ViTMAEConfig

    return SimpleNamespace(config=ViTMAEConfig(patch_size=p, num_channels=C, image_size=size, mask_ratio=ratio))


def _hf_patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    from transformers import ViTMAEForPreTraining

    return ViTMAEForPreTraining.patchify(_hf_mae(p, x.size(1), x.size(2)), x)


def _hf_unpatchify(y: torch.Tensor, p: int, size: tuple[int, int]) -> torch.Tensor:
    from transformers import ViTMAEForPreTraining

    return ViTMAEForPreTraining.unpatchify(_hf_mae(p, y.size(2) // (p * p), size[0]), y, size)


def _hf_random_masking(x: torch.Tensor, ratio: float, noise: torch.Tensor):
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEEmbeddings

    return ViTMAEEmbeddings.random_masking(_hf_mae(1, 1, 8, ratio), x, noise)


def conv_weight(linear_weight: torch.Tensor, p: int, C: int) -> torch.Tensor:
    """The student's ``proj.weight (D, p·p·C)`` as a convolution weight ``(D, C, p, p)``."""
    return linear_weight.view(-1, p, p, C).permute(0, 3, 1, 2)


def random_vit_state(cfg: ViTConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A seeded ViT state dict in the lab's names."""
    D = cfg.d_model
    state = {"patch_embed.proj.weight": torch.randn(D, cfg.patch_dim, generator=gen) / cfg.patch_dim ** 0.5,
             "patch_embed.proj.bias": 0.1 * torch.randn(D, generator=gen),
             "cls_token": torch.randn(1, 1, D, generator=gen),
             "pos_embed": 0.5 * torch.randn(1, 1 + cfg.n_patches, D, generator=gen),
             "norm.weight": 1 + 0.2 * torch.randn(D, generator=gen), "norm.bias": 0.1 * torch.randn(D, generator=gen),
             "head.weight": torch.randn(cfg.n_classes, D, generator=gen) / D ** 0.5,
             "head.bias": 0.1 * torch.randn(cfg.n_classes, generator=gen)}
    for i in range(cfg.n_layers):
        state.update({f"blocks.{i}.{k}": v for k, v in random_block_state(cfg.block(), gen).items()})
    return state


def vit_state_to_hf(state: dict[str, torch.Tensor], cfg: ViTConfig) -> dict[str, torch.Tensor]:
    """The lab's names → ``ViTForImageClassification``'s (the patch projection becomes a convolution)."""
    out = {"vit.embeddings.cls_token": state["cls_token"],
           "vit.embeddings.position_embeddings": state["pos_embed"],
           "vit.embeddings.patch_embeddings.projection.weight":
               conv_weight(state["patch_embed.proj.weight"], cfg.patch_size, cfg.in_chans),
           "vit.embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
           "vit.layernorm.weight": state["norm.weight"], "vit.layernorm.bias": state["norm.bias"],
           "classifier.weight": state["head.weight"], "classifier.bias": state["head.bias"]}
    for i in range(cfg.n_layers):
        for ours, theirs in BLOCK_TO_HF.items():
            for kind in ("weight", "bias"):
                out[f"vit.layers.{i}.{theirs}.{kind}"] = state[f"blocks.{i}.{ours}.{kind}"]
    return out


def hf_vit(cfg: ViTConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """A Hugging Face ``ViTForImageClassification`` of ``cfg``'s sizes holding ``state``, float64, eval."""
    from transformers import ViTConfig as HFViTConfig
    from transformers import ViTForImageClassification

    hf_cfg = HFViTConfig(image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.in_chans,
                         hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                         intermediate_size=cfg.d_ff, num_labels=cfg.n_classes, hidden_act="gelu",
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         layer_norm_eps=cfg.layer_norm_eps, attn_implementation="sdpa")
    model = ViTForImageClassification(hf_cfg)
    model.load_state_dict(vit_state_to_hf(state, cfg))
    return model.double().eval()


class _Logits(nn.Module):
    """A Hugging Face classifier that returns its logits tensor (for :func:`module_gradients`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


# ---------------------------------------------------------------- autograd next to the student's code
def patchify_gradients(patchify: Callable, x: torch.Tensor, p: int) -> tuple[torch.Tensor, list]:
    """``patchify(x, p)`` and the gradient of ``(out · g).sum()`` with respect to ``x``."""
    return gradients(lambda t: patchify(t, p), x)


def masking_gradients(random_masking: Callable, x: torch.Tensor, ratio: float,
                      noise: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The kept tokens of ``random_masking(x, ratio, noise)`` and the gradient with respect to ``x``."""
    return gradients(lambda t: random_masking(t, ratio, noise)[0], x)


def mae_loss_gradients(mae_loss: Callable, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor,
                       p: int, norm_pix_loss: bool) -> tuple[torch.Tensor, list]:
    """The loss and its gradient with respect to ``pred``."""
    return gradients(lambda t: mae_loss(imgs, t, mask, p, norm_pix_loss), pred, upstream_seed=1)


# ---------------------------------------------------------------- part 1: patchify / unpatchify
def patchify_examples(patchify: Callable, unpatchify: Callable) -> None:
    """A hand-checkable 2-channel 4×6 image in 2×2 patches, and the round trip."""
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6)  # x[0, c, r, k] = 24c + 6r + k
    what = "patchify(x of shape (1, 2, 4, 6), patch_size=2)"
    got = call(patchify, x, 2, what=what)
    check_shape(got, (1, 6, 8), what=what, hint="(B, C, H, W) → (B, (H/p)·(W/p), p·p·C)")
    check_close(got[0, 1], torch.tensor([2.0, 26, 3, 27, 8, 32, 9, 33]),
                what=f"{what}[0, 1] (the patch in patch-row 0, patch-column 1)",
                hint="pixels (0, 2), (0, 3), (1, 2), (1, 3), each with its 2 channels next to each other: "
                     + ORDER_HINT)
    check_close(got, _ref_patchify(x, 2), what=what, hint=ORDER_HINT)
    back = call(unpatchify, got, 2, (4, 6), what="unpatchify(patchify(x), 2, (4, 6))")
    check_shape(back, (1, 2, 4, 6), what="unpatchify(patchify(x), 2, (4, 6))",
                hint="(B, N, p·p·C) → (B, C, H, W), with C = p·p·C / (p·p)")
    check_close(back, x, what="unpatchify(patchify(x), 2, (4, 6)) must give x back",
                hint="undo the three steps in reverse: reshape, inverse permutation, reshape")
    passed("patchify and unpatchify cut and reassemble the example as expected")


def patchify_hidden(patchify: Callable, unpatchify: Callable, seed: int = 91) -> None:
    """Hugging Face's MAE patchify on square images; the index formula on non-square ones; any
    channel count and patch size; non-contiguous inputs; both round trips; gradients."""
    gen = torch.Generator().manual_seed(seed)
    for B, C, H, W, p in [(3, 3, 8, 8, 2), (2, 1, 12, 12, 4), (2, 5, 6, 9, 3), (3, 2, 12, 8, 4), (1, 4, 4, 4, 4),
                          (2, 3, 2, 6, 1), (1, 2, 10, 4, 2)]:
        x = torch.randn(B, C, H, W, generator=gen, dtype=F64)
        what = f"patchify(x of shape {(B, C, H, W)}, {p})"
        got = call(patchify, x, p, what=what)
        check_shape(got, (B, (H // p) * (W // p), p * p * C), what=what, hint="(B, (H/p)·(W/p), p·p·C)")
        if H == W:
            check_close(got, _hf_patchify(x, p), what=f"{what} vs Hugging Face ViTMAE patchify", hint=ORDER_HINT)
        check_close(got, _ref_patchify(x, p), what=what, hint=ORDER_HINT)
        y = torch.randn(B, (H // p) * (W // p), p * p * C, generator=gen, dtype=F64)
        what = f"unpatchify(y of shape {tuple(y.shape)}, {p}, {(H, W)})"
        back = call(unpatchify, y, p, (H, W), what=what)
        check_shape(back, (B, C, H, W), what=what, hint="(B, N, p·p·C) → (B, C, H, W)")
        if H == W:
            check_close(back, _hf_unpatchify(y, p, (H, W)), what=f"{what} vs Hugging Face ViTMAE unpatchify")
        check_close(call(patchify, back, p, what="patchify(unpatchify(y))"), y,
                    what="patchify(unpatchify(y)) must give y back", hint=ORDER_HINT)
        check_close(call(unpatchify, got, p, (H, W), what="unpatchify(patchify(x))"), x,
                    what=f"unpatchify(patchify(x), {p}, {(H, W)}) must give x back")
        x_nc = torch.randn(B, H, W, C, generator=gen, dtype=F64).permute(0, 3, 1, 2)  # non-contiguous (B, C, H, W)
        check_close(call(patchify, x_nc, p, what="patchify(a non-contiguous image)"), _ref_patchify(x_nc, p),
                    what=f"patchify(a non-contiguous tensor of shape {(B, C, H, W)})",
                    hint="the same image stored contiguously gave the right patches: the answer must follow the "
                         "shape of x (reshape, permute), not its memory layout")
    x = torch.randn(2, 3, 6, 4, generator=gen, dtype=F64)
    out, (grad,) = student_autograd(patchify_gradients, patchify, x, 2, what="gradient through patchify")
    _, (expected,) = patchify_gradients(_ref_patchify_autograd, x, 2)
    check_close(out, _ref_patchify(x, 2), what="patchify with autograd on")
    check_true(grad is not None, what="gradient through patchify", expected="a gradient tensor", got=None,
               hint="use only reshape/permute (no .detach(), no copies through Python lists)")
    check_close(grad, expected, what="gradient of patchify with respect to the image")
    passed("patchify and unpatchify match MAE's order on random shapes, channels and patch sizes")


def _ref_patchify_autograd(x: torch.Tensor, p: int) -> torch.Tensor:
    B, C, H, W = x.shape
    return x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, -1, p * p * C)


# ---------------------------------------------------------------- part 2: patch embedding
def _student_embedding(cls: Callable, cfg: ViTConfig, seed: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    state = {"proj.weight": torch.randn(cfg.d_model, cfg.patch_dim, generator=gen, dtype=F64),
             "proj.bias": torch.randn(cfg.d_model, generator=gen, dtype=F64)}
    module = call(cls, cfg, what=f"PatchEmbedding({cfg})")
    module = module.double()
    load_state(module, state, what=f"PatchEmbedding({cfg})",
               names="one nn.Linear named proj, p·p·C → d_model (with bias)")
    return module, state


def _conv_reference(x: torch.Tensor, state: dict[str, torch.Tensor], cfg: ViTConfig) -> torch.Tensor:
    w = conv_weight(state["proj.weight"], cfg.patch_size, cfg.in_chans)  # (D, C, p, p)
    y = F.conv2d(x, w, state["proj.bias"], stride=cfg.patch_size)  # (B, D, H/p, W/p)
    return y.flatten(2).transpose(1, 2)  # (B, N, D)


EMBED_HINT = ("patchify the image with your patchify (MAE's order) and apply proj to every patch; "
              "the grader's convolution weight is proj.weight viewed as (D, p, p, C), permuted to (D, C, p, p)")


def patch_embedding_examples(PatchEmbedding: Callable) -> None:
    """A 3-channel 4×6 image in 2×2 patches against the strided convolution."""
    cfg = ViTConfig(image_size=(4, 6), patch_size=2, in_chans=3, d_model=5)
    emb, state = _student_embedding(PatchEmbedding, cfg, 0)
    x = torch.randn(2, 3, 4, 6, generator=torch.Generator().manual_seed(1), dtype=F64)
    got = call(emb, x, what="PatchEmbedding(...)(x of shape (2, 3, 4, 6))")
    check_shape(got, (2, 6, 5), what="patch embedding output", hint="(B, C, H, W) → (B, N, d_model)")
    check_close(got, _conv_reference(x, state, cfg), what="patch embedding vs conv2d(kernel = stride = 2)",
                hint=EMBED_HINT)
    passed("PatchEmbedding equals the strided convolution")


def patch_embedding_hidden(PatchEmbedding: Callable, seed: int = 92) -> None:
    """Non-square images, 1 to 5 channels, patch sizes 1 to 4, nn.Conv2d, gradients of weights and input."""
    gen = torch.Generator().manual_seed(seed)
    configs = [ViTConfig(image_size=(12, 8), patch_size=4, in_chans=3, d_model=7),
               ViTConfig(image_size=(6, 9), patch_size=3, in_chans=1, d_model=11),
               ViTConfig(image_size=(4, 10), patch_size=2, in_chans=5, d_model=6),
               ViTConfig(image_size=(3, 5), patch_size=1, in_chans=2, d_model=4)]
    for n, cfg in enumerate(configs):
        emb, state = _student_embedding(PatchEmbedding, cfg, seed + n)
        B = 3 - n % 2
        x = torch.randn(B, cfg.in_chans, *cfg.image_size, generator=gen, dtype=F64)
        what = f"PatchEmbedding(image {cfg.image_size}, patch {cfg.patch_size}, {cfg.in_chans} channels)"
        got = call(emb, x, what=what)
        check_shape(got, (B, cfg.n_patches, cfg.d_model), what=what, hint="(B, C, H, W) → (B, (H/p)·(W/p), d_model)")
        conv = nn.Conv2d(cfg.in_chans, cfg.d_model, cfg.patch_size, stride=cfg.patch_size).double()
        conv.load_state_dict({"weight": conv_weight(state["proj.weight"], cfg.patch_size, cfg.in_chans),
                              "bias": state["proj.bias"]})
        expected = conv(x).flatten(2).transpose(1, 2)  # (B, N, D)
        check_close(got, expected, what=f"{what} vs nn.Conv2d(kernel_size = stride = {cfg.patch_size})",
                    hint=EMBED_HINT)
        out, (g_x,), grads = student_autograd(module_gradients, emb, x, what=what)
        exp_out, (e_x,), e_grads = module_gradients(_Flatten(conv), x)
        check_close(out, exp_out, what=f"{what} with autograd on")
        for name, got_g, exp_g in (("the image", g_x, e_x),
                                   ("proj.weight", grads.get("proj.weight"),
                                    e_grads["conv.weight"].permute(0, 2, 3, 1).reshape(cfg.d_model, -1)),
                                   ("proj.bias", grads.get("proj.bias"), e_grads["conv.bias"])):
            check_true(got_g is not None, what=f"{what}: no gradient reaches {name}", expected="a gradient tensor",
                       got=None, hint="avoid .detach(), .item() or .data on the way")
            check_close(got_g, exp_g, what=f"{what}: gradient with respect to {name}")
    passed("PatchEmbedding equals nn.Conv2d with kernel = stride = p: outputs and gradients")


class _Flatten(nn.Module):
    """``conv(x)`` as a sequence of patch embeddings ``(B, N, D)``."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(2).transpose(1, 2)


# ---------------------------------------------------------------- part 3: the ViT classifier
def _student_vit(cls: Callable, cfg: ViTConfig, seed: int) -> tuple[nn.Module, nn.Module, dict]:
    state = random_vit_state(cfg, torch.Generator().manual_seed(seed))
    vit = call(cls, cfg, what=f"VisionTransformer({cfg})")
    load_state(vit, state, what=f"VisionTransformer({cfg})", names=VIT_NAMES)
    vit = vit.double()
    vit.eval()
    return vit, hf_vit(cfg, state), state


VIT_HINT = ("embed the patches, prepend cls_token, add pos_embed to all 1+N tokens (row 0 is [CLS]'s), "
            "run the pre-LN GELU blocks, apply norm; the head reads token 0")


def _compare_vit(vit: nn.Module, oracle: nn.Module, x: torch.Tensor, what: str) -> None:
    B = len(x)
    feats = call(vit.features, x, what=f"{what}: features(x)")
    expected = oracle.vit(x).last_hidden_state
    check_shape(feats, expected.shape, what=f"{what}: features(x)", hint="(B, 1+N, d_model), token 0 is [CLS]")
    check_close(feats, expected, what=f"{what}: features(x) vs Hugging Face ViTModel's last hidden state",
                hint=VIT_HINT)
    logits = call(vit, x, what=f"{what}: forward(x)")
    check_shape(logits, (B, oracle.config.num_labels), what=f"{what}: logits", hint="(B, n_classes)")
    check_close(logits, oracle(x).logits, what=f"{what}: logits vs ViTForImageClassification",
                hint="the head is applied to the normalised [CLS] token, features(x)[:, 0]")


def vit_examples(VisionTransformer: Callable) -> None:
    """A non-square 2-channel ViT against Hugging Face ``ViTForImageClassification``."""
    cfg = ViTConfig(image_size=(8, 12), patch_size=4, in_chans=2, d_model=12, n_heads=3, n_layers=2, d_ff=20,
                    n_classes=5)
    vit, oracle, _ = _student_vit(VisionTransformer, cfg, 0)
    x = torch.randn(3, 2, 8, 12, generator=torch.Generator().manual_seed(1), dtype=F64)
    _compare_vit(vit, oracle, x, "ViT(image 8×12, patch 4, 2 channels)")
    passed("VisionTransformer matches Hugging Face ViTForImageClassification")


def vit_hidden(VisionTransformer: Callable, seed: int = 93) -> None:
    """Other sizes (1 and 3 channels, 1 and 3 layers, LayerNorm eps), batch of one, gradients of every
    parameter against Hugging Face."""
    gen = torch.Generator().manual_seed(seed)
    configs = [ViTConfig(image_size=(12, 8), patch_size=2, in_chans=3, d_model=16, n_heads=4, n_layers=3, d_ff=24,
                         n_classes=7, layer_norm_eps=1e-12),
               ViTConfig(image_size=(6, 10), patch_size=2, in_chans=1, d_model=10, n_heads=2, n_layers=1, d_ff=30,
                         n_classes=3, layer_norm_eps=1e-5),
               ViTConfig(image_size=(9, 9), patch_size=3, in_chans=2, d_model=18, n_heads=6, n_layers=2, d_ff=8,
                         n_classes=4, dropout=0.2)]
    for n, cfg in enumerate(configs):
        vit, oracle, state = _student_vit(VisionTransformer, cfg, seed + n)
        what = (f"ViT(image {cfg.image_size[0]}×{cfg.image_size[1]}, patch {cfg.patch_size}, {cfg.in_chans} "
                f"channels, {cfg.n_layers} layers, eps {cfg.layer_norm_eps:g})")
        for B in (4, 1):
            x = torch.randn(B, cfg.in_chans, *cfg.image_size, generator=gen, dtype=F64)
            _compare_vit(vit, oracle, x, f"{what}, batch {B}")

    cfg = configs[0]
    vit, oracle, state = _student_vit(VisionTransformer, cfg, seed + 10)
    vit.train()  # dropout is 0: train mode must give the same function
    x = torch.randn(2, cfg.in_chans, *cfg.image_size, generator=gen, dtype=F64)
    out, (g_x,), grads = student_autograd(module_gradients, vit, x, what="ViT gradients")
    exp_out, (e_x,), e_grads = module_gradients(_Logits(oracle), x)
    check_close(out, exp_out, what="ViT logits in train mode with dropout 0")
    check_true(g_x is not None, what="ViT: no gradient reaches the image", expected="a gradient tensor", got=None,
               hint="avoid .detach(), .item() or .data on the way")
    check_close(g_x, e_x, what="ViT: gradient with respect to the image")
    hf_grads = vit_state_to_hf({k: grads.get(k) if grads.get(k) is not None else torch.full_like(v, float("nan"))
                                for k, v in state.items()}, cfg)
    for name, g in hf_grads.items():
        check_true(not bool(torch.isnan(g).all()), what=f"ViT: no gradient for the parameter mapped to {name}",
                   expected="a gradient tensor", got=None, hint="every parameter must be used in forward")
        check_close(g, e_grads[f"model.{name}"].to(F64), what=f"ViT: gradient of the parameter mapped to {name}")
    passed("VisionTransformer matches Hugging Face ViT: sizes, channels, depths, eps, batch 1, gradients")


# ---------------------------------------------------------------- part 4: random masking
MASK_HINT = ("n_keep = int(N * (1 - mask_ratio)); ids_shuffle = argsort(noise, dim=1); keep the tokens "
             "ids_shuffle[:, :n_keep] in that order; ids_restore = argsort(ids_shuffle, dim=1); mask = 1.0 for "
             "removed tokens, in patch order")


def _masking(fn: Callable, x: torch.Tensor, ratio: float, noise: torch.Tensor | None, what: str):
    res = call(fn, x, ratio, noise, what=what)
    check_true(isinstance(res, tuple) and len(res) == 3, what=f"{what}: must return (x_kept, mask, ids_restore)",
               expected="a tuple of 3 tensors", got=type(res).__name__)
    return res


def masking_examples(random_masking: Callable) -> None:
    """Four tokens, half masked, with the noise given; then 16 tokens with 75 % masked."""
    x = torch.arange(4.0).view(1, 4, 1)
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    kept, mask, restore = _masking(random_masking, x, 0.5, noise, "random_masking(x, 0.5, noise=[0.9, 0.1, 0.5, 0.3])")
    check_close(kept.flatten(), torch.tensor([1.0, 3.0]), what="kept tokens",
                hint="keep the tokens with the smallest noise (1 then 3), in increasing order of noise")
    check_close(mask.float(), torch.tensor([[1.0, 0.0, 1.0, 0.0]]), what="mask (1.0 = removed, in patch order)",
                hint=MASK_HINT)
    check_close(restore, torch.tensor([[3, 0, 2, 1]]), what="ids_restore", hint="ids_restore = argsort(ids_shuffle)")
    x = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(0))
    kept, mask, restore = _masking(random_masking, x, 0.75, None, "random_masking(x (2, 16, 3), 0.75)")
    check_shape(kept, (2, 4, 3), what="kept tokens with 16 patches and ratio 0.75", hint="int(16 · 0.25) = 4 kept")
    check_shape(mask, (2, 16), what="mask", hint="(B, N)")
    check_shape(restore, (2, 16), what="ids_restore", hint="(B, N)")
    passed("random_masking keeps, masks and restores the example as expected")


def masking_hidden(random_masking: Callable, seed: int = 94) -> None:
    """Hugging Face's ViTMAE masking with the same noise, the restore property, and statistics over
    thousands of per-sample draws (each patch kept with probability 1 − ratio, pairs too)."""
    gen = torch.Generator().manual_seed(seed)
    for B, N, D, ratio in [(3, 16, 5, 0.75), (2, 14, 3, 0.6), (4, 9, 2, 0.5), (2, 7, 4, 0.0), (1, 20, 1, 0.9),
                           (3, 196, 2, 0.75)]:
        x = torch.randn(B, N, D, generator=gen, dtype=F64)
        noise = torch.rand(B, N, generator=gen)
        what = f"random_masking(x {(B, N, D)}, ratio {ratio}, noise)"
        kept, mask, restore = _masking(random_masking, x, ratio, noise, what)
        e_kept, e_mask, e_restore = _hf_random_masking(x, ratio, noise)
        n_keep = int(N * (1 - ratio))
        check_shape(kept, (B, n_keep, D), what=f"{what}: kept tokens",
                    hint=f"exactly int(N · (1 − ratio)) = {n_keep} tokens per sample")
        check_close(kept, e_kept, what=f"{what}: kept tokens vs Hugging Face ViTMAE", hint=MASK_HINT)
        check_true(mask.is_floating_point(), what=f"{what}: mask dtype", expected="a float tensor",
                   got=str(mask.dtype), hint="mask = 1.0 for removed tokens, 0.0 for kept ones")
        check_close(mask, e_mask, what=f"{what}: mask vs Hugging Face ViTMAE", hint=MASK_HINT)
        check_true(restore.dtype == torch.int64, what=f"{what}: ids_restore dtype", expected="torch.int64",
                   got=str(restore.dtype), hint="argsort returns int64 indices")
        check_close(restore, e_restore, what=f"{what}: ids_restore vs Hugging Face ViTMAE", hint=MASK_HINT)
        filler = torch.full((B, N - n_keep, D), 7.0, dtype=F64)
        back = torch.gather(torch.cat([kept, filler], 1), 1, restore[..., None].expand(-1, -1, D))
        check_close(back, torch.where(mask[..., None].bool(), 7.0, x),
                    what=f"{what}: gather(cat(kept, fillers), 1, ids_restore) must put every kept token back",
                    hint="ids_restore must be the inverse permutation of the shuffle (argsort of ids_shuffle)")
    x = torch.randn(3, 16, 4, generator=gen, dtype=F64)
    noise = torch.rand(3, 16, generator=gen)
    out, (grad,) = student_autograd(masking_gradients, random_masking, x, 0.75, noise, what="gradient through masking")
    _, (expected,) = masking_gradients(lambda t, r, z: _hf_random_masking(t, r, z), x, 0.75, noise)
    check_true(grad is not None, what="gradient through random_masking", expected="a gradient tensor", got=None,
               hint="the kept tokens must come from x through tensor operations (torch.gather or indexing) for "
                    "autograd to reach x")
    check_close(grad, expected, what="gradient of the kept tokens with respect to x")
    _masking_statistics(random_masking)
    passed("random_masking matches ViTMAE given the noise, restores exactly and is uniform per sample")


def _masking_statistics(random_masking: Callable) -> None:
    """Draws of the student's own noise: every patch kept with probability 1 − ratio, every pair of
    patches kept together as often as a uniform choice of n_keep patches out of N implies."""
    B, N, ratio = 4000, 16, 0.75
    n_keep = int(N * (1 - ratio))
    x = torch.arange(N, dtype=F64).view(1, N, 1).expand(B, N, 1).contiguous()  # token value = its patch index
    kept, mask, _ = _masking(random_masking, x, ratio, None, "random_masking(x (4000, 16, 1), 0.75) without noise")
    check_shape(kept, (B, n_keep, 1), what="kept tokens without noise", hint="draw noise = torch.rand(B, N)")
    ids = kept[..., 0].round().long()  # (B, n_keep): which patches each sample kept
    chosen = torch.zeros(B, N, dtype=F64).scatter_(1, ids, 1.0)  # (B, N) 1 = kept
    check_close(chosen, 1 - mask.to(F64), what="without noise: the mask must mark exactly the tokens not kept",
                hint="build the mask from the same shuffle as the kept tokens")
    freq = chosen.mean(0)  # (N,)
    worst = int((freq - (1 - ratio)).abs().argmax())
    check_true(bool(((freq - (1 - ratio)).abs() < 0.035).all()),
               what=f"each patch must be kept with probability 1 − ratio = {1 - ratio} (4000 draws)",
               expected=f"about {1 - ratio} for every patch", got=f"{freq[worst].item():.3f} for patch {worst}",
               hint="draw noise uniformly per sample and per patch (torch.rand(B, N)) and keep the smallest")
    pairs = chosen.T @ chosen / B  # (N, N): how often patches i and j are kept together
    p_pair = n_keep * (n_keep - 1) / (N * (N - 1))
    off = ~torch.eye(N, dtype=torch.bool)
    dev = (pairs - p_pair).abs().masked_fill(~off, 0)
    i, j = divmod(int(dev.argmax()), N)
    check_true(bool(dev.max() < 0.02), what="pairs of patches must be kept together as often as under a uniform "
               f"choice of {n_keep} of {N} patches (4000 draws)", expected=f"about {p_pair:.3f} for every pair",
               got=f"{pairs[i, j].item():.3f} for patches {i} and {j}",
               hint="choose the kept set uniformly at random: argsort of independent uniform noise")
    distinct = len({tuple(row) for row in ids.sort(1).values.tolist()})
    check_true(distinct > 1000, what="different samples of one batch must get different masks",
               expected="many distinct masks in 4000 samples", got=f"{distinct} distinct masks",
               hint="each sample draws its own noise: torch.rand(B, N)")
    kept2, _, _ = _masking(random_masking, x[:64], ratio, None, "a second call without noise")
    check_true(not torch.equal(kept2, kept[:64]), what="two calls without noise must draw different masks",
               expected="different masks", got="the same masks",
               hint="without a noise argument, every call draws fresh noise with torch.rand, so two calls differ")


# ---------------------------------------------------------------- part 5: the MAE loss
def _ref_loss(imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, p: int, norm: bool) -> torch.Tensor:
    target = _ref_patchify(imgs, p)
    if norm:
        n = target.size(-1)
        mean = target.sum(-1, keepdim=True) / n
        var = ((target - mean) ** 2).sum(-1, keepdim=True) / (n - 1)  # unbiased
        target = (target - mean) / torch.sqrt(var + 1e-6)
    per_patch = ((pred - target) ** 2).mean(-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum()


LOSS_HINT = ("per patch, the mean over its p·p·C values of (pred − target)²; then average over the removed "
             "patches only: (per_patch · mask).sum() / mask.sum()")
NORM_HINT = ("with norm_pix_loss the target patch is (t − mean) / sqrt(var + 1e-6), mean and unbiased variance "
             "(torch's default .var) over the patch's own p·p·C values")


def _loss(fn: Callable, imgs, pred, mask, p: int, norm: bool | None, what: str) -> torch.Tensor:
    args = (imgs, pred, mask, p) if norm is None else (imgs, pred, mask, p, norm)
    got = call(fn, *args, what=what)
    check_true(isinstance(got, torch.Tensor) and got.dim() == 0, what=f"{what}: must return a scalar tensor",
               expected="a 0-dimensional tensor", got=f"{type(got).__name__} {getattr(got, 'shape', '')}")
    return got


def mae_loss_examples(mae_loss: Callable) -> None:
    """Two 2×2 patches of one 2×4 image, the second one removed; then norm_pix_loss."""
    imgs = torch.tensor([[[[1.0, 2.0, 0.0, 4.0], [3.0, 4.0, 4.0, 0.0]]]])  # (1, 1, 2, 4): patches [1,2,3,4], [0,4,4,0]
    pred = torch.zeros(1, 2, 4)
    mask = torch.tensor([[0.0, 1.0]])
    got = _loss(mae_loss, imgs, pred, mask, 2, None, "mae_loss(imgs, pred = 0, mask = [0, 1], 2)")
    check_close(got, torch.tensor(8.0), what="loss on the removed patch only: mean(0², 4², 4², 0²) = 8",
                hint=LOSS_HINT)
    got = _loss(mae_loss, imgs, pred, mask, 2, True, "mae_loss(..., norm_pix_loss=True)")
    check_close(got, torch.tensor(4 / (16 / 3 + 1e-6)), rtol=1e-5, atol=1e-6,
                what="normalised target [−2, 2, 2, −2]/sqrt(16/3 + 1e-6): loss = 4/(16/3 + 1e-6) ≈ 0.75",
                hint=NORM_HINT)
    passed("mae_loss gives the hand-computed values")


def mae_loss_hidden(mae_loss: Callable, seed: int = 95) -> None:
    """The closed form on random shapes (both settings), a constant patch with norm_pix_loss (eps), the
    loss of a random Hugging Face ViTMAEForPreTraining, and gradients zero on kept patches."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 3, 8, 8, 2, 0.75), (2, 1, 12, 8, 4, 0.5), (4, 2, 6, 9, 3, 0.6), (1, 5, 4, 4, 2, 0.25)]
    for B, C, H, W, p, ratio in shapes:
        imgs = torch.rand(B, C, H, W, generator=gen, dtype=F64)
        N, P = (H // p) * (W // p), p * p * C
        pred = torch.randn(B, N, P, generator=gen, dtype=F64)
        noise = torch.rand(B, N, generator=gen)
        mask = _hf_random_masking(torch.zeros(B, N, 1), ratio, noise)[1].to(F64)
        for norm in (False, True):
            what = f"mae_loss(imgs {(B, C, H, W)}, pred, mask with ratio {ratio}, {p}, norm_pix_loss={norm})"
            got = _loss(mae_loss, imgs, pred, mask, p, norm, what)
            check_close(got, _ref_loss(imgs, pred, mask, p, norm), what=what, hint=NORM_HINT if norm else LOSS_HINT)
        what = f"mae_loss(imgs {(B, C, H, W)}, ...) with norm_pix_loss left at its default"
        check_close(_loss(mae_loss, imgs, pred, mask, p, None, what), _ref_loss(imgs, pred, mask, p, False),
                    what=what, hint="norm_pix_loss defaults to False")
    imgs = torch.rand(2, 3, 4, 4, generator=gen, dtype=F64)
    imgs[0, :, :2, :2] = 0.5  # patch 0 of image 0 is constant: variance 0
    pred = torch.randn(2, 4, 12, generator=gen, dtype=F64)
    mask = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 0]], dtype=F64)
    what = "mae_loss with norm_pix_loss=True and a constant (zero-variance) removed patch"
    got = _loss(mae_loss, imgs, pred, mask, 2, True, what)
    check_close(got, _ref_loss(imgs, pred, mask, 2, True), what=what,
                hint="add eps = 1e-6 to the variance before the square root: a constant patch then has target 0")
    _check_against_hf_mae(mae_loss, gen)
    imgs = torch.rand(3, 2, 6, 4, generator=gen, dtype=F64)
    pred = torch.randn(3, 6, 8, generator=gen, dtype=F64)
    mask = torch.tensor([[1.0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 0, 1]], dtype=F64)
    for norm in (False, True):
        loss, (g,) = student_autograd(mae_loss_gradients, mae_loss, imgs, pred, mask, 2, norm,
                                      what="gradient of mae_loss")
        _, (e,) = mae_loss_gradients(lambda *a: _ref_loss(*a), imgs, pred, mask, 2, norm)
        check_true(g is not None, what="gradient of mae_loss with respect to pred", expected="a gradient tensor",
                   got=None, hint="use differentiable tensor operations only")
        kept = ~mask.bool()
        check_true(bool((g[kept] == 0).all()), what=f"norm_pix_loss={norm}: gradient on the kept patches",
                   expected="exactly 0 (the loss ignores them)", got="non-zero values",
                   hint="multiply the per-patch loss by the mask before summing")
        check_close(g, e, what=f"norm_pix_loss={norm}: gradient of mae_loss with respect to pred")
    passed("mae_loss matches the closed form and Hugging Face ViTMAE's loss; kept patches get no gradient")


def _check_against_hf_mae(mae_loss: Callable, gen: torch.Generator) -> None:
    """A small random ``ViTMAEForPreTraining``: its own loss from its logits and mask."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    for norm, (size, p, C) in ((False, (8, 2, 3)), (True, (12, 4, 2))):
        cfg = ViTMAEConfig(image_size=size, patch_size=p, num_channels=C, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=24, decoder_hidden_size=12,
                           decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=20,
                           mask_ratio=0.75, norm_pix_loss=norm, attn_implementation="sdpa")
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
        model = ViTMAEForPreTraining(cfg).double().eval()
        imgs = torch.rand(2, C, size, size, generator=gen, dtype=F64)
        noise = torch.rand(2, (size // p) ** 2, generator=gen)
        with torch.no_grad():
            out = model(imgs, noise=noise)
        what = f"mae_loss on a Hugging Face ViTMAEForPreTraining's logits (norm_pix_loss={norm})"
        got = _loss(mae_loss, imgs, out.logits, out.mask.to(F64), p, norm, what)
        check_close(got, out.loss.to(F64), what=what, hint=NORM_HINT if norm else LOSS_HINT)
