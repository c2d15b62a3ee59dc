"""Named checks for lab 12 (distillation). Test cells call these and nothing else.

The oracles are closed forms written out here (softmax, ``Σ p log(p/q)``, the cross-entropy as a
log-probability picked by the label), ``torch.nn.functional.kl_div`` with its conventions (the input is
a *log*-probability, the target a probability, ``reduction="batchmean"`` divides by the number of rows),
a numerical statement of Hinton et al.'s argument (with the ``T²`` factor the gradient of the soft
loss tends to ``(z_s − z_t − mean)/(V·N)`` as ``T → ∞``, independent of ``T``), float64
``torch.autograd.gradcheck``, and a reference training step on copied weights of the course's own
:class:`labsupport.gpt.GPT` (``torch.optim.SGD`` / ``AdamW``).

The student's code may live in another process (the autograder's sandbox). Anything that needs a live
object there — autograd through the student's loss, building the two models and the optimiser and
running the student's ``distill_step`` — runs next to it through
:func:`labsupport.checks.on_student_side` with the trusted helpers defined here
(:func:`loss_gradients`, :func:`loss_gradcheck`, :func:`run_steps`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from labsupport.checks import (
    call,
    check_close,
    check_dtype,
    check_shape,
    check_true,
    load_state,
    module_gradients,
    on_student_side,
    passed,
    student_autograd,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells reach every helper through `check`
from labsupport.gpt import GPT, GPTConfig

F64 = torch.float64
LOSS_HINT = ("α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α)·cross_entropy(student, labels), "
             "both averaged over the positions whose label is not ignore_index")


# ---------------------------------------------------------------- closed forms
def reference_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float, alpha: float,
                   ignore_index: int = -100) -> torch.Tensor:
    """The distillation loss written out without ``kl_div`` or ``cross_entropy``."""
    V = s.size(-1)
    keep = y.reshape(-1) != ignore_index
    s, t, y = s.reshape(-1, V)[keep], t.reshape(-1, V)[keep].to(s.dtype), y.reshape(-1)[keep]  # (n, V), (n,)
    p = torch.softmax(t / temperature, dim=-1)
    log_q = torch.log_softmax(s / temperature, dim=-1)
    kl = (torch.special.xlogy(p, p) - p * log_q).sum(-1).mean()  # Σ_i p_i log(p_i / q_i), mean over rows
    ce = -torch.log_softmax(s, dim=-1).gather(-1, y[:, None]).mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


# ---------------------------------------------------------------- helpers that run next to the student's code
def loss_gradients(loss_fn: Callable, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   labels: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``loss_fn(student_logits, teacher_logits, labels, **kwargs)`` and its gradient w.r.t. the student's logits."""
    leaf = student_logits.detach().clone().requires_grad_(True)
    loss = loss_fn(leaf, teacher_logits, labels, **kwargs)
    loss.backward()
    return loss.detach(), leaf.grad


def loss_gradcheck(loss_fn: Callable, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   labels: torch.Tensor, **kwargs: Any) -> bool:
    """``torch.autograd.gradcheck`` of the loss as a function of the student's logits (float64)."""
    leaf = student_logits.detach().double().requires_grad_(True)
    return bool(torch.autograd.gradcheck(lambda z: loss_fn(z, teacher_logits.double(), labels, **kwargs),
                                         (leaf,), eps=1e-6, atol=1e-5, raise_exception=False))


def run_steps(step: Callable, student_cfg: GPTConfig, student_state: dict[str, torch.Tensor],
              teacher_cfg: GPTConfig, teacher_state: dict[str, torch.Tensor],
              batches: Sequence[tuple[torch.Tensor, torch.Tensor]], optimizer: str, lr: float,
              **kwargs: Any) -> dict[str, Any]:
    """Build a student and a teacher (the course's GPT) with the given weights — the teacher left in
    **train** mode, the student in **eval** mode — and an optimiser over the student's parameters; run
    ``step(student, teacher, batch, optimizer, **kwargs)`` on each batch. Returns plain data."""
    student, teacher = GPT(student_cfg), GPT(teacher_cfg)
    student.load_state_dict(student_state)
    teacher.load_state_dict(teacher_state)
    student.double().eval()
    teacher.double().train()
    params = list(student.parameters())
    opt = torch.optim.SGD(params, lr=lr) if optimizer == "sgd" else torch.optim.AdamW(params, lr=lr)
    losses = [step(student, teacher, batch, opt, **kwargs) for batch in batches]
    return {"losses": [v if isinstance(v, float) else repr(type(v).__name__) for v in losses],
            "student": {k: v.detach().clone() for k, v in student.state_dict().items()},
            "teacher": {k: v.detach().clone() for k, v in teacher.state_dict().items()},
            "teacher_grads": [name for name, p in teacher.named_parameters() if p.grad is not None],
            "teacher_training": teacher.training, "student_training": student.training}


