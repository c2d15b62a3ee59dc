"""BERT's input embeddings: token + learned position + segment, then LayerNorm and dropout.

Every input position ``t`` of sequence ``b`` becomes one vector::

    e[b, t] = Dropout(LayerNorm(E_tok[x[b, t]] + E_pos[t] + E_seg[s[b, t]]))

with ``x`` the token ids, ``s`` the segment ids (0 for sentence A, 1 for sentence B) and three
learned tables. Unlike the transformer's fixed sinusoids, BERT *learns* its position vectors, so it
cannot read beyond ``max_len`` positions. The ``[PAD]`` row of the token table gets no gradient
(``padding_idx``), as in Hugging Face's ``BertEmbeddings``.

>>> from labsupport.bert.config import BertConfig
>>> emb = BertEmbeddings(BertConfig(vocab_size=50, d_model=8, max_len=16)).eval()
>>> emb(torch.tensor([[2, 7, 9, 3]])).shape
torch.Size([1, 4, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from labsupport.bert.config import BertConfig


class BertEmbeddings(nn.Module):
    """``token_embedding``, ``position_embedding``, ``segment_embedding``, ``norm``, ``dropout``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.segment_embedding = nn.Embedding(config.n_segments, d)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids (B, T)`` long, ``token_type_ids (B, T)`` long (default all 0) → ``(B, T, d_model)``."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,): 0 … T − 1
        h = self.token_embedding(input_ids) + self.position_embedding(positions) \
            + self.segment_embedding(token_type_ids)  # (B, T, d) + (T, d) broadcast over B + (B, T, d)
        return self.dropout(self.norm(h))
