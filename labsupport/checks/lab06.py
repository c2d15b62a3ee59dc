"""Named checks for lab 6 (GPT). Test cells call these and nothing else.

The oracles are Hugging Face's ``GPT2Model`` / ``GPT2LMHeadModel`` (eager attention, float64) built
from small random ``GPT2Config`` s with non-square sizes (vocabulary ≠ positions ≠ n_embd ≠ n_inner,
n_head ≠ 2), and ``transformers``' ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and
``TopPLogitsWarper``. Each check builds an explicit, seeded state dict in the student's parameter names
(GPT-2's names, ``nn.Linear`` layout), loads it into the student's module, converts it to GPT-2's
``Conv1D`` layout (:func:`labsupport.gpt.state_to_hf`) and loads it into the oracle.

The student's code may live in another process (the autograder's sandbox). Anything that needs a
live object there — autograd through the student's modules, a ``torch.Generator``, counting the
tokens the model reads during generation — runs next to it through
:func:`labsupport.checks.on_student_side` with the trusted helpers defined here
(:func:`sample_with_seed`, :func:`generate_traced`, :func:`parameter_count`, :func:`head_features`,
:func:`loss_gradients`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_dtype,
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
from labsupport.gpt import GPTConfig, hf_config, state_to_hf

F64 = torch.float64
BLOCK_NAMES = ("ln_1, attn (with attn.c_attn and attn.c_proj), ln_2, mlp (with mlp.c_fc and mlp.c_proj); "
               "a causal-mask buffer, if you keep one, must be registered with persistent=False")
GPT_NAMES = ("transformer (an nn.ModuleDict with wte, wpe, drop, h, ln_f) and lm_head (bias=False, "
             "tied to transformer.wte)")
BLOCK_HINT = "x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), with mlp(h) = c_proj(gelu_tanh(c_fc(h)))"
MASK_HINT = "query i may attend keys 0 … P+i (P cached positions): a lower-triangular mask shifted by P"


# ---------------------------------------------------------------- seeded weights and oracles
def random_block_state(cfg: GPTConfig, gen: torch.Generator, prefix: str = "") -> dict[str, torch.Tensor]:
    """A seeded state dict of one block in the student's names (``nn.Linear`` layout: (out, in))."""
    d, f = cfg.n_embd, cfg.mlp_width
    shapes = {"attn.c_attn": (3 * d, d), "attn.c_proj": (d, d), "mlp.c_fc": (f, d), "mlp.c_proj": (d, f)}
    state = {}
    for name, (rows, cols) in shapes.items():
        state[f"{prefix}{name}.weight"] = torch.randn(rows, cols, generator=gen) / cols ** 0.5
        state[f"{prefix}{name}.bias"] = 0.1 * torch.randn(rows, generator=gen)
    for name in ("ln_1", "ln_2"):
        state[f"{prefix}{name}.weight"] = 1 + 0.2 * torch.randn(d, generator=gen)
        state[f"{prefix}{name}.bias"] = 0.1 * torch.randn(d, generator=gen)
    return state