def _random_state(cfg: GPTConfig, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))  # further from GPT-2's small init: logits of a few nats
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- part 1: the distillation loss
def _check_loss(loss_fn: Callable, s, t, y, *, temperature: float, alpha: float, ignore_index: int = -100,
                what: str, grad: bool = True) -> None:
    kwargs = {"temperature": temperature, "alpha": alpha}
    if ignore_index != -100:
        kwargs["ignore_index"] = ignore_index
    what = f"{what} (T={temperature}, α={alpha})"
    expected = reference_loss(s, t, y, temperature, alpha, ignore_index)
    if grad:
        got, g = student_autograd(loss_gradients, loss_fn, s, t, y, what=what, **kwargs)
    else:
        got, g = call(loss_fn, s, t, y, what=what, **kwargs), None
    check_shape(got, (), what=f"{what}: the loss", hint="return a scalar tensor (0 dimensions)")
    check_dtype(got, s.dtype, what=f"{what}: the loss", hint="keep the dtype of the student's logits")
    check_close(got, expected, what=what, hint=LOSS_HINT)
    if grad:
        leaf = s.detach().clone().requires_grad_(True)
        reference_loss(leaf, t, y, temperature, alpha, ignore_index).backward()
        check_true(g is not None, what=f"{what}: no gradient reaches the student's logits",
                   expected="a gradient tensor", got=None, hint="avoid .detach(), .item() or .tolist() on the way")
        check_close(g, leaf.grad, what=f"{what}: gradient with respect to the student's logits", hint=LOSS_HINT)


def distillation_loss_examples(distillation_loss: Callable) -> None:
    """A hand-sized case against the closed form, and against ``F.kl_div``'s conventions."""
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 7, generator=gen, dtype=F64), 2 * torch.randn(2, 3, 7, generator=gen, dtype=F64)
    y = torch.tensor([[1, 6, 0], [3, 2, 5]])
    z = torch.zeros(1, 7, dtype=F64)
    got = call(distillation_loss, z, z, torch.tensor([4]), temperature=3.0, alpha=0.0, what="uniform logits, α=0")
    check_close(got, torch.tensor(7.0, dtype=F64).log(), what="uniform student logits over 7 tokens, α = 0 "
                "(cross-entropy only): the loss must be log 7", hint="(1 − α)·cross_entropy(student, labels)")
    soft = 3.0 ** 2 * F.kl_div(F.log_softmax(s.flatten(0, 1) / 3.0, -1), F.softmax(t.flatten(0, 1) / 3.0, -1),
                               reduction="batchmean")
    got = call(distillation_loss, s, t, y, temperature=3.0, alpha=1.0, what="distillation_loss, α=1")
    check_close(got, soft, what="α = 1, T = 3: must equal 9 · F.kl_div(log_softmax(s/3), softmax(t/3), "
                "reduction='batchmean') over the 6 positions", hint=LOSS_HINT)
    _check_loss(distillation_loss, s, t, y, temperature=2.0, alpha=0.5, what="distillation_loss on (2, 3, 7) logits")
    passed("distillation_loss matches the closed form and kl_div's batchmean convention")


