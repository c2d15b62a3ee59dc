"""Named checks for lab 10 (LoRA and prompt tuning). Test cells call these and nothing else.

The oracle is ``peft``: ``LoraConfig`` / ``get_peft_model`` on the *same* base model (the course's
:class:`~labsupport.gpt.GPT` from a small random non-square config, or :class:`Toy`, a small module of
named ``nn.Linear`` layers), with the student's ``lora_A`` / ``lora_B`` copied into peft's
``lora_A.default.weight`` / ``lora_B.default.weight``; peft's ``merge_and_unload``,
``get_nb_trainable_parameters`` and ``get_peft_model_state_dict``; and peft's prompt tuning
(``PromptTuningConfig``) on ``transformers.GPT2LMHeadModel`` with the student's virtual-token embeddings
copied in. Everything runs in float64 on the CPU unless a check says otherwise.

The student's modules wrap layers that must be built next to them (the autograder keeps the student's
code in another process), so the base models are built by the trusted helpers below
(:func:`build_lora_linear`, :func:`build_injected`, :func:`build_adapted`, :func:`build_soft_prompt`)
through :func:`labsupport.checks.on_student_side`; the grader then talks to the returned objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_equal,
    check_shape,
    check_true,
    load_state,
    module_gradients,
    on_student_side,
    passed,
    student_autograd,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.checks.lab06 import hf_lm, random_gpt_state
from labsupport.gpt import GPT, GPTConfig

F64 = torch.float64
LAYER_NAMES = "base (the wrapped nn.Linear), lora_A (r, in_features) and lora_B (out_features, r), both nn.Parameter"
LORA_HINT = "h = base(x) + (alpha / r) · dropout(x) @ lora_A.T @ lora_B.T"


# ---------------------------------------------------------------- base models (built next to the student's code)
class ToyLayer(nn.Module):
    """``x + q_out(tanh(q(norm(x)) + myq(x)))``: names that a careless suffix match confuses."""

    def __init__(self, h: int, k: int):
        super().__init__()
        self.norm = nn.LayerNorm(h)
        self.q = nn.Linear(h, k)
        self.myq = nn.Linear(h, k, bias=False)
        self.q_out = nn.Linear(k, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.q_out(torch.tanh(self.q(self.norm(x)) + self.myq(x)))  # (B, h)


class Toy(nn.Module):
    """``embed`` (d → h), 11 :class:`ToyLayer` s (so ``layers.1`` and ``layers.11`` both exist), ``head`` (h → out)."""

    def __init__(self, d: int = 6, h: int = 9, k: int = 5, out: int = 4, n: int = 11):
        super().__init__()
        self.embed = nn.Linear(d, h)
        self.layers = nn.ModuleList(ToyLayer(h, k) for _ in range(n))
        self.head = nn.Linear(h, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)  # (B, h)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)  # (B, out)


def _seeded(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    return module.double().eval()


def base_model(kind: str, seed: int, cfg: GPTConfig | None = None) -> nn.Module:
    """A seeded float64 base model in eval mode: ``"gpt"`` (``GPT(cfg)``, tied head) or ``"toy"`` (:class:`Toy`)."""
    if kind == "gpt":
        model = GPT(cfg)
        model.load_state_dict(random_gpt_state(cfg, torch.Generator().manual_seed(seed)))
        return model.double().eval()
    return _seeded(Toy(), seed)


def build_lora_linear(LoRALinear: Callable, n_in: int, n_out: int, bias: bool, seed: int, r: int, alpha: float,
                      dropout: float = 0.0) -> tuple[nn.Module, bool]:
    """``LoRALinear(base, r=r, alpha=alpha, dropout=dropout)`` around a seeded float64 ``nn.Linear(n_in, n_out)``;
    also whether the result keeps that very layer as ``.base``."""
    base = _seeded(nn.Linear(n_in, n_out, bias=bias), seed)
    layer = LoRALinear(base, r=r, alpha=alpha, dropout=dropout)
    return layer, getattr(layer, "base", None) is base


def build_injected(inject_lora: Callable, kind: str, seed: int, cfg: GPTConfig | None, targets: list[str],
                   r: int, alpha: float, dropout: float = 0.0) -> tuple[nn.Module, bool]:
    """``inject_lora(base_model(kind, seed, cfg), targets, r=r, alpha=alpha, dropout=dropout)``; also whether it
    returned the model it was given (in place)."""
    model = base_model(kind, seed, cfg)
    out = inject_lora(model, targets, r=r, alpha=alpha, dropout=dropout)
    return model, out is model


def build_adapted(LoRALinear: Callable, kind: str, seed: int, cfg: GPTConfig | None, targets: list[str],
                  r: int, alpha: float) -> nn.Module:
    """A base model with the student's ``LoRALinear`` put in place of the target layers by trusted code
    (so the adapter checks do not depend on the student's ``inject_lora``), everything else frozen."""
    model = base_model(kind, seed, cfg).requires_grad_(False)
    for name in [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)]:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, LoRALinear(getattr(owner, child), r=r, alpha=alpha))
    return model


