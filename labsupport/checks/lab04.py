"""Named checks for lab 4 (positional encodings). Test cells call these and nothing else.

Visible checks (``*_examples``) use small hand-checkable cases. Hidden checks compare the
student's functions with closed forms computed element by element in float64, with the rotary
embedding of Hugging Face ``transformers`` (Llama: ``LlamaRotaryEmbedding`` + ``apply_rotary_pos_emb``)
and with its ALiBi tensor (Bloom: ``build_alibi_tensor``), on seeded random inputs with non-square
dimensions (batch ≠ heads ≠ sequence length ≠ head size) and on edge cases. The relative property
of RoPE (``q_m · k_n`` depends only on ``m − n``) is checked property-based with hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
from hypothesis import given
from hypothesis import strategies as st

from labsupport.checks import CheckFailed, call, check_close, check_dtype, check_shape, passed, property_settings
from labsupport.checks import in_range as in_range  # re-exported: test cells call check.in_range

_PROPERTY = property_settings(60)
_TOL = {"atol": 1e-4, "rtol": 1e-4}  # float32 angles of positions up to a few hundred


@lru_cache(maxsize=64)
def _closed_form_pe(n_positions: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…), one element at a time (float64).

    Cached: callers must not modify the returned tensor.
    """
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    for pos in range(n_positions):
        for dim in range(d_model):
            angle = pos / 10000 ** ((dim - dim % 2) / d_model)
            pe[pos, dim] = math.sin(angle) if dim % 2 == 0 else math.cos(angle)
    return pe


def _paper_slopes(n_heads: int) -> list[float]:
    """The ALiBi paper's slopes, written independently of the reference: 2^(−8h/n) for h = 1..n."""
    def geometric(n: int) -> list[float]:
        return [2 ** (-8 * h / n) for h in range(1, n + 1)]

    if math.log2(n_heads).is_integer():
        return geometric(n_heads)
    p = 2 ** int(math.log2(n_heads))
    return geometric(p) + geometric(2 * p)[0::2][: n_heads - p]


# ---------------------------------------------------------------- sinusoidal_encoding
def sinusoidal_examples(sinusoidal_encoding: Callable) -> None:
    """Position 0 is (0, 1, 0, 1, …); position 1 of a 4-dimensional encoding by hand."""
    what = "sinusoidal_encoding(3, 4)"
    pe = call(sinusoidal_encoding, 3, 4, what=what)
    check_shape(pe, (3, 4), what=what, hint="one row per position, one column per dimension")
    check_dtype(pe, torch.float32, what=what, hint="return a float32 tensor (.float())")
    check_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]), what=f"{what}[0] (position 0)",
                hint="sin(0) = 0 in even dimensions, cos(0) = 1 in odd dimensions")
    expected = torch.tensor([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)])
    check_close(pe[1], expected, what=f"{what}[1] (position 1)",
                hint="dims 0, 1 use the angle pos / 10000^(0/4) = 1; dims 2, 3 use pos / 10000^(2/4) = 0.01")
    passed("sinusoidal_encoding gives the hand-computed values")


def _draws(seed: int, *ranges: tuple[int, int]) -> list[int]:
    """One integer from each inclusive range, drawn from ``seed`` (the hidden checks' own sizes)."""
    gen = torch.Generator().manual_seed(seed)
    return [int(torch.randint(lo, hi + 1, (1,), generator=gen)) for lo, hi in ranges]


def sinusoidal_hidden(sinusoidal_encoding: Callable, seed: int = 40) -> None:
    """Closed form element by element, odd and even widths, one position, long sequences, and one
    size drawn from ``seed``."""
    drawn = tuple(_draws(seed, (2, 200), (1, 80)))
    for n, d in [(1, 1), (4, 1), (6, 2), (7, 3), (9, 5), (20, 17), (50, 33), (128, 64), (100, 10), drawn]:
        what = f"sinusoidal_encoding({n}, {d})"
        pe = call(sinusoidal_encoding, n, d, what=what)
        check_shape(pe, (n, d), what=what, hint="shape (n_positions, d_model), also for odd d_model")
        check_dtype(pe, torch.float32, what=what, hint="return a float32 tensor (.float())")
        check_close(pe, _closed_form_pe(n, d).float(), what=f"{what} vs the closed form", **_TOL,
                    hint="even dims 2i hold sin(pos / 10000^(2i/d)), odd dims 2i+1 hold cos of the SAME "
                         "angle: the exponent is 2i/d (the even index of the pair), not i/d; with an odd "
                         "d the last dimension is a sine")
    passed("sinusoidal_encoding matches the closed form for odd and even widths")


