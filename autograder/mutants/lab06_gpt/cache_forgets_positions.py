"""With a cache, the position ids restart at 0: the new token gets position 0's embedding, not P's."""
# expect: gpt_model_tests failed, kv_cache_tests failed

# %% gpt_model
class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, past=None):
        pos = torch.arange(idx.size(1))  # the bug: ignores the cached positions
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        present = []
        for i, block in enumerate(self.transformer.h):
            x, kv = block(x, None if past is None else past[i])
            present.append(kv)
        return self.lm_head(self.transformer.ln_f(x)), present
