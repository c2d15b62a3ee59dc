"""inject_lora wraps every module whose name matches, whatever its type: a target that names a block (not an nn.Linear) is wrapped as if it were a linear layer instead of being refused."""
# expect: inject_lora_tests failed

# %% inject_lora
def inject_lora(model, target_modules, r, alpha, dropout=0.0):
    model.requires_grad_(False)
    names = [name for name, m in model.named_modules()
             if name and any(name == t or name.endswith("." + t) for t in target_modules)]
    if not names:
        raise ValueError(f"no module matches {target_modules}")
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, LoRALinear(getattr(owner, child), r, alpha, dropout))
    return model


def count_parameters(model):
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
