"""labsupport.distill against torch's conventions and closed forms, and lab 12's checks: they accept the
reference and reject broken variants; the alternative answer earns full marks through the grader."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from labsupport.checks import CheckFailed, property_settings
from labsupport.checks import lab12 as check
from labsupport.distill import (
    HiddenMatcher,
    distill_step,
    distillation_loss,
    final_hidden,
    magnitude_prune,
    parameter_count,
    quantize_int8,
    state_bytes,
)
from labsupport.gpt import GPT, GPTConfig

F64 = torch.float64
LAB = "lab12_distillation"


@property_settings(max_examples=30)
@given(T=st.floats(0.5, 8.0), alpha=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_loss_equals_kl_div_batchmean_plus_cross_entropy(T, alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    s, t = torch.randn(3, 5, 11, generator=gen, dtype=F64), 2 * torch.randn(3, 5, 11, generator=gen, dtype=F64)
    y = torch.randint(11, (3, 5), generator=gen)
    y[1, 2] = -100
    keep = y.flatten() != -100
    sf, tf = s.flatten(0, 1)[keep], t.flatten(0, 1)[keep]
    expected = (alpha * T ** 2 * F.kl_div(F.log_softmax(sf / T, -1), F.softmax(tf / T, -1), reduction="batchmean")
                + (1 - alpha) * F.cross_entropy(s.flatten(0, 1), y.flatten()))
    torch.testing.assert_close(distillation_loss(s, t, y, T, alpha), expected)
    torch.testing.assert_close(distillation_loss(s, t, y, T, alpha), check.reference_loss(s, t, y, T, alpha))


def test_t_squared_keeps_the_gradient_size():
    s, t = torch.randn(4, 9, dtype=F64), torch.randn(4, 9, dtype=F64)
    y = torch.zeros(4, dtype=torch.long)
    norms = []
    for T in (50.0, 500.0):
        _, g = check.loss_gradients(distillation_loss, s, t, y, temperature=T, alpha=1.0)
        norms.append(g.norm().item())
    assert abs(norms[0] / norms[1] - 1) < 0.02


def test_step_trains_the_student_only():
    teacher = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.5)).train()
    student = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=1, n_embd=4))
    before_t, before_s = copy.deepcopy(teacher.state_dict()), copy.deepcopy(student.state_dict())
    x = torch.randint(17, (2, 6))
    loss = distill_step(student, teacher, (x, x), torch.optim.SGD(student.parameters(), lr=0.1))
    assert isinstance(loss, float) and not teacher.training and student.training
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before_t.items())
    assert any(not torch.equal(v, student.state_dict()[k]) for k, v in before_s.items())


def test_hidden_matcher_and_final_hidden():
    model = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8))
    x = torch.randint(17, (2, 5))
    logits, h = final_hidden(model, x)
    torch.testing.assert_close(logits, model(x)[0])
    assert h.shape == (2, 5, 8)
    m = HiddenMatcher(3, 8)
    hs, ht = torch.randn(2, 5, 3), torch.randn(2, 5, 8, requires_grad=True)
    m(hs, ht).backward()
    assert ht.grad is None and m.proj.weight.grad is not None


def test_compression_helpers():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16)).eval()
    x = torch.randint(256, (2, 10))
    q = quantize_int8(model)
    assert state_bytes(q) < state_bytes(model)
    assert (q(x)[0] - model(x)[0]).abs().max() < 0.5
    assert parameter_count(model) > 0
    pruned = magnitude_prune(copy.deepcopy(model), 0.5)
    w = pruned.transformer.h[0].mlp.c_fc.weight
    assert abs((w == 0).float().mean().item() - 0.5) < 0.01


def test_checks_accept_the_reference():
    check.distillation_loss_examples(distillation_loss)
    check.distillation_loss_hidden(distillation_loss, seed=5)
    check.hidden_matching_examples(HiddenMatcher)
    check.hidden_matching_hidden(HiddenMatcher, seed=6)
    check.distill_step_examples(distill_step)


def _no_t_squared(s, t, y, temperature=2.0, alpha=0.5, ignore_index=-100):
    return distillation_loss(s, t, y, temperature, alpha, ignore_index) - alpha * (temperature ** 2 - 1) * (
        check.reference_loss(s, t, y, temperature, 1.0, ignore_index) / temperature ** 2)


@pytest.mark.parametrize("broken", [
    _no_t_squared,
    lambda s, t, y, temperature=2.0, alpha=0.5, ignore_index=-100: distillation_loss(t, s, y, temperature, alpha,
                                                                                     ignore_index),
    lambda s, t, y, temperature=2.0, alpha=0.5, ignore_index=-100: distillation_loss(s, t, y, temperature, 1 - alpha,
                                                                                     ignore_index),
    lambda s, t, y, temperature=2.0, alpha=0.5, ignore_index=-100: distillation_loss(s, t * temperature, y,
                                                                                     temperature, alpha, ignore_index),
])
def test_checks_reject_broken_losses(broken):
    with pytest.raises(CheckFailed):
        check.distillation_loss_examples(broken)
        check.distillation_loss_hidden(broken)


def test_checks_reject_a_step_without_no_grad():
    def leaky(student, teacher, batch, optimizer, temperature=2.0, alpha=0.5):
        x, y = batch
        teacher.eval()
        student.train()
        loss = distillation_loss(student(x)[0], teacher(x)[0], y, temperature, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    with pytest.raises(CheckFailed):
        check.distill_step_examples(leaky)


@pytest.mark.slow
@pytest.mark.parametrize("alternative", __import__("autograder.mutants", fromlist=["x"]).alternatives_of(LAB),
                         ids=lambda m: m.name)
def test_alternatives_earn_full_marks(alternative):
    from autograder.course import source_notebook
    from autograder.grade import GradeOptions, grade_notebook
    from autograder.mutants import mutant_notebook

    result = grade_notebook(LAB, mutant_notebook(source_notebook(LAB), alternative), "alt", options=GradeOptions())
    assert result.score == result.max_score > 0, [(p.grade_id, p.reason) for p in result.parts]