def build_soft_prompt(SoftPrompt: Callable, cfg: GPTConfig, seed: int, init_ids: list[int]) -> nn.Module:
    """``SoftPrompt(GPT(cfg) with seeded weights, init_ids)`` in float64, eval mode."""
    return SoftPrompt(base_model("gpt", seed, cfg), init_ids).double().eval()


def trainable(module: nn.Module) -> dict[str, bool]:
    """``{parameter name: requires_grad}`` of a module (runs next to it)."""
    return {name: p.requires_grad for name, p in module.named_parameters()}


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


# ---------------------------------------------------------------- oracles (peft)
def peft_lora(kind: str, seed: int, cfg: GPTConfig | None, targets: list[str], r: int, alpha: float,
              lora_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """``get_peft_model`` on the same base model; ``lora_state`` (our names, ``….lora_A``) copied in."""
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(base_model(kind, seed, cfg), LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                                                               lora_dropout=0.0)).double()
    if lora_state:
        with torch.no_grad():
            for name, value in lora_state.items():
                module, _, which = name.rpartition(".")
                getattr(pm.base_model.model.get_submodule(module), which)["default"].weight.copy_(value)
    return pm.double().eval()


def _peft_names(pm: nn.Module) -> dict[str, bool]:
    """peft's trainable map in our names: ``base_model.model.X.lora_A.default.weight`` → ``X.lora_A``,
    ``…X.base_layer.weight`` → ``X.base.weight``."""
    out = {}
    for name, p in pm.named_parameters():
        name = name.removeprefix("base_model.model.").replace(".default.weight", "").replace(".base_layer.", ".base.")
        out[name] = p.requires_grad
    return out


def _random_lora_state(state: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random values for every ``….lora_A`` / ``….lora_B`` entry of a state dict (others unchanged)."""
    return {k: (torch.randn(v.shape, generator=gen, dtype=F64) if k.endswith((".lora_A", ".lora_B")) else v)
            for k, v in state.items()}


# ---------------------------------------------------------------- part 1: the LoRA layer
def _layer(LoRALinear: Callable, n_in: int, n_out: int, bias: bool, seed: int, r: int, alpha: float,
           dropout: float = 0.0) -> nn.Module:
    what = f"LoRALinear(nn.Linear({n_in}, {n_out}, bias={bias}), r={r}, alpha={alpha}, dropout={dropout})"
    layer, kept = call(on_student_side, build_lora_linear, LoRALinear, n_in, n_out, bias, seed, r, alpha, dropout,
                       what=what)
    check_true(kept, what=f"{what}: self.base must be the nn.Linear passed in", expected="the same object",
               got="another object (or no attribute base)", hint="store the layer you wrap: self.base = base")
    state = call(layer.state_dict, what=f"{what}.state_dict()")
    names = ["base.weight", "lora_A", "lora_B"] + (["base.bias"] if bias else [])
    check_equal(sorted(state), sorted(names), what=f"{what}: parameter names", hint=f"the layer has {LAYER_NAMES}")
    check_shape(state["lora_A"], (r, n_in), what=f"{what}: lora_A", hint="A maps in_features to r: (r, in_features)")
    check_shape(state["lora_B"], (n_out, r), what=f"{what}: lora_B", hint="B maps r to out_features: (out_features, r)")
    check_equal([str(state["lora_A"].dtype), str(state["lora_B"].dtype)], ["torch.float64"] * 2,
                what=f"{what}: dtypes of lora_A, lora_B around a float64 base layer",
                hint="create A and B with base.weight's dtype and device")
    return layer


def _peft_linear(state: dict[str, torch.Tensor], bias: bool, r: int, alpha: float) -> nn.Module:
    """peft's LoRA layer (inside a one-layer module) with our state (base.weight, base.bias, lora_A, lora_B)."""
    from peft import LoraConfig, get_peft_model

    n_out, n_in = state["base.weight"].shape
    holder = nn.Module()
    holder.proj = nn.Linear(n_in, n_out, bias=bias, dtype=F64)
    holder.forward = lambda x: holder.proj(x)
    pm = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0))
    layer = pm.double().base_model.model.proj
    with torch.no_grad():
        layer.base_layer.weight.copy_(state["base.weight"])
        if bias:
            layer.base_layer.bias.copy_(state["base.bias"])
        layer.lora_A["default"].weight.copy_(state["lora_A"])
        layer.lora_B["default"].weight.copy_(state["lora_B"])
    return layer.double().eval()


def _check_trainable(module: nn.Module, expected: dict[str, bool], what: str) -> None:
    got = call(on_student_side, trainable, module, what=f"{what}: requires_grad of each parameter")
    check_equal(got, expected, what=f"{what}: which parameters are trainable (requires_grad)",
                hint="only the LoRA factors train; every pre-trained parameter has requires_grad=False")


