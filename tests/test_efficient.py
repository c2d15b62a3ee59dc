"""labsupport.efficient against torch, and lab 8's checks: they accept the reference and reject broken variants."""

import pytest
import torch
import torch.nn.functional as F

from autograder.course import source_notebook
from autograder.grade import GradeOptions, grade_notebook
from autograder.mutants import alternatives_of, mutant_notebook
from labsupport.attention import attention
from labsupport.checks import CheckFailed, lab08
from labsupport.efficient import (
    XLConfig,
    XLMemoryAttention,
    blockwise_attention,
    fixed_mask,
    linformer_attention,
    sliding_window_mask,
    strided_mask,
)
from labsupport.efficient.measure import PeakMemory, RetrievalModel, peak_memory, reversal_batches

LAB = "lab08_efficient_transformers"


def test_online_softmax_worked_example():
    """Scores (1, 3), values (10, 20), one key per block: the chapter's and the lab's hand computation."""
    q = torch.tensor([[1.0, 0.0]]) * 2 ** 0.5  # scaled by 1/√2 inside: scores become (1, 3)
    k = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    v = torch.tensor([[10.0], [20.0]])
    out = blockwise_attention(q, k, v, block_q=1, block_k=1)
    assert out.item() == pytest.approx(21.353352832 / 1.135335283, rel=1e-6)


@pytest.mark.parametrize("bq,bk", [(1, 1), (3, 5), (7, 64), (64, 2)])
def test_blockwise_equals_sdpa(bq, bk):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 11, 8), torch.randn(2, 3, 13, 8), torch.randn(2, 3, 13, 5)
    pad = (torch.arange(13) < torch.tensor([13, 0])[:, None])[:, None, None, :]  # sequence 1 has no key
    for causal in (False, True):
        ref = lab08._sdpa(q, k, v, pad, causal)
        torch.testing.assert_close(blockwise_attention(q, k, v, pad, causal, bq, bk), ref)
    assert (blockwise_attention(q, k, v, pad, block_q=bq, block_k=bk)[1] == 0).all()


def test_blockwise_gradients_float64():
    q, k, v = (torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda *t: blockwise_attention(*t, causal=True, block_q=4, block_k=4), (q, k, v))


def test_blockwise_memory_is_linear():
    """Doubling L doubles blockwise's peak memory and quadruples the full path's (measured)."""
    peaks = {}
    for n in (512, 1024):
        q = k = v = torch.randn(1, 2, n, 16)
        peaks[n] = (peak_memory(lambda *t: blockwise_attention(*t, block_q=64, block_k=64), q, k, v),
                    peak_memory(lambda *t: attention(*t)[0], q, k, v))
    assert 1.6 < peaks[1024][0] / peaks[512][0] < 2.4
    assert 3.5 < peaks[1024][1] / peaks[512][1] < 4.5
    assert peaks[1024][1] / peaks[1024][0] > 20


def test_peak_memory_tracker_counts_live_tensors():
    with PeakMemory() as pm:
        a = torch.zeros(1000)  # 4000 bytes
        b = torch.zeros(1000)
        del a, b
        c = torch.zeros(500)
    assert pm.peak == 8000 and pm.largest == 4000 and pm.current == 2000
    del c


def test_linformer_identity_and_closed_form():
    q, k, v = torch.randn(3, 7, 4), torch.randn(3, 7, 4), torch.randn(3, 7, 5)
    eye = torch.eye(7)
    torch.testing.assert_close(linformer_attention(q, k, v, eye, eye), F.scaled_dot_product_attention(q, k, v))
    E, Fm = torch.randn(2, 7), torch.randn(2, 7)
    out = linformer_attention(q, k, v, E, Fm)
    w = torch.softmax(q @ (E @ k).transpose(-2, -1) / 2.0, -1)  # √d = 2
    torch.testing.assert_close(out, w @ (Fm @ v))


