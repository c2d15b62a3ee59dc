"""Named checks for lab 2 (attention). Test cells call these and nothing else.

The oracle is ``torch.nn.functional.scaled_dot_product_attention``. It returns no weights, but the
weights are attention applied to the identity matrix: ``SDPA(q, k, I) = softmax(q kᵀ/√d_k + mask)``,
so both of the student's outputs are compared with torch. Every shape is non-square (batch ≠ heads,
L ≠ S ≠ d_k ≠ d_v) so a transposed product cannot pass by accident.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from labsupport.checks import (
    CheckFailed,
    call,
    check_close,
    check_dtype,
    check_gradients,
    check_shape,
    check_true,
    on_student_side,
    passed,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells call check.in_range

B, H, L, S, DK, DV = 3, 2, 5, 7, 4, 6


def _qkv(seed: int, shape: tuple[int, ...] = (B, H), L: int = L, S: int = S, dk: int = DK, dv: int = DV,
         dtype: torch.dtype = torch.float32, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, L, dk, generator=g, dtype=dtype),
            scale * torch.randn(*shape, S, dk, generator=g, dtype=dtype),
            torch.randn(*shape, S, dv, generator=g, dtype=dtype))


def _oracle(q, k, v, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's output and weights (SDPA applied to the identity gives the weights)."""
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    eye = torch.eye(k.size(-2), dtype=q.dtype).expand(*k.shape[:-2], -1, -1)
    return out, F.scaled_dot_product_attention(q, k, eye, attn_mask=mask)


def _describe(q, k, v, mask) -> str:
    m = "None" if mask is None else f"<bool mask {tuple(mask.shape)}>"
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    return f"scaled_dot_product_attention({shapes}, mask={m})"


def _run(sdpa: Callable, q, k, v, mask=None) -> tuple[torch.Tensor, torch.Tensor, str]:
    what = _describe(q, k, v, mask)
    result = call(sdpa, q, k, v, mask, what=what)
    check_true(isinstance(result, tuple) and len(result) == 2, what=f"{what}: must return (output, weights)",
               expected="a tuple (output, weights)", got=type(result).__name__,
               hint="end with `return weights @ v, weights`")
    out, weights = result
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    check_shape(out, (*lead, q.size(-2), v.size(-1)), what=f"{what}: output",
                hint="output is (..., L, d_v): one weighted sum of values per query")
    check_shape(weights, (*lead, q.size(-2), k.size(-2)), what=f"{what}: weights",
                hint="weights are (..., L, S): one row per query, one column per key")
    check_dtype(out, q.dtype, what=f"{what}: output", hint="keep the dtype of the inputs")
    return out, weights, what


def _compare(sdpa: Callable, q, k, v, mask=None) -> None:
    out, weights, what = _run(sdpa, q, k, v, mask)
    exp_out, exp_w = _oracle(q, k, v, mask)
    _check_rows_sum_to_one(weights, what, None if mask is None else mask.expand_as(exp_w).any(-1))
    check_close(weights, exp_w, what=f"{what}: weights (vs torch)",
                hint="weights = softmax(q kᵀ / √d_k) over the keys (last dimension); masked scores must "
                     "be -inf *before* the softmax")
    check_close(out, exp_out, what=f"{what}: output (vs torch scaled_dot_product_attention)",
                hint="output = weights @ v")


def _check_rows_sum_to_one(weights: torch.Tensor, what: str, rows: torch.Tensor | None = None) -> None:
    sums = weights.detach().sum(-1)
    if rows is not None:
        sums = sums[rows]
    bad = (sums - 1).abs() > 1e-4
    if bad.any():
        i = int(bad.nonzero()[0, 0]) if sums.dim() == 1 else tuple(int(j) for j in bad.nonzero()[0])
        raise CheckFailed(f"{what}: attention weights must sum to 1 over the keys (last dimension)",
                          1.0, f"a row summing to {sums[i].item():.4g}",
                          "apply softmax over the keys (dim=-1), and mask before the softmax, not after")


