"""Named checks for lab 3 (multi-head attention). Test cells call these and nothing else.

The oracles are ``torch.nn.MultiheadAttention`` and ``torch.nn.TransformerEncoderLayer``
(``batch_first=True``). Each check builds an explicit, seeded state dict in the student's parameter
names, loads it into the student's module, converts it to torch's names (torch packs the query, key
and value projections into one ``in_proj_weight``) and loads it into the oracle, then compares
outputs, per-head weights and gradients on seeded inputs. Sizes are non-square on purpose
(batch ≠ heads ≠ sequence length ≠ d_head ≠ d_model) so that a transposition bug cannot pass.

Masks: the student's convention is boolean True = *may attend*, broadcastable to ``(B, H, L, S)``;
torch's ``key_padding_mask`` and boolean ``attn_mask`` are True = *may not attend*.

The checks work the same whether the student's code is here (a notebook) or in another process (the
autograder, where the student's classes and modules are proxies and results arrive as plain tensors):
weights are always loaded explicitly, never drawn from the global RNG, and anything that needs autograd
through the student's code runs next to it through :func:`labsupport.checks.on_student_side` with the
trusted helpers :func:`labsupport.checks.module_gradients` and :func:`split_merge_gradients` below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.attention import causal_mask
from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_shape,
    check_true,
    gradients,
    load_state,
    module_gradients,
    passed,
    student_autograd,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.multihead import EncoderBlockConfig, MultiHeadConfig

F64 = torch.float64
MHA_NAMES = "q_proj, k_proj, v_proj, out_proj (each an nn.Linear with bias)"


# ---------------------------------------------------------------- weight copying
def random_mha_state(cfg: MultiHeadConfig, gen: torch.Generator, prefix: str = "") -> dict[str, torch.Tensor]:
    """A seeded state dict in the student's names: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``."""
    d = cfg.d_model
    shapes = {"q_proj": (d, d), "k_proj": (d, cfg.kdim or d), "v_proj": (d, cfg.vdim or d), "out_proj": (d, d)}
    state = {}
    for name, (rows, cols) in shapes.items():
        state[f"{prefix}{name}.weight"] = torch.randn(rows, cols, generator=gen) / cols ** 0.5
        state[f"{prefix}{name}.bias"] = 0.1 * torch.randn(rows, generator=gen)
    return state


