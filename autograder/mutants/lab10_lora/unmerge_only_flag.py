"""unmerge_lora only clears the flag and leaves the update inside base.weight: after unmerging, the update counts twice."""
# expect: lora_merge_tests failed

# %% lora_merge
def merge_lora(layer):
    if layer.merged:
        return
    with torch.no_grad():
        layer.base.weight += layer.scaling * (layer.lora_B @ layer.lora_A)
    layer.merged = True


def unmerge_lora(layer):
    layer.merged = False
