"""The masked-language-model corruption of BERT: choose 15 %, then 80 % [MASK] / 10 % random / 10 % kept.

Every position that is not a special token ([PAD], [CLS], [SEP], …) is *chosen* independently with
probability ``p`` (0.15). A chosen position is replaced by ``[MASK]`` with probability 0.8, by a
random ordinary token with probability 0.1, and left unchanged with probability 0.1. The model must
predict the original token at every chosen position and nowhere else: the labels hold the original
id there and −100 (PyTorch's ``ignore_index``) elsewhere.

Why not always ``[MASK]``? ``[MASK]`` never occurs at fine-tuning time; keeping or randomising some
chosen tokens forces the model to produce a good representation for *every* input token, since
it cannot tell which ones it will be asked about.

>>> ids = torch.tensor([[2, 10, 11, 12, 13, 3, 0, 0]])  # [CLS] a b c d [SEP] [PAD] [PAD]
>>> inputs, labels = mask_tokens(ids, special_ids=[0, 1, 2, 3, 4], mask_id=4, vocab_size=20,
...                              generator=torch.Generator().manual_seed(3), p=0.5)
>>> labels.tolist()  # the 4 chosen positions keep their id; −100 wherever nothing is to be predicted
[[-100, 10, 11, 12, 13, -100, -100, -100]]
>>> inputs.tolist()  # position 1 got a random ordinary token (14), positions 2–4 became [MASK] (4)
[[2, 14, 4, 4, 4, 3, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

IGNORE = -100  # label of positions without a prediction (torch.nn.functional.cross_entropy's ignore_index)


def mask_tokens(input_ids: torch.Tensor, special_ids: Sequence[int], mask_id: int, vocab_size: int,
                generator: torch.Generator | None = None, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's MLM corruption of ``input_ids (B, T)``; returns ``(inputs, labels)``, both ``(B, T)`` long.

    All randomness comes from ``generator`` (a CPU ``torch.Generator``), so a seed fixes the result.
    Random replacements are drawn uniformly from the ids that are not in ``special_ids``.
    ``input_ids`` itself is not modified.
    """
    special = torch.isin(input_ids, torch.tensor(list(special_ids), device=input_ids.device))  # (B, T)
    draw = torch.rand((2, *input_ids.shape), generator=generator).to(input_ids.device)  # (2, B, T)
    chosen = (draw[0] < p) & ~special  # (B, T): positions to predict
    to_mask = chosen & (draw[1] < 0.8)
    to_random = chosen & (draw[1] >= 0.8) & (draw[1] < 0.9)  # the last 0.1 stays unchanged
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])  # (V − n_special,)
    pick = torch.randint(len(ordinary), input_ids.shape, generator=generator)  # (B, T)
    random_ids = ordinary[pick].to(input_ids.device)
    inputs = torch.where(to_mask, mask_id, torch.where(to_random, random_ids, input_ids))
    labels = torch.where(chosen, input_ids, IGNORE)
    return inputs, labels