def lora_linear_examples(LoRALinear: Callable) -> None:
    """Names and shapes, B = 0 at the start, frozen base, and peft's output with A and B copied in."""
    layer = _layer(LoRALinear, 7, 5, True, 0, 3, 6.0)
    state = call(layer.state_dict, what="layer.state_dict()")
    check_true(bool((state["lora_B"] == 0).all()), what="lora_B at initialisation", expected="all zeros",
               got="non-zero entries", hint="B starts at zero so that the layer starts as the pre-trained one")
    x = torch.randn(4, 7, generator=torch.Generator().manual_seed(1), dtype=F64)
    base = nn.functional.linear(x, state["base.weight"], state["base.bias"])
    check_close(call(layer, x, what="layer(x)"), base, what="layer(x) at initialisation must equal base(x)")
    _check_trainable(layer, {"base.weight": False, "base.bias": False, "lora_A": True, "lora_B": True}, "layer")
    gen = torch.Generator().manual_seed(2)
    state = {**state, "lora_A": torch.randn(3, 7, generator=gen, dtype=F64),
             "lora_B": torch.randn(5, 3, generator=gen, dtype=F64)}
    load_state(layer, state, what="layer", names=LAYER_NAMES)
    check_close(call(layer, x, what="layer(x)"), _peft_linear(state, True, 3, 6.0)(x),
                what="layer(x) with random A, B vs peft's LoRA Linear (r=3, alpha=6)", hint=LORA_HINT)
    passed("LoRALinear starts at the pre-trained layer and matches peft once A and B are set")


def _one_hot_rows(n_rows: int, n_in: int, gen: torch.Generator) -> torch.Tensor:
    cols = torch.randint(n_in, (n_rows,), generator=gen)
    x = torch.zeros(n_rows, n_in, dtype=F64)
    x[torch.arange(n_rows), cols] = 1.0 + torch.rand(n_rows, generator=gen, dtype=F64)
    return x


def lora_linear_hidden(LoRALinear: Callable, seed: int = 101) -> None:
    """Shapes, bias-free layers, r = 1, the scaling, the init of A, gradients, float32, merged flag, dropout."""
    gen = torch.Generator().manual_seed(seed)
    for n, (n_in, n_out, bias, r, alpha) in enumerate([(11, 6, True, 4, 2.0), (5, 13, False, 1, 7.0),
                                                       (9, 9, True, 8, 8.0), (12, 7, False, 3, 0.5)]):
        layer = _layer(LoRALinear, n_in, n_out, bias, seed + n, r, alpha)
        what = f"LoRALinear(nn.Linear({n_in}, {n_out}, bias={bias}), r={r}, alpha={alpha})"
        state = call(layer.state_dict, what=f"{what}.state_dict()")
        check_true(bool((state["lora_B"] == 0).all()), what=f"{what}: lora_B at initialisation",
                   expected="all zeros", got="non-zero entries")
        check_close(torch.tensor(float(call(getattr, layer, "scaling", what=f"{what}.scaling"))),
                    torch.tensor(alpha / r), what=f"{what}: self.scaling", hint="scaling = alpha / r")
        x = torch.randn(3, 2, n_in, generator=gen, dtype=F64)
        base = nn.functional.linear(x, state["base.weight"], state.get("base.bias"))
        check_close(call(layer, x, what="layer(x)"), base, what=f"{what}: layer(x) at initialisation equals base(x)")
        trained = {k: (v if k.startswith("base.") else torch.randn(v.shape, generator=gen, dtype=F64))
                   for k, v in state.items()}
        load_state(layer, trained, what=what, names=LAYER_NAMES)
        oracle = _peft_linear(trained, bias, r, alpha)
        check_close(call(layer, x, what="layer(x)"), oracle(x), what=f"{what}: layer(x) vs peft", hint=LORA_HINT)
        expected = {k: not k.startswith("base.") for k in state}
        _check_trainable(layer, expected, what)
        call(layer.train, what="layer.train()")
        out, (g_x,), mine = student_autograd(module_gradients, layer, x, what=f"{what}: gradients")
        exp, (e_x,), theirs = module_gradients(oracle, x)
        check_close(g_x, e_x, what=f"{what}: gradient with respect to the input")
        for ours, name in (("lora_A", "lora_A.default.weight"), ("lora_B", "lora_B.default.weight")):
            check_true(mine.get(ours) is not None, what=f"{what}: no gradient reaches {ours}",
                       expected="a gradient", got=None, hint="use lora_A and lora_B in the forward pass")
            check_close(mine[ours], theirs[name], what=f"{what}: gradient of {ours} vs peft")
        for k in ("base.weight", "base.bias"):
            check_true(mine.get(k) is None, what=f"{what}: {k} got a gradient", expected="no gradient (frozen)",
                       got="a gradient", hint="freeze the wrapped layer: requires_grad_(False)")
        call(layer.eval, what="layer.eval()")
        call(layer.float, what="layer.float()")
        check_close(call(layer, x.float(), what="layer(x) in float32"), oracle.float()(x.float()),
                    what=f"{what}: float32 vs peft")
        call(layer.double, what="layer.double()")
        call(setattr, layer, "merged", True, what="layer.merged = True")
        check_close(call(layer, x, what="layer(x) with merged=True"), base,
                    what=f"{what}: with self.merged True, forward must return base(x) only",
                    hint="when merged, the update already sits inside base.weight")

    # the initialisation of A: Kaiming-uniform with a=√5, i.e. uniform in ±1/√in; random, not fixed
    n_in, r = 400, 16
    layers = [_layer(LoRALinear, n_in, 30, True, seed + 10 + k, r, 16.0) for k in range(2)]
    A = [call(lay.state_dict, what="layer.state_dict()")["lora_A"] for lay in layers]
    bound = 1 / math.sqrt(n_in)
    check_true(float(A[0].abs().max()) <= bound * (1 + 1e-6), what="lora_A must lie in ±1/√in_features",
               expected=f"|A| ≤ {bound:.4f}", got=round(float(A[0].abs().max()), 4),
               hint="nn.init.kaiming_uniform_(A, a=math.sqrt(5)), like nn.Linear's weight")
    std = float(A[0].std())
    check_true(abs(std - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3),
               what="the spread of lora_A (standard deviation)", expected=round(bound / math.sqrt(3), 4),
               got=round(std, 4), hint="nn.init.kaiming_uniform_(A, a=math.sqrt(5)): uniform in ±1/√in_features")
    check_true(not torch.equal(A[0], A[1]), what="two new layers must get different random A",
               expected="different matrices", got="identical matrices", hint="draw A at random in __init__")

    # dropout acts on the input of the LoRA path only
    p, n_in, n_out, r = 0.5, 8, 6, 3
    layer = _layer(LoRALinear, n_in, n_out, True, seed + 20, r, 6.0, dropout=p)
    state = call(layer.state_dict, what="layer.state_dict()")
    x = _one_hot_rows(64, n_in, gen)
    base = nn.functional.linear(x, state["base.weight"], state["base.bias"])
    call(layer.train, what="layer.train()")
    check_close(call(layer, x, what="layer(x) in train mode, dropout=0.5, B=0"), base,
                what="with B = 0 and dropout=0.5 in train mode, layer(x) must equal base(x)",
                hint="dropout acts on the input of the LoRA path only, never on the base layer's path")
    trained = {**state, "lora_A": torch.randn(r, n_in, generator=gen, dtype=F64),
               "lora_B": torch.randn(n_out, r, generator=gen, dtype=F64)}
    load_state(layer, trained, what="layer", names=LAYER_NAMES)
    full = (6.0 / r) * x @ trained["lora_A"].t() @ trained["lora_B"].t() / (1 - p)  # the update of a kept input
    delta = call(layer, x, what="layer(x) in train mode") - base
    kept = (delta - full).abs().amax(-1) < 1e-8
    dropped = delta.abs().amax(-1) < 1e-8
    check_true(bool((kept | dropped).all()), what="dropout on the LoRA path with one non-zero input feature per row",
               expected="each row's update is either 0 (input dropped) or the full update / (1 - p)",
               got=f"{int((~(kept | dropped)).sum())} of 64 rows are neither",
               hint="apply dropout to x before lora_A (not to A·x, nor to the output)")
    check_true(bool(kept.any() and dropped.any()), what="dropout with p=0.5 in train mode must drop some inputs "
               "and keep others", expected="both", got=f"{int(kept.sum())} kept, {int(dropped.sum())} dropped",
               hint="nn.Dropout(p) on the input of the LoRA path")
    call(layer.eval, what="layer.eval()")
    check_close(call(layer, x, what="layer(x) in eval mode"), _peft_linear(trained, True, r, 6.0)(x),
                what="dropout=0.5 in eval mode: no dropout, same as peft")
    passed("LoRALinear matches peft: shapes, scaling, init, frozen base, gradients, float32, dropout")


