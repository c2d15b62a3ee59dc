"""A correct solution in another style: F.unfold/F.fold for the patches, [CLS] and patch positions
added separately, the restore indices built with scatter instead of a second argsort, and the loss
written with explicit sums and the unbiased variance by hand."""

# %% patchify
def patchify(imgs, patch_size):
    B, C, H, W = imgs.shape
    p = patch_size
    cols = F.unfold(imgs, kernel_size=p, stride=p)  # (B, C·p·p, N), features ordered (c, u, v)
    N = cols.size(-1)
    return cols.view(B, C, p * p, N).permute(0, 3, 2, 1).reshape(B, N, p * p * C)  # (u, v, c)


def unpatchify(patches, patch_size, image_size):
    B, N, D = patches.shape
    p = patch_size
    C = D // (p * p)
    cols = patches.view(B, N, p * p, C).permute(0, 3, 2, 1).reshape(B, C * p * p, N)
    return F.fold(cols, output_size=tuple(image_size), kernel_size=p, stride=p)


# %% patch_embedding
class PatchEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.p = config.patch_size
        self.proj = nn.Linear(config.patch_dim, config.d_model)

    def forward(self, imgs):
        return F.linear(patchify(imgs, self.p), self.proj.weight, self.proj.bias)


# %% vit_classifier
class VisionTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.n_patches + 1, config.d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList()
        for _ in range(config.n_layers):
            self.blocks.append(TransformerEncoderBlock(config.block()))
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.d_model, config.n_classes)

    def features(self, imgs):
        patches = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).repeat(imgs.shape[0], 1, 1)
        h = torch.cat((cls, patches), dim=1)
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)

    def forward(self, imgs):
        cls = self.features(imgs)[:, 0, :]
        return cls @ self.head.weight.T + self.head.bias


# %% mae_masking
def random_masking(x, mask_ratio, noise=None):
    B, N, D = x.shape
    n_keep = int(N * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(B, N, device=x.device)
    _, ids_shuffle = torch.sort(noise, dim=1)
    positions = torch.arange(N, device=x.device).repeat(B, 1)
    ids_restore = torch.empty_like(ids_shuffle).scatter_(1, ids_shuffle, positions)
    rows = torch.arange(B, device=x.device)[:, None]
    x_kept = x[rows, ids_shuffle[:, :n_keep]]
    mask = torch.ones(B, N, dtype=x.dtype, device=x.device)
    mask[rows, ids_shuffle[:, :n_keep]] = 0.0
    return x_kept, mask, ids_restore


# %% mae_loss
def mae_loss(imgs, pred, mask, patch_size, norm_pix_loss=False):
    target = patchify(imgs, patch_size)
    n = target.shape[-1]
    if norm_pix_loss:
        mu = target.sum(-1, keepdim=True) / n
        var = ((target - mu) ** 2).sum(-1, keepdim=True) / (n - 1)
        target = (target - mu) / torch.sqrt(var + 1e-6)
    err = ((pred - target) ** 2).sum(-1) / n
    return torch.einsum("bn,bn->", err, mask) / mask.sum()