# ---------------------------------------------------------------- attention without masks
def sdpa_examples(sdpa: Callable) -> None:
    """A hand-checkable case, then one random non-square case against torch."""
    q = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # (L=2, d_k=2)
    k = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # (S=3, d_k=2)
    v = torch.tensor([[1.0], [2.0], [3.0]])  # (S=3, d_v=1)
    out, weights, what = _run(sdpa, q, k, v)
    e = torch.exp(torch.tensor(2 / 2 ** 0.5))
    expected = torch.tensor([[e, 1.0, 1.0], [1.0, 1.0, 1.0]])
    expected = expected / expected.sum(-1, keepdim=True)
    check_close(weights, expected, what=f"{what}: weights of the worked example",
                hint="query 0 scores (2, 0, 0) / √2 against the keys; query 1 scores all zero, so its "
                     "weights are uniform (1/3 each)")
    check_close(out, expected @ v, what=f"{what}: output of the worked example", hint="output = weights @ v")
    _compare(sdpa, *_qkv(0))
    passed("scaled_dot_product_attention matches torch without a mask")


def sdpa_hidden(sdpa: Callable, seed: int = 10) -> None:
    """Oracle on seeded shapes (3-D, 4-D, broadcast heads, long sequences, large scores); gradcheck."""
    for i, (shape, l_, s_, dk, dv, scale) in enumerate([((B, H), L, S, DK, DV, 1.0), ((4,), 9, 3, 8, 5, 1.0),
                                                       ((2, 3), 1, 11, 16, 2, 1.0), ((3, 2), 6, 5, 3, 7, 6.0),
                                                       ((1, 2), 33, 47, 64, 24, 1.0)]):
        _compare(sdpa, *_qkv(seed + i, shape, l_, s_, dk, dv, scale=scale))
    q, k, v = _qkv(seed, (B, H))
    _compare(sdpa, q, k[:1], v[:1])  # keys/values shared over the batch: leading dims broadcast
    q, k, v = _qkv(seed + 7, (2, 3), 3, 4, 5, 2, dtype=torch.float64)
    _compare(sdpa, q, k, v)
    _gradcheck(sdpa, q, k, v, None)
    passed("scaled_dot_product_attention matches torch on random shapes, gradients included")


def gradcheck_failure(sdpa: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None) -> str:
    """``torch.autograd.gradcheck`` of both outputs of ``sdpa``: "" when it passes, else why not.

    Runs where the student's function lives (see :func:`labsupport.checks.on_student_side`), so
    autograd follows the student's operations; only the verdict, a string, comes back.
    """
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (q, k, v))
    try:
        ok = torch.autograd.gradcheck(lambda q, k, v: sdpa(q, k, v, mask), inputs, fast_mode=True,
                                      raise_exception=False)
    except Exception as e:  # noqa: BLE001 - any failure of autograd is reported as a check failure
        return f"autograd failed: {type(e).__name__}: {e}"
    return "" if ok else "analytical and numerical gradients differ"


def _gradcheck(sdpa: Callable, q, k, v, mask) -> None:
    """Float64 gradcheck of the student's function, and its gradients against torch's autograd."""
    what = f"gradients of {_describe(q, k, v, mask)} in float64"
    masks = () if mask is None else (mask,)  # passed as an input: bool, so it gets no gradient
    check_gradients(sdpa, F.scaled_dot_product_attention, q, k, v, *masks, what=f"{what} (vs torch)",
                    hint="use differentiable torch operations only (no .item(), numpy, .detach() or in-place "
                         "edits of the inputs)")
    failure = on_student_side(gradcheck_failure, sdpa, q, k, v, mask)
    check_true(not failure, what=f"{what}: torch.autograd.gradcheck fails", expected="gradcheck passes",
               got=failure, hint="use torch operations only, so autograd follows every step")


# ---------------------------------------------------------------- masks
def sdpa_mask_examples(sdpa: Callable) -> None:
    """A causal (L, L) mask, and a fully masked row that must give zeros."""
    q, k, v = _qkv(1, (B, H), 5, 5)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _compare(sdpa, q, k, v, causal)
    _, weights, what = _run(sdpa, q, k, v, causal)
    check_true(bool((weights[..., ~causal] == 0).all()), what=f"{what}: a masked key got a nonzero weight",
               expected="weight 0 wherever mask is False", got="a positive weight above the diagonal",
               hint="set masked scores to -inf before the softmax (scores.masked_fill(~mask, float('-inf')))")
    _fully_masked(sdpa, *_qkv(2), torch.ones(L, S, dtype=torch.bool).index_fill(0, torch.tensor([1]), False))
    passed("scaled_dot_product_attention handles a causal mask and a fully masked row")