# ---------------------------------------------------------------- part 2: merge and unmerge
def _merge_round(merge: Callable, unmerge: Callable, layer: nn.Module, state: dict, bias: bool, r: int,
                 alpha: float, x: torch.Tensor, what: str) -> None:
    before = call(layer, x, what="layer(x) before merging")
    oracle = _peft_linear(state, bias, r, alpha)
    merged_weight = oracle.get_base_layer().weight + oracle.get_delta_weight("default")
    call(merge, layer, what=f"merge_lora({what})")
    after = call(layer.state_dict, what="layer.state_dict() after merge_lora")
    check_true(call(getattr, layer, "merged", what="layer.merged") is True, what=f"{what}: merged after merge_lora",
               expected=True, got=call(getattr, layer, "merged", what="layer.merged"))
    check_close(after["base.weight"], merged_weight, what=f"{what}: base.weight after merge_lora vs peft's merge",
                hint="W0 ← W0 + (alpha / r) · B @ A")
    for k in ("lora_A", "lora_B") + (("base.bias",) if bias else ()):
        check_close(after[k], state[k], what=f"{what}: merge_lora must leave {k} unchanged")
    check_close(call(layer, x, what="layer(x) after merging"), before, what=f"{what}: merged output = unmerged output")
    call(merge, layer, what=f"merge_lora({what}) a second time")
    check_close(call(layer.state_dict, what="layer.state_dict()")["base.weight"], merged_weight,
                what=f"{what}: merging an already merged layer must change nothing",
                hint="return early when layer.merged is True")
    call(unmerge, layer, what=f"unmerge_lora({what})")
    check_true(call(getattr, layer, "merged", what="layer.merged") is False,
               what=f"{what}: not merged after unmerge_lora", expected=False, got=True)
    back = call(layer.state_dict, what="layer.state_dict() after unmerge_lora")
    check_close(back["base.weight"], state["base.weight"], what=f"{what}: unmerge_lora must restore base.weight",
                hint="W0 ← W0 − (alpha / r) · B @ A")
    check_close(call(layer, x, what="layer(x) after unmerging"), before, what=f"{what}: output after unmerging")
    call(unmerge, layer, what=f"unmerge_lora({what}) a second time")
    check_close(call(layer.state_dict, what="layer.state_dict()")["base.weight"], state["base.weight"],
                what=f"{what}: unmerging a layer that is not merged must change nothing",
                hint="return early when layer.merged is False")