def random_gpt_state(cfg: GPTConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A seeded state dict of a whole GPT; ``lm_head.weight`` is the same matrix as ``transformer.wte.weight``."""
    d = cfg.n_embd
    state = {"transformer.wte.weight": torch.randn(cfg.vocab_size, d, generator=gen),
             "transformer.wpe.weight": 0.5 * torch.randn(cfg.block_size, d, generator=gen)}
    for i in range(cfg.n_layer):
        state.update(random_block_state(cfg, gen, prefix=f"transformer.h.{i}."))
    state["transformer.ln_f.weight"] = 1 + 0.2 * torch.randn(d, generator=gen)
    state["transformer.ln_f.bias"] = 0.1 * torch.randn(d, generator=gen)
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def hf_lm(cfg: GPTConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """``transformers.GPT2LMHeadModel`` with ``state`` (our names) copied in, float64, eval mode."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(hf_config(cfg))
    model.load_state_dict(state_to_hf(state))
    return model.double().eval()


class HFLogits(nn.Module):
    """``idx → GPT2LMHeadModel(idx).logits`` (a tensor, so the generic gradient helpers apply)."""

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.hf(idx).logits


class HFBlock(nn.Module):
    """One ``GPT2Block`` inside a ``GPT2Model`` (zero position embeddings), as ``x → block(x)``.

    GPT-2 builds its causal mask at the model level, so the block runs inside the model:
    ``hidden_states[1]`` is the output of block 0 before the final LayerNorm.
    """

    def __init__(self, cfg: GPTConfig, state: dict[str, torch.Tensor]):
        super().__init__()
        from transformers import GPT2Model

        self.hf = GPT2Model(hf_config(dataclasses.replace(cfg, n_layer=2)))
        own = self.hf.state_dict()
        own.update({f"h.0.{k}": v for k, v in state_to_hf(state).items()})
        own["wpe.weight"] = torch.zeros_like(own["wpe.weight"])
        self.hf.load_state_dict(own)
        self.hf.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(inputs_embeds=x, output_hidden_states=True).hidden_states[1]


def _hf_kv(cfg: GPTConfig, state: dict[str, torch.Tensor], h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values ``(B, nh, T, hs)`` a block computes from its input ``h`` (state in our names)."""
    ln = nn.functional.layer_norm(h, (cfg.n_embd,), state["ln_1.weight"].to(h.dtype), state["ln_1.bias"].to(h.dtype),
                                  cfg.layer_norm_eps)
    qkv = nn.functional.linear(ln, state["attn.c_attn.weight"].to(h.dtype), state["attn.c_attn.bias"].to(h.dtype))
    _, k, v = qkv.split(cfg.n_embd, dim=-1)  # (B, T, n_embd) each
    B, T, _ = h.shape
    return tuple(t.view(B, T, cfg.n_head, -1).transpose(1, 2) for t in (k, v))  # (B, nh, T, hs)


# ---------------------------------------------------------------- helpers that run next to the student's code
def parameter_count(module: nn.Module) -> int:
    """Number of distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in module.parameters())


def head_features(module: nn.Module) -> tuple[int | None, int | None]:
    """``(in_features, out_features)`` of ``module.lm_head`` (``None`` for what is missing)."""
    head = getattr(module, "lm_head", None)
    return getattr(head, "in_features", None), getattr(head, "out_features", None)


def loss_gradients(lm_loss: Callable, logits: torch.Tensor, labels: torch.Tensor,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``lm_loss(logits, labels)`` and its gradient with respect to ``logits``."""
    leaf = logits.detach().clone().requires_grad_(True)
    loss = lm_loss(leaf, labels, **kwargs)
    loss.backward()
    return loss.detach(), leaf.grad


def sample_with_seed(sample_next: Callable, logits: torch.Tensor, seed: int, global_seed: int = 0,
                     **kwargs: Any) -> torch.Tensor:
    """``sample_next(logits, generator=torch.Generator().manual_seed(seed), **kwargs)``, with the global
    RNG seeded to ``global_seed`` first (a correct answer draws only from the generator)."""
    torch.manual_seed(global_seed)
    return sample_next(logits, generator=torch.Generator().manual_seed(seed), **kwargs)


def generate_traced(generate: Callable, model: nn.Module, idx: torch.Tensor, max_new_tokens: int, seed: int,
                    **kwargs: Any) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Run ``generate`` with a seeded generator and record every call of the model:
    ``(tokens, [(tokens fed, cached positions P), …])``."""
    calls: list[tuple[int, int]] = []
    forward = model.forward

    def traced(ids: torch.Tensor, past: Any = None, *args: Any, **kw: Any) -> Any:
        past_len = 0 if past is None else int(past[0][0].size(-2))
        calls.append((int(ids.size(1)), past_len))
        return forward(ids, past, *args, **kw)

    model.forward = traced
    try:
        out = generate(model, idx, max_new_tokens, generator=torch.Generator().manual_seed(seed), **kwargs)
    finally:
        del model.forward
    return out, calls


# ---------------------------------------------------------------- part 1: the causal block
def _student_block(Block: Callable, cfg: GPTConfig, seed: int) -> tuple[nn.Module, nn.Module, dict]:
    state = random_block_state(cfg, torch.Generator().manual_seed(seed))
    block = call(Block, cfg, what=f"Block({cfg})")
    load_state(block, state, what=f"Block({cfg})", names=BLOCK_NAMES)
    return block.double().eval(), HFBlock(cfg, state), state


def _run_block(block, x, past=None, *, what: str):
    res = call(block, x, past, what=what) if past is not None else call(block, x, what=what)
    check_true(isinstance(res, tuple) and len(res) == 2, what=f"{what}: must return (output, (k, v))",
               expected="a tuple (output, (k, v))", got=type(res).__name__,
               hint="return the block's output and the present keys and values of its attention")
    out, kv = res
    check_true(isinstance(kv, tuple | list) and len(kv) == 2, what=f"{what}: present must be (k, v)",
               expected="a pair of tensors", got=type(kv).__name__)
    return out, tuple(kv)


def _compare_kv(kv, expected, what: str) -> None:
    for name, got, exp in zip(("keys", "values"), kv, expected):
        check_shape(got, exp.shape, what=f"{what}: present {name}", hint="(B, n_head, P+T, head_size)")
        check_close(got, exp, what=f"{what}: present {name}",
                    hint="present = the cached past followed by this call's keys/values, along the positions axis")


def causal_block_examples(Block: Callable) -> None:
    """A block with 3 heads and n_inner ≠ 4·n_embd against Hugging Face's GPT2Block (float64)."""
    cfg = GPTConfig(vocab_size=10, block_size=16, n_layer=1, n_head=3, n_embd=12, n_inner=20)
    block, oracle, state = _student_block(Block, cfg, 0)
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(1), dtype=F64)
    out, kv = _run_block(block, x, what="block(x)")
    check_shape(out, (2, 5, 12), what="block(x): output", hint="the block keeps the shape (B, T, n_embd)")
    check_close(out, oracle(x), what="block(x) vs transformers' GPT2Block", hint=BLOCK_HINT)
    _compare_kv(kv, _hf_kv(cfg, state, x), "block(x)")
    x2 = x.clone()
    x2[:, 3:] += 1.0  # change positions 3 and 4 only
    out2, _ = _run_block(block, x2, what="block(x with positions 3, 4 changed)")
    check_close(out2[:, :3], out[:, :3], what="outputs at positions 0–2 must not depend on positions 3, 4",
                hint="mask the future: query i may attend keys j ≤ i only")
    passed("Block matches GPT-2's block and never looks ahead")


def causal_block_hidden(Block: Callable, seed: int = 61) -> None:
    """Several shapes and head counts, float32, the cache (one and several new tokens), gradients, dropout."""
    gen = torch.Generator().manual_seed(seed)
    configs = [GPTConfig(13, 17, 1, 4, 20, n_inner=28), GPTConfig(13, 17, 1, 1, 8),
               GPTConfig(13, 17, 1, 5, 15, n_inner=7, layer_norm_eps=1e-3)]
    for n, cfg in enumerate(configs):
        block, oracle, state = _student_block(Block, cfg, seed + n)
        B, T = 3, 9
        x = torch.randn(B, T, cfg.n_embd, generator=gen, dtype=F64)
        full, kv = _run_block(block, x, what=f"block(x), {cfg}")
        check_close(full, oracle(x), what=f"block(x) vs GPT2Block, n_head={cfg.n_head}, n_inner={cfg.n_inner}",
                    hint=BLOCK_HINT)
        _compare_kv(kv, _hf_kv(cfg, state, x), f"block(x), n_head={cfg.n_head}")
        one, _ = _run_block(block, x[:, :1], what="block on a single position")
        check_close(one, oracle(x[:, :1]), what="block on a sequence of length 1")
        for P in (1, 4, T - 1):  # prefill P positions, then the rest with the cache
            first, past = _run_block(block, x[:, :P], what=f"block(x[:, :{P}])")
            rest, kv2 = _run_block(block, x[:, P:], past, what=f"block(x[:, {P}:], past) with {P} cached positions")
            check_shape(rest, (B, T - P, cfg.n_embd), what=f"block(x[:, {P}:], past): output",
                        hint="the output has one row per *new* position")
            check_close(torch.cat([first, rest], 1), full, what=f"cache: block(x[:, :{P}]) then "
                        f"block(x[:, {P}:], past) must equal block(x)", hint=MASK_HINT)
            _compare_kv(kv2, kv, f"block(x[:, {P}:], past)")
        block.float()
        oracle.float()
        check_close(call(block, x.float(), what="block in float32")[0], oracle(x.float()),
                    what=f"block in float32, n_head={cfg.n_head}", hint=BLOCK_HINT)

    cfg = configs[0]
    block, oracle, _ = _student_block(Block, cfg, seed + 7)
    block.train()  # dropout is 0, so train mode must give the same numbers
    x = torch.randn(2, 6, cfg.n_embd, generator=gen, dtype=F64)
    out, (g_x,), mine = student_autograd(module_gradients, block, x, what="block(x) in train mode")
    exp, (e_x,), theirs = module_gradients(oracle, x)
    check_close(out, exp, what="block(x) in train mode with dropout 0")
    _check_grad(g_x, e_x, "block: gradient with respect to the input")
    for name, g in theirs.items():
        if name.startswith("hf.h.0."):
            ours = name.removeprefix("hf.h.0.")
            _check_grad(mine.get(ours), g.t() if g.dim() == 2 else g, f"block: gradient of {ours}")

    cfg = GPTConfig(13, 17, 1, 4, 20, dropout=0.5)
    block, oracle, _ = _student_block(Block, cfg, seed + 8)
    check_close(_run_block(block, x, what="block in eval mode, dropout=0.5")[0], oracle(x),
                what="block in eval mode with dropout=0.5 (dropout must be off)")
    block.train()
    a, b = call(block, x, what="block in train mode")[0], call(block, x, what="block in train mode")[0]
    check_true(not torch.allclose(a, b), what="block with dropout=0.5 in train mode must be random",
               expected="two calls give different outputs", got="identical outputs",
               hint="apply config.dropout to the attention weights and to both residual branches")
    passed("Block matches GPT-2's block: head counts, MLP widths, the cache, float32, gradients, dropout")


def _check_grad(got: torch.Tensor | None, expected: torch.Tensor, what: str) -> None:
    check_true(got is not None, what=f"{what}: no gradient", expected="a gradient tensor", got=None,
               hint="every parameter must be on the path to the output; avoid .detach(), .data, .item()")
    check_close(got, expected, what=what)


# ---------------------------------------------------------------- part 2: the model
def _student_gpt(GPT: Callable, cfg: GPTConfig, seed: int) -> tuple[nn.Module, nn.Module, dict]:
    state = random_gpt_state(cfg, torch.Generator().manual_seed(seed))
    model = call(GPT, cfg, what=f"GPT({cfg})")
    load_state(model, state, what=f"GPT({cfg})", names=GPT_NAMES)
    return model.double().eval(), hf_lm(cfg, state), state


def _run_gpt(model, idx, past=None, *, what: str):
    res = call(model, idx, past, what=what) if past is not None else call(model, idx, what=what)
    check_true(isinstance(res, tuple) and len(res) == 2, what=f"{what}: must return (logits, present)",
               expected="a tuple (logits, present)", got=type(res).__name__,
               hint="return the logits and the list of every layer's (k, v)")
    return res


def gpt_model_examples(GPT: Callable) -> None:
    """A two-layer GPT against Hugging Face's GPT2LMHeadModel with the same weights."""
    cfg = GPTConfig(vocab_size=29, block_size=16, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    model, oracle, _ = _student_gpt(GPT, cfg, 0)
    idx = torch.randint(29, (2, 7), generator=torch.Generator().manual_seed(1))
    logits, present = _run_gpt(model, idx, what="model(idx)")
    check_shape(logits, (2, 7, 29), what="model(idx): logits", hint="(B, T, vocab_size)")
    check_close(logits, oracle(idx).logits, what="logits vs transformers' GPT2LMHeadModel",
                hint="token + position embeddings, the blocks, ln_f, then lm_head")
    check_equal(len(present), 2, what="model(idx): present has one (k, v) per layer")
    check_equal(call(on_student_side, parameter_count, model, what="parameter count"), oracle.num_parameters(),
                what="number of parameters (a tied matrix counts once)",
                hint="lm_head.weight must be the very same Parameter as transformer.wte.weight")
    passed("GPT matches GPT2LMHeadModel")


def gpt_model_hidden(GPT: Callable, seed: int = 62) -> None:
    """Shapes, the cache with positions, weight tying through the gradients, float32, dropout."""
    gen = torch.Generator().manual_seed(seed)
    for n, cfg in enumerate([GPTConfig(37, 23, 2, 4, 20, n_inner=28), GPTConfig(11, 9, 3, 1, 6),
                             GPTConfig(50, 30, 1, 5, 15)]):
        model, oracle, _ = _student_gpt(GPT, cfg, seed + n)
        B, T = 3, min(cfg.block_size, 13)
        idx = torch.randint(cfg.vocab_size, (B, T), generator=gen)
        logits, present = _run_gpt(model, idx, what=f"model(idx), {cfg}")
        expected = oracle(idx).logits
        check_close(logits, expected, what=f"logits vs GPT2LMHeadModel, {cfg}",
                    hint="token + position embeddings, the blocks, ln_f, then lm_head")
        check_equal(len(present), cfg.n_layer, what="present has one (k, v) per layer")
        for k in present[-1]:
            check_shape(k, (B, cfg.n_head, T, cfg.n_embd // cfg.n_head), what="present keys/values of a layer",
                        hint="(B, n_head, T, head_size)")
        long_idx = torch.randint(cfg.vocab_size, (2, cfg.block_size), generator=gen)
        check_close(_run_gpt(model, long_idx, what="model at full context (block_size tokens)")[0],
                    oracle(long_idx).logits, what=f"logits with T = block_size = {cfg.block_size}")
        for P in (1, T - 3, T - 1):  # the cache: positions continue at P
            _, past = _run_gpt(model, idx[:, :P], what=f"model(idx[:, :{P}])")
            rest, present2 = _run_gpt(model, idx[:, P:], past, what=f"model(idx[:, {P}:], past)")
            check_close(rest, expected[:, P:], what=f"model(idx[:, {P}:], past) after {P} cached positions "
                        "must give the logits of positions {P}… of the full sequence".replace("{P}", str(P)),
                        hint="with P cached positions, the new tokens sit at positions P, P+1, …: "
                             "their position embeddings are wpe[P], wpe[P+1], …")
            check_equal(int(present2[0][0].size(-2)), T, what="cached positions after the second call")
        model.float()
        oracle.float()
        check_close(_run_gpt(model, idx, what="model in float32")[0], oracle(idx).logits,
                    what=f"logits in float32, {cfg}")

    cfg = GPTConfig(37, 23, 2, 4, 20, n_inner=28)
    model, oracle, _ = _student_gpt(GPT, cfg, seed + 5)
    check_equal(call(on_student_side, parameter_count, model, what="parameter count"), oracle.num_parameters(),
                what="number of parameters (a tied matrix counts once)",
                hint="lm_head.weight must be the very same Parameter as transformer.wte.weight")
    model.train()  # dropout 0: same numbers as eval
    idx = torch.randint(37, (2, 8), generator=gen)
    out, _, mine = student_autograd(module_gradients, model, idx, what="model(idx) in train mode")
    exp, _, theirs = module_gradients(HFLogits(oracle), idx)
    check_close(out, exp, what="logits in train mode with dropout 0")
    for name, g in theirs.items():
        ours = name.removeprefix("hf.")
        g = g.t() if ours.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else g
        _check_grad(mine.get(ours), g, f"gradient of {ours}" + (
            " (tied: the token embedding also gets the head's gradient)" if ours.endswith("wte.weight") else ""))

    cfg = GPTConfig(37, 23, 2, 4, 20, dropout=0.4)
    model, oracle, _ = _student_gpt(GPT, cfg, seed + 6)
    check_close(_run_gpt(model, idx, what="model in eval mode, dropout=0.4")[0], oracle(idx).logits,
                what="eval mode with dropout=0.4 (dropout must be off)")
    model.train()
    a, b = call(model, idx, what="model in train mode")[0], call(model, idx, what="model in train mode")[0]
    check_true(not torch.allclose(a, b), what="model with dropout=0.4 in train mode must be random",
               expected="two calls give different outputs", got="identical outputs",
               hint="apply transformer.drop to the embeddings (and the blocks' dropout)")
    _check_lm_head(GPT)
    passed("GPT matches GPT2LMHeadModel: sizes, the cache and its positions, tied weights, float32, dropout")


def _check_lm_head(GPT: Callable) -> None:
    """A freshly built GPT's head is ``nn.Linear(n_embd, vocab_size)`` (the tied weight hides a swap)."""
    cfg = GPTConfig(vocab_size=31, block_size=8, n_layer=1, n_head=2, n_embd=6)
    model = call(GPT, cfg, what=f"GPT({cfg})")
    check_equal(call(on_student_side, head_features, model, what="model.lm_head"), (cfg.n_embd, cfg.vocab_size),
                what="lm_head of a freshly built GPT: (in_features, out_features)",
                hint="lm_head = nn.Linear(n_embd, vocab_size, bias=False)")


# ---------------------------------------------------------------- part 3: the loss
def _ref_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                       ignore_index=ignore_index)


def lm_loss_examples(lm_loss: Callable) -> None:
    """A hand-checkable loss: uniform logits give log(V); then a small batch against the definition."""
    logits = torch.zeros(2, 4, 5, dtype=F64)
    labels = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 3]])
    got = call(lm_loss, logits, labels, what="lm_loss(uniform logits over 5 tokens)")
    check_close(torch.as_tensor(got, dtype=F64), torch.tensor(math.log(5), dtype=F64),
                what="loss of a uniform model over 5 tokens = log 5", hint="the mean cross-entropy in nats")
    logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    got = call(lm_loss, logits, labels, what="lm_loss(logits, labels)")
    check_close(torch.as_tensor(got, dtype=F64), _ref_loss(logits, labels), what="lm_loss(logits, labels)",
                hint="logits[:, t] predicts labels[:, t + 1]: drop the last logit and the first label")
    passed("lm_loss shifts and averages as expected")