def distillation_loss_hidden(distillation_loss: Callable, seed: int = 121) -> None:
    """Shapes, temperatures, mixtures, padding, dtypes, gradients, gradcheck, the T² argument."""
    gen = torch.Generator().manual_seed(seed)
    for n, (shape, T, a) in enumerate([((3, 5, 11), 1.0, 0.5), ((2, 9, 17), 4.0, 0.9), ((4, 6, 13), 0.5, 0.3),
                                       ((13, 29), 2.5, 0.0), ((5, 2, 3, 8), 7.0, 1.0)]):
        V = shape[-1]
        s = 1.5 * torch.randn(*shape, generator=gen, dtype=F64)
        t = 3.0 * torch.randn(*shape, generator=gen, dtype=F64)
        y = torch.randint(V, shape[:-1], generator=gen)
        _check_loss(distillation_loss, s, t, y, temperature=T, alpha=a, what=f"distillation_loss on {shape} logits")
        # padding: positions with ignore_index count in neither term, whatever their logits
        pad = torch.rand(shape[:-1], generator=gen) < 0.3
        pad.view(-1)[n % pad.numel()] = True
        pad.view(-1)[(n + 1) % pad.numel()] = False
        yp = y.masked_fill(pad, -100)
        _check_loss(distillation_loss, s, t, yp, temperature=T, alpha=a,
                    what=f"distillation_loss with {int(pad.sum())} padded positions (label -100)")
        s2, t2 = s.clone(), t.clone()
        s2[pad], t2[pad] = 50.0, -50.0  # garbage at the padded positions must not matter
        _check_loss(distillation_loss, s2, t2, yp, temperature=T, alpha=a, grad=False,
                    what="distillation_loss with large logits at the padded positions")
        _check_loss(distillation_loss, s, t, y.masked_fill(pad, 0), temperature=T, alpha=a, ignore_index=0,
                    what="distillation_loss with ignore_index=0")

    s32 = torch.randn(2, 5, 9, generator=gen)
    t32 = 2 * torch.randn(2, 5, 9, generator=gen)
    y32 = torch.randint(9, (2, 5), generator=gen)
    _check_loss(distillation_loss, s32, t32, y32, temperature=2.0, alpha=0.7, what="distillation_loss in float32")

    defaults = call(distillation_loss, s32.double(), t32.double(), y32, what="distillation_loss with defaults")
    check_close(defaults, reference_loss(s32.double(), t32.double(), y32, 2.0, 0.5),
                what="distillation_loss(student, teacher, labels) with the default T = 2, α = 0.5",
                hint="the signature is distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, "
                     "alpha=0.5, ignore_index=-100)")

    s, t = torch.randn(3, 4, 6, generator=gen, dtype=F64), 2 * torch.randn(3, 4, 6, generator=gen, dtype=F64)
    y = torch.randint(6, (3, 4), generator=gen)
    y[0, 1] = -100
    check_true(call(on_student_side, loss_gradcheck, distillation_loss, s, t, y, temperature=1.7, alpha=0.6,
                    what="gradcheck"),
               what="torch.autograd.gradcheck of distillation_loss (float64, T=1.7, α=0.6) fails",
               expected="analytic gradients equal to finite differences", got="they differ",
               hint="use only differentiable torch operations of the student's logits")

    # Hinton et al.: with T², the soft gradient tends to (z_s − z_t − mean)/(V·N) as T grows — no T left
    N, V = 12, 10
    s, t = torch.randn(3, 4, V, generator=gen, dtype=F64), torch.randn(3, 4, V, generator=gen, dtype=F64)
    y = torch.randint(V, (3, 4), generator=gen)
    d = s - t
    limit = (d - d.mean(-1, keepdim=True)) / (V * N)
    norms = []
    for T in (20.0, 100.0, 500.0):
        _, g = student_autograd(loss_gradients, distillation_loss, s, t, y, temperature=T, alpha=1.0,
                                what=f"distillation_loss at T={T}")
        check_close(g, limit, rtol=0.0, atol=0.3 * limit.abs().max().item() * 20.0 / T,
                    what=f"gradient of the soft loss at T = {T}: with the T² factor it approaches "
                         f"(z_s − z_t − mean)/(V·N), whatever T", hint="multiply the KL term by T²")
        norms.append(g.norm().item())
    check_true(abs(norms[0] / norms[-1] - 1) < 0.05, what="the gradient's size must not depend on T at large T",
               expected="norms within 5 %", got=[round(v, 6) for v in norms], hint="multiply the KL term by T²")
    passed("distillation_loss: shapes, temperatures, mixtures, padding, dtypes, gradients, T² scaling")


# ---------------------------------------------------------------- part 2: the training step
STEP_HINT = ("teacher.eval() and its logits under torch.no_grad(); student.train(); "
             "distillation_loss(student_logits, teacher_logits, y, temperature, alpha); zero_grad, backward, step")


def _reference_steps(student_cfg, student_state, teacher_cfg, teacher_state, batches, optimizer, lr, **kwargs):
    from labsupport.distill import distill_step

    return run_steps(distill_step, student_cfg, student_state, teacher_cfg, teacher_state, batches, optimizer,
                     lr, **kwargs)


