"""count_parameters sums over the state dict, so the GPT's head, tied to the token embedding, is counted twice."""
# expect: inject_lora_tests failed

# %% inject_lora
def inject_lora(model, target_modules, r, alpha, dropout=0.0):
    model.requires_grad_(False)
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in target_modules)]
    if not names:
        raise ValueError(f"no nn.Linear matches {target_modules}")
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, LoRALinear(getattr(owner, child), r, alpha, dropout))
    return model


def count_parameters(model):
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = model.state_dict()
    return sum(v.numel() for k, v in state.items() if k in trainable), sum(v.numel() for v in state.values())
