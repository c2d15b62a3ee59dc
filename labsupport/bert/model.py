"""The BERT encoder: embeddings, then a stack of chapter 3's post-LN encoder blocks (GELU).

Every position attends to every other (no causal mask): BERT reads the whole input at once, which
is what "bidirectional" means. Only padding is masked: ``attention_mask (B, T)`` is 1 for real tokens
and 0 for ``[PAD]`` (Hugging Face's convention), turned into the boolean key mask ``(B, 1, 1, T)``
of :mod:`labsupport.attention`.

>>> from labsupport.bert.config import BertConfig
>>> bert = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=4, d_ff=32)).eval()
>>> ids = torch.tensor([[2, 7, 9, 3, 0]])
>>> bert(ids, attention_mask=(ids != 0).long()).shape  # (B, T, d_model)
torch.Size([1, 5, 16])
>>> [tuple(w.shape) for w in attention_maps(bert, ids)]  # one (B, H, T, T) per layer
[(1, 4, 5, 5), (1, 4, 5, 5)]
"""

from __future__ import annotations

import torch
from torch import nn

from labsupport.bert.config import BertConfig
from labsupport.bert.embeddings import BertEmbeddings
from labsupport.multihead import TransformerEncoderBlock


def key_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """``(B, T)`` 1 = token / 0 = padding → boolean ``(B, 1, 1, T)``, True where a query may attend."""
    return None if attention_mask is None else attention_mask.bool()[:, None, None, :]


class BertModel(nn.Module):
    """``embeddings`` + ``layers`` (``n_layers`` post-LN GELU encoder blocks); returns the last hidden states."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(TransformerEncoderBlock(config.block_config()) for _ in range(config.n_layers))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids (B, T)`` → hidden states ``(B, T, d_model)``, one contextual vector per token."""
        h = self.embeddings(input_ids, token_type_ids)  # (B, T, d)
        mask = key_mask(attention_mask)  # (B, 1, 1, T) or None
        for layer in self.layers:
            h = layer(h, mask)  # (B, T, d)
        return h


@torch.no_grad()
def attention_maps(bert: BertModel, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                   attention_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The attention weights of every layer, ``(B, H, T, T)`` each (eval mode: no dropout).

    A post-LN block attends over its own input, so layer ``l``'s weights come from the hidden states
    that enter it.
    """
    h, mask, maps = bert.embeddings(input_ids, token_type_ids), key_mask(attention_mask), []
    for layer in bert.layers:
        maps.append(layer.self_attn(h, mask=mask, need_weights=True)[1])  # (B, H, T, T)
        h = layer(h, mask)
    return maps
