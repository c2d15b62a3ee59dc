"""Named checks for lab 5 (BERT). Test cells call these and nothing else.

The oracles are Hugging Face's ``BertEmbeddings``, ``BertModel``, ``BertForMaskedLM`` and
``BertForSequenceClassification`` built from a small random configuration (hidden size ≠ FFN size ≠
vocabulary ≠ positions, 3 heads, eager attention). Each check builds an explicit, seeded state dict in
the student's parameter names (the names of :mod:`labsupport.bert`), loads it into the student's
module, copies it into the oracle (:func:`labsupport.bert.hf.load_into_hf`) and compares hidden
states, logits, losses and gradients in float64 on the CPU.

The masking procedure is random, so it is checked statistically: over many positions and several
seeds, the fractions of chosen / [MASK] / random / kept positions must lie within five binomial
standard deviations of 15 % / 80 % / 10 % / 10 %, and the hard rules (special tokens and padding never
chosen, labels only where chosen, the input unchanged elsewhere, random tokens never special, same
seed → same result) must hold exactly. The student's function runs beside the student's code with a
generator made there (:func:`run_masking`): a ``torch.Generator`` cannot travel between processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from labsupport.bert import BertConfig, BertEmbeddings, BertForMaskedLM, BertForSequenceClassification, BertModel
from labsupport.bert.hf import hf_config, load_into_hf, to_hf_name
from labsupport.checks import (
    CheckFailed,
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

F64 = torch.float64
IGNORE = -100
SPECIAL = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK] in the course vocabulary
PAD, CLS, SEP, MASK = 0, 2, 3, 4
EMB_NAMES = "token_embedding, position_embedding, segment_embedding (nn.Embedding), norm (nn.LayerNorm), dropout"
MODEL_NAMES = "embeddings (your BertEmbeddings) and layers (an nn.ModuleList of TransformerEncoderBlock)"
MLM_NAMES = "bert (your BertModel), transform (nn.Linear), transform_norm (nn.LayerNorm), decoder (nn.Linear)"
CLS_NAMES = "bert (your BertModel), pooler (nn.Linear), dropout (nn.Dropout), classifier (nn.Linear)"


# ---------------------------------------------------------------- seeded weights and oracles
def random_state(reference: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Seeded weights for every entry of ``reference.state_dict()`` (the names the lab asks for).

    LayerNorm gains near 1, biases small, matrices scaled by 1/√fan-in; a tied decoder weight gets the
    token-embedding table itself.
    """
    state = {}
    for name, t in reference.state_dict().items():
        if name == "decoder.weight":
            continue
        if "norm" in name and name.endswith("weight"):
            state[name] = 1 + 0.2 * torch.randn(t.shape, generator=gen)
        elif name.endswith("bias") or t.dim() == 1:
            state[name] = 0.1 * torch.randn(t.shape, generator=gen)
        elif "embedding" in name:
            state[name] = torch.randn(t.shape, generator=gen)
        else:
            state[name] = torch.randn(t.shape, generator=gen) / t.shape[1] ** 0.5
    if "decoder.weight" in reference.state_dict():
        state["decoder.weight"] = state["bert.embeddings.token_embedding.weight"]
    return state


def _oracle(kind: str, cfg: BertConfig, state: dict[str, torch.Tensor], n_classes: int = 2) -> nn.Module:
    """Hugging Face's module of ``kind`` with ``state`` (our names) copied in, float64, eval mode."""
    import transformers
    from transformers.models.bert.modeling_bert import BertEmbeddings as HFEmbeddings

    hc = hf_config(cfg, num_labels=n_classes)
    if kind == "embeddings":
        model = HFEmbeddings(hc)
        sd = {to_hf_name(f"bert.embeddings.{k}").removeprefix("bert.embeddings."): v for k, v in state.items()}
        model.load_state_dict(sd, strict=False)
        missing = [n for n, _ in model.named_parameters() if n not in sd]
        if missing:
            raise KeyError(f"no value for {missing}")
    elif kind == "model":
        model = transformers.BertModel(hc, add_pooling_layer=False)
        load_into_hf(model, state, prefix="bert.")
    elif kind == "mlm":
        model = transformers.BertForMaskedLM(hc)
        load_into_hf(model, state)
    else:
        model = transformers.BertForSequenceClassification(hc)
        load_into_hf(model, state)
    return model.double().eval()


def _student(cls: Callable, args: tuple, reference: nn.Module, seed: int, what: str, names: str):
    """The student's module with seeded weights (float64, eval mode) and the state that was loaded."""
    state = random_state(reference, torch.Generator().manual_seed(seed))
    module = call(cls, *args, what=what)
    load_state(module, state, what=what, names=names)
    module.double()
    module.eval()
    return module, state


