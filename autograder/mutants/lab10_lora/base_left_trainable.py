"""The pre-trained weights are left trainable (inject_lora forgets to freeze the model): full fine-tuning in disguise, with its memory and its checkpoint size."""
# expect: inject_lora_tests failed

# %% inject_lora
def inject_lora(model, target_modules, r, alpha, dropout=0.0):
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
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