def mha_state_to_torch(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Our names → ``torch.nn.MultiheadAttention``'s (packed ``in_proj_*`` when all dims agree)."""
    q, k, v = (state[f"{prefix}{n}.weight"] for n in ("q_proj", "k_proj", "v_proj"))
    out = {f"{prefix}in_proj_bias": torch.cat([state[f"{prefix}{n}.bias"] for n in ("q_proj", "k_proj", "v_proj")]),
           f"{prefix}out_proj.weight": state[f"{prefix}out_proj.weight"],
           f"{prefix}out_proj.bias": state[f"{prefix}out_proj.bias"]}
    if q.shape == k.shape == v.shape:
        out[f"{prefix}in_proj_weight"] = torch.cat([q, k, v])  # (3·d_model, d_model)
    else:
        out.update({f"{prefix}q_proj_weight": q, f"{prefix}k_proj_weight": k, f"{prefix}v_proj_weight": v})
    return out


def random_block_state(cfg: EncoderBlockConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A seeded state dict for an encoder block, in torch.nn.TransformerEncoderLayer's names."""
    state = random_mha_state(MultiHeadConfig(cfg.d_model, cfg.n_heads), gen, prefix="self_attn.")
    d, f = cfg.d_model, cfg.d_ff
    for name, (rows, cols) in {"linear1": (f, d), "linear2": (d, f)}.items():
        state[f"{name}.weight"] = torch.randn(rows, cols, generator=gen) / cols ** 0.5
        state[f"{name}.bias"] = 0.1 * torch.randn(rows, generator=gen)
    for name in ("norm1", "norm2"):
        state[f"{name}.weight"] = 1 + 0.2 * torch.randn(d, generator=gen)
        state[f"{name}.bias"] = 0.1 * torch.randn(d, generator=gen)
    return state


def block_state_to_torch(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {k: v for k, v in state.items() if not k.startswith("self_attn.")}
    out.update(mha_state_to_torch(state, prefix="self_attn."))
    return out


# ---------------------------------------------------------------- autograd next to the student's code
def split_merge_gradients(split_heads: Callable, merge_heads: Callable, x: torch.Tensor,
                          n_heads: int) -> tuple[torch.Tensor, list]:
    """``merge_heads(split_heads(x, n_heads))`` and its gradient with respect to ``x`` (see
    :func:`labsupport.checks.gradients`), computed where the two functions live."""
    return gradients(lambda t: merge_heads(split_heads(t, n_heads)), x)


def _student_mha(cls: Callable, cfg: MultiHeadConfig, seed: int, what: str) -> tuple[nn.Module, nn.Module]:
    """The student's module and the oracle, with the same seeded weights, in float64."""
    state = random_mha_state(cfg, torch.Generator().manual_seed(seed))
    mha = call(cls, cfg, what=f"MultiHeadAttention({cfg})")
    load_state(mha, state, what=what, names=MHA_NAMES)
    oracle = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, dropout=cfg.dropout, batch_first=True,
                                   kdim=cfg.kdim, vdim=cfg.vdim)
    oracle.load_state_dict(mha_state_to_torch(state))
    return mha.double(), oracle.double()


def _torch_masks(mask: torch.Tensor | None, B: int, H: int, L: int, S: int) -> dict:
    """Our True = attend mask (broadcastable to (B, H, L, S)) → torch's attn_mask (B·H, L, S)."""
    if mask is None:
        return {}
    return {"attn_mask": ~mask.expand(B, H, L, S).reshape(B * H, L, S)}


def _run_mha(mha: nn.Module, query, key, value, mask, what: str, need_weights: bool = True):
    res = call(mha, query, key, value, mask=mask, need_weights=need_weights, what=what)
    check_true(isinstance(res, tuple) and len(res) == 2, what=f"{what}: must return (output, weights)",
               expected="a tuple (output, weights)", got=type(res).__name__,
               hint="return out, weights (weights may be None when need_weights=False)")
    return res


def _compare_mha(mha, oracle, query, key, value, mask, what: str, H: int) -> None:
    B, L, S = query.size(0), query.size(1), key.size(1)
    out, weights = _run_mha(mha, query, key, value, mask, what)
    exp_out, exp_w = oracle(query, key, value, need_weights=True, average_attn_weights=False,
                            **_torch_masks(mask, B, H, L, S))
    check_shape(out, exp_out.shape, what=f"{what}: output", hint="output is (B, L, d_model)")
    check_shape(weights, exp_w.shape, what=f"{what}: weights",
                hint="per-head weights are (B, n_heads, L, S): do not average over heads")
    check_close(weights, exp_w, what=f"{what}: per-head attention weights",
                hint="the weights depend on q_proj, k_proj, the split into heads "
                     "((B, T, d_model) → (B, T, H, d_head) → (B, H, T, d_head)), the scaling by √d_head "
                     "and the mask: compare each step with the specification")
    check_close(out, exp_out, what=f"{what}: output",
                hint="the weights match, so look after them: v_proj and its split into heads, weights @ v, "
                     "merging the heads back to (B, L, d_model), and out_proj")


# ---------------------------------------------------------------- split / merge heads
def _ref_split(x: torch.Tensor, h: int) -> torch.Tensor:
    B, T, D = x.shape
    return x.reshape(B, T, h, D // h).permute(0, 2, 1, 3)


def split_merge_examples(split_heads: Callable, merge_heads: Callable) -> None:
    """A hand-checkable split of 12 features into 4 heads of 3, and the round trip."""
    x = torch.arange(2 * 5 * 12, dtype=torch.float32).view(2, 5, 12)  # x[b, t, f] = 60b + 12t + f
    what = "split_heads(x of shape (2, 5, 12), n_heads=4)"
    got = call(split_heads, x, 4, what=what)
    check_shape(got, (2, 4, 5, 3), what=what, hint="(B, T, d_model) → (B, n_heads, T, d_head)")
    check_close(got[0, 1, 2], torch.tensor([27.0, 28.0, 29.0]), what=f"{what}[0, 1, 2] (head 1, position 2)",
                hint="head 1 of position 2 holds features 3, 4, 5 of x[0, 2]; split the *feature* axis, "
                     "then move the head axis in front of the positions")
    back = call(merge_heads, got, what="merge_heads(split_heads(x, 4))")
    check_shape(back, (2, 5, 12), what="merge_heads(split_heads(x, 4))", hint="(B, H, T, d_head) → (B, T, H·d_head)")
    check_close(back, x, what="merge_heads(split_heads(x, 4)) must give x back",
                hint="transpose (B, H, T, d_head) → (B, T, H, d_head) before reshaping")
    passed("split_heads and merge_heads reshape as expected")


def split_merge_hidden(split_heads: Callable, merge_heads: Callable, seed: int = 31) -> None:
    """Random shapes against the reference; non-contiguous inputs; gradients flow through."""
    gen = torch.Generator().manual_seed(seed)
    for B, T, H, dh in [(3, 7, 2, 5), (2, 5, 6, 3), (1, 1, 1, 4), (4, 9, 8, 2), (3, 11, 5, 7)]:
        x = torch.randn(B, T, H * dh, generator=gen, dtype=F64)
        what = f"split_heads(x of shape {(B, T, H * dh)}, n_heads={H})"
        got = call(split_heads, x, H, what=what)
        check_close(got, _ref_split(x, H), what=what, hint="(B, T, d_model) → (B, T, H, d_head) → (B, H, T, d_head)")
        y = torch.randn(B, H, T, dh, generator=gen, dtype=F64)
        what = f"merge_heads(y of shape {(B, H, T, dh)})"
        check_close(call(merge_heads, y, what=what), y.permute(0, 2, 1, 3).reshape(B, T, H * dh), what=what,
                    hint="transpose to (B, T, H, d_head) first; a bare reshape mixes positions and heads")
        y_nc = torch.randn(B, T, H, dh, generator=gen, dtype=F64).transpose(1, 2)  # non-contiguous
        what = f"merge_heads(a non-contiguous tensor of shape {(B, H, T, dh)})"
        check_close(call(merge_heads, y_nc, what=what), y_nc.transpose(1, 2).reshape(B, T, H * dh), what=what,
                    hint="the same values stored contiguously gave the right result: the answer must follow the "
                         "shape of y (transpose, reshape), not its memory layout")
        back = call(merge_heads, got, what="merge_heads(split_heads(x))")
        check_close(back, x, what=f"merge_heads(split_heads(x, {H})) must give x back")
        hint = "use only differentiable tensor operations (view/reshape/transpose)"
        _, (grad,) = student_autograd(split_merge_gradients, split_heads, merge_heads, x, H,
                                      what="gradient through merge_heads(split_heads(x))")
        _, (expected,) = gradients(lambda t: t, x)  # the round trip is the identity
        check_true(grad is not None, what="gradient through merge_heads(split_heads(x))",
                   expected="a gradient tensor", got=None, hint=hint)
        check_close(grad, expected, what="gradient through merge_heads(split_heads(x))", hint=hint)
    passed("split_heads and merge_heads match the reference on random shapes")


# ---------------------------------------------------------------- MultiHeadAttention
def multihead_examples(MultiHeadAttention: Callable) -> None:
    """Self-attention with 3 heads against torch.nn.MultiheadAttention with the same weights."""
    cfg = MultiHeadConfig(d_model=12, n_heads=3)
    mha, oracle = _student_mha(MultiHeadAttention, cfg, 0, "MultiHeadAttention")
    mha.eval()
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(1), dtype=F64)
    out, weights = _run_mha(mha, x, x, x, None, "self-attention mha(x, x, x, need_weights=True)")
    check_shape(out, (2, 5, 12), what="mha(x, x, x): output", hint="(B, L, d_model)")
    check_shape(weights, (2, 3, 5, 5), what="mha(x, x, x): weights", hint="(B, n_heads, L, S)")
    check_close(weights.sum(-1), torch.ones(2, 3, 5, dtype=F64), what="attention weights sum over the keys",
                hint="softmax over the last axis (keys)")
    _compare_mha(mha, oracle, x, x, x, None, "self-attention vs torch.nn.MultiheadAttention", 3)
    passed("MultiHeadAttention matches torch.nn.MultiheadAttention on self-attention")


def multihead_hidden(MultiHeadAttention: Callable, seed: int = 32) -> None:
    """Masks, cross-attention with kdim/vdim ≠ d_model, dropout (eval and statistics), gradients."""
    gen = torch.Generator().manual_seed(seed)
    B, L, S, d, H = 3, 7, 9, 20, 4  # d_head = 5
    cfg = MultiHeadConfig(d, H)
    mha, oracle = _student_mha(MultiHeadAttention, cfg, seed, "MultiHeadAttention(d_model=20, n_heads=4)")
    mha.eval()
    x = torch.randn(B, L, d, generator=gen, dtype=F64)
    keep = torch.arange(L)[None, :] < torch.tensor([L, 4, 1])[:, None]  # (B, L) valid keys
    per_head = torch.rand(B, H, L, L, generator=gen) < 0.5
    per_head[..., 0] = True  # every query sees at least one key
    masks = {"no mask": None, "key padding mask (B, 1, 1, S)": keep[:, None, None, :],
             "causal mask (L, L)": causal_mask(L), "causal and padding": causal_mask(L) & keep[:, None, None, :],
             "per-head mask (B, H, L, S)": per_head}
    for name, mask in masks.items():
        _compare_mha(mha, oracle, x, x, x, mask, f"self-attention with {name}", H)

    out, _ = _run_mha(mha, x, x, x, None, "mha(x, x, x, need_weights=False)", need_weights=False)
    check_close(out, oracle(x, x, x, need_weights=False)[0], what="output with need_weights=False")

    dead = torch.ones(L, L, dtype=torch.bool)
    dead[2] = False  # query 2 sees no key at all
    out, w = _run_mha(mha, x, x, x, dead, "a query whose keys are all masked")
    check_true(bool(torch.isfinite(out).all() and torch.isfinite(w).all()),
               what="a fully masked query must not produce NaN", expected="finite outputs", got="NaN or inf",
               hint="labsupport.attention.attention handles fully masked rows: use it for the core")

    # cross-attention: queries from one sequence, keys/values (other feature sizes) from another
    ccfg = MultiHeadConfig(d, 5, kdim=11, vdim=13)  # d_head = 4
    cross, coracle = _student_mha(MultiHeadAttention, ccfg, seed + 1, "MultiHeadAttention(20, 5, kdim=11, vdim=13)")
    cross.eval()
    mem_k = torch.randn(B, S, 11, generator=gen, dtype=F64)
    mem_v = torch.randn(B, S, 13, generator=gen, dtype=F64)
    mem_keep = torch.arange(S)[None, :] < torch.tensor([S, 6, 2])[:, None]
    for name, mask in {"no mask": None, "memory padding mask": mem_keep[:, None, None, :]}.items():
        _compare_mha(cross, coracle, x, mem_k, mem_v, mask, f"cross-attention (kdim=11, vdim=13) with {name}", 5)
    mem = torch.randn(B, S, d, generator=gen, dtype=F64)
    _compare_mha(mha, oracle, x, mem, mem, None, "cross-attention from x (L=7) to memory (S=9)", H)

    # the defaults: key = query when omitted, value = key when omitted
    exp_self, exp_self_w = oracle(x, x, x, need_weights=True, average_attn_weights=False)
    out, w = call(mha, x, need_weights=True, what="mha(x, need_weights=True)")
    check_close(w, exp_self_w, what="mha(x): weights (key and value default to the query)",
                hint="when key is None use the query; when value is None use the key")
    check_close(out, exp_self, what="mha(x): output (key and value default to the query)",
                hint="when key is None use the query; when value is None use the key")
    exp_cross, _ = oracle(x, mem, mem, need_weights=False)
    try:
        out, _ = call(mha, x, mem, what="mha(x, memory)")
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001 - a crash here means the defaults are wrong: report it as such
        raise CheckFailed("mha(x, memory) (x: 7 positions, memory: 9) raised an error", "an output (3, 7, 20)",
                          f"{type(e).__name__}: {str(e)[:200]}",
                          "mha(x, memory) is cross-attention: keys *and* values from memory (value = key when "
                          "value is None)") from None
    check_close(out, exp_cross, what="mha(x, memory): output (value defaults to the key, memory)",
                hint="mha(x, memory) is cross-attention: keys *and* values from memory (value = key when "
                     "value is None)")

    # gradients of the inputs and of every parameter against torch
    mha.train()  # dropout is 0 here, so train and eval agree
    mask = (torch.arange(S)[None, :] < torch.tensor([S, 7, 3])[:, None])[:, None, None, :]  # (B, 1, 1, S)
    out, (g_q, g_k, g_v), grads = student_autograd(module_gradients, mha, x, mem, mem, mask=mask,
                                                     need_weights=False, what="mha(x, memory, memory)")
    exp_out, (e_q, e_k, e_v), expected = module_gradients(oracle, x, mem, mem, need_weights=False,
                                                          **_torch_masks(mask, B, H, L, S))
    check_close(out, exp_out, what="mha(x, memory, memory, mask) in train mode with dropout 0")
    for name, got, exp in (("queries", g_q, e_q), ("keys", g_k, e_k), ("values", g_v, e_v)):
        _check_grad(got, exp, f"gradient with respect to the {name}")
    for name, exp in zip(("q_proj", "k_proj", "v_proj"), expected["in_proj_weight"].chunk(3)):
        _check_grad(grads.get(f"{name}.weight"), exp, f"gradient of {name}.weight")
    for name, exp in zip(("q_proj", "k_proj", "v_proj"), expected["in_proj_bias"].chunk(3)):
        _check_grad(grads.get(f"{name}.bias"), exp, f"gradient of {name}.bias")
    for name in ("out_proj.weight", "out_proj.bias"):
        _check_grad(grads.get(name), expected[name], f"gradient of {name}")
    passed("MultiHeadAttention matches torch.nn.MultiheadAttention: masks, cross-attention, gradients")
    _check_dropout(MultiHeadAttention, seed)


def dropout_sites(module: nn.Module, *inputs: Any, **kwargs: Any) -> list[dict]:
    """Trusted helper, run next to the student's module (in train mode): call it once with dropout
    replaced by the identity and record every place dropout was asked for — the shape of the tensor
    it applied to and its rate. ``F.dropout`` (which ``nn.Dropout`` and ``labsupport.attention`` call)
    and the fused ``F.scaled_dot_product_attention`` (its ``dropout_p``, on the weights) are watched."""
    sites: list[dict] = []
    inside: list[bool] = [False]  # True while the module's self_attn (if any) runs
    dropout, sdpa = F.dropout, F.scaled_dot_product_attention

    def watched_dropout(x, p=0.5, training=True, inplace=False):
        if training and p > 0:
            sites.append({"shape": list(x.shape), "p": float(p), "in_self_attn": inside[0]})
        return x

    def watched_sdpa(q, k, v, *args, **kw):
        p = kw.get("dropout_p", args[1] if len(args) > 1 else 0.0)
        if p > 0:
            sites.append({"shape": [*q.shape[:-1], k.shape[-2]], "p": float(p), "in_self_attn": inside[0]})
        kw["dropout_p"] = 0.0
        return sdpa(q, k, v, *args[:1], **kw)

    hooks = []
    attn = getattr(module, "self_attn", None)
    if isinstance(attn, nn.Module):
        hooks = [attn.register_forward_pre_hook(lambda *_: inside.__setitem__(0, True)),
                 attn.register_forward_hook(lambda *_: inside.__setitem__(0, False))]
    F.dropout, F.scaled_dot_product_attention = watched_dropout, watched_sdpa
    try:
        module.train()
        with torch.no_grad():
            module(*inputs, **kwargs)
    finally:
        F.dropout, F.scaled_dot_product_attention = dropout, sdpa
        for hook in hooks:
            hook.remove()
    return sites


def _check_block_dropout_sites(block: Any, cfg: EncoderBlockConfig, x: torch.Tensor, kind: str) -> None:
    """Each of the block's four dropouts is where the spec puts it, with the configured rate. Where
    self_attn drops is Part 2's business (checked there): here it only has to drop something."""
    B, T, _ = x.shape
    expected = {"the FFN's hidden activation (B, T, d_ff), `dropout`": [B, T, cfg.d_ff],
                "the attention sub-layer's output (B, T, d_model), `dropout1`": [B, T, cfg.d_model],
                "the FFN sub-layer's output (B, T, d_model), `dropout2`": [B, T, cfg.d_model]}
    sites = student_autograd(dropout_sites, block, x, what=f"{kind} block(x) in train mode")
    check_true(any(site["in_self_attn"] for site in sites),
               what=f"{kind} block with dropout={cfg.dropout} in train mode: self_attn applies no dropout",
               expected="dropout on the attention weights inside self_attn", got="none",
               hint="build self_attn with the block's dropout: MultiHeadConfig(..., dropout=config.dropout)")
    got = sorted(tuple(site["shape"]) for site in sites if not site["in_self_attn"])
    for name, shape in expected.items():
        if tuple(shape) in got:
            got.remove(tuple(shape))
        else:
            check_true(False, what=f"{kind} block with dropout={cfg.dropout} in train mode: no dropout on {name}",
                       expected=f"dropout applied to a tensor of shape {tuple(shape)}",
                       got=f"dropout applied to shapes {sorted(tuple(s['shape']) for s in sites)}",
                       hint="x = norm1(x + dropout1(attn(x))) (pre-LN: x + dropout1(attn(norm1(x)))), "
                            "ffn(x) = linear2(dropout(activation(linear1(x)))), then dropout2 on the FFN's "
                            "output; self_attn applies dropout to its weights")
    check_true(not got, what=f"{kind} block in train mode: dropout applied in unexpected places",
               expected="exactly three dropouts outside self_attn", got=f"extra dropouts on shapes {got}",
               hint="one dropout per place named in the specification, no more")
    rates = sorted({round(site["p"], 6) for site in sites})
    check_true(rates == [round(cfg.dropout, 6)], what=f"{kind} block: dropout rates",
               expected=[cfg.dropout], got=rates, hint="every dropout uses config.dropout")


def _check_grad(got: torch.Tensor | None, expected: torch.Tensor, what: str) -> None:
    check_true(got is not None, what=f"{what}: no gradient", expected="a gradient tensor", got=None,
               hint="avoid .detach(), .item(), .data or in-place edits on the path to the output")
    check_close(got, expected, what=what)


def _check_dropout(MultiHeadAttention: Callable, seed: int) -> None:
    """Eval mode: no dropout (equals torch). Train mode: weights dropped with rate p, scaled by 1/(1-p)."""
    p, B, T, d, H = 0.4, 4, 16, 24, 4
    cfg = MultiHeadConfig(d, H, dropout=p)
    mha, oracle = _student_mha(MultiHeadAttention, cfg, seed + 2, "MultiHeadAttention(dropout=0.4)")
    x = torch.randn(B, T, d, generator=torch.Generator().manual_seed(seed), dtype=F64)
    mha.eval()
    oracle.eval()
    _compare_mha(mha, oracle, x, x, x, None, "eval mode with dropout=0.4 (dropout must be off)", H)
    _, w_eval = oracle(x, x, x, need_weights=True, average_attn_weights=False)  # (B, H, T, T), no dropout
    mha.train()  # the student's RNG is not ours to seed: the tolerances below are 5 standard deviations
    out1, w = _run_mha(mha, x, x, x, None, "train mode with dropout=0.4")
    out2, _ = _run_mha(mha, x, x, x, None, "train mode with dropout=0.4")
    check_true(not torch.allclose(out1, out2), what="in train mode, dropout makes two calls differ",
               expected="different outputs", got="identical outputs",
               hint="check that dropout with p = config.dropout is applied when self.training is True")
    zeros = (w == 0).double().mean().item()
    sd_zeros = math.sqrt(p * (1 - p) / w.numel())  # each weight dropped independently with probability p
    check_true(abs(zeros - p) < 5 * sd_zeros, what="fraction of attention weights zeroed by dropout (p = 0.4)",
               expected=f"{p} ± {5 * sd_zeros:.3f}", got=round(zeros, 3),
               hint="check which tensor dropout is applied to (the returned weights) and with which p")
    rows = w_eval.numel() // T
    # a row's sum Σ w_i·m_i/(1−p), m_i ~ Bernoulli(1−p), has variance p/(1−p)·Σ w_i²; average over the rows
    sd_sum = math.sqrt(p / (1 - p) * w_eval.detach().pow(2).sum().item()) / rows
    row_sum = w.sum(-1).mean().item()
    check_true(abs(row_sum - 1) < 5 * sd_sum, what="mean row sum of the dropped-out weights",
               expected=f"1 ± {5 * sd_sum:.3f} (the kept weights scaled by 1/(1-p))", got=round(row_sum, 3),
               hint="check how the weights that survive dropout are scaled")
    w_v, b_v = oracle.in_proj_weight.chunk(3)[2], oracle.in_proj_bias.chunk(3)[2]  # the same weights as v_proj
    v = torch.nn.functional.linear(x, w_v, b_v).view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, d_head)
    from_weights = oracle.out_proj((w @ v).transpose(1, 2).reshape(B, T, d)).detach()
    check_close(out1, from_weights, what="in train mode the output must use the returned (dropped-out) weights",
                hint="return the weights after dropout, the ones multiplied with the values")
    passed("dropout is applied to the attention weights in train mode only")


# ---------------------------------------------------------------- encoder block
def _student_block(cls: Callable, cfg: EncoderBlockConfig, seed: int) -> tuple[nn.Module, nn.Module]:
    state = random_block_state(cfg, torch.Generator().manual_seed(seed))
    block = call(cls, cfg, what=f"TransformerEncoderBlock({cfg})")
    load_state(block, state, what=f"TransformerEncoderBlock({cfg})",
               names=f"self_attn ({MHA_NAMES}), linear1, linear2, norm1, norm2")
    oracle = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.activation,
                                        cfg.layer_norm_eps, batch_first=True, norm_first=cfg.norm_first)
    oracle.load_state_dict(block_state_to_torch(state))
    return block.double(), oracle.double()