def _hf_grads(oracle: nn.Module, bare: bool = False) -> dict[str, torch.Tensor]:
    """The oracle's parameter gradients under our names (every name, tied ones included); ``bare`` for a
    Hugging Face ``BertModel``, whose names lack the ``bert.`` prefix (as do the student's BertModel's)."""
    from labsupport.bert.hf import from_hf_name

    out = {}
    for name, p in oracle.named_parameters(remove_duplicate=False):
        ours = from_hf_name(f"bert.{name}" if bare else name)
        out[ours.removeprefix("bert.") if bare else ours] = p.grad
    return out


def _compare_grads(got: dict, expected: dict, what: str, hint: str | None = None) -> None:
    for name, e in expected.items():
        if e is None:
            continue
        g = got.get(name)
        check_true(g is not None, what=f"{what}: no gradient reached {name}", expected="a gradient tensor", got=None,
                   hint=hint or "avoid .detach(), .item(), .data or in-place edits on the way to the output")
        check_close(g, e, what=f"{what}: gradient of {name}", hint=hint)


def _ids(gen: torch.Generator, B: int, T: int, vocab: int, lengths: list[int] | None = None) -> tuple:
    """``[CLS] tokens … [SEP] [PAD] …`` ids, segment ids (A then B) and the attention mask."""
    ids = torch.randint(len(SPECIAL), vocab, (B, T), generator=gen)
    lengths = lengths or [T] * B
    types = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1] = CLS, SEP
        ids[b, n:] = PAD
        types[b, n // 2:n] = 1
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, types, mask


# ---------------------------------------------------------------- helpers that run beside the student's code
def parameter_gradients(module: nn.Module, *inputs: torch.Tensor, **kwargs) -> tuple:
    """``module(*inputs, **kwargs)`` (first output if a tuple) and the gradients of ``(output · g).sum()``
    with respect to every named parameter, tied ones listed under each of their names."""
    out, _, _ = module_gradients(module, *inputs, **kwargs)
    grads = {n: p.grad for n, p in module.named_parameters(remove_duplicate=False)}
    return out, grads


def loss_gradients(module: nn.Module, *inputs: torch.Tensor, **kwargs) -> tuple:
    """``(logits, loss) = module(*inputs, **kwargs)``; the loss and its gradient for every named parameter."""
    for p in module.parameters():
        p.grad = None
    logits, loss = module(*inputs, **kwargs)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in module.named_parameters(remove_duplicate=False)}


def decoder_is_tied(module: nn.Module) -> bool:
    """Whether ``module.decoder.weight`` is the very tensor ``module.bert.embeddings.token_embedding.weight``."""
    return module.decoder.weight is module.bert.embeddings.token_embedding.weight


def head_only_dropout(module: nn.Module, *inputs: torch.Tensor) -> tuple:
    """Two calls of ``module(*inputs)`` in train mode with ``module.bert`` in eval mode: only the head's
    dropout can make their logits differ. Returns both logits and the eval-mode logits."""
    module.eval()
    reference = module(*inputs)[0].detach()
    module.train()
    module.bert.eval()
    first, second = module(*inputs)[0].detach(), module(*inputs)[0].detach()
    module.eval()
    return first, second, reference


def run_masking(mask_tokens: Callable, input_ids: torch.Tensor, special_ids: list[int], mask_id: int,
                vocab_size: int, seed: int, p: float | None = None, global_seed: int = 0) -> tuple:
    """``mask_tokens(…, generator=torch.Generator().manual_seed(seed))`` with the global RNG set to
    ``global_seed`` first; returns ``(inputs, labels, input_ids_unchanged)``."""
    torch.manual_seed(global_seed)
    original = input_ids.clone()
    kwargs = {} if p is None else {"p": p}
    inputs, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size,
                                 generator=torch.Generator().manual_seed(seed), **kwargs)
    return inputs, labels, bool(torch.equal(original, input_ids))


def _no_labels(res, what: str) -> None:
    ok = isinstance(res, tuple) and len(res) == 2 and res[1] is None
    got = f"(logits, {type(res[1]).__name__})" if isinstance(res, tuple) and len(res) == 2 else type(res).__name__
    check_true(ok, what=what, expected="(logits, None)", got=got, hint="return logits, None when labels is None")


# ---------------------------------------------------------------- part 1: embeddings
def _compare_embeddings(emb, oracle, ids, types, what: str) -> None:
    got = call(emb, ids, types, what=what) if types is not None else call(emb, ids, what=what)
    expected = oracle(ids, token_type_ids=types) if types is not None else oracle(ids)
    check_close(got, expected, what=what, hint="e = dropout(norm(token_embedding(ids) + position_embedding(0 … T−1) "
                                               "+ segment_embedding(token_type_ids)))")


