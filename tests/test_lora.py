"""labsupport.lora against peft, and the graders of lab 10."""

import math
import warnings

import pytest
import torch
from torch import nn

from labsupport.checks import CheckFailed
from labsupport.checks import lab10 as check
from labsupport.gpt import GPT, GPTConfig, load_pretrained
from labsupport.lora import (
    LoRALinear,
    SoftPrompt,
    adapter_state_dict,
    checkpoint_bytes,
    count_parameters,
    inject_lora,
    load_adapter,
    matches,
    review_ids,
)

F64 = torch.float64
CFG = GPTConfig(vocab_size=29, block_size=20, n_layer=2, n_head=3, n_embd=12, n_inner=20)
warnings.filterwarnings("ignore", module="peft")


def merge_lora(layer):
    layer.merge()


def unmerge_lora(layer):
    layer.unmerge()


PARTS = {"lora_linear": (LoRALinear,), "lora_merge": (merge_lora, unmerge_lora, LoRALinear),
         "inject_lora": (inject_lora, count_parameters),
         "adapter_state": (adapter_state_dict, load_adapter, LoRALinear), "prompt_tuning": (SoftPrompt,)}


@pytest.mark.parametrize("part", list(PARTS))
def test_reference_passes_the_lab_checks(part):
    getattr(check, f"{part}_examples")(*PARTS[part])
    getattr(check, f"{part}_hidden")(*PARTS[part], seed=7)


def test_injected_gpt_matches_peft_and_merges():
    from peft import LoraConfig, get_peft_model

    state = check.random_gpt_state(CFG, torch.Generator().manual_seed(0))
    ours, ref = GPT(CFG).double(), GPT(CFG).double()
    ours.load_state_dict(state)
    ref.load_state_dict(state)
    inject_lora(ours, ["c_attn", "mlp.c_proj"], r=3, alpha=5.0)
    pm = get_peft_model(ref, LoraConfig(r=3, lora_alpha=5.0, target_modules=["c_attn", "mlp.c_proj"])).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, m in ours.named_modules():
            if isinstance(m, LoRALinear):
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=gen, dtype=F64))
                theirs = pm.base_model.model.get_submodule(name)
                theirs.lora_A["default"].weight.copy_(m.lora_A)
                theirs.lora_B["default"].weight.copy_(m.lora_B)
    idx = torch.randint(29, (2, 9), generator=gen)
    logits = ours(idx)[0]
    torch.testing.assert_close(logits, pm(idx)[0])
    assert count_parameters(ours) == pm.get_nb_trainable_parameters()
    merged = pm.merge_and_unload()
    for m in ours.modules():
        if isinstance(m, LoRALinear):
            m.merge()
    torch.testing.assert_close(ours(idx)[0], logits)
    torch.testing.assert_close(merged(idx)[0], logits)


def test_matching_rule_and_init():
    assert matches("transformer.h.0.attn.c_attn", ["c_attn"])
    assert not matches("layers.11.q", ["layers.1.q"]) and not matches("layers.1.myq", ["q"])
    layer = LoRALinear(nn.Linear(300, 7), r=6, alpha=3)
    assert layer.lora_A.abs().max() <= 1 / math.sqrt(300) and (layer.lora_B == 0).all()
    assert not layer.base.weight.requires_grad and layer.scaling == 0.5
    with pytest.raises(ValueError):
        inject_lora(GPT(CFG), ["k_proj"], r=2, alpha=2)


def test_adapter_round_trip_and_sizes():
    a, b = GPT(CFG), GPT(CFG)
    b.load_state_dict(a.state_dict())
    inject_lora(a, ["c_attn"], r=2, alpha=4)
    inject_lora(b, ["c_attn"], r=2, alpha=4)
    with torch.no_grad():
        a.transformer.h[1].attn.c_attn.lora_B.normal_()
    adapter = adapter_state_dict(a)
    assert sorted(adapter) == [f"transformer.h.{i}.attn.c_attn.lora_{w}" for i in range(2) for w in "AB"]
    load_adapter(b, adapter)
    idx = torch.randint(29, (1, 6))
    torch.testing.assert_close(a(idx)[0], b(idx)[0])
    with pytest.raises(ValueError):
        load_adapter(b, {**adapter, "x.lora_A": torch.zeros(1)})
    assert checkpoint_bytes(adapter) < checkpoint_bytes(a.state_dict()) / 10
    sp = SoftPrompt(GPT(CFG), [1, 2, 3])
    assert count_parameters(sp)[0] == 3 * CFG.n_embd


def test_checks_reject_broken_variants():
    class ScaledByAlpha(LoRALinear):
        def __init__(self, base, r, alpha, dropout=0.0):
            super().__init__(base, r, alpha, dropout)
            self.scaling = alpha

    with pytest.raises(CheckFailed, match="peft"):
        check.lora_linear_examples(ScaledByAlpha)

    class RandomB(LoRALinear):
        def __init__(self, base, r, alpha, dropout=0.0):
            super().__init__(base, r, alpha, dropout)
            nn.init.normal_(self.lora_B)

    with pytest.raises(CheckFailed, match="initialisation"):
        check.lora_linear_examples(RandomB)

    def merge_unscaled(layer):
        if not layer.merged:
            with torch.no_grad():
                layer.base.weight += layer.lora_B @ layer.lora_A
            layer.merged = True

    with pytest.raises(CheckFailed, match="merge"):
        check.lora_merge_examples(merge_unscaled, unmerge_lora, LoRALinear)

    def not_frozen(model, targets, r, alpha, dropout=0.0):
        inject_lora(model, targets, r, alpha, dropout)
        return model.requires_grad_(True)

    with pytest.raises(CheckFailed, match="trainable"):
        check.inject_lora_examples(not_frozen, count_parameters)

    def everything(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    with pytest.raises(CheckFailed, match="keys"):
        check.adapter_state_examples(everything, load_adapter, LoRALinear)


@pytest.mark.slow
def test_lora_adapts_the_course_gpt_to_reviews():
    from labsupport.lora import finetune, val_loss

    train_ids, val_ids = review_ids()
    model, _ = load_pretrained()
    before = val_loss(model, val_ids)
    torch.manual_seed(0)
    inject_lora(model, ["c_attn"], r=2, alpha=4)
    trainable, total = count_parameters(model)
    assert trainable / total < 0.01
    result = finetune(model, train_ids, val_ids, 30, lr=1e-2, progress=False)
    assert result["val_loss"] < before - 0.1


@pytest.mark.slow
def test_alternative_solutions_earn_full_marks():
    from autograder.course import lab
    from autograder.grade import grade_notebook
    from autograder.mutants import alternatives_of, mutant_notebook

    alternatives = alternatives_of("lab10_lora")
    assert alternatives
    for alt in alternatives:
        result = grade_notebook("lab10_lora", mutant_notebook(lab("lab10").source_notebook, alt), alt.name)
        lost = [(p.grade_id, p.reason[:300]) for p in result.auto_parts if p.points < p.max_points]
        assert not lost, lost