def _fully_masked(sdpa: Callable, q, k, v, mask: torch.Tensor) -> None:
    out, weights, what = _run(sdpa, q, k, v, mask)
    dead = ~mask.expand(*weights.shape).any(-1)  # (..., L): queries that see no key
    for name, t in (("output", out), ("weights", weights)):
        check_true(bool(torch.isfinite(t).all()), what=f"{what}: {name} contains NaN or inf",
                   expected="finite numbers; zeros for queries whose keys are all masked",
                   got=f"{int((~torch.isfinite(t)).sum())} non-finite values",
                   hint="softmax of a row of -inf is 0/0 = NaN: replace those rows by zeros "
                        "(e.g. weights.nan_to_num(0.0) or torch.where on mask.any(-1))")
        check_true(bool((t[dead] == 0).all()), what=f"{what}: {name} of a fully masked query must be zeros",
                   expected="zeros", got=f"values up to {t[dead].abs().max().item():.3g}",
                   hint="a query that may attend to nothing attends to nothing: its weights are all 0")
    exp_out, exp_w = _oracle(q, k, v, mask)
    live = ~dead
    check_close(weights[live], exp_w[live], what=f"{what}: weights of the other queries (vs torch)",
                hint="only the fully masked rows are special; every other row is a softmax")
    check_close(out[live], exp_out[live], what=f"{what}: output of the other queries (vs torch)")


def _gradients_through_dead_rows(sdpa: Callable, q, k, v, mask: torch.Tensor) -> None:
    """With fully masked rows in the batch, gradients are finite, equal the reference's (a dead row
    passes no gradient), and pass ``gradcheck``."""
    from labsupport.attention import attention  # the reference: zeros, and zero gradients, for dead rows

    q, k, v = (t[:2].double() for t in (q, k, v))
    mask = mask if mask.dim() < 4 else mask[:2]
    what = f"gradients of {_describe(q, k, v, mask)} in float64, with fully masked rows"
    failure = on_student_side(gradcheck_failure, sdpa, q, k, v, mask)  # reports autograd errors too
    check_true(not failure, what=f"{what}: torch.autograd.gradcheck fails", expected="gradcheck passes",
               got=failure, hint="zero the fully masked rows out of place (e.g. weights.nan_to_num(0.0) or "
                                 "torch.where), never by assigning into the softmax's output")
    check_gradients(sdpa, lambda *a: attention(*a)[0], q, k, v, mask, what=what,
                    hint="a query that sees no key passes no gradient to q, k or v")


