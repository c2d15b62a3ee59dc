"""A correct solution in another style: the LoRA path through F.linear and a Bernoulli mask, A drawn with
uniform_ from the bound written out, merging through a delta computed with einsum, injection by a recursive
walk over named_children, counting distinct tensors by id, and the soft prompt built with index_select."""

# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        for p in base.parameters():
            p.requires_grad = False
        self.base = base
        self.p = dropout
        self.scaling = alpha / r
        bound = 1.0 / math.sqrt(base.in_features)
        a = torch.empty(r, base.in_features, dtype=base.weight.dtype, device=base.weight.device).uniform_(-bound, bound)
        self.lora_A = nn.Parameter(a)
        self.lora_B = nn.Parameter(base.weight.new_zeros(base.out_features, r))
        self.merged = False

    def forward(self, x):
        y = F.linear(x, self.base.weight, self.base.bias)
        if self.merged:
            return y
        z = x
        if self.training and self.p > 0:
            keep = torch.rand_like(x) >= self.p
            z = x * keep / (1 - self.p)
        return y + F.linear(F.linear(z, self.lora_A), self.lora_B) * self.scaling

# %% lora_merge
def _delta(layer):
    return torch.einsum("or,ri->oi", layer.lora_B, layer.lora_A) * layer.scaling


def merge_lora(layer):
    if not layer.merged:
        layer.base.weight.data = layer.base.weight.data + _delta(layer).detach()
        layer.merged = True


def unmerge_lora(layer):
    if layer.merged:
        layer.base.weight.data = layer.base.weight.data - _delta(layer).detach()
        layer.merged = False

# %% inject_lora
def inject_lora(model, target_modules, r, alpha, dropout=0.0):
    for p in model.parameters():
        p.requires_grad_(False)
    found = []

    def walk(module, prefix):
        for child_name, child in list(module.named_children()):
            full = f"{prefix}.{child_name}" if prefix else child_name
            hit = any(full == t or full.endswith("." + t) for t in target_modules)
            if isinstance(child, nn.Linear) and hit:
                module.add_module(child_name, LoRALinear(child, r, alpha, dropout))
                found.append(full)
            else:
                walk(child, full)

    walk(model, "")
    if not found:
        raise ValueError("target_modules matched nothing")
    return model


def count_parameters(model):
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        seen[id(p)] = p
    return (sum(p.numel() for p in seen.values() if p.requires_grad),
            sum(p.numel() for p in seen.values()))

# %% adapter_state
def adapter_state_dict(model):
    out = {}
    for name, p in model.named_parameters():
        if name.split(".")[-1] in ("lora_A", "lora_B"):
            out[name] = p.detach().clone()
    return out


def load_adapter(model, state):
    params = dict(model.named_parameters())
    lora = {k for k in params if k.split(".")[-1] in ("lora_A", "lora_B")}
    missing = lora - set(state)
    extra = set(state) - lora
    if missing or extra:
        raise ValueError(f"adapter mismatch: missing={sorted(missing)} extra={sorted(extra)}")
    for k in lora:
        params[k].data.copy_(state[k])

# %% prompt_tuning
class SoftPrompt(nn.Module):
    def __init__(self, model, init_ids):
        super().__init__()
        for p in model.parameters():
            p.requires_grad = False
        self.model = model
        emb = model.transformer.wte.weight.detach()
        ids = torch.as_tensor(init_ids, dtype=torch.long, device=emb.device)
        self.prompt = nn.Parameter(torch.index_select(emb, 0, ids).clone())

    def forward(self, idx):
        tr = self.model.transformer
        n, T = self.prompt.shape[0], idx.shape[1]
        prompt = self.prompt.unsqueeze(0).repeat(idx.shape[0], 1, 1)
        h = torch.cat((prompt, tr.wte(idx)), 1)
        h = tr.drop(h + tr.wpe.weight[: n + T])
        for blk in tr.h:
            h = blk(h)[0]
        logits = self.model.lm_head(tr.ln_f(h))
        return logits[:, n:, :]