def _check_steps(distill_step: Callable, student_cfg: GPTConfig, teacher_cfg: GPTConfig, *, seed: int,
                 n_steps: int, B: int, T: int, optimizer: str, lr: float, pad: bool = False, **kwargs: Any) -> None:
    gen = torch.Generator().manual_seed(seed)
    s_state, t_state = _random_state(student_cfg, seed), _random_state(teacher_cfg, seed + 1)
    batches = []
    for _ in range(n_steps):
        ids = torch.randint(student_cfg.vocab_size, (B, T + 1), generator=gen)
        y = ids[:, 1:].clone()
        if pad:
            y[0, -2:] = -100
        batches.append((ids[:, :-1], y))
    what = (f"{n_steps} × distill_step ({optimizer}, lr={lr}, {kwargs or 'default T and α'}) with a "
            f"{student_cfg.n_layer}-layer, {student_cfg.n_embd}-wide student and a {teacher_cfg.n_layer}-layer, "
            f"{teacher_cfg.n_embd}-wide teacher")
    got = call(on_student_side, run_steps, distill_step, student_cfg, s_state, teacher_cfg, t_state, batches,
               optimizer, lr, what=what, **kwargs)
    exp = _reference_steps(student_cfg, s_state, teacher_cfg, t_state, batches, optimizer, lr, **kwargs)
    for i, v in enumerate(got["losses"]):
        check_true(isinstance(v, float), what=f"{what}: step {i} must return the loss as a Python float",
                   expected="float", got=v, hint="return loss.item()")
    check_close(torch.tensor(got["losses"], dtype=F64), torch.tensor(exp["losses"], dtype=F64),
                what=f"{what}: the losses returned by each step", hint=STEP_HINT)
    for name, value in exp["teacher"].items():
        check_close(got["teacher"][name], value, rtol=0.0, atol=0.0,
                    what=f"{what}: the teacher's {name} must not change", hint="only the student is trained")
    check_true(not got["teacher_grads"], what=f"{what}: gradients reached the teacher's parameters",
               expected="no .grad on any teacher parameter", got=got["teacher_grads"][:3],
               hint="compute the teacher's logits under torch.no_grad()")
    check_true(not got["teacher_training"], what=f"{what}: the teacher (given in train mode) must be put in eval mode",
               expected="teacher.training == False", got="True", hint="call teacher.eval() in the step")
    check_true(got["student_training"], what=f"{what}: the student (given in eval mode) must be put in train mode",
               expected="student.training == True", got="False", hint="call student.train() in the step")
    for name, value in exp["student"].items():
        check_close(got["student"][name], value, what=f"{what}: the student's {name} after the steps",
                    hint=STEP_HINT)


def distill_step_examples(distill_step: Callable) -> None:
    """One SGD step against a reference step on copied weights."""
    teacher = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=3, n_embd=18, dropout=0.3)
    student = GPTConfig(vocab_size=23, block_size=16, n_layer=1, n_head=2, n_embd=10)
    _check_steps(distill_step, student, teacher, seed=0, n_steps=1, B=2, T=7, optimizer="sgd", lr=0.5)
    passed("distill_step: one SGD step equals the reference step; the teacher is untouched")


def distill_step_hidden(distill_step: Callable, seed: int = 122) -> None:
    """Several steps (gradients must be reset), AdamW, other T and α, padding, other shapes."""
    teacher = GPTConfig(vocab_size=31, block_size=20, n_layer=2, n_head=4, n_embd=20, dropout=0.4)
    student = GPTConfig(vocab_size=31, block_size=20, n_layer=1, n_head=3, n_embd=9)
    _check_steps(distill_step, student, teacher, seed=seed, n_steps=3, B=3, T=11, optimizer="sgd", lr=0.3,
                 temperature=3.0, alpha=0.8)
    _check_steps(distill_step, student, teacher, seed=seed + 1, n_steps=2, B=4, T=6, optimizer="adamw", lr=0.01,
                 temperature=1.5, alpha=0.2, pad=True)
    _check_steps(distill_step, dataclasses.replace(student, n_layer=2, n_embd=12, n_head=2), teacher,
                 seed=seed + 2, n_steps=2, B=2, T=13, optimizer="sgd", lr=0.2)
    passed("distill_step: several steps, AdamW, temperatures and mixtures, padding; the teacher never changes")


# ---------------------------------------------------------------- part 3: hidden-state matching
MATCH_HINT = "mean over the kept positions and the teacher's features of (proj(h_student) − h_teacher)²"