def embeddings_examples(BertEmbeddings_: Callable) -> None:
    """A small batch against Hugging Face's BertEmbeddings with the same weights (eval mode)."""
    cfg = BertConfig(vocab_size=30, d_model=12, max_len=10)
    emb, state = _student(BertEmbeddings_, (cfg,), BertEmbeddings(cfg), 0, "BertEmbeddings(config)", EMB_NAMES)
    oracle = _oracle("embeddings", cfg, state)
    ids, types, _ = _ids(torch.Generator().manual_seed(1), 2, 7, 30, [7, 5])
    out = call(emb, ids, types, what="emb(input_ids, token_type_ids)")
    check_shape(out, (2, 7, 12), what="emb(input_ids (2, 7), token_type_ids (2, 7))", hint="(B, T, d_model)")
    check_dtype(out, F64, what="output after module.double()", hint="compute in the dtype of the embedding tables")
    _compare_embeddings(emb, oracle, ids, types, "BertEmbeddings vs Hugging Face's BertEmbeddings")
    passed("BertEmbeddings matches Hugging Face's BertEmbeddings")


def embeddings_hidden(BertEmbeddings_: Callable, seed: int = 51) -> None:
    """Non-square sizes, 3 segments, default segments, full length, epsilon, padding_idx, gradients, dropout."""
    gen = torch.Generator().manual_seed(seed)
    cfg = BertConfig(vocab_size=37, d_model=20, max_len=23, n_segments=3, pad_id=0)
    emb, state = _student(BertEmbeddings_, (cfg,), BertEmbeddings(cfg), seed, "BertEmbeddings(vocab 37, d 20)",
                          EMB_NAMES)
    oracle = _oracle("embeddings", cfg, state)
    ids, types, _ = _ids(gen, 3, 9, 37, [9, 6, 3])
    types[0, :] = torch.randint(3, (9,), generator=gen)  # every segment id in use
    _compare_embeddings(emb, oracle, ids, types, "segments 0, 1 and 2 with padding")
    _compare_embeddings(emb, oracle, ids, None, "token_type_ids omitted (every position in segment 0)")
    full, ftypes, _ = _ids(gen, 2, 23, 37)
    _compare_embeddings(emb, oracle, full, ftypes, "a sequence of max_len = 23 positions")
    one = torch.tensor([[7], [11]])
    _compare_embeddings(emb, oracle, one, torch.tensor([[1], [2]]), "sequences of length 1")
    same = torch.full((1, 8), 9)
    out = call(emb, same, what="eight copies of one token")
    check_true(not torch.allclose(out[0, 0], out[0, 5]), what="the same token at positions 0 and 5",
               expected="different vectors (positions are embedded)", got="identical vectors",
               hint="add position_embedding(t) for t = 0 … T−1")

    # LayerNorm epsilon from the config, and a [PAD] id that is not 0
    cfg2 = BertConfig(vocab_size=29, d_model=16, max_len=13, layer_norm_eps=0.5, pad_id=6)
    emb2, state2 = _student(BertEmbeddings_, (cfg2,), BertEmbeddings(cfg2), seed + 1,
                            "BertEmbeddings(layer_norm_eps=0.5, pad_id=6)", EMB_NAMES)
    oracle2 = _oracle("embeddings", cfg2, state2)
    ids2, types2, _ = _ids(gen, 3, 11, 29, [11, 8, 4])
    ids2[ids2 == PAD] = 6
    ids2[0, 3] = 6
    _compare_embeddings(emb2, oracle2, ids2, types2, "LayerNorm with eps = config.layer_norm_eps = 0.5")

    # gradients of every table (the [PAD] row gets none: padding_idx)
    out, got = student_autograd(parameter_gradients, emb2, ids2, token_type_ids=types2, what="BertEmbeddings")
    for p in oracle2.parameters():
        p.grad = None
    exp = oracle2(ids2, token_type_ids=types2)
    g = torch.randn(exp.shape, generator=torch.Generator().manual_seed(0), dtype=exp.dtype)
    (exp * g).sum().backward()
    check_close(out, exp.detach(), what="BertEmbeddings output before the gradient check")
    expected = {to_hf_name(f"bert.embeddings.{k}").removeprefix("bert.embeddings."): k for k in state2}
    _compare_grads(got, {ours: dict(oracle2.named_parameters())[theirs].grad for theirs, ours in expected.items()},
                   "BertEmbeddings", hint="build token_embedding with padding_idx=config.pad_id, so that the "
                                          "[PAD] vector gets no gradient")

    # dropout: off in eval mode (above), on in train mode with p = config.dropout
    cfg3 = BertConfig(vocab_size=31, d_model=64, max_len=40, dropout=0.3)
    emb3, _ = _student(BertEmbeddings_, (cfg3,), BertEmbeddings(cfg3), seed + 2, "BertEmbeddings(dropout=0.3)",
                       EMB_NAMES)
    emb3.train()
    x = torch.randint(5, 31, (8, 40), generator=gen)
    a, b = call(emb3, x, what="train mode"), call(emb3, x, what="train mode")
    check_true(not torch.allclose(a, b), what="BertEmbeddings in train mode with dropout=0.3",
               expected="two calls give different outputs", got="identical outputs",
               hint="apply self.dropout (nn.Dropout(config.dropout)) after the LayerNorm")
    zeros = (a == 0).double().mean().item()
    check_true(abs(zeros - 0.3) < 0.03, what="fraction of embedding entries zeroed in train mode (dropout 0.3)",
               expected="about 0.3", got=round(zeros, 3), hint="one nn.Dropout(config.dropout) after the LayerNorm")
    emb3.eval()
    kept = call(emb3, x, what="eval mode")
    ratio = (a[a != 0] / kept[a != 0]).mean().item()
    check_true(abs(ratio - 1 / 0.7) < 1e-6, what="surviving entries in train mode, relative to eval mode",
               expected=f"scaled by 1/(1-p) = {1 / 0.7:.4f}", got=round(ratio, 4),
               hint="dropout goes last, after the LayerNorm")
    passed("BertEmbeddings matches Hugging Face: segments, positions, epsilon, padding, gradients, dropout")


