"""The ViT has its final LayerNorm but never applies it: features and logits come straight from the
last block."""
# expect: vit_classifier_tests failed

# %% vit_classifier
class VisionTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        D = config.d_model
        self.patch_embed = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + config.n_patches, D))
        self.blocks = nn.ModuleList([TransformerEncoderBlock(config.block()) for _ in range(config.n_layers)])
        self.norm = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.head = nn.Linear(D, config.n_classes)

    def features(self, imgs):
        x = self.patch_embed(imgs)
        x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, imgs):
        return self.head(self.features(imgs)[:, 0])
