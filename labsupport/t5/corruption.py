"""Span corruption, T5's pre-training objective.

Drop about 15 % of the tokens (``noise_density``) in spans of mean length 3
(``mean_span_length``). In the **input**, each dropped span becomes one *sentinel* token; the
**target** lists, for each span in order, its sentinel followed by the dropped tokens, then one
final sentinel and EOS. With T5's vocabulary the sentinels are the last ids, ``<extra_id_0>`` =
``vocab_size − 1``, ``<extra_id_1>`` = ``vocab_size − 2``, …::

    text:    Thank you for inviting me to your party last week .
    input:   Thank you <X> me to your party <Y> week . </s>
    target:  <X> for inviting <Y> last <Z> </s>

The mask follows T5's ``random_spans_noise_mask``: the number of noise tokens and of spans are
fixed by the length (``round(L·density)`` and ``round(noise / mean_span_length)``), the noise
tokens and the kept tokens are each split into that many non-empty runs uniformly at random,
and the runs alternate, starting with kept tokens. Inputs and targets together are short:
dropped tokens appear once (in the target), kept tokens once (in the input).

>>> g = torch.Generator().manual_seed(0)
>>> mask = random_spans_noise_mask(20, 0.15, 3.0, generator=g)
>>> int(mask.sum()), bool(mask[0])  # round(20 · 0.15) = 3 noise tokens, never the first token
(3, False)
>>> tokens = torch.arange(10, 16)
>>> inputs, targets = span_corrupt(tokens, torch.tensor([0, 1, 1, 0, 0, 1]).bool(), vocab_size=100)
>>> inputs.tolist(), targets.tolist()
([10, 99, 13, 14, 98, 1], [99, 11, 12, 98, 15, 97, 1])
>>> span_uncorrupt(inputs, targets, vocab_size=100).tolist()
[10, 11, 12, 13, 14, 15]
"""

from __future__ import annotations

import torch


def random_segmentation(num_items: int, num_segments: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Split ``num_items`` into ``num_segments`` positive lengths, uniformly over all such splits.

    Choosing ``num_segments − 1`` distinct cut points among the ``num_items − 1`` gaps gives every
    composition the same probability. Returns a long tensor ``(num_segments,)`` summing to ``num_items``.
    """
    cuts = torch.randperm(num_items - 1, generator=generator)[: num_segments - 1].sort().values + 1
    edges = torch.cat([torch.tensor([0]), cuts, torch.tensor([num_items])])  # (num_segments + 1,)
    return edges.diff()


def random_spans_noise_mask(length: int, noise_density: float = 0.15, mean_span_length: float = 3.0,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """T5's noise mask: bool ``(length,)``, True on the tokens to drop.

    ``round(length · noise_density)`` noise tokens (at least 1, at most ``length − 1``) in
    ``max(1, round(noise / mean_span_length))`` spans; kept and noise runs alternate, kept first.
    """
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(1, round(num_noise / mean_span_length))
    noise_lengths = random_segmentation(num_noise, num_spans, generator)  # (num_spans,)
    kept_lengths = random_segmentation(length - num_noise, num_spans, generator)  # (num_spans,)
    run_lengths = torch.stack([kept_lengths, noise_lengths], dim=1).flatten()  # kept, noise, kept, noise, …
    is_noise = torch.tensor([False, True]).repeat(num_spans)  # (2·num_spans,)
    return is_noise.repeat_interleave(run_lengths)  # (length,)


def span_corrupt(tokens: torch.Tensor, noise_mask: torch.Tensor, vocab_size: int,
                 eos_id: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of span corruption for one sequence ``tokens (T,)`` and ``noise_mask (T,)``.

    Sentinel ``i`` (the i-th noise span, from 0) has id ``vocab_size − 1 − i``. ``inputs``: the kept
    tokens with each noise span replaced by its sentinel, then ``eos_id``. ``targets``: each span's
    sentinel followed by its tokens, then the next sentinel (one past the last span) and ``eos_id``.
    """
    toks, noise = tokens.tolist(), noise_mask.tolist()
    inputs, targets, span = [], [], -1
    for t, (tok, is_noise) in enumerate(zip(toks, noise)):
        if is_noise and (t == 0 or not noise[t - 1]):  # a span starts: one sentinel on each side
            span += 1
            inputs.append(vocab_size - 1 - span)
            targets.append(vocab_size - 1 - span)
        (targets if is_noise else inputs).append(tok)
    targets.append(vocab_size - 2 - span)  # the closing sentinel, one past the last span
    return torch.tensor(inputs + [eos_id]), torch.tensor(targets + [eos_id])


def span_uncorrupt(inputs: torch.Tensor, targets: torch.Tensor, vocab_size: int, eos_id: int = 1) -> torch.Tensor:
    """The original tokens from ``(inputs, targets)`` of :func:`span_corrupt`: each sentinel of the
    input is replaced by the tokens that follow the same sentinel in the target."""
    spans: list[list[int]] = []
    for tok in targets.tolist():
        if tok == eos_id:
            break
        if tok == vocab_size - 1 - len(spans):  # the next sentinel opens the next span
            spans.append([])
        else:
            spans[-1].append(tok)
    out: list[int] = []
    used = 0
    for tok in inputs.tolist():
        if tok == eos_id:
            break
        if used < len(spans) and tok == vocab_size - 1 - used:
            out.extend(spans[used])
            used += 1
        else:
            out.append(tok)
    return torch.tensor(out, dtype=torch.long)