def _reference_match(state: dict[str, torch.Tensor], hs: torch.Tensor, ht: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    diff = F.linear(hs, state["proj.weight"].to(hs.dtype), state["proj.bias"].to(hs.dtype)) - ht
    if mask is not None:
        diff = diff[mask]
    return (diff ** 2).mean()


def _student_matcher(HiddenMatcher: Callable, d_s: int, d_t: int, seed: int) -> tuple[Any, dict]:
    gen = torch.Generator().manual_seed(seed)
    state = {"proj.weight": torch.randn(d_t, d_s, generator=gen) / d_s ** 0.5,
             "proj.bias": 0.3 * torch.randn(d_t, generator=gen)}
    matcher = call(HiddenMatcher, d_s, d_t, what=f"HiddenMatcher({d_s}, {d_t})")
    load_state(matcher, state, what=f"HiddenMatcher({d_s}, {d_t})",
               names="proj = nn.Linear(student_dim, teacher_dim) (with a bias) and no other parameter")
    return matcher.double(), state


def _check_match(matcher, state, hs, ht, mask=None, *, what: str) -> None:
    kwargs = {} if mask is None else {"mask": mask}
    out, (g_s, g_t), grads = student_autograd(module_gradients, matcher, hs, ht, what=what, **kwargs)
    check_shape(out, (), what=f"{what}: the loss", hint="return a scalar tensor")
    check_close(out, _reference_match(state, hs, ht, mask), what=what, hint=MATCH_HINT)
    leaves = {k: v.detach().clone().double().requires_grad_(True) for k, v in state.items()}
    hs_leaf = hs.detach().clone().requires_grad_(True)
    g = torch.randn((), generator=torch.Generator().manual_seed(0), dtype=out.dtype)  # module_gradients' upstream
    (_reference_match(leaves, hs_leaf, ht, mask) * g).backward()
    check_true(g_s is not None, what=f"{what}: no gradient reaches the student's hidden states",
               expected="a gradient tensor", got=None, hint="avoid .detach() on the student's side")
    check_close(g_s, hs_leaf.grad, what=f"{what}: gradient w.r.t. the student's hidden states", hint=MATCH_HINT)
    for name, leaf in leaves.items():
        check_true(grads.get(name) is not None, what=f"{what}: no gradient reaches {name}",
                   expected="a gradient tensor", got=None, hint="the projection is learned with the student")
        check_close(grads[name], leaf.grad, what=f"{what}: gradient w.r.t. {name}", hint=MATCH_HINT)
    check_true(g_t is None or not g_t.abs().any(), what=f"{what}: a gradient reaches the teacher's hidden states",
               expected="None (the teacher is a fixed target)", got="a non-zero gradient",
               hint="detach the teacher's hidden states")


def hidden_matching_examples(HiddenMatcher: Callable) -> None:
    """A student of width 6 matched to a teacher of width 10."""
    matcher, state = _student_matcher(HiddenMatcher, 6, 10, 0)
    gen = torch.Generator().manual_seed(1)
    hs, ht = torch.randn(2, 5, 6, generator=gen, dtype=F64), torch.randn(2, 5, 10, generator=gen, dtype=F64)
    _check_match(matcher, state, hs, ht, what="HiddenMatcher(6, 10)(h_s (2, 5, 6), h_t (2, 5, 10))")
    passed("HiddenMatcher: projection, MSE and gradients match the reference")


def hidden_matching_hidden(HiddenMatcher: Callable, seed: int = 123) -> None:
    """Other widths (narrower and wider), masks, float32, several leading dimensions."""
    gen = torch.Generator().manual_seed(seed)
    for n, (d_s, d_t, lead) in enumerate([(7, 19, (3, 4)), (12, 5, (2, 9)), (4, 4, (6,)), (3, 11, (2, 3, 5))]):
        matcher, state = _student_matcher(HiddenMatcher, d_s, d_t, seed + n)
        hs = torch.randn(*lead, d_s, generator=gen, dtype=F64)
        ht = 2 * torch.randn(*lead, d_t, generator=gen, dtype=F64)
        _check_match(matcher, state, hs, ht, what=f"HiddenMatcher({d_s}, {d_t}) on {lead} positions")
        mask = torch.rand(lead, generator=gen) < 0.6
        mask.view(-1)[0] = True
        mask.view(-1)[-1] = False
        _check_match(matcher, state, hs, ht, mask,
                     what=f"HiddenMatcher({d_s}, {d_t}) with a mask keeping {int(mask.sum())} of "
                          f"{mask.numel()} positions")
        matcher.float()
        got = call(matcher, hs.float(), ht.float(), what="HiddenMatcher in float32")
        check_close(got, _reference_match(state, hs.float(), ht.float()), what="HiddenMatcher in float32",
                    hint=MATCH_HINT)
    passed("HiddenMatcher: widths, masks, leading dimensions, float32, gradients")