# ---------------------------------------------------------------- part 2: masking
def _mask(mask_tokens: Callable, ids, special, mask_id, vocab, seed, p=None, global_seed=0, what="mask_tokens"):
    inputs, labels, unchanged = on_student_side(run_masking, mask_tokens, ids, special, mask_id, vocab, seed, p,
                                                global_seed)
    check_shape(inputs, ids.shape, what=f"{what}: inputs", hint="inputs have the shape of input_ids")
    check_shape(labels, ids.shape, what=f"{what}: labels", hint="labels have the shape of input_ids")
    check_dtype(inputs, torch.long, what=f"{what}: inputs", hint="token ids are torch.long")
    check_dtype(labels, torch.long, what=f"{what}: labels", hint="labels are torch.long")
    check_true(unchanged, what=f"{what}: input_ids was modified in place", expected="input_ids unchanged",
               got="changed", hint="work on a copy (input_ids.clone(), torch.where, …)")
    return inputs, labels


def _rules(ids, inputs, labels, special, mask_id, what: str) -> None:
    """The exact rules: what is chosen, what the labels hold, what changes."""
    chosen = labels != IGNORE
    is_special = torch.isin(ids, torch.tensor(special))
    bad = chosen & is_special
    if bad.any():
        b, t = (int(i) for i in bad.nonzero()[0])
        raise CheckFailed(f"{what}: a special or padding position has a label (it was chosen for prediction)",
                          "label −100 at every special or padding position",
                          f"label {int(labels[b, t])} at position ({b}, {t}), token id {int(ids[b, t])}",
                          "never choose an id in special_ids (padding included); labels are −100 everywhere "
                          "except at the chosen positions")
    wrong = chosen & (labels != ids)
    if wrong.any():
        b, t = (int(i) for i in wrong.nonzero()[0])
        raise CheckFailed(f"{what}: the label of a chosen position must be its original token",
                          int(ids[b, t]), int(labels[b, t]), "labels = input_ids where chosen, −100 elsewhere")
    stray = ~chosen & (labels != IGNORE)
    check_true(not stray.any(), what=f"{what}: labels outside the chosen positions", expected="−100",
               got="other values", hint="labels = input_ids where chosen, −100 elsewhere")
    moved = ~chosen & (inputs != ids)
    if moved.any():
        b, t = (int(i) for i in moved.nonzero()[0])
        raise CheckFailed(f"{what}: a position that was not chosen changed (labels say it was not chosen)",
                          int(ids[b, t]), int(inputs[b, t]),
                          "only chosen positions (labels ≠ −100) may become [MASK] or a random token")
    randomised = chosen & (inputs != ids) & (inputs != mask_id)
    drawn = inputs[randomised]
    if torch.isin(drawn, torch.tensor(special)).any():
        sample = sorted(set(drawn[torch.isin(drawn, torch.tensor(special))].tolist()))
        raise CheckFailed(f"{what}: a random replacement drew a special token", "ordinary tokens only",
                          f"special ids {sample}", "draw random tokens from the ids that are not in special_ids")


def _z_check(count: int, n: int, prob: float, what: str, hint: str) -> None:
    """``count`` successes out of ``n`` must be within 5 binomial standard deviations of ``n·prob``."""
    sd = math.sqrt(n * prob * (1 - prob))
    check_true(abs(count - n * prob) <= 5 * sd + 1, what=what, expected=f"{prob:.4f} ± {5 * sd / n:.4f}",
               got=round(count / n, 4), hint=hint)