def lm_loss_hidden(lm_loss: Callable, seed: int = 63) -> None:
    """Against GPT2LMHeadModel's loss, padding with -100, another ignore_index, gradients, dtype."""
    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(41, 19, 2, 4, 20, n_inner=28)
    state = random_gpt_state(cfg, gen)
    oracle = hf_lm(cfg, state)
    idx = torch.randint(41, (4, 12), generator=gen)
    labels = idx.clone()
    labels[1, 7:] = -100  # right padding
    labels[2, 2:] = -100
    labels[3, 0] = -100  # an ignored first label changes nothing: it is never predicted
    for name, lab in (("no padding", idx), ("padding labelled -100", labels)):
        out = oracle(idx, labels=lab)
        got = call(lm_loss, out.logits, lab, what=f"lm_loss(logits, labels) with {name}")
        check_true(isinstance(got, torch.Tensor) and got.dim() == 0, what="lm_loss returns a scalar tensor",
                   expected="a 0-dimensional tensor",
                   got=tuple(got.shape) if isinstance(got, torch.Tensor) else got)
        check_close(got, out.loss.double(), rtol=1e-5, atol=1e-6, what=f"lm_loss vs GPT2LMHeadModel's loss, {name}",
                    hint="logits[:, t] predicts labels[:, t + 1]; positions labelled -100 do not count, "
                         "the mean runs over the positions that count")
        check_close(got, _ref_loss(out.logits, lab), what=f"lm_loss in float64, {name}")
    logits = torch.randn(3, 9, 7, generator=gen, dtype=F64)
    lab = torch.randint(7, (3, 9), generator=gen)
    lab[0, 5:] = 0
    got = call(lm_loss, logits, lab, ignore_index=0, what="lm_loss(logits, labels, ignore_index=0)")
    check_close(got, _ref_loss(logits, lab, 0), what="lm_loss with ignore_index=0",
                hint="ignore the positions whose label equals ignore_index")
    got32 = call(lm_loss, logits.float(), lab, what="lm_loss on float32 logits")
    check_dtype(got32, torch.float32, what="lm_loss on float32 logits", hint="keep the dtype of the logits")
    loss, grad = student_autograd(loss_gradients, lm_loss, logits, labels=lab, what="lm_loss(logits, labels)")
    exp_loss, exp_grad = loss_gradients(_ref_loss, logits, lab)
    check_close(loss, exp_loss, what="lm_loss (through autograd)")
    _check_grad(grad, exp_grad, "gradient of lm_loss with respect to the logits")
    passed("lm_loss matches GPT-2's loss: shift, padding, ignore_index, gradients")