def lora_merge_examples(merge_lora: Callable, unmerge_lora: Callable, LoRALinear: Callable) -> None:
    """Merge then unmerge one layer: peft's merged weight, the same outputs, the flag."""
    layer = _layer(LoRALinear, 7, 5, True, 0, 3, 6.0)
    state = call(layer.state_dict, what="layer.state_dict()")
    gen = torch.Generator().manual_seed(3)
    state = {**state, "lora_A": torch.randn(3, 7, generator=gen, dtype=F64),
             "lora_B": torch.randn(5, 3, generator=gen, dtype=F64)}
    load_state(layer, state, what="layer", names=LAYER_NAMES)
    x = torch.randn(4, 7, generator=gen, dtype=F64)
    _merge_round(merge_lora, unmerge_lora, layer, state, True, 3, 6.0, x, "LoRALinear(7 → 5, r=3, alpha=6)")
    passed("merge_lora / unmerge_lora: peft's merged weight, identical outputs, base weight restored")


def lora_merge_hidden(merge_lora: Callable, unmerge_lora: Callable, LoRALinear: Callable, seed: int = 102) -> None:
    """Other shapes and scalings, no bias, several rounds; merged = peft's merge_and_unload."""
    gen = torch.Generator().manual_seed(seed)
    for n, (n_in, n_out, bias, r, alpha) in enumerate([(10, 4, False, 2, 7.0), (6, 12, True, 5, 1.0),
                                                       (8, 8, True, 1, 3.0)]):
        layer = _layer(LoRALinear, n_in, n_out, bias, seed + n, r, alpha)
        state = call(layer.state_dict, what="layer.state_dict()")
        state = {**state, "lora_A": torch.randn(r, n_in, generator=gen, dtype=F64),
                 "lora_B": torch.randn(n_out, r, generator=gen, dtype=F64)}
        load_state(layer, state, what="layer", names=LAYER_NAMES)
        x = torch.randn(2, 3, n_in, generator=gen, dtype=F64)
        what = f"LoRALinear({n_in} → {n_out}, bias={bias}, r={r}, alpha={alpha})"
        for _ in range(2):
            _merge_round(merge_lora, unmerge_lora, layer, state, bias, r, alpha, x, what)
        # peft's merge_and_unload of the same layer gives a plain Linear with the merged weight
        from peft import LoraConfig, get_peft_model

        holder = nn.Module()
        holder.proj = nn.Linear(n_in, n_out, bias=bias, dtype=F64)
        holder.forward = lambda t, h=holder: h.proj(t)
        pm = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0))
        pl = pm.double().base_model.model.proj
        with torch.no_grad():
            pl.base_layer.weight.copy_(state["base.weight"])
            if bias:
                pl.base_layer.bias.copy_(state["base.bias"])
            pl.lora_A["default"].weight.copy_(state["lora_A"])
            pl.lora_B["default"].weight.copy_(state["lora_B"])
        plain = pm.double().merge_and_unload()
        call(merge_lora, layer, what=f"merge_lora({what})")
        check_close(call(layer, x, what="merged layer(x)"), plain(x), what=f"{what}: merged layer vs peft's "
                    "merge_and_unload")
    passed("merge_lora / unmerge_lora match peft's merge, twice over, and change nothing when repeated")


# ---------------------------------------------------------------- part 3: injection and counting
def _injected(inject_lora: Callable, kind: str, seed: int, cfg: GPTConfig | None, targets: list[str], r: int,
              alpha: float) -> nn.Module:
    what = f"inject_lora({kind} model, {targets}, r={r}, alpha={alpha})"
    model, same = call(on_student_side, build_injected, inject_lora, kind, seed, cfg, targets, r, alpha, what=what)
    check_true(same, what=f"{what} must return the model it was given (changed in place)", expected="the same model",
               got="another object")
    return model


def _inputs(kind: str, cfg: GPTConfig | None, gen: torch.Generator, B: int = 3, T: int = 6) -> torch.Tensor:
    if kind == "gpt":
        return torch.randint(cfg.vocab_size, (B, T), generator=gen)
    return torch.randn(B, 6, generator=gen, dtype=F64)