def masking_examples(mask_tokens: Callable) -> None:
    """One batch: shapes, the rules (specials and padding never chosen, labels), and determinism."""
    gen = torch.Generator().manual_seed(0)
    ids, _, _ = _ids(gen, 4, 40, 30, [40, 33, 12, 25])
    inputs, labels = _mask(mask_tokens, ids, SPECIAL, MASK, 30, 1)
    _rules(ids, inputs, labels, SPECIAL, MASK, "mask_tokens on 4 sequences of 40")
    check_true(bool((labels != IGNORE).any()), what="mask_tokens chose no position at all",
               expected="about 15 % of the ordinary tokens", got="none", hint="choose with probability p")
    again, labels2 = _mask(mask_tokens, ids, SPECIAL, MASK, 30, 1, global_seed=123)
    check_true(torch.equal(inputs, again) and torch.equal(labels, labels2),
               what="the same generator seed must give the same result", expected="identical outputs",
               got="different outputs", hint="draw every random number from `generator` (generator=generator)")
    passed("mask_tokens follows the rules on a small batch and is reproducible")


def masking_hidden(mask_tokens: Callable, seed: int = 52) -> None:
    """Statistics over ~10⁵ positions and several seeds; non-contiguous special ids; p as an argument."""
    gen = torch.Generator().manual_seed(seed)
    B, T, V = 256, 96, 40
    lengths = torch.randint(T // 3, T + 1, (B,), generator=gen).tolist()
    ids, _, _ = _ids(gen, B, T, V, lengths)
    ids[ids == 1] = 7  # no [UNK] in the text
    ids[torch.rand(B, T, generator=gen) < 0.01] = 1  # a few [UNK]: special, never chosen
    counts = {"eligible": 0, "chosen": 0, "mask": 0, "random": 0, "kept": 0}
    rows, ordinary_hits = [], torch.zeros(V)
    results = []
    for k in range(3):
        inputs, labels = _mask(mask_tokens, ids, SPECIAL, MASK, V, seed + k, what=f"mask_tokens (seed {seed + k})")
        _rules(ids, inputs, labels, SPECIAL, MASK, f"mask_tokens on {B}×{T} tokens (seed {seed + k})")
        chosen = labels != IGNORE
        eligible = ~torch.isin(ids, torch.tensor(SPECIAL))
        counts["eligible"] += int(eligible.sum())
        counts["chosen"] += int(chosen.sum())
        counts["mask"] += int((chosen & (inputs == MASK)).sum())
        counts["kept"] += int((chosen & (inputs == ids)).sum())
        randomised = chosen & (inputs != ids) & (inputs != MASK)
        counts["random"] += int(randomised.sum())
        ordinary_hits += torch.bincount(inputs[randomised], minlength=V).double()
        rows.append(chosen.sum(1).double() / eligible.sum(1).clamp_min(1))
        sizes = eligible.sum(1).double().clamp_min(1)
        results.append((inputs, labels))
    n_ord = V - len(SPECIAL)
    _z_check(counts["chosen"], counts["eligible"], 0.15, "fraction of ordinary tokens chosen",
             "choose each non-special position independently with probability p = 0.15")
    c = counts["chosen"]
    _z_check(counts["mask"], c, 0.8, "fraction of chosen positions replaced by [MASK]",
             "of the chosen positions, 80 % become [MASK], 10 % a random token, 10 % stay unchanged")
    _z_check(counts["random"], c, 0.1 * (1 - 1 / n_ord), "fraction of chosen positions replaced by a random token",
             "of the chosen positions, 10 % get a random ordinary token (it may by chance equal the original)")
    _z_check(counts["kept"], c, 0.1 + 0.1 / n_ord, "fraction of chosen positions left unchanged",
             "of the chosen positions, 10 % stay unchanged")
    expected_hits = counts["random"] / n_ord
    hits = ordinary_hits[[i for i in range(V) if i not in SPECIAL]]
    check_true(bool(hits.min() > 0.3 * expected_hits and hits.max() < 2.5 * expected_hits),
               what="random replacements over the ordinary ids", expected=f"about {expected_hits:.0f} each (uniform)",
               got=f"between {int(hits.min())} and {int(hits.max())}",
               hint="draw uniformly among the ids that are not special")
    spread = torch.cat(rows).var().item()
    binomial = 0.15 * 0.85 * (1 / sizes).mean().item()  # variance of a binomial fraction, averaged over rows
    check_true(spread > 0.4 * binomial, what="variation of the chosen fraction between sequences",
               expected=f"about {binomial:.5f} (independent choices)", got=round(spread, 5),
               hint="each position is chosen independently with probability p (a Bernoulli draw per position), so the "
                    "chosen fraction varies from sequence to sequence")
    check_true(not torch.equal(results[0][1], results[1][1]), what="two different seeds",
               expected="different choices", got="identical choices", hint="use the generator you are given")
    again = _mask(mask_tokens, ids, SPECIAL, MASK, V, seed, global_seed=seed + 99)
    check_true(torch.equal(again[0], results[0][0]) and torch.equal(again[1], results[0][1]),
               what="same generator seed, different global torch seed", expected="identical outputs",
               got="different outputs", hint="draw every random number from `generator`, never from the global RNG")

    # another p, and special ids that are not the first ids of the vocabulary
    special = [0, 7, 19, 33, 38]
    ids2 = torch.randint(V, (128, 64), generator=gen)
    inputs, labels = _mask(mask_tokens, ids2, special, 38, V, seed + 5, p=0.4, what="mask_tokens(p=0.4)")
    _rules(ids2, inputs, labels, special, 38, "special ids [0, 7, 19, 33, 38], [MASK] = 38")
    eligible = int((~torch.isin(ids2, torch.tensor(special))).sum())
    _z_check(int((labels != IGNORE).sum()), eligible, 0.4, "fraction chosen with p = 0.4",
             "choose with the probability p given as an argument")
    drawn = inputs[(labels != IGNORE) & (inputs != ids2) & (inputs != 38)]
    check_true(bool(torch.isin(torch.tensor([1, 2, 8, 39]), drawn).all()),
               what="random replacements with special ids [0, 7, 19, 33, 38]",
               expected="every ordinary id can be drawn (e.g. 1, 2, 8, 39)", got=sorted(set(drawn.tolist()))[:12],
               hint="draw uniformly among all ids of the vocabulary that are not in special_ids")
    passed("mask_tokens: 15 % chosen, 80/10/10, never special or padding, labels only where chosen, reproducible")


# ---------------------------------------------------------------- part 3: the encoder
def _compare_model(model, oracle, ids, types, mask, what: str) -> None:
    got = call(model, ids, types, mask, what=what)
    expected = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    if mask is not None:  # padded positions are not compared: HF and the course mask them differently
        got, expected = got * mask[..., None], expected * mask[..., None]
    check_close(got, expected, what=what, hint="h = embeddings(ids, types); the padding mask "
                "attention_mask.bool()[:, None, None, :] goes to every layer; h = layer(h, mask) in order")


def bert_model_examples(BertModel_: Callable) -> None:
    """Two layers against Hugging Face's BertModel with the same weights (eval mode)."""
    cfg = BertConfig(vocab_size=30, d_model=12, n_layers=2, n_heads=3, d_ff=20, max_len=10)
    model, state = _student(BertModel_, (cfg,), BertModel(cfg), 2, "BertModel(config)", MODEL_NAMES)
    oracle = _oracle("model", cfg, state)
    ids, types, mask = _ids(torch.Generator().manual_seed(3), 2, 8, 30, [8, 5])
    out = call(model, ids, types, mask, what="bert(input_ids, token_type_ids, attention_mask)")
    check_shape(out, (2, 8, 12), what="BertModel output", hint="(B, T, d_model)")
    _compare_model(model, oracle, ids, types, mask, "BertModel vs Hugging Face's BertModel")
    passed("BertModel matches Hugging Face's BertModel")


def bert_model_hidden(BertModel_: Callable, seed: int = 53) -> None:
    """Three layers of 3 heads, non-square sizes, padding, no mask, gradients of every parameter."""
    gen = torch.Generator().manual_seed(seed)
    cfg = BertConfig(vocab_size=41, d_model=24, n_layers=3, n_heads=3, d_ff=40, max_len=17, dropout=0.0)
    model, state = _student(BertModel_, (cfg,), BertModel(cfg), seed, "BertModel(3 layers, d 24, 3 heads)",
                            MODEL_NAMES)
    oracle = _oracle("model", cfg, state)
    ids, types, mask = _ids(gen, 3, 11, 41, [11, 7, 3])
    _compare_model(model, oracle, ids, types, mask, "BertModel with padding and two segments")
    _compare_model(model, oracle, ids, None, mask, "BertModel without token_type_ids")
    full, ftypes, _ = _ids(gen, 2, 17, 41)
    _compare_model(model, oracle, full, ftypes, None, "BertModel without attention_mask (no padding)")
    shuffled = ids.clone()
    shuffled[1, 7:] = torch.randint(5, 41, (4,), generator=gen)
    a = call(model, ids, types, mask, what="padded batch")
    b = call(model, shuffled, types, mask, what="the same batch with other tokens in the padded positions")
    check_close(b[1, :7], a[1, :7], what="real tokens must not see what stands at padded positions",
                hint="mask the padded keys in every layer: attention_mask.bool()[:, None, None, :]")
    model.train()  # dropout 0: train mode equals eval mode
    out, got = student_autograd(parameter_gradients, model, ids, token_type_ids=types, attention_mask=mask,
                                what="BertModel")
    for p in oracle.parameters():
        p.grad = None
    exp = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    g = torch.randn(exp.shape, generator=torch.Generator().manual_seed(0), dtype=exp.dtype)
    (exp * g).sum().backward()
    check_close(out, exp.detach(), what="BertModel in train mode with dropout 0")
    _compare_grads(got, _hf_grads(oracle, bare=True), "BertModel")
    passed("BertModel matches Hugging Face: layers, padding mask, segments, gradients")


# ---------------------------------------------------------------- part 4: masked-LM head
def _tied(model, what: str) -> None:
    tied = on_student_side(decoder_is_tied, model)
    check_true(tied, what=f"{what}: decoder.weight must be the token-embedding table itself (tied)",
               expected="decoder.weight is bert.embeddings.token_embedding.weight", got="two different tensors",
               hint="after creating self.decoder: self.decoder.weight = self.bert.embeddings.token_embedding.weight")


def mlm_examples(BertForMaskedLM_: Callable) -> None:
    """Logits and loss against Hugging Face's BertForMaskedLM; the decoder is tied."""
    cfg = BertConfig(vocab_size=30, d_model=12, n_layers=1, n_heads=3, d_ff=20, max_len=10)
    model, state = _student(BertForMaskedLM_, (cfg,), BertForMaskedLM(cfg), 4, "BertForMaskedLM(config)", MLM_NAMES)
    _tied(model, "BertForMaskedLM")
    oracle = _oracle("mlm", cfg, state)
    ids, types, mask = _ids(torch.Generator().manual_seed(5), 2, 8, 30, [8, 6])
    labels = torch.full_like(ids, IGNORE)
    labels[0, 2], labels[1, 4] = 17, 9
    res = call(model, ids, types, mask, labels, what="mlm(ids, types, mask, labels)")
    check_true(isinstance(res, tuple) and len(res) == 2, what="BertForMaskedLM must return (logits, loss)",
               expected="a tuple (logits, loss)", got=type(res).__name__, hint="return logits, loss")
    logits, loss = res
    exp = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    check_shape(logits, (2, 8, 30), what="MLM logits", hint="(B, T, vocab_size)")
    check_close(logits, exp.logits, what="MLM logits vs Hugging Face's BertForMaskedLM",
                hint="logits = decoder(transform_norm(gelu(transform(h))))")
    check_close(loss, exp.loss, what="MLM loss vs Hugging Face", hint="cross-entropy over positions whose label ≠ −100")
    passed("BertForMaskedLM matches Hugging Face's BertForMaskedLM; the decoder is tied")


def mlm_hidden(BertForMaskedLM_: Callable, seed: int = 54) -> None:
    """Non-square sizes; loss only where labelled; no labels → None; gradients through the tied table."""
    gen = torch.Generator().manual_seed(seed)
    cfg = BertConfig(vocab_size=43, d_model=24, n_layers=2, n_heads=3, d_ff=40, max_len=15, dropout=0.0)
    model, state = _student(BertForMaskedLM_, (cfg,), BertForMaskedLM(cfg), seed, "BertForMaskedLM(d 24, V 43)",
                            MLM_NAMES)
    _tied(model, "BertForMaskedLM")
    oracle = _oracle("mlm", cfg, state)
    ids, types, mask = _ids(gen, 3, 12, 43, [12, 9, 4])
    labels = torch.where((torch.rand(3, 12, generator=gen) < 0.3) & mask.bool() & (ids > 4), ids, IGNORE)
    labels[2, 1] = 30
    exp = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    logits, loss = call(model, ids, types, mask, labels, what="mlm with labels")
    check_close(logits * mask[..., None], exp.logits * mask[..., None], what="MLM logits (non-square sizes)",
                hint="logits = decoder(transform_norm(gelu(transform(h)))) with GELU between transform and the norm")
    check_close(loss, exp.loss, what="MLM loss with 30 % of the positions labelled",
                hint="mean cross-entropy over the positions whose label is not −100 (ignore_index=-100)")
    one = torch.full_like(ids, IGNORE)
    one[1, 3] = 5
    _, loss1 = call(model, ids, types, mask, one, what="mlm with a single labelled position")
    check_close(loss1, oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=one).loss,
                what="MLM loss with a single labelled position", hint="positions labelled −100 add nothing to the loss")
    res = call(model, ids, types, mask, what="mlm without labels")
    _no_labels(res, "BertForMaskedLM without labels")
    model.train()  # dropout 0
    loss_got, got = student_autograd(loss_gradients, model, ids, types, mask, labels, what="MLM loss")
    for p in oracle.parameters():
        p.grad = None
    oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels).loss.backward()
    check_close(loss_got, exp.loss.detach(), what="MLM loss in train mode with dropout 0")
    _compare_grads(got, _hf_grads(oracle), "MLM loss",
                   hint="the token-embedding table gets gradient from the input side and, tied, from the decoder")
    passed("BertForMaskedLM matches Hugging Face: logits, loss on labelled positions only, tied gradients")