# ---------------------------------------------------------------- part 4: sampling
def _hf_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    from transformers.generation.logits_process import TopKLogitsWarper

    return TopKLogitsWarper(k)(None, logits)


def _hf_top_p(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    from transformers.generation.logits_process import TopPLogitsWarper

    return TopPLogitsWarper(p, min_tokens_to_keep=min_tokens_to_keep)(None, logits)


def _hf_chain(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    from transformers.generation.logits_process import TemperatureLogitsWarper

    out = TemperatureLogitsWarper(temperature)(None, logits)
    out = _hf_top_k(out, top_k) if top_k else out
    return _hf_top_p(out, top_p) if top_p is not None and top_p < 1 else out


def _check_filtered(got, expected, what: str, hint: str) -> None:
    check_shape(got, expected.shape, what=what, hint="the same shape as the logits")
    kept_g, kept_e = torch.isfinite(got), torch.isfinite(expected)
    if not torch.equal(kept_g, kept_e):
        row = int((kept_g != kept_e).any(-1).nonzero()[0])
        raise CheckFailed(f"{what}: wrong tokens kept in row {row}", kept_e[row].nonzero().flatten().tolist(),
                          kept_g[row].nonzero().flatten().tolist(), hint)
    check_close(got.masked_fill(~kept_g, 0), expected.masked_fill(~kept_e, 0),
                what=f"{what}: kept logits must be unchanged",
                hint="set removed entries to -inf; keep the others as they are")


def _nucleus_logits(gen: torch.Generator, B: int, V: int, p: float, margin: float = 1e-6) -> torch.Tensor:
    """Random float64 logits whose cumulative sorted probabilities stay ``margin`` away from ``p``."""
    rows = []
    while len(rows) < B:
        z = 2 * torch.randn(V, generator=gen, dtype=F64)
        c = torch.softmax(z, -1).sort(descending=True).values.cumsum(-1)
        if (c - p).abs().min() > margin:
            rows.append(z)
    return torch.stack(rows)


def sampling_examples(top_k_filter: Callable, top_p_filter: Callable, sample_next: Callable) -> None:
    """The worked examples of the lab, then the transformers warpers on a small batch."""
    z = torch.tensor([[2.0, 1.0, 1.0, -1.0, 0.5]], dtype=F64)
    _check_filtered(call(top_k_filter, z, 2, what="top_k_filter(z, 2)"), _hf_top_k(z, 2), "top_k_filter(z, 2)",
                    "keep the 2 largest logits and any tied with the 2nd largest")
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=F64))
    _check_filtered(call(top_p_filter, logp, 0.7, what="top_p_filter(log [0.5, 0.3, 0.15, 0.05], 0.7)"),
                    _hf_top_p(logp, 0.7), "top_p_filter(log [0.5, 0.3, 0.15, 0.05], 0.7)",
                    "0.5 < 0.7, 0.5 + 0.3 ≥ 0.7: keep the two most probable tokens")
    got = call(sample_next, z, temperature=0.0, what="sample_next(z, temperature=0)")
    check_shape(got, (1,), what="sample_next(z, temperature=0)", hint="one token id per row: shape (B,)")
    check_equal(got.tolist(), [0], what="sample_next with temperature 0 is greedy (argmax)")
    zs = torch.randn(4, 9, generator=torch.Generator().manual_seed(2), dtype=F64)
    _check_filtered(call(top_k_filter, zs, 3, what="top_k_filter(z, 3)"), _hf_top_k(zs, 3),
                    "top_k_filter on a batch vs transformers' TopKLogitsWarper", "filter each row on its own")
    tokens = call(on_student_side, sample_with_seed, sample_next, zs, 0, top_k=2, what="sample_next(z, top_k=2)")
    allowed = torch.isfinite(_hf_top_k(zs, 2))
    check_true(bool(allowed.gather(1, tokens.view(-1, 1)).all()), what="sample_next(z, top_k=2) samples a kept token",
               expected="one of the 2 largest logits of each row", got=tokens.tolist())
    passed("top-k, top-p and sampling behave as in the worked examples")