def _outputs(model: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    out = call(model, x, what=what)
    return out[0] if isinstance(out, tuple) else out


def _check_injection(inject_lora: Callable, count_parameters: Callable, kind: str, seed: int, cfg: GPTConfig | None,
                     targets: list[str], r: int, alpha: float, gen: torch.Generator, grads: bool = True) -> None:
    what = f"inject_lora({kind} model, {targets}, r={r}, alpha={alpha})"
    model = _injected(inject_lora, kind, seed, cfg, targets, r, alpha)
    oracle = peft_lora(kind, seed, cfg, targets, r, alpha)
    expected_trainable = _peft_names(oracle)
    _check_trainable(model, expected_trainable, what)
    x = _inputs(kind, cfg, gen)
    plain = base_model(kind, seed, cfg)
    check_close(_outputs(model, x, what), _outputs(plain, x, "base"),
                what=f"{what}: at initialisation the model must compute what the base model computes")
    state = _random_lora_state(call(model.state_dict, what="model.state_dict()"), gen)
    load_state(model, state, what=what, names="the original names, with each adapted layer X as X.base, X.lora_A, "
               "X.lora_B")
    oracle = peft_lora(kind, seed, cfg, targets, r, alpha,
                       {k: v for k, v in state.items() if k.endswith((".lora_A", ".lora_B"))})
    check_close(_outputs(model, x, what), _outputs(oracle, x, "peft"), what=f"{what}: outputs vs peft with the same "
                "A and B", hint="adapt exactly the nn.Linear modules whose name is a target or ends with '.' + target")
    got = call(count_parameters, model, what="count_parameters(model)")
    check_equal(tuple(got), tuple(oracle.get_nb_trainable_parameters()),
                what=f"{what}: count_parameters(model) vs peft's get_nb_trainable_parameters()",
                hint="(trainable, total): count each distinct parameter once — the GPT's head is tied to wte")
    if grads:
        call(model.train, what="model.train()")
        _, _, mine = student_autograd(module_gradients, model, x, what=f"{what}: gradients")
        _, _, theirs = module_gradients(oracle.train(), x)
        theirs = {k.removeprefix("base_model.model.").replace(".default.weight", ""): g for k, g in theirs.items()
                  if ".lora_" in k}
        for name, g in theirs.items():
            check_true(mine.get(name) is not None, what=f"{what}: no gradient reaches {name}", expected="a gradient",
                       got=None)
            check_close(mine[name], g, what=f"{what}: gradient of {name} vs peft")
        extra = sorted(k for k, g in mine.items() if g is not None and k not in theirs)
        check_equal(extra, [], what=f"{what}: frozen parameters that received a gradient")


def inject_lora_examples(inject_lora: Callable, count_parameters: Callable) -> None:
    """LoRA on the attention's c_attn of a small GPT vs peft: trainable names, outputs, counts, gradients."""
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    _check_injection(inject_lora, count_parameters, "gpt", 0, cfg, ["c_attn"], 4, 8.0, torch.Generator().manual_seed(1))
    passed("inject_lora matches peft on a GPT: same trainable parameters, outputs, counts and gradients")


def inject_lora_hidden(inject_lora: Callable, count_parameters: Callable, seed: int = 103) -> None:
    """Suffix matching (layers.1 vs layers.11, q vs myq / q_out), several targets, no match → ValueError."""
    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=19, block_size=12, n_layer=3, n_head=2, n_embd=10, n_inner=14)
    for n, (targets, r, alpha) in enumerate([(["c_attn", "h.1.mlp.c_fc"], 3, 5.0), (["c_proj"], 2, 2.0),
                                             (["transformer.h.2.attn.c_proj", "c_fc"], 1, 4.0)]):
        _check_injection(inject_lora, count_parameters, "gpt", seed + n, cfg, targets, r, alpha, gen, grads=n == 0)
    for n, (targets, r, alpha) in enumerate([(["q"], 2, 3.0), (["layers.1.q_out", "head"], 3, 1.5),
                                             (["embed", "myq", "layers.10.q"], 4, 8.0)]):
        _check_injection(inject_lora, count_parameters, "toy", seed + 10 + n, None, targets, r, alpha, gen,
                         grads=n == 1)
    for targets in (["k_proj"], ["ayers.1.q"], ["layers.1"]):  # layers.1 is a ToyLayer, not an nn.Linear
        try:
            call(on_student_side, build_injected, inject_lora, "toy", seed, None, targets, 2, 2.0,
                 what=f"inject_lora(toy model, {targets})")
        except ValueError:
            continue
        except CheckFailed:
            raise
        except Exception as err:  # noqa: BLE001 — the student's code raised something else
            raise CheckFailed(f"inject_lora(model, {targets}): no nn.Linear matches, so it must raise ValueError",
                              "ValueError", type(err).__name__,
                              hint="only nn.Linear modules are adapted (check isinstance first)") from None
        raise CheckFailed(f"inject_lora(model, {targets}): no nn.Linear matches, so it must raise ValueError",
                          "ValueError", "no exception or another one",
                          hint="only nn.Linear modules are adapted; a name matches a target when it equals it or "
                               "ends with '.' + target")
    passed("inject_lora adapts exactly the named layers (peft's suffix rule), freezes the rest; counts match peft")


# ---------------------------------------------------------------- part 4: the adapter alone
ADAPTER_HINT = "keep exactly the entries of model.state_dict() whose names end in '.lora_A' or '.lora_B'"