# ---------------------------------------------------------------- part 5: classifier on [CLS]
def classifier_examples(Classifier: Callable) -> None:
    """Logits and loss against Hugging Face's BertForSequenceClassification (eval mode)."""
    cfg = BertConfig(vocab_size=30, d_model=12, n_layers=1, n_heads=3, d_ff=20, max_len=10)
    model, state = _student(Classifier, (cfg, 2), BertForSequenceClassification(cfg, 2), 6,
                            "BertForSequenceClassification(config, 2)", CLS_NAMES)
    oracle = _oracle("cls", cfg, state, 2)
    ids, types, mask = _ids(torch.Generator().manual_seed(7), 3, 8, 30, [8, 6, 4])
    labels = torch.tensor([1, 0, 1])
    res = call(model, ids, types, mask, labels, what="classifier(ids, types, mask, labels)")
    check_true(isinstance(res, tuple) and len(res) == 2, what="the classifier must return (logits, loss)",
               expected="a tuple (logits, loss)", got=type(res).__name__, hint="return logits, loss")
    logits, loss = res
    exp = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    check_shape(logits, (3, 2), what="classifier logits", hint="(B, n_classes)")
    check_close(logits, exp.logits, what="logits vs Hugging Face's BertForSequenceClassification",
                hint="classifier(dropout(tanh(pooler(h[:, 0])))) with h from self.bert")
    check_close(loss, exp.loss, what="loss vs Hugging Face", hint="cross-entropy of logits and labels")
    passed("BertForSequenceClassification matches Hugging Face")


