"""PatchEmbedding always cuts 2×2 patches (a hard-coded patch size) instead of config.patch_size."""
# expect: patch_embedding_tests failed, vit_classifier_tests failed

# %% patch_embedding
class PatchEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.patch_size * config.patch_size * config.in_chans, config.d_model)

    def forward(self, imgs):
        x = patchify(imgs, 2)
        return self.proj(x.reshape(x.size(0), -1, self.proj.in_features))