# ---------------------------------------------------------------- offset_matrix
def _shift_error(M: torch.Tensor, k: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M_k · PE(pos) for every pos, PE(pos + k) for every pos), positions chosen so pos + k ≥ 0."""
    pe = _closed_form_pe(max(0, -k) + 40 + max(0, k), d)  # (P, d)
    start = max(0, -k)
    rows = pe[start:start + 40]  # PE(pos), pos = start … start+39
    return (M.double() @ rows.T).T, pe[start + k:start + k + 40]


def offset_examples(offset_matrix: Callable) -> None:
    """Shape, M_0 = identity, and PE(3 + 2) = M_2 · PE(3) in 4 dimensions."""
    what = "offset_matrix(0, 4)"
    M0 = call(offset_matrix, 0, 4, what=what)
    check_shape(M0, (4, 4), what=what, hint="a (d_model, d_model) matrix")
    check_close(M0.float(), torch.eye(4), what=f"{what} must be the identity (a shift by 0)",
                hint="each 2×2 block is [[cos kω, sin kω], [−sin kω, cos kω]]; with k = 0 that is I")
    what = "offset_matrix(2, 4) @ PE(3)"
    M2 = call(offset_matrix, 2, 4, what="offset_matrix(2, 4)")
    check_shape(M2, (4, 4), what="offset_matrix(2, 4)")
    pe = _closed_form_pe(6, 4)
    check_close((M2.double() @ pe[3]).float(), pe[5].float(), what=f"{what} must equal PE(5)", **_TOL,
                hint="sin row of a pair: [cos kω, sin kω]; cos row: [−sin kω, cos kω]; ω = 10000^(−2i/d)")
    passed("offset_matrix shifts PE(3) to PE(5)")


def offset_hidden(offset_matrix: Callable, seed: int = 41) -> None:
    """PE(pos + k) = M_k · PE(pos) numerically for many k (negative, large) and widths; M_a M_b = M_{a+b}.
    One more k, a width and the composed pair are drawn from ``seed``."""
    k_drawn, half, a, b = _draws(seed, (-600, 600), (1, 20), (-30, 30), (-30, 30))
    for d in (2, 6, 16, 34, 2 * half):
        for k in (1, -1, 2, 5, -7, 13, 64, 100, -250, 511, k_drawn):
            what = f"offset_matrix({k}, {d})"
            M = call(offset_matrix, k, d, what=what)
            check_shape(M, (d, d), what=what, hint="a (d_model, d_model) matrix")
            got, expected = _shift_error(M, k, d)
            check_close(got.float(), expected.float(), atol=5e-4, rtol=1e-4,
                        what=f"{what} @ PE(pos) vs PE(pos + {k}), 40 positions",
                        hint="block-diagonal: one 2×2 rotation by k·ω_i per (sin, cos) pair; check the "
                             "sign of the sines (a transposed block shifts by −k instead of +k)")
    d = 2 * half
    Ma, Mb, Mab = (call(offset_matrix, k, d, what=f"offset_matrix({k}, {d})") for k in (a, b, a + b))
    check_close((Ma.double() @ Mb.double()).float(), Mab.float(), **_TOL,
                what=f"offset_matrix({a}, {d}) @ offset_matrix({b}, {d}) vs offset_matrix({a + b}, {d})",
                hint="two shifts compose: M_a · M_b = M_(a+b)")
    passed("offset_matrix shifts sinusoidal encodings by k for every tested k and width")


# ---------------------------------------------------------------- apply_rotary
def rope_examples(apply_rotary: Callable) -> None:
    """Shapes kept, position 0 unchanged, one hand-rotated vector, lengths preserved."""
    q = torch.tensor([[[[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]]])  # (1, 1, 2, 4): two positions
    k = torch.tensor([[[[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]]]])
    what = "apply_rotary(q, k, positions=[0, 1]) with head_dim 4"
    q_rot, k_rot = call(apply_rotary, q, k, torch.tensor([0, 1]), what=what)
    check_shape(q_rot, q.shape, what=f"{what}: rotated q")
    check_shape(k_rot, k.shape, what=f"{what}: rotated k")
    check_close(q_rot[0, 0, 0], q[0, 0, 0], what=f"{what}: position 0 must not move",
                hint="the angle is pos·ω, zero at position 0")
    check_close(q_rot[0, 0, 1], torch.tensor([math.cos(1), 0.0, math.sin(1), 0.0]),
                what=f"{what}: q = e_0 at position 1",
                hint="dimension j pairs with j + d/2 (Llama's rotate_half): (x0, x2) turns by 1 radian, "
                     "x·cos + rotate_half(x)·sin with rotate_half(x) = cat(−x2, x1)")
    check_close(k_rot[0, 0, 1], torch.tensor([0.0, -3 * math.sin(0.01), 0.0, 3 * math.cos(0.01)]),
                what=f"{what}: k = 3·e_3 at position 1",
                hint="pair (x1, x3) turns by pos·ω_1 = 1/10000^(2/4) = 0.01 radians")
    passed("apply_rotary rotates the hand-checked vectors")


def _hf_rotary(q: torch.Tensor, k: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Hugging Face Llama's RoPE (tiny config, no weights) on (B, H, T, D) queries and keys."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    B, H, T, D = q.shape
    config = LlamaConfig(vocab_size=16, hidden_size=H * D, num_attention_heads=H, head_dim=D,
                         num_key_value_heads=k.size(1), num_hidden_layers=1, intermediate_size=8,
                         max_position_embeddings=1024)
    cos, sin = LlamaRotaryEmbedding(config)(q, position_ids)  # (B, T, D)
    return apply_rotary_pos_emb(q, k, cos, sin)


def rope_hidden(apply_rotary: Callable, seed: int = 4) -> None:
    """Against Hugging Face Llama on seeded non-square inputs; dtype kept; relative-position property."""
    g = torch.Generator().manual_seed(seed)
    for B, H, H_kv, T, D in [(3, 5, 5, 7, 12), (2, 4, 1, 9, 6), (1, 3, 3, 4, 2), (4, 2, 2, 11, 32)]:
        q, k = torch.randn(B, H, T, D, generator=g), torch.randn(B, H_kv, T, D, generator=g)
        shared = torch.randint(0, 200, (T,), generator=g)  # arbitrary positions, not only 0..T-1
        per_row = torch.randint(0, 200, (B, T), generator=g)
        for positions, ids in ((shared, shared[None].expand(B, T)), (per_row, per_row)):
            what = (f"apply_rotary(q {tuple(q.shape)}, k {tuple(k.shape)}, positions "
                    f"{tuple(positions.shape)})")
            got_q, got_k = call(apply_rotary, q.clone(), k.clone(), positions, what=what)
            hf_q, hf_k = _hf_rotary(q, k, ids)
            hint = ("pair dimension j with j + d/2 (rotate_half of Llama), not adjacent dimensions; "
                    "ω_i = 10000^(−2i/d); positions of shape (B, T) give one row of angles per sequence, "
                    "broadcast over heads")
            check_close(got_q, hf_q, what=f"{what}: rotated q vs Hugging Face Llama", hint=hint, **_TOL)
            check_close(got_k, hf_k, what=f"{what}: rotated k vs Hugging Face Llama", hint=hint, **_TOL)
    q64 = torch.randn(2, 3, 5, 8, dtype=torch.float64, generator=g)
    got_q, _ = call(apply_rotary, q64, q64, torch.arange(5), what="apply_rotary on float64 inputs")
    check_dtype(got_q, torch.float64, what="apply_rotary on float64 inputs",
                hint="return tensors of the dtype of q and k (cast cos and sin to q.dtype)")
    for half in (torch.float16, torch.bfloat16):  # the dtypes models are run in on a GPU
        q, k = torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 1, 6, 8, generator=g)
        positions = torch.arange(3, 9)
        what = f"apply_rotary on {half} inputs"
        got_q, got_k = call(apply_rotary, q.to(half), k.to(half), positions, what=what)
        hf_q, hf_k = _hf_rotary(q, k, positions[None].expand(2, 6))
        for name, got, exp in (("q", got_q, hf_q), ("k", got_k, hf_k)):
            check_dtype(got, half, what=f"{what}: rotated {name}",
                        hint="return tensors of the dtype of q and k: compute cos and sin, then cast them "
                             "to q.dtype before multiplying (a float32 cos/sin silently promotes the result)")
            check_close(got.float(), exp, what=f"{what}: rotated {name} vs Hugging Face Llama (in float32)",
                        rtol=0.05, atol=0.05, hint="the same rotation as in float32, up to half-precision rounding")
    _relative_property(apply_rotary)
    passed("apply_rotary matches Hugging Face Llama and scores depend only on m − n")


def _relative_property(apply_rotary: Callable) -> None:
    @_PROPERTY
    @given(m=st.integers(0, 300), n=st.integers(0, 300), shift=st.integers(0, 300),
           d=st.sampled_from([4, 8, 14]), seed=st.integers(0, 2**16))
    def relative(m: int, n: int, shift: int, d: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        q, k = torch.randn(1, 1, 2, d, dtype=torch.float64, generator=g).unbind(2)  # (1, 1, d) each
        qk = torch.stack((q, k), dim=2)  # (1, 1, 2, d): q at index 0, k at index 1

        def score(a: int, b: int) -> float:
            q_rot, k_rot = call(apply_rotary, qk, qk, torch.tensor([a, b]), what="apply_rotary")
            return float(q_rot[0, 0, 0].double() @ k_rot[0, 0, 1].double())

        before, after = score(m, n), score(m + shift, n + shift)
        if not math.isclose(before, after, rel_tol=1e-4, abs_tol=1e-4):
            raise CheckFailed(f"q_m·k_n must depend only on m − n: q at {m}, k at {n} vs both shifted "
                              f"by {shift} (head_dim {d})", before, after,
                              "rotate q and k by the same angles per position (pos·ω_i), each pair of "
                              "dimensions by its own frequency; do not mix pairs")

    relative()


# ---------------------------------------------------------------- alibi_bias
def alibi_examples(alibi_bias: Callable) -> None:
    """Two heads (slopes 1/16 and 1/256) over three positions, by hand."""
    what = "alibi_bias(2, 3)"
    bias = call(alibi_bias, 2, 3, what=what)
    check_shape(bias, (2, 3, 3), what=what, hint="shape (n_heads, L, S), S = L by default")
    check_dtype(bias, torch.float32, what=what, hint="return a float32 tensor")
    check_close(bias[0, 2], torch.tensor([-2 / 16, -1 / 16, 0.0]), what=f"{what}[0, 2] (head 0, query 2)",
                hint="2 heads: slopes 2^(−8/2)=1/16 and 1/256; a key d steps in the past gets −slope·d")
    check_close(bias[1, 2], torch.tensor([-2 / 256, -1 / 256, 0.0]), what=f"{what}[1, 2] (head 1, query 2)",
                hint="the slope of head h (from 1) is 2^(−8h/n_heads)")
    passed("alibi_bias gives the hand-computed penalties")


def alibi_hidden(alibi_bias: Callable, seed: int = 42) -> None:
    """The paper's slopes for 8 and 12 heads (and other counts), L ≠ S, and Hugging Face Bloom's ALiBi;
    one more size drawn from ``seed``."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    heads, queries, extra = _draws(seed, (1, 24), (1, 10), (0, 6))
    sizes = [(8, 5, 5), (12, 3, 7), (5, 4, 9), (1, 2, 2), (6, 1, 6), (16, 7, 7), (3, 6, 10)]
    for H, L, S in [*sizes, (heads, queries, queries + extra)]:
        what = f"alibi_bias({H}, {L}, {S})"
        bias = call(alibi_bias, H, L, S, what=what)
        check_shape(bias, (H, L, S), what=what, hint="shape (n_heads, L, S)")
        slopes = torch.tensor(_paper_slopes(H), dtype=torch.float64)
        q_pos = torch.arange(L) + (S - L)  # the queries are the last L of the S positions
        expected = slopes[:, None, None] * (torch.arange(S)[None, :] - q_pos[:, None])
        check_close(bias.double(), expected, what=f"{what} vs the ALiBi paper", atol=1e-6, rtol=1e-5,
                    hint="bias[h, i, j] = −m_h·(i + S − L − j); slopes 2^(−8h/n) for a power of two; "
                         "otherwise the slopes of the closest smaller power of two p, then every other "
                         "slope of 2p heads")
        bloom = build_alibi_tensor(torch.ones(1, S), H, torch.float64)  # (H, 1, S): m_h·j
        check_close((bias - bias[..., :1]).double(), bloom.expand(H, L, S),
                    what=f"{what} minus its first column vs Hugging Face Bloom's ALiBi", atol=1e-6, rtol=1e-5,
                    hint="along the keys the bias rises by m_h per position (penalty shrinks closer to "
                         "the query)")
    passed("alibi_bias matches the paper's slopes (8, 12 and other head counts) and Bloom's ALiBi")


# ---------------------------------------------------------------- experiment helper
def permutation_gap(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int = 0) -> float:
    """Largest ``|fn(x[perm]) − fn(x)[perm]|`` over a random permutation of the positions (dim −2).

    Zero (up to rounding) when ``fn`` is permutation-equivariant, i.e. blind to token order.
    """
    perm = torch.randperm(x.size(-2), generator=torch.Generator().manual_seed(seed))
    return float((fn(x[..., perm, :]) - fn(x)[..., perm, :]).abs().max())
