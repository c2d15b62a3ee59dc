"""adapter_state_dict returns the whole state dict (base weights included): the "adapter" is as large as the model."""
# expect: adapter_state_tests failed

# %% adapter_state
def adapter_state_dict(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_adapter(model, state):
    own = {k: p for k, p in model.named_parameters() if k.endswith((".lora_A", ".lora_B"))}
    with torch.no_grad():
        for k, p in own.items():
            p.copy_(state[k])
