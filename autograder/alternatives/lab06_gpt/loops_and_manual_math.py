"""A correct solution in another style: heads in a Python loop with an additive mask and a hand-written
softmax, the tanh GELU written out, an explicit per-layer cache, a masked log-likelihood loss, top-p on
the ascending cumulative sum (as transformers writes it) and sampling by inverting the CDF."""

# %% causal_block
class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_drop = nn.Dropout(config.dropout)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x, past=None):
        d, H = self.config.n_embd, self.config.n_head
        hs = d // H
        qkv = self.c_attn(x)
        q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        keys = [k[..., h * hs:(h + 1) * hs] for h in range(H)]
        values = [v[..., h * hs:(h + 1) * hs] for h in range(H)]
        if past is not None:
            keys = [torch.cat([past[0][:, h], keys[h]], 1) for h in range(H)]
            values = [torch.cat([past[1][:, h], values[h]], 1) for h in range(H)]
        T, S = x.size(1), keys[0].size(1)
        P = S - T
        q_pos = torch.arange(P, S).unsqueeze(1)
        k_pos = torch.arange(S).unsqueeze(0)
        bias = torch.zeros(T, S, dtype=x.dtype).masked_fill(k_pos > q_pos, float("-inf"))
        outs = []
        for h in range(H):
            scores = q[..., h * hs:(h + 1) * hs] @ keys[h].transpose(1, 2) / math.sqrt(hs) + bias
            scores = scores - scores.max(-1, keepdim=True).values
            w = scores.exp() / scores.exp().sum(-1, keepdim=True)
            outs.append(self.attn_drop(w) @ values[h])
        y = self.resid_drop(self.c_proj(torch.cat(outs, -1)))
        return y, (torch.stack(keys, 1), torch.stack(values, 1))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config.n_inner if config.n_inner else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, width)
        self.c_proj = nn.Linear(width, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.c_fc(x)
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h ** 3)))
        return self.drop(self.c_proj(h))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, past=None):
        attended, present = self.attn(self.ln_1(x), past=past)
        h = x + attended
        return h + self.mlp(self.ln_2(h)), present

# %% gpt_model
class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),
            "wpe": nn.Embedding(config.block_size, config.n_embd),
            "drop": nn.Dropout(config.dropout),
            "h": nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            "ln_f": nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps),
        })
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer["wte"].weight

    def forward(self, idx, past=None):
        start = past[0][0].shape[2] if past else 0
        positions = torch.arange(start, start + idx.shape[1]).expand_as(idx)
        x = self.transformer["drop"](self.transformer["wte"](idx) + self.transformer["wpe"](positions))
        present = []
        for layer, block in enumerate(self.transformer["h"]):
            x, kv = block(x, past[layer] if past else None)
            present.append(kv)
        x = self.transformer["ln_f"](x)
        return x @ self.transformer["wte"].weight.T, present

# %% lm_loss
def lm_loss(logits, labels, ignore_index=-100):
    targets = labels[:, 1:]
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    keep = targets != ignore_index
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()

# %% sampling
def top_k_filter(logits, k):
    if k is None or k == 0 or k >= logits.shape[-1]:
        return logits
    threshold = logits.sort(dim=-1, descending=True).values[:, k - 1:k]
    return torch.where(logits >= threshold, logits, torch.full_like(logits, float("-inf")))


def top_p_filter(logits, p, min_tokens_to_keep=1):
    if p is None or p >= 1:
        return logits
    ascending, order = logits.sort(dim=-1)
    cumulative = ascending.softmax(-1).cumsum(-1)
    drop = cumulative <= 1 - p
    drop[:, -min_tokens_to_keep:] = False
    out = logits.clone()
    for row in range(logits.shape[0]):
        out[row, order[row][drop[row]]] = float("-inf")
    return out


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = top_p_filter(top_k_filter(logits / temperature, top_k), top_p).softmax(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=probs.dtype)
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(-1).clamp(max=probs.shape[-1] - 1)

# %% kv_cache_generation
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
             use_cache=True):
    with torch.no_grad():
        out = idx
        cache = None
        for step in range(max_new_tokens):
            if not use_cache:
                logits = model(out)[0]
            elif cache is None:
                logits, cache = model(out)
            else:
                logits, cache = model(out[:, -1:], past=cache)
            out = torch.cat([out, sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)[:, None]], 1)
    return out