def classifier_hidden(Classifier: Callable, seed: int = 55) -> None:
    """3 classes, non-square sizes, padding, no labels, gradients, dropout in train mode."""
    gen = torch.Generator().manual_seed(seed)
    cfg = BertConfig(vocab_size=37, d_model=24, n_layers=2, n_heads=3, d_ff=44, max_len=13, dropout=0.0)
    model, state = _student(Classifier, (cfg, 3), BertForSequenceClassification(cfg, 3), seed,
                            "BertForSequenceClassification(config, 3)", CLS_NAMES)
    oracle = _oracle("cls", cfg, state, 3)
    ids, types, mask = _ids(gen, 4, 11, 37, [11, 9, 5, 2])
    labels = torch.tensor([2, 0, 1, 2])
    exp = oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    logits, loss = call(model, ids, types, mask, labels, what="classifier with 3 classes")
    check_close(logits, exp.logits, what="logits with 3 classes and padding",
                hint="the [CLS] vector is h[:, 0]; pooled = tanh(pooler(h[:, 0]))")
    check_close(loss, exp.loss, what="loss with 3 classes")
    res = call(model, ids, types, mask, what="classifier without labels")
    _no_labels(res, "classifier without labels")
    model.train()
    loss_got, got = student_autograd(loss_gradients, model, ids, types, mask, labels, what="classifier loss")
    for p in oracle.parameters():
        p.grad = None
    oracle(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels).loss.backward()
    check_close(loss_got, exp.loss.detach(), what="classifier loss in train mode with dropout 0")
    _compare_grads(got, _hf_grads(oracle), "classifier loss")

    cfg2 = BertConfig(vocab_size=37, d_model=32, n_layers=1, n_heads=4, d_ff=48, max_len=13, dropout=0.5)
    model2, state2 = _student(Classifier, (cfg2, 64), BertForSequenceClassification(cfg2, 64), seed + 1,
                              "BertForSequenceClassification(dropout=0.5)", CLS_NAMES)
    oracle2 = _oracle("cls", cfg2, state2, 64)
    check_close(call(model2, ids, types, mask, what="eval mode")[0],
                oracle2(input_ids=ids, token_type_ids=types, attention_mask=mask).logits,
                what="eval mode with dropout 0.5 (dropout must be off)")
    a, b, _ = on_student_side(head_only_dropout, model2, ids, types, mask)
    check_true(not torch.allclose(a, b), what="classifier in train mode (encoder in eval mode) with dropout=0.5",
               expected="two calls give different logits", got="identical logits",
               hint="apply self.dropout to the pooled [CLS] vector before the classifier")
    pooled = oracle2.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).pooler_output  # (B, d)
    w, bias = oracle2.classifier.weight, oracle2.classifier.bias
    kept = torch.linalg.lstsq(w, (a - bias).T).solution.T  # (B, d): the dropped-out pooled vector
    zeroed, doubled = kept.abs() < 1e-6, (kept - 2 * pooled).abs() < 1e-6
    check_true(bool((zeroed | doubled).all()) and 0.3 < zeroed.double().mean().item() < 0.7,
               what="dropout on the pooled [CLS] vector (p = 0.5)",
               expected="each pooled feature zeroed or doubled, about half of them zeroed", got="something else",
        hint="logits = classifier(dropout(tanh(pooler(h[:, 0])))): dropout between the pooler and the classifier")
    passed("BertForSequenceClassification matches Hugging Face: [CLS] pooler, 3 classes, gradients, dropout")
