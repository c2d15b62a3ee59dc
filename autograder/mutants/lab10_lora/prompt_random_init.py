"""The soft prompt is initialised with random numbers, not with the embeddings of init_ids."""
# expect: prompt_tuning_tests failed

# %% prompt_tuning
class SoftPrompt(nn.Module):
    def __init__(self, model, init_ids):
        super().__init__()
        self.model = model.requires_grad_(False)
        wte = model.transformer.wte.weight
        self.prompt = nn.Parameter(torch.randn(len(init_ids), wte.size(1), dtype=wte.dtype, device=wte.device))

    def forward(self, idx):
        t = self.model.transformer
        B, T = idx.shape
        n = self.prompt.size(0)
        x = torch.cat([self.prompt.expand(B, -1, -1), t.wte(idx)], dim=1)
        x = t.drop(x + t.wpe(torch.arange(n + T, device=idx.device)))
        for block in t.h:
            x, _ = block(x)
        return self.model.lm_head(t.ln_f(x))[:, n:]
