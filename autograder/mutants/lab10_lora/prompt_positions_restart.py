"""The real tokens get positions 0 … T−1 as if the prompt were not there (and the virtual tokens positions too early): the prompt and the text overlap in position."""
# expect: prompt_tuning_tests failed

# %% prompt_tuning
class SoftPrompt(nn.Module):
    def __init__(self, model, init_ids):
        super().__init__()
        self.model = model.requires_grad_(False)
        wte = model.transformer.wte.weight
        self.prompt = nn.Parameter(wte[torch.tensor(init_ids, device=wte.device)].detach().clone())

    def forward(self, idx):
        t = self.model.transformer
        B, T = idx.shape
        n = self.prompt.size(0)
        tokens = t.wte(idx) + t.wpe(torch.arange(T, device=idx.device))
        prompt = self.prompt + t.wpe(torch.arange(n, device=idx.device))
        x = t.drop(torch.cat([prompt.expand(B, -1, -1), tokens], dim=1))
        for block in t.h:
            x, _ = block(x)
        return self.model.lm_head(t.ln_f(x))[:, n:]