def sdpa_mask_hidden(sdpa: Callable, seed: int = 20) -> None:
    """Masks of shapes (L, S), (B, 1, 1, S), (B, H, L, S), (H, L, S) against torch; fully masked rows."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = _qkv(seed)
    some = lambda *shape: (torch.rand(*shape, generator=g) > 0.5).index_fill(-1, torch.tensor([S - 1]), True)  # noqa: E731
    lengths = torch.tensor([7, 2, 5])
    padding = (torch.arange(S) < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)
    for mask in (some(L, S), padding, some(B, H, L, S), some(H, L, S), some(B, 1, L, S),
                 torch.ones(L, S, dtype=torch.bool).tril(S - L)):
        _compare(sdpa, q, k, v, mask)
        _gradcheck(sdpa, *(t.double() for t in (q[:2], k[:2], v[:2])), mask if mask.dim() < 4 else mask[:2])
    dead = some(B, H, L, S)
    dead[0, 1, 2] = False
    dead[2, :, 4] = False
    _fully_masked(sdpa, q, k, v, dead)
    empty = (torch.arange(S) < torch.tensor([3, 0, 7])[:, None])[:, None, None, :]  # a length-0 sequence
    _fully_masked(sdpa, q, k, v, empty)
    left_causal = torch.ones(L, S, dtype=torch.bool).tril(S - L) & (torch.arange(S) >= 3)  # left padding + causal
    for mask in (dead, empty, left_causal):
        _gradients_through_dead_rows(sdpa, q, k, v, mask)
    passed("scaled_dot_product_attention matches torch with masks of every shape and fully masked rows")


# ---------------------------------------------------------------- mask builders
def causal_mask_examples(causal_mask: Callable) -> None:
    what = "causal_mask(3)"
    got = call(causal_mask, 3, what=what)
    check_dtype(got, torch.bool, what=what, hint="return a boolean tensor (True = may attend)")
    expected = [[True, False, False], [True, True, False], [True, True, True]]
    check_true(got.tolist() == expected, what=f"{what}: wrong pattern", expected=expected,
               got=got.tolist(), hint="query i may attend to keys 0..i: True on and below the diagonal")
    passed("causal_mask(3) is lower-triangular")


def causal_mask_hidden(causal_mask: Callable, seed: int = 30) -> None:
    """Against nn.Transformer's square subsequent mask and SDPA's is_causal, for several lengths
    (the edge cases, and one drawn from ``seed``)."""
    drawn = int(torch.randint(3, 41, (1,), generator=torch.Generator().manual_seed(seed)))
    for n in (1, 2, 7, 16, drawn):
        what = f"causal_mask({n})"
        got = call(causal_mask, n, what=what)
        check_shape(got, (n, n), what=what)
        check_dtype(got, torch.bool, what=what, hint="return a boolean tensor (True = may attend)")
        expected = torch.nn.Transformer.generate_square_subsequent_mask(n) == 0  # 0 = allowed, -inf = blocked
        check_true(torch.equal(got, expected), what=f"{what}: differs from torch's causal mask",
                   expected=expected.int().tolist(), got=got.int().tolist(),
                   hint="True on and below the diagonal (torch.tril); position i sees 0..i, never the future")
    n = 4 + drawn % 8
    q, k, v = _qkv(seed, (B, H), n, n)
    mask = call(causal_mask, n, what=f"causal_mask({n})")
    check_close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                F.scaled_dot_product_attention(q, k, v, is_causal=True),
                what=f"SDPA with causal_mask({n}) vs SDPA(is_causal=True)")
    passed("causal_mask matches torch's causal masking")


def padding_mask_examples(padding_mask: Callable) -> None:
    what = "padding_mask(torch.tensor([2, 4]), 5)"
    got = call(padding_mask, torch.tensor([2, 4]), 5, what=what)
    check_shape(got, (2, 1, 1, 5), what=what,
                hint="shape (B, 1, 1, S) so it broadcasts over heads (dim 1) and queries (dim 2)")
    check_dtype(got, torch.bool, what=what, hint="return a boolean tensor (True = may attend)")
    expected = [[True, True, False, False, False], [True, True, True, True, False]]
    check_true(got[:, 0, 0].tolist() == expected, what=f"{what}: wrong pattern", expected=expected,
               got=got[:, 0, 0].tolist(), hint="sequence b has lengths[b] real keys, then padding (False)")
    passed("padding_mask marks the real keys")


def padding_mask_hidden(padding_mask: Callable, seed: int = 40) -> None:
    """Random lengths (0 and max_len included); masked attention equals attention on the unpadded keys."""
    g = torch.Generator().manual_seed(seed)
    for lengths, max_len in ((torch.randint(1, 12, (6,), generator=g), 12), (torch.tensor([0, 3, 9]), 9),
                             (torch.tensor([1]), 1)):
        what = f"padding_mask({lengths.tolist()}, {max_len})"
        got = call(padding_mask, lengths.clone(), max_len, what=what)
        check_shape(got, (len(lengths), 1, 1, max_len), what=what)
        check_dtype(got, torch.bool, what=what)
        expected = torch.arange(max_len)[None, :] < lengths[:, None]
        check_true(torch.equal(got[:, 0, 0], expected), what=f"{what}: wrong pattern",
                   expected=expected.int().tolist(), got=got[:, 0, 0].int().tolist(),
                   hint="key j of sequence b is real when j < lengths[b]; a length of 0 masks every key")
    lengths = torch.tensor([5, 2, 8, 1])
    q, k, v = _qkv(seed, (4, 3), 3, 8)
    mask = call(padding_mask, lengths, 8, what=f"padding_mask({lengths.tolist()}, 8)")
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    for b, n in enumerate(lengths.tolist()):  # the oracle: drop the padding, attend to the real keys only
        check_close(out[b], F.scaled_dot_product_attention(q[b], k[b, :, :n], v[b, :, :n]),
                    what=f"attention over padded sequence {b} (length {n} of 8) with your mask vs unpadded",
                    hint="with the mask, padded keys must not change the result")
    passed("padding_mask matches attention on the unpadded sequences")
