"""merge_lora adds B @ A without the scaling alpha / r: the merged model differs from the unmerged one unless alpha = r."""
# expect: lora_merge_tests failed

# %% lora_merge
def merge_lora(layer):
    if layer.merged:
        return
    with torch.no_grad():
        layer.base.weight += layer.lora_B @ layer.lora_A
    layer.merged = True


def unmerge_lora(layer):
    if not layer.merged:
        return
    with torch.no_grad():
        layer.base.weight -= layer.lora_B @ layer.lora_A
    layer.merged = False