def test_masks_match_definitions_and_density():
    for n, s in ((17, 4), (9, 3), (5, 7)):
        for causal in (True, False):
            assert torch.equal(strided_mask(n, s, causal), lab08.strided_definition(n, s, causal))
            for c in range(1, s + 1):
                assert torch.equal(fixed_mask(n, s, c, causal), lab08.fixed_definition(n, s, c, causal))
    assert torch.equal(sliding_window_mask(6, 1), torch.ones(6, 6, dtype=torch.bool).tril().triu(-1))
    n = 1024  # O(n·√n) keys with stride √n, against n²/2 for causal attention
    assert strided_mask(n, 32).sum() < 0.1 * n * (n + 1) / 2  # about 33 + i/32 keys for query i


def test_xl_memory_equals_attention_over_the_concatenation():
    torch.manual_seed(0)
    layer = XLMemoryAttention(XLConfig(d_model=12, n_heads=3, mem_len=4)).eval()
    x1, x2 = torch.randn(2, 3, 12), torch.randn(2, 3, 12)
    _, mem = layer(x1)
    out2, mem2 = layer(x2, mem)
    full = torch.cat([x1, x2], 1)  # the memory is all of x1 (3 < mem_len): attend over [x1; x2], shifted by 3
    ref, _ = layer.attn(x2, full, mask=torch.ones(3, 6, dtype=torch.bool).tril(3))
    torch.testing.assert_close(out2, ref)
    torch.testing.assert_close(mem2, full[:, -4:])
    m = mem.clone().requires_grad_(True)
    layer(x2, m)[0].sum().backward()
    assert m.grad is None


def test_retrieval_task():
    x, y = next(reversal_batches(4, 6, 5, torch.Generator().manual_seed(0)))
    assert torch.equal(y, x.flip(1))
    model = RetrievalModel(6, 5, d=8, k_rows=3, linformer=linformer_attention)
    assert model(x).shape == (4, 6, 5) and model.E.shape == (3, 6)


@pytest.mark.parametrize("check", ["blockwise", "linformer", "sparse_mask", "xl_memory"])
def test_reference_passes_the_lab_checks(check):
    fns = {"blockwise": (blockwise_attention,), "linformer": (linformer_attention,),
           "sparse_mask": (strided_mask, fixed_mask), "xl_memory": (XLMemoryAttention,)}[check]
    getattr(lab08, f"{check}_examples")(*fns)
    getattr(lab08, f"{check}_hidden")(*fns)


def _full_scores_blockwise(q, k, v, mask=None, causal=False, block_q=64, block_k=64):
    """Right numbers, wrong memory: the whole (L, S) scores at once."""
    return lab08._sdpa(q, k, v, mask, causal)


def _detached_blockwise(q, k, v, mask=None, causal=False, block_q=64, block_k=64):
    return blockwise_attention(q.detach(), k.detach(), v, mask, causal, block_q, block_k)


@pytest.mark.parametrize("bad,match", [(_full_scores_blockwise, "largest tensor"),
                                       (_detached_blockwise, "gradient")])
def test_checks_reject_broken_blockwise(bad, match):
    with pytest.raises(CheckFailed, match=match):
        lab08.blockwise_hidden(bad)


def test_checks_reject_a_linformer_without_scaling():
    with pytest.raises(CheckFailed):
        lab08.linformer_hidden(lambda q, k, v, E, Fm: torch.softmax(q @ (E @ k).transpose(-2, -1), -1) @ (Fm @ v))


@pytest.mark.slow
@pytest.mark.parametrize("alternative", alternatives_of(LAB), ids=lambda m: m.name)
def test_alternatives_earn_full_marks(alternative):
    result = grade_notebook(LAB, mutant_notebook(source_notebook(LAB), alternative), "alt", options=GradeOptions())
    assert result.score == result.max_score > 0, [(p.grade_id, p.reason) for p in result.parts]
