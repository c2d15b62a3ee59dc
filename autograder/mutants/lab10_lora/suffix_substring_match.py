"""Target names are matched as substrings (`target in name`) instead of peft's rule (equal, or ending with "." + target): `q` also adapts `myq` and `q_out`, `layers.1.q` also `layers.11.q`."""
# expect: inject_lora_tests failed

# %% inject_lora
def inject_lora(model, target_modules, r, alpha, dropout=0.0):
    model.requires_grad_(False)
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(t in name for t in target_modules)]
    if not names:
        raise ValueError(f"no nn.Linear matches {target_modules}")
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, LoRALinear(getattr(owner, child), r, alpha, dropout))
    return model


def count_parameters(model):
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