def sampling_hidden(top_k_filter: Callable, top_p_filter: Callable, sample_next: Callable, seed: int = 64) -> None:
    """Filters against transformers' warpers (ties, -inf, edge values); sampling statistics and seeding."""
    gen = torch.Generator().manual_seed(seed)
    # top-k
    ties = torch.randint(-3, 4, (6, 11), generator=gen).to(F64)  # integer logits: many ties
    rand = torch.randn(5, 23, generator=gen, dtype=F64)
    rand[1, 3] = rand[2, :7] = float("-inf")
    for name, z in (("integer logits with ties", ties), ("random logits with -inf entries", rand)):
        for k in (1, 2, 5):
            _check_filtered(call(top_k_filter, z, k, what=f"top_k_filter(z, {k})"), _hf_top_k(z, k),
                            f"top_k_filter(z, {k}) vs TopKLogitsWarper, {name}",
                            "remove the logits below the k-th largest of the row (ties with it stay)")
    for k in (None, 0, 23, 40):
        check_close(call(top_k_filter, rand, k, what=f"top_k_filter(z, {k})"), rand,
                    what=f"top_k_filter(z of 23 tokens, {k}) must keep everything",
                    hint="k of None or 0, or k ≥ vocabulary size, keeps every logit")
    # top-p
    for p in (0.1, 0.5, 0.9, 0.97):
        z = _nucleus_logits(gen, 6, 17, p)
        _check_filtered(call(top_p_filter, z, p, what=f"top_p_filter(z, {p})"), _hf_top_p(z, p),
                        f"top_p_filter(z, {p}) vs TopPLogitsWarper",
                        "sort by probability; keep a token when the probability of the tokens before it is < p")
    z = _nucleus_logits(gen, 4, 13, 0.3)
    for m in (2, 5):
        _check_filtered(call(top_p_filter, z, 0.3, min_tokens_to_keep=m, what=f"top_p_filter(z, 0.3, {m})"),
                        _hf_top_p(z, 0.3, m), f"top_p_filter(z, 0.3, min_tokens_to_keep={m})",
                        "keep at least min_tokens_to_keep of the most probable tokens")
    zi = _nucleus_logits(gen, 3, 13, 0.6)
    zi[0, :4] = zi[2, 5] = float("-inf")
    _check_filtered(call(top_p_filter, zi, 0.6, what="top_p_filter(z with -inf, 0.6)"), _hf_top_p(zi, 0.6),
                    "top_p_filter(z with -inf entries, 0.6)", "-inf entries have probability 0 and stay -inf")
    for p in (1.0, None):
        check_close(call(top_p_filter, rand, p, what=f"top_p_filter(z, {p})"), rand,
                    what=f"top_p_filter(z, {p}) must keep everything", hint="p of None or p ≥ 1 keeps every logit")
    tiny = _nucleus_logits(gen, 4, 9, 1e-3)
    _check_filtered(call(top_p_filter, tiny, 1e-3, what="top_p_filter(z, 0.001)"), _hf_top_p(tiny, 1e-3),
                    "top_p_filter(z, 0.001): only the most probable token", "the first token is always kept")

    # sampling: frequencies against the transformers chain (temperature → top-k → top-p)
    base = torch.tensor([3.0, 2.2, 1.7, 1.0, 0.4, -0.3, -1.0, -2.0], dtype=F64)
    n = 30000
    settings = [dict(temperature=1.0), dict(temperature=0.5), dict(temperature=2.0, top_p=0.8),
                dict(temperature=1.7, top_k=5), dict(temperature=0.7, top_k=6, top_p=0.9),
                dict(temperature=2.5, top_k=3)]
    for i, kw in enumerate(settings):
        probs = torch.softmax(_hf_chain(base[None], kw["temperature"], kw.get("top_k"), kw.get("top_p")), -1)[0]
        tokens = call(on_student_side, sample_with_seed, sample_next, base.expand(n, -1).contiguous(), seed + i,
                      what=f"sample_next({n} rows, {kw})", **kw)
        check_shape(tokens, (n,), what=f"sample_next({kw})", hint="one token id per row: shape (B,)")
        check_dtype(tokens, torch.int64, what=f"sample_next({kw})", hint="token ids are int64 (torch.long)")
        freq = torch.bincount(tokens, minlength=8).double() / n
        sd = (probs * (1 - probs) / n).sqrt()
        bad = ((freq - probs).abs() > 6 * sd + 1e-9).nonzero().flatten().tolist()
        check_true(not bad, what=f"sampling frequencies with {kw}", expected=[round(v, 3) for v in probs.tolist()],
                   got=[round(v, 3) for v in freq.tolist()],
                   hint="divide the logits by the temperature first, then apply top-k, then top-p, then sample "
                        "from the softmax")
    z = torch.randn(7, 30, generator=gen, dtype=F64)
    check_equal(call(sample_next, z, temperature=0.0, top_k=3, top_p=0.5, what="greedy").tolist(),
                z.argmax(-1).tolist(), what="sample_next(z, temperature=0) is the argmax of every row")
    a = call(on_student_side, sample_with_seed, sample_next, z, 5, 0, what="sample_next with generator seed 5")
    b = call(on_student_side, sample_with_seed, sample_next, z, 5, 99, what="sample_next with generator seed 5")
    check_equal(b.tolist(), a.tolist(), what="the same generator seed must give the same tokens, whatever the "
                "global RNG state", hint="draw with torch.multinomial(..., generator=generator)")
    draws = {tuple(call(on_student_side, sample_with_seed, sample_next, z, s, 0, what="sample_next").tolist())
             for s in range(4)}
    check_true(len(draws) > 1, what="different generator seeds must give different samples",
               expected="different tokens", got="the same tokens for seeds 0–3",
               hint="with temperature 1 and no filter, draw from the softmax with the generator given: different "
                    "seeds give different draws")
    passed("top-k, top-p and sampling match transformers' warpers; sampling is seeded by the generator")