def _adapted(LoRALinear: Callable, kind: str, seed: int, cfg: GPTConfig | None, targets: list[str], r: int,
             alpha: float, gen: torch.Generator) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    what = f"a {kind} model with LoRALinear on {targets}"
    model = call(on_student_side, build_adapted, LoRALinear, kind, seed, cfg, targets, r, alpha, what=what)
    state = _random_lora_state(call(model.state_dict, what="model.state_dict()"), gen)
    load_state(model, state, what=what, names="X.base, X.lora_A, X.lora_B for each adapted layer X")
    return model, state


def _check_adapter(adapter_state_dict: Callable, load_adapter: Callable, LoRALinear: Callable, kind: str, seed: int,
                   cfg: GPTConfig | None, targets: list[str], r: int, alpha: float, gen: torch.Generator) -> None:
    from peft.utils import get_peft_model_state_dict

    what = f"adapter_state_dict({kind} model with LoRA on {targets})"
    model, state = _adapted(LoRALinear, kind, seed, cfg, targets, r, alpha, gen)
    adapter = call(adapter_state_dict, model, what=what)
    check_true(isinstance(adapter, dict), what=f"{what} must return a dict", expected="dict",
               got=type(adapter).__name__)
    lora = {k: v for k, v in state.items() if k.endswith((".lora_A", ".lora_B"))}
    oracle = peft_lora(kind, seed, cfg, targets, r, alpha, lora)
    theirs = {k.removeprefix("base_model.model.").removesuffix(".weight"): v
              for k, v in get_peft_model_state_dict(oracle).items()}
    check_equal(sorted(adapter), sorted(theirs), what=f"{what}: keys vs peft's get_peft_model_state_dict "
                "(in our names)", hint=ADAPTER_HINT)
    for k, v in theirs.items():
        check_close(adapter[k], v, what=f"{what}[{k!r}]")
    x = _inputs(kind, cfg, gen)
    expected = _outputs(model, x, "model(x)")
    fresh, _ = _adapted(LoRALinear, kind, seed, cfg, targets, r, alpha, torch.Generator().manual_seed(seed + 99))
    base_before = {k: v for k, v in call(fresh.state_dict, what="state_dict()").items() if ".lora_" not in k}
    call(load_adapter, fresh, adapter, what="load_adapter(other model, adapter)")
    check_close(_outputs(fresh, x, "model(x)"), expected, what="a model with the same base and the loaded adapter "
                "must compute what the adapted model computes", hint="copy every entry into the parameter of that name")
    after = call(fresh.state_dict, what="state_dict()")
    for k, v in base_before.items():
        check_close(after[k], v, what=f"load_adapter must leave the base weight {k} unchanged")
    _check_trainable(fresh, {k: k.endswith((".lora_A", ".lora_B")) for k in after if k != "lm_head.weight"},
                     "the model after load_adapter")
    first = sorted(adapter)[0]
    shifted = {k: v + 1 for k, v in adapter.items()}  # other values: a partial copy before raising would show
    for bad, why in (({k: v for k, v in shifted.items() if k != first}, f"without {first!r}"),
                     ({**shifted, "head.lora_C": torch.zeros(2, 2, dtype=F64)}, "with an extra key 'head.lora_C'")):
        try:
            call(load_adapter, fresh, bad, what=f"load_adapter(model, adapter {why})")
        except ValueError:
            check_close(_outputs(fresh, x, "model(x)"), expected, what=f"load_adapter(model, adapter {why}) raised, "
                        "but it changed the model first", hint="check the keys before copying anything")
            continue
        raise CheckFailed(f"load_adapter(model, adapter {why}) must raise ValueError", "ValueError", "no exception",
                          hint="compare the adapter's keys with the model's LoRA parameter names first")


def adapter_state_examples(adapter_state_dict: Callable, load_adapter: Callable, LoRALinear: Callable) -> None:
    """Only the LoRA factors, named as in the model; they bring a fresh copy of the base to the same outputs."""
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    _check_adapter(adapter_state_dict, load_adapter, LoRALinear, "gpt", 0, cfg, ["c_attn"], 4, 8.0,
                   torch.Generator().manual_seed(1))
    passed("the adapter holds only the LoRA factors (as peft's) and restores the adapted model")


def adapter_state_hidden(adapter_state_dict: Callable, load_adapter: Callable, LoRALinear: Callable,
                         seed: int = 104) -> None:
    """Other models and targets; wrong adapters are refused."""
    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=19, block_size=12, n_layer=3, n_head=2, n_embd=10, n_inner=14)
    _check_adapter(adapter_state_dict, load_adapter, LoRALinear, "gpt", seed, cfg, ["c_fc", "h.2.attn.c_proj"], 2,
                   3.0, gen)
    _check_adapter(adapter_state_dict, load_adapter, LoRALinear, "toy", seed + 1, None, ["q", "head"], 3, 1.0, gen)
    passed("adapter_state_dict / load_adapter: right keys, right values, strict loading")


