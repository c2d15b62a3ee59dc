"""Named checks for lab 8 (efficient transformers). Test cells call these and nothing else.

Oracles:

- blockwise attention: ``torch.nn.functional.scaled_dot_product_attention`` (outputs, and float64
  gradients against autograd through it), for every block size, lengths that are not multiples of
  it, causal and padding masks; fully masked rows must give zeros. The student's function must
  really work block by block: a trusted helper run next to it (:func:`largest_tensor`) measures the
  biggest tensor it creates, which must be far smaller than the ``(L, S)`` scores.
- Linformer: the closed form ``SDPA(q, E k, F v)`` with explicit, seeded ``E`` and ``F``.
- sparse masks: the set definitions of Child et al. (2019), written as loops below.
- Transformer-XL memory: ``torch.nn.MultiheadAttention`` (weights copied) over the concatenation
  ``[memory; x]`` with the shifted causal mask; the memory update (last ``mem_len`` states,
  detached) and the absence of gradients into the memory are checked next to the student's module
  (:func:`xl_gradients`).

Sizes are non-square throughout (batch ≠ heads ≠ L ≠ S ≠ d_k ≠ d_v).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_dtype,
    check_shape,
    check_true,
    gradients,
    load_state,
    on_student_side,
    passed,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.checks.lab03 import MHA_NAMES, mha_state_to_torch, random_mha_state
from labsupport.efficient.measure import PeakMemory
from labsupport.efficient.memory import XLConfig
from labsupport.multihead import MultiHeadConfig

F64 = torch.float64


def _qkv(seed: int, lead: tuple[int, ...], L: int, S: int, dk: int, dv: int, dtype: torch.dtype = torch.float32,
         scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*lead, L, dk, generator=g, dtype=dtype),
            scale * torch.randn(*lead, S, dk, generator=g, dtype=dtype),
            torch.randn(*lead, S, dv, generator=g, dtype=dtype))


def _sdpa(q, k, v, mask=None, causal=False) -> torch.Tensor:
    """The oracle; rows with no visible key give zeros (as the lab asks)."""
    if causal:
        L, S = q.size(-2), k.size(-2)
        c = torch.ones(L, S, dtype=torch.bool).tril()
        mask = c if mask is None else mask & c
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if mask is not None:
        out = out.masked_fill(~mask.expand(*mask.shape[:-2], q.size(-2), k.size(-2)).any(-1, keepdim=True), 0.0)
    return out


# ---------------------------------------------------------------- helpers run next to the student's code
def largest_tensor(fn: Callable, *args, **kwargs) -> list[int]:
    """``[largest, peak]``: bytes of the biggest tensor ``fn(*args, **kwargs)`` creates, and of all
    live ones at the peak (:class:`labsupport.efficient.measure.PeakMemory`, no autograd)."""
    with torch.no_grad(), PeakMemory() as pm:
        fn(*args, **kwargs)
    return [pm.largest, pm.peak]


def keyword_gradients(fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      kwargs: dict) -> tuple[torch.Tensor, list]:
    """``fn(q, k, v, **kwargs)`` and the gradients of ``(out · g).sum()`` with respect to q, k, v."""
    return gradients(lambda q, k, v: fn(q, k, v, **kwargs), q, k, v)


def keyword_gradcheck(fn: Callable, inputs: list, kwargs: dict) -> str:
    """float64 ``torch.autograd.gradcheck`` of ``fn(*inputs, **kwargs)``: "" when it passes, else why not."""
    leaves = tuple(t.detach().clone().requires_grad_(True) for t in inputs)
    try:
        ok = torch.autograd.gradcheck(lambda *xs: fn(*xs, **kwargs), leaves, fast_mode=True, raise_exception=False)
    except Exception as e:  # noqa: BLE001 - any failure of autograd is reported as a check failure
        return f"autograd failed: {type(e).__name__}: {e}"
    return "" if ok else "analytical and numerical gradients differ"


# ---------------------------------------------------------------- part 1: blockwise attention
def _describe(q, k, v, mask, causal, bq, bk) -> str:
    m = "None" if mask is None else f"<bool mask {tuple(mask.shape)}>"
    return (f"blockwise_attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, mask={m}, "
            f"causal={causal}, block_q={bq}, block_k={bk})")


def _blockwise(fn: Callable, q, k, v, mask=None, causal=False, bq=4, bk=4, rtol=None, atol=None) -> torch.Tensor:
    what = _describe(q, k, v, mask, causal, bq, bk)
    out = call(fn, q, k, v, mask, causal=causal, block_q=bq, block_k=bk, what=what)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], *(() if mask is None else (mask.shape[:-2],)))
    check_shape(out, (*lead, q.size(-2), v.size(-1)), what=what, hint="the output is (..., L, d_v)")
    check_dtype(out, q.dtype, what=what, hint="keep the dtype of the inputs")
    check_true(bool(torch.isfinite(out).all()), what=f"{what}: NaN or inf in the output",
               expected="finite values (zeros for queries that see no key)",
               got=f"{int((~torch.isfinite(out)).sum())} non-finite values",
               hint="subtract the running maximum before exp; for a row whose keys are all masked so far the "
                    "maximum is -inf, and -inf - (-inf) is NaN")
    check_close(out, _sdpa(q, k, v, mask, causal), what=f"{what} vs torch scaled_dot_product_attention",
                rtol=rtol, atol=atol,
                hint="after each key block: m' = max(m, block max); l = e^(m - m')·l + Σ e^(s - m'); "
                     "acc = e^(m - m')·acc + e^(s - m') @ v; the output is acc / l")
    return out


def blockwise_examples(blockwise_attention: Callable) -> None:
    """One row of queries against SDPA with blocks that do not divide the lengths; then causal."""
    q, k, v = _qkv(0, (2,), 5, 7, 4, 3)
    for bq, bk in ((5, 7), (2, 3), (1, 1)):
        _blockwise(blockwise_attention, q, k, v, bq=bq, bk=bk)
    q, k, v = _qkv(1, (2, 3), 6, 6, 4, 5)
    _blockwise(blockwise_attention, q, k, v, causal=True, bq=4, bk=4)
    passed("blockwise_attention matches torch without a mask and with causal=True")


def blockwise_hidden(blockwise_attention: Callable, seed: int = 80) -> None:
    """Every block size (also 1 and larger than the sequence), L ≠ S, masks of every shape, fully masked
    rows, large scores, float64 gradients and gradcheck, and the memory actually used."""
    fn = blockwise_attention
    q, k, v = _qkv(seed, (3, 2), 11, 13, 8, 5)
    for bq, bk in ((1, 1), (1, 13), (11, 1), (3, 4), (4, 3), (5, 5), (16, 32), (11, 13), (2, 7)):
        _blockwise(fn, q, k, v, bq=bq, bk=bk)
        _blockwise(fn, q, k, v, causal=True, bq=bq, bk=bk)
    _blockwise(fn, *_qkv(seed + 1, (4,), 9, 9, 6, 7), causal=True, bq=3, bk=3)  # 3-D inputs
    _blockwise(fn, *_qkv(seed + 2, (), 17, 5, 3, 2), causal=True, bq=4, bk=2)  # 2-D inputs, L > S
    qs, ks, vs = _qkv(seed + 3, (3, 2), 7, 10, 4, 6)
    _blockwise(fn, qs, ks[:1], vs[:1], bq=3, bk=4)  # keys and values shared over the batch: broadcast

    # masks: padding (B, 1, 1, S) with a length 0, per head (B, H, L, S), (L, S), and with causal=True
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([13, 0, 6])
    padding = (torch.arange(13) < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S): sequence 1 is empty
    per_head = torch.rand(3, 2, 11, 13, generator=g) < 0.3
    per_head[0, 1, 4] = False  # a query that sees nothing
    per_head[2, 0, 10] = False
    plain = torch.rand(11, 13, generator=g) < 0.5
    for mask in (padding, per_head, plain):
        for bq, bk in ((4, 5), (3, 13), (11, 2)):
            _blockwise(fn, q, k, v, mask, bq=bq, bk=bk)
            _blockwise(fn, q, k, v, mask, causal=True, bq=bq, bk=bk)
    first_block_dead = torch.ones(11, 13, dtype=torch.bool)
    first_block_dead[:, :4] = False  # no query sees the first key block: the running max starts at -inf
    _blockwise(fn, q, k, v, first_block_dead, bq=4, bk=4)

    # large scores in float32: the first key block holds small scores, later ones scores beyond exp's range
    q, k, v = _qkv(seed + 4, (2, 3), 8, 12, 4, 3)
    k[..., 4:, :] *= 10.0
    q = q * 4.0
    _blockwise(fn, q, k, v, bq=4, bk=4, rtol=1e-3, atol=1e-4)
    _blockwise(fn, q, k, v, padding[:2, :, :, :12], causal=True, bq=3, bk=4, rtol=1e-3, atol=1e-4)

    # float64 gradients against autograd through torch's SDPA, and gradcheck
    q, k, v = _qkv(seed + 5, (2, 2), 7, 9, 4, 5, dtype=F64)
    for mask, causal, bq, bk in ((None, False, 3, 4), (padding[:2, :, :, :9], True, 2, 5),
                                 (per_head[:2, :, :7, :9], False, 7, 2)):
        kwargs = {"mask": mask, "causal": causal, "block_q": bq, "block_k": bk}
        what = f"gradients of {_describe(q, k, v, mask, causal, bq, bk)} in float64"
        hint = ("use differentiable torch operations only (no .item(), numpy or in-place edits of tensors "
                "autograd needs); masked_fill/where instead of assigning into tensors")
        out, got = on_student_side(keyword_gradients, fn, q, k, v, kwargs)
        exp_out, expected = gradients(lambda q, k, v, m=mask, c=causal: _sdpa(q, k, v, m, c), q, k, v)
        check_close(out, exp_out, what=f"{what}: output")
        for name, gr, e in zip("qkv", got, expected):
            check_true(gr is not None, what=f"{what}: no gradient reaches {name}", expected="a gradient tensor",
                       got=None, hint=hint)
            check_close(gr, e, what=f"{what}: gradient of {name} (vs autograd through torch)", hint=hint)
            check_true(bool(torch.isfinite(gr).all()), what=f"{what}: gradient of {name} has NaN",
                       expected="finite", got="NaN", hint=hint)
        failure = on_student_side(keyword_gradcheck, fn, [q, k, v], kwargs)
        check_true(not failure, what=f"{what}: torch.autograd.gradcheck fails", expected="gradcheck passes",
                   got=failure, hint=hint)

    # memory: a block-by-block computation never creates an (L, S) tensor
    L, S, lead = 192, 160, (1, 2)
    q, k, v = _qkv(seed + 6, lead, L, S, 4, 3)
    full = 2 * L * S * 4  # bytes of one (1, 2, L, S) float32 tensor of scores
    for kwargs in ({"causal": False}, {"causal": True}, {"mask": padding[:1, :, :, :1].expand(1, 1, 1, S).clone()}):
        bq, bk = 16, 32
        largest, peak = on_student_side(largest_tensor, fn, q, k, v, block_q=bq, block_k=bk, **kwargs)
        check_true(largest < full / 16, what=f"largest tensor created by blockwise_attention (L={L}, S={S}, "
                   f"block_q={bq}, block_k={bk}, {', '.join(f'{n}=...' for n in kwargs)})",
                   expected=f"well under {full} bytes (the size of the full scores); one block of scores is "
                            f"{2 * bq * bk * 4} bytes", got=f"{largest} bytes",
                   hint="compute scores, masks and weights one (block_q, block_k) tile at a time; build a causal "
                        "tile from the tile's row and column indices, never an (L, S) mask")
    passed("blockwise_attention matches torch for every block size, mask and dtype, with gradients, "
           "in memory far below L·S")


# ---------------------------------------------------------------- part 2: Linformer
def _linformer(fn: Callable, q, k, v, E, Fm, what: str) -> None:
    out = call(fn, q, k, v, E, Fm, what=what)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], E.shape[:-2])
    check_shape(out, (*lead, q.size(-2), v.size(-1)), what=what, hint="the output is (..., n, d_v)")
    expected = F.scaled_dot_product_attention(q, E @ k, Fm @ v)
    check_close(out, expected, what=f"{what} vs softmax(q (E k)ᵀ/√d) (F v)",
                hint="project along the sequence axis: E @ k is (..., k_rows, d) and F @ v is (..., k_rows, d_v); "
                     "keys with E, values with F; scale by √d (the feature size of q)")


def linformer_examples(linformer_attention: Callable) -> None:
    """E = F = identity gives plain attention; one random case against the closed form."""
    q, k, v = _qkv(0, (2,), 6, 6, 4, 3)
    eye = torch.eye(6)
    _linformer(linformer_attention, q, k, v, eye, eye, "linformer_attention(q, k, v, E=I, F=I)")
    g = torch.Generator().manual_seed(1)
    E, Fm = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    _linformer(linformer_attention, q, k, v, E, Fm, "linformer_attention(q (2, 6, 4), ..., E (3, 6), F (3, 6))")
    passed("linformer_attention matches the closed form")


def linformer_hidden(linformer_attention: Callable, seed: int = 81) -> None:
    """Seeded shapes (k_rows below and above n, per-head E and F), float64 gradients of all five inputs."""
    g = torch.Generator().manual_seed(seed)
    for i, (lead, n, d, dv, kr, e_lead) in enumerate([((3, 2), 10, 4, 6, 3, ()), ((4,), 7, 8, 3, 9, ()),
                                                       ((2, 5), 12, 3, 2, 1, ()), ((2, 3), 9, 5, 7, 4, (3,))]):
        q, k, v = _qkv(seed + i, lead, n, n, d, dv)
        E = torch.randn(*e_lead, kr, n, generator=g) / n ** 0.5
        Fm = torch.randn(*e_lead, kr, n, generator=g) / n ** 0.5
        _linformer(linformer_attention, q, k, v, E, Fm,
                   f"linformer_attention(q {tuple(q.shape)}, v {tuple(v.shape)}, E {tuple(E.shape)}, "
                   f"F {tuple(Fm.shape)})")
    q, k, v = _qkv(seed + 9, (2, 3), 8, 8, 4, 5, dtype=F64)
    E, Fm = torch.randn(3, 8, generator=g, dtype=F64), torch.randn(3, 8, generator=g, dtype=F64)
    what = "gradients of linformer_attention in float64"
    out, got = on_student_side(gradients, linformer_attention, q, k, v, E, Fm)
    exp_out, expected = gradients(lambda q, k, v, E, Fm: F.scaled_dot_product_attention(q, E @ k, Fm @ v),
                                  q, k, v, E, Fm)
    check_close(out, exp_out, what=f"{what}: output")
    for name, gr, e in zip(("q", "k", "v", "E", "F"), got, expected):
        check_true(gr is not None, what=f"{what}: no gradient reaches {name}", expected="a gradient tensor", got=None,
                   hint="E and F are learned: keep them in the autograd graph")
        check_close(gr, e, what=f"{what}: gradient of {name}")
    passed("linformer_attention matches the closed form on seeded shapes, gradients included")


# ---------------------------------------------------------------- part 3: sparse masks
def strided_definition(n: int, stride: int, causal: bool) -> torch.Tensor:
    """Child et al. (2019), strided: A¹ᵢ = {j : |i − j| ≤ l}, A²ᵢ = {j : (i − j) mod l = 0}; causal: j ≤ i."""
    return torch.tensor([[(abs(i - j) <= stride or (i - j) % stride == 0) and (j <= i or not causal)
                          for j in range(n)] for i in range(n)], dtype=torch.bool).reshape(n, n)


def fixed_definition(n: int, stride: int, c: int, causal: bool) -> torch.Tensor:
    """Child et al. (2019), fixed: A¹ᵢ = {j : ⌊j/l⌋ = ⌊i/l⌋}, A²ᵢ = {j : j mod l ∈ {l − c, …, l − 1}}."""
    return torch.tensor([[(j // stride == i // stride or j % stride in range(stride - c, stride))
                          and (j <= i or not causal) for j in range(n)] for i in range(n)],
                        dtype=torch.bool).reshape(n, n)


def _mask(fn: Callable, expected: torch.Tensor, args: tuple, what: str, hint: str) -> None:
    got = call(fn, *args, what=what)
    n = expected.size(0)
    check_shape(got, (n, n), what=what, hint="an (n, n) mask: row i = query i, column j = key j")
    check_dtype(got, torch.bool, what=what, hint="a boolean mask (True = may attend)")
    if not torch.equal(got, expected):
        bad = (got != expected).nonzero()[0].tolist()
        raise CheckFailed(f"{what}: wrong pattern", expected.int().tolist() if n <= 12 else "<the definition>",
                          got.int().tolist() if n <= 12 else "<a different mask>", hint,
                          detail=f"first difference at query {bad[0]}, key {bad[1]}: expected "
                                 f"{bool(expected[bad[0], bad[1]])}")


STRIDED_HINT = ("strided: keep key j when |i - j| <= stride (the previous stride positions and i itself) or "
                "(i - j) % stride == 0; with causal=True also j <= i")
FIXED_HINT = ("fixed: keep key j when j // stride == i // stride (same block) or j % stride >= stride - c "
              "(the last c positions of a block); with causal=True also j <= i")


def sparse_mask_examples(strided_mask: Callable, fixed_mask: Callable) -> None:
    """The two worked examples of the part."""
    _mask(strided_mask, strided_definition(6, 2, True), (6, 2), "strided_mask(6, 2)", STRIDED_HINT)
    _mask(fixed_mask, fixed_definition(8, 4, 1, True), (8, 4, 1), "fixed_mask(8, 4, 1)", FIXED_HINT)
    passed("strided_mask and fixed_mask give the worked examples")


def sparse_mask_hidden(strided_mask: Callable, fixed_mask: Callable, seed: int = 82) -> None:
    """Both patterns against their definitions: lengths not multiples of the stride, stride 1 and ≥ n,
    every c from 1 to the stride, causal and not."""
    g = torch.Generator().manual_seed(seed)
    random_n = int(torch.randint(20, 40, (1,), generator=g))
    for n, stride in ((1, 1), (5, 1), (7, 3), (16, 4), (17, 4), (9, 12), (random_n, 5)):
        for causal in (True, False):
            _mask(strided_mask, strided_definition(n, stride, causal), (n, stride, causal),
                  f"strided_mask({n}, {stride}, causal={causal})", STRIDED_HINT)
            for c in sorted({1, 2, stride} & set(range(1, stride + 1))):
                _mask(fixed_mask, fixed_definition(n, stride, c, causal), (n, stride, c, causal),
                      f"fixed_mask({n}, {stride}, c={c}, causal={causal})", FIXED_HINT)
    passed("strided_mask and fixed_mask match the definitions of Child et al. (2019)")


# ---------------------------------------------------------------- part 4: Transformer-XL memory
def xl_gradients(module: nn.Module, x: torch.Tensor, memory: torch.Tensor | None) -> dict:
    """Run ``module(x, memory)`` with gradients on ``x``, ``memory`` and the parameters; return plain data:
    the output, the new memory, whether the new memory requires grad, and every gradient."""
    params = dict(module.named_parameters())
    for p in params.values():
        p.grad = None
    x = x.detach().clone().requires_grad_(True)
    mem = None if memory is None else memory.detach().clone().requires_grad_(True)
    out, new_memory = module(x, mem)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)
    (out * g).sum().backward()
    return {"out": out.detach(), "new_memory": new_memory.detach(), "memory_requires_grad": new_memory.requires_grad,
            "x_grad": x.grad, "memory_grad": None if mem is None else mem.grad,
            "params": {n: p.grad for n, p in params.items()}}


def _xl_pair(cls: Callable, config, seed: int) -> tuple[nn.Module, nn.Module]:
    d, H = config.d_model, config.n_heads
    state = random_mha_state(MultiHeadConfig(d, H), torch.Generator().manual_seed(seed), prefix="attn.")
    module = call(cls, config, what=f"XLMemoryAttention({config})")
    load_state(module, state, what=f"XLMemoryAttention({config})", names=f"attn ({MHA_NAMES})")
    oracle = nn.MultiheadAttention(d, H, batch_first=True)
    oracle.load_state_dict({k.removeprefix("attn."): t for k, t in mha_state_to_torch(state, "attn.").items()})
    return module.double(), oracle.double().eval()


def _oracle_xl(oracle: nn.Module, x: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
    context = x if memory is None else torch.cat([memory, x], 1)  # (B, M+T, d)
    T, M = x.size(1), context.size(1) - x.size(1)
    blocked = torch.arange(M + T)[None, :] > M + torch.arange(T)[:, None]  # torch: True = may not attend
    return oracle(x, context, context, attn_mask=blocked, need_weights=False)[0]


def _xl_segments(module, oracle, segments: list[torch.Tensor], mem_len: int, what: str) -> None:
    memory, history = None, []
    for s, x in enumerate(segments):
        res = call(module, x, memory, what=f"{what}, segment {s}")
        check_true(isinstance(res, tuple) and len(res) == 2, what=f"{what}: must return (output, new_memory)",
                   expected="a tuple (output, new_memory)", got=type(res).__name__)
        out, new_memory = res
        expected_mem = torch.cat([*history, x], 1)[:, -mem_len:]  # the newest mem_len inputs so far
        check_close(out, _oracle_xl(oracle, x, memory), what=f"{what}, segment {s}: output vs "
                    "nn.MultiheadAttention over [memory; x] with the shifted causal mask",
                    hint="keys and values come from torch.cat([memory, x], dim=1); query t sits at position "
                         "M + t of that concatenation and sees keys 0 … M + t (all the memory, the segment's past)")
        check_shape(new_memory, expected_mem.shape, what=f"{what}, segment {s}: new memory",
                    hint=f"keep the last min(mem_len, M + T) positions of [memory; x] (mem_len = {mem_len})")
        check_close(new_memory, expected_mem, what=f"{what}, segment {s}: new memory",
                    hint="the new memory is the newest mem_len states of [memory; x] (its end, not its start)")
        history.append(x)
        memory = new_memory


def xl_memory_examples(XLMemoryAttention: Callable) -> None:
    """Two segments of 3 with mem_len 4 against torch.nn.MultiheadAttention over the concatenation."""
    cfg = XLConfig(d_model=12, n_heads=3, mem_len=4)
    module, oracle = _xl_pair(XLMemoryAttention, cfg, 0)
    module.eval()
    g = torch.Generator().manual_seed(1)
    _xl_segments(module, oracle, [torch.randn(2, 3, 12, generator=g, dtype=F64) for _ in range(2)], 4,
                 "XLMemoryAttention(d_model=12, n_heads=3, mem_len=4)")
    passed("XLMemoryAttention matches attention over [memory; x] and keeps the right memory")


def xl_memory_hidden(XLMemoryAttention: Callable, seed: int = 83) -> None:
    """mem_len below, equal to and above the segment length over several segments of varying length;
    no gradient into the memory, a detached new memory, gradients of x and every parameter vs torch."""
    g = torch.Generator().manual_seed(seed)
    for d, H, mem_len, lengths in ((20, 4, 3, (5, 5, 5, 5)), (20, 4, 5, (5, 2, 7)), (18, 3, 9, (4, 4, 4, 1)),
                                   (16, 2, 1, (3, 6))):
        cfg = XLConfig(d_model=d, n_heads=H, mem_len=mem_len)
        module, oracle = _xl_pair(XLMemoryAttention, cfg, seed + mem_len)
        module.eval()
        segments = [torch.randn(3, T, d, generator=g, dtype=F64) for T in lengths]
        _xl_segments(module, oracle, segments, mem_len,
                     f"XLMemoryAttention(d_model={d}, n_heads={H}, mem_len={mem_len})")

    cfg = XLConfig(d_model=20, n_heads=4, mem_len=6)
    module, oracle = _xl_pair(XLMemoryAttention, cfg, seed)
    x, memory = torch.randn(2, 5, 20, generator=g, dtype=F64), torch.randn(2, 6, 20, generator=g, dtype=F64)
    what = "XLMemoryAttention(d_model=20, n_heads=4, mem_len=6)(x (2, 5, 20), memory (2, 6, 20))"
    res = on_student_side(xl_gradients, module, x, memory)
    check_true(res["memory_grad"] is None or not bool(res["memory_grad"].abs().sum() > 0),
               what=f"{what}: a gradient flows into the memory", expected="no gradient (memory.grad is None)",
               got="a nonzero gradient",
               hint="the memory belongs to a segment whose backward pass is done: use memory.detach() "
                    "before concatenating")
    check_true(not res["memory_requires_grad"], what=f"{what}: the returned memory is still in the autograd graph",
               expected="new_memory.requires_grad is False", got="True",
               hint="detach the new memory, or the next segment's backward pass runs into this one")
    xr = x.detach().clone().requires_grad_(True)
    params = dict(oracle.named_parameters())
    for p in params.values():
        p.grad = None
    out = _oracle_xl(oracle, xr, memory)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)).sum().backward()
    check_close(res["out"], out, what=f"{what}: output")
    check_true(res["x_grad"] is not None, what=f"{what}: no gradient reaches x", expected="a gradient", got=None,
               hint="detach only the memory, never the current segment")
    check_close(res["x_grad"], xr.grad, what=f"{what}: gradient of x")
    for name, (kind, part) in {"attn.q_proj.weight": ("in_proj_weight", 0), "attn.k_proj.weight": ("in_proj_weight", 1),
                               "attn.v_proj.weight": ("in_proj_weight", 2), "attn.q_proj.bias": ("in_proj_bias", 0),
                               "attn.k_proj.bias": ("in_proj_bias", 1), "attn.v_proj.bias": ("in_proj_bias", 2),
                               "attn.out_proj.weight": ("out_proj.weight", None),
                               "attn.out_proj.bias": ("out_proj.bias", None)}.items():
        expected = params[kind].grad if part is None else params[kind].grad.chunk(3)[part]
        got = res["params"].get(name)
        check_true(got is not None, what=f"{what}: no gradient for {name}", expected="a gradient", got=None)
        check_close(got, expected, what=f"{what}: gradient of {name}")
    passed("XLMemoryAttention: segments, memory update, no gradient into the memory, gradients vs torch")