# ---------------------------------------------------------------- part 5: generation with a KV cache
def _hf_greedy(oracle: nn.Module, idx: torch.Tensor, n: int) -> torch.Tensor:
    return oracle.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=n, do_sample=False,
                           pad_token_id=0)


def kv_cache_examples(generate: Callable, GPT: Callable) -> None:
    """Greedy generation with the cache equals transformers' generate(do_sample=False) and no cache."""
    cfg = GPTConfig(vocab_size=29, block_size=20, n_layer=2, n_head=3, n_embd=12, n_inner=20)
    model, oracle, _ = _student_gpt(GPT, cfg, 0)
    idx = torch.randint(29, (2, 4), generator=torch.Generator().manual_seed(1))
    expected = _hf_greedy(oracle, idx, 8)
    cached = call(generate, model, idx, 8, temperature=0.0, what="generate(model, idx, 8, temperature=0)")
    check_shape(cached, (2, 12), what="generate(model, idx of shape (2, 4), 8)", hint="(B, T + max_new_tokens)")
    check_equal(cached[:, :4].tolist(), idx.tolist(), what="generate returns the prompt followed by the new tokens")
    check_equal(cached.tolist(), expected.tolist(), what="greedy generation with the cache vs transformers' "
                "generate(do_sample=False)")
    plain = call(generate, model, idx, 8, temperature=0.0, use_cache=False, what="generate(..., use_cache=False)")
    check_equal(plain.tolist(), expected.tolist(), what="greedy generation without the cache")
    passed("greedy generation matches transformers' generate, with and without the cache")