def _compare_block(block, oracle, x, mask, what: str, H: int) -> None:
    got = call(block, x, mask=mask, what=what)
    B, T = x.shape[:2]
    expected = oracle(x, **({"src_mask": _torch_masks(mask, B, H, T, T)["attn_mask"]} if mask is not None else {}))
    check_close(got, expected, what=what, hint=(
        "post-LN: x = norm1(x + dropout1(attn(x))), then x = norm2(x + dropout2(ffn(x))); "
        "pre-LN: x = x + dropout1(attn(norm1(x))), then x = x + dropout2(ffn(norm2(x)))"))


def encoder_block_examples(TransformerEncoderBlock: Callable) -> None:
    """Post-LN and pre-LN blocks against torch.nn.TransformerEncoderLayer (eval mode)."""
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(3), dtype=F64)
    for norm_first in (False, True):
        cfg = EncoderBlockConfig(12, 3, d_ff=20, norm_first=norm_first)
        block, oracle = _student_block(TransformerEncoderBlock, cfg, 4)
        block.eval()
        oracle.eval()
        kind = "pre-LN" if norm_first else "post-LN"
        out = call(block, x, what=f"{kind} block(x)")
        check_shape(out, (2, 5, 12), what=f"{kind} block(x)", hint="the block keeps the shape (B, T, d_model)")
        _compare_block(block, oracle, x, None, f"{kind} block vs torch.nn.TransformerEncoderLayer", 3)
    passed("TransformerEncoderBlock matches torch.nn.TransformerEncoderLayer (post-LN and pre-LN)")