# ---------------------------------------------------------------- part 5: prompt tuning
def _peft_prompt(cfg: GPTConfig, seed: int, prompt: torch.Tensor) -> nn.Module:
    from peft import PromptTuningConfig, TaskType, get_peft_model

    n = prompt.size(0)
    pm = get_peft_model(hf_lm(cfg, random_gpt_state(cfg, torch.Generator().manual_seed(seed))),
                        PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=n, token_dim=cfg.n_embd,
                                           num_transformer_submodules=1, num_attention_heads=cfg.n_head,
                                           num_layers=cfg.n_layer)).double()
    with torch.no_grad():
        pm.prompt_encoder["default"].embedding.weight.copy_(prompt)
    return pm.eval()


class PeftPromptLogits(nn.Module):
    """``idx → peft prompt-tuned GPT-2(idx).logits[:, n:]`` (the real tokens' logits)."""

    def __init__(self, pm: nn.Module, n: int):
        super().__init__()
        self.pm, self.n = pm, n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.pm(input_ids=idx, attention_mask=torch.ones_like(idx)).logits[:, self.n:]


def _soft_prompt(SoftPrompt: Callable, cfg: GPTConfig, seed: int, init_ids: list[int]) -> tuple[nn.Module, dict]:
    what = f"SoftPrompt(GPT({cfg}), init_ids={init_ids})"
    sp = call(on_student_side, build_soft_prompt, SoftPrompt, cfg, seed, init_ids, what=what)
    state = call(sp.state_dict, what=f"{what}.state_dict()")
    wte = random_gpt_state(cfg, torch.Generator().manual_seed(seed))["transformer.wte.weight"].double()
    check_true("prompt" in state, what=f"{what}: no parameter named prompt", expected="prompt (n, n_embd)",
               got=sorted(k for k in state if not k.startswith("model.")))
    check_shape(state["prompt"], (len(init_ids), cfg.n_embd), what=f"{what}.prompt", hint="(n_virtual, n_embd)")
    check_close(state["prompt"], wte[init_ids], what=f"{what}: prompt at initialisation",
                hint="start from a copy of the token embeddings of init_ids")
    expected = {f"model.{k}": False for k in GPT(cfg).state_dict() if k != "lm_head.weight"}
    _check_trainable(sp, {**expected, "prompt": True}, what)
    return sp, state


def prompt_tuning_examples(SoftPrompt: Callable) -> None:
    """Four virtual tokens in front of a small GPT vs peft's prompt tuning on GPT-2 with the same prompt."""
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    sp, state = _soft_prompt(SoftPrompt, cfg, 0, [5, 1, 5, 9])
    idx = torch.randint(23, (2, 7), generator=torch.Generator().manual_seed(1))
    out = call(sp, idx, what="soft_prompt(idx)")
    check_shape(out, (2, 7, 23), what="soft_prompt(idx of shape (2, 7))", hint="logits of the real tokens only")
    check_close(out, PeftPromptLogits(_peft_prompt(cfg, 0, state["prompt"]), 4)(idx),
                what="soft_prompt(idx) vs peft's prompt tuning (logits of the real tokens)",
                hint="prepend the prompt to the token embeddings, then add positions 0 … n+T−1")
    passed("SoftPrompt matches peft's prompt tuning; only the prompt trains")


def prompt_tuning_hidden(SoftPrompt: Callable, seed: int = 105) -> None:
    """Trained prompts, n = 1, a full context, gradients (prompt only), float32."""
    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=31, block_size=14, n_layer=2, n_head=2, n_embd=10, n_inner=18)
    for n, (ids, B, T) in enumerate([([3], 1, 1), ([7, 2, 30, 0, 11], 3, 9), ([4, 4], 2, 12)]):
        sp, state = _soft_prompt(SoftPrompt, cfg, seed + n, ids)
        state = {**state, "prompt": torch.randn(len(ids), cfg.n_embd, generator=gen, dtype=F64)}
        load_state(sp, state, what="SoftPrompt", names="prompt and model (the GPT)")
        oracle = PeftPromptLogits(_peft_prompt(cfg, seed + n, state["prompt"]), len(ids))
        idx = torch.randint(cfg.vocab_size, (B, T), generator=gen)
        what = f"SoftPrompt with {len(ids)} virtual tokens on idx of shape ({B}, {T})"
        out = call(sp, idx, what=what)
        check_shape(out, (B, T, cfg.vocab_size), what=what, hint="logits of the real tokens only: (B, T, vocab)")
        check_close(out, oracle(idx), what=f"{what} vs peft",
                    hint="virtual tokens take positions 0 … n−1, the real tokens n … n+T−1")
        if n == 1:
            _, _, mine = student_autograd(module_gradients, sp, idx, what=f"{what}: gradients")
            _, _, theirs = module_gradients(oracle, idx)
            check_close(mine.get("prompt"), theirs["pm.prompt_encoder.default.embedding.weight"],
                        what=f"{what}: gradient of the prompt vs peft")
            frozen = sorted(k for k, g in mine.items() if g is not None and k != "prompt")
            check_equal(frozen, [], what=f"{what}: frozen GPT parameters that received a gradient")
            call(sp.float, what="soft_prompt.float()")
            check_close(call(sp, idx, what=what), oracle.float()(idx), what=f"{what}: float32 vs peft")
    passed("SoftPrompt matches peft's prompt tuning: n = 1, full context, gradients, float32")