def kv_cache_hidden(generate: Callable, GPT: Callable, seed: int = 65) -> None:
    """Sampling with a seeded generator: cached = uncached; the cache is really used; edge lengths."""
    gen = torch.Generator().manual_seed(seed)
    for n, cfg in enumerate([GPTConfig(37, 24, 2, 4, 20, n_inner=28), GPTConfig(23, 12, 3, 1, 6)]):
        model, oracle, _ = _student_gpt(GPT, cfg, seed + n)
        for B, T in ((3, 5), (1, 1)):
            idx = torch.randint(cfg.vocab_size, (B, T), generator=gen)
            new = cfg.block_size - T  # fill the context exactly
            check_equal(call(generate, model, idx, new, temperature=0.0, what="greedy generate").tolist(),
                        _hf_greedy(oracle, idx, new).tolist(),
                        what=f"greedy generation of {new} tokens after a prompt of {T} vs transformers' generate")
            for kw in (dict(temperature=1.0), dict(temperature=0.8, top_k=5), dict(temperature=1.3, top_p=0.9)):
                with_cache, calls = call(on_student_side, generate_traced, generate, model, idx, new, seed + B,
                                         what=f"generate(..., use_cache=True, {kw})", **kw)
                without, calls_plain = call(on_student_side, generate_traced, generate, model, idx, new, seed + B,
                                            use_cache=False, what=f"generate(..., use_cache=False, {kw})", **kw)
                check_shape(with_cache, (B, T + new), what="generate: output", hint="(B, T + max_new_tokens)")
                check_equal(with_cache.tolist(), without.tolist(),
                            what=f"sampled tokens with the cache vs without ({kw}, same generator seed)",
                            hint=f"the same draws must come out: call sample_next once per step with the "
                                 f"generator; {MASK_HINT}")
                check_equal(calls, [(T, 0)] + [(1, T + i) for i in range(new - 1)],
                            what="with the cache, the model reads the prompt once, then one new token per step "
                                 "with the cache of all earlier positions: calls (tokens fed, cached positions)",
                            hint="feed only the newest token and pass past=present of the previous call")
                check_equal(calls_plain, [(T + i, 0) for i in range(new)],
                            what="with use_cache=False every step reads the whole sequence: calls (tokens, cached)",
                            hint="without the cache, call model(idx) on everything generated so far")
        idx = torch.randint(cfg.vocab_size, (2, 3), generator=gen)
        check_equal(call(generate, model, idx, 0, what="generate(model, idx, 0)").tolist(), idx.tolist(),
                    what="generate with max_new_tokens=0 returns the prompt")
    passed("generation with the cache gives exactly the tokens of generation without it")