def encoder_block_hidden(TransformerEncoderBlock: Callable, seed: int = 33) -> None:
    """Both norms × relu/gelu, masks, gradients, float32, and dropout in train mode."""
    gen = torch.Generator().manual_seed(seed)
    B, T, d, H, f = 3, 7, 20, 4, 36
    x = torch.randn(B, T, d, generator=gen, dtype=F64)
    keep = torch.arange(T)[None, :] < torch.tensor([T, 5, 2])[:, None]
    masks = {"no mask": None, "padding mask": keep[:, None, None, :],
             "causal and padding mask": causal_mask(T) & keep[:, None, None, :]}
    for norm_first in (False, True):
        for act in ("relu", "gelu"):
            cfg = EncoderBlockConfig(d, H, d_ff=f, dropout=0.2, activation=act, norm_first=norm_first)
            block, oracle = _student_block(TransformerEncoderBlock, cfg, seed)
            block.eval()
            oracle.eval()
            kind = f"{'pre' if norm_first else 'post'}-LN block, {act}"
            for name, mask in masks.items():
                _compare_block(block, oracle, x, mask, f"{kind}, {name}", H)
            block.float()
            oracle.float()
            _compare_block(block, oracle, x.float(), masks["padding mask"], f"{kind}, float32", H)

        # gradients (dropout 0, train mode) of the input and every parameter
        cfg = EncoderBlockConfig(d, H, d_ff=f, dropout=0.0, activation="gelu", norm_first=norm_first)
        block, oracle = _student_block(TransformerEncoderBlock, cfg, seed + 1)
        kind = "pre-LN" if norm_first else "post-LN"
        out, (g_x,), mine = student_autograd(module_gradients, block, x, mask=masks["padding mask"],
                                               what=f"{kind} block(x)")
        exp_out, (e_x,), theirs = module_gradients(oracle, x, src_key_padding_mask=~keep)
        check_close(out, exp_out, what=f"{kind} block in train mode with dropout 0")
        _check_grad(g_x, e_x, f"{kind} block: gradient with respect to the input")
        for name, g in theirs.items():
            if name.startswith("self_attn.in_proj_"):
                kind_of = name.removeprefix("self_attn.in_proj_")  # weight | bias, packed q, k, v
                for part, g_part in zip(("q_proj", "k_proj", "v_proj"), g.chunk(3)):
                    _check_grad(mine.get(f"self_attn.{part}.{kind_of}"), g_part,
                                f"{kind}: gradient of self_attn.{part}.{kind_of}")
            else:
                _check_grad(mine.get(name), g, f"{kind}: gradient of {name}")

        # dropout: active in train mode; with dropout 0, train mode equals the oracle
        cfg = EncoderBlockConfig(d, H, d_ff=f, dropout=0.5, norm_first=norm_first)
        block, _ = _student_block(TransformerEncoderBlock, cfg, seed + 2)
        block.train()
        a, b = call(block, x, what=f"{kind} block in train mode"), call(block, x, what=f"{kind} block in train mode")
        check_true(not torch.allclose(a, b), what=f"{kind} block with dropout=0.5 in train mode must be random",
                   expected="two calls give different outputs", got="identical outputs",
                   hint="use the dropout layers dropout1, dropout2 (and dropout inside the FFN)")
        _check_block_dropout_sites(block, cfg, x, kind)

        # a LayerNorm epsilon other than the default must reach both norms
        cfg = EncoderBlockConfig(d, H, d_ff=f, dropout=0.0, norm_first=norm_first, layer_norm_eps=0.5)
        block, oracle = _student_block(TransformerEncoderBlock, cfg, seed + 3)
        block.eval()
        oracle.eval()
        _compare_block(block, oracle, 0.3 * x, None, f"{kind} block with layer_norm_eps=0.5", H)
    passed("TransformerEncoderBlock matches torch.nn.TransformerEncoderLayer: norms, activations, masks, "
           "gradients, dropout")
