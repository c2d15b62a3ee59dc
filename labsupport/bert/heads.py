"""What sits on top of the encoder: the masked-LM head (tied to the token embedding) and the [CLS] classifier.

**Masked LM** (pre-training). Each hidden state goes through a transform (dense, GELU, LayerNorm),
then a decoder onto the vocabulary whose weight matrix *is* the token-embedding table
(``V × d``, shared, "tied"), plus a bias per token::

    logits = LN(GELU(h W_t + b_t)) E_tokᵀ + b      # (B, T, V)

Tying saves ``V·d`` parameters and makes the input and output vectors of a token the same vector.
The loss is the cross-entropy at the chosen positions only (labels −100 elsewhere).

**Sequence classification** (fine-tuning). The hidden state of the first token, ``[CLS]``, goes
through the *pooler* (dense + tanh, pre-trained by next-sentence prediction in the original BERT),
dropout and a linear layer onto the classes.

>>> from labsupport.bert.config import BertConfig
>>> cfg = BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32)
>>> mlm = BertForMaskedLM(cfg)
>>> mlm.decoder.weight is mlm.bert.embeddings.token_embedding.weight  # one tensor, two names
True
>>> logits, loss = mlm(torch.tensor([[2, 4, 9, 3]]), labels=torch.tensor([[-100, 7, -100, -100]]))
>>> logits.shape, loss.shape
(torch.Size([1, 4, 50]), torch.Size([]))
>>> BertForSequenceClassification(cfg, n_classes=2)(torch.tensor([[2, 9, 3]]))[0].shape
torch.Size([1, 2])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labsupport.bert.config import BertConfig
from labsupport.bert.masking import IGNORE
from labsupport.bert.model import BertModel


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: weights ~ N(0, 0.02²), biases 0, LayerNorm γ = 1, [PAD] embedding 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BertForMaskedLM(nn.Module):
    """``bert`` + ``transform`` (d→d) + GELU + ``transform_norm`` + ``decoder`` (d→V, weight tied, own bias)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.transform = nn.Linear(config.d_model, config.d_model)
        self.transform_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.d_model, config.vocab_size)  # its bias is the per-token output bias
        init_bert_weights(self)
        self.decoder.weight = self.bert.embeddings.token_embedding.weight  # tie: the same Parameter

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits (B, T, V), loss)``: mean cross-entropy where labels ≠ −100, None without labels."""
        h = self.bert(input_ids, token_type_ids, attention_mask)  # (B, T, d)
        logits = self.decoder(self.transform_norm(F.gelu(self.transform(h))))  # (B, T, V)
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


class BertForSequenceClassification(nn.Module):
    """``bert`` + ``pooler`` (dense + tanh on [CLS]) + ``dropout`` + ``classifier`` (d → n_classes)."""

    def __init__(self, config: BertConfig, n_classes: int):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, n_classes)
        init_bert_weights(self)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits (B, n_classes), loss)``; the cross-entropy loss is None without ``labels (B,)``."""
        h = self.bert(input_ids, token_type_ids, attention_mask)  # (B, T, d)
        pooled = torch.tanh(self.pooler(h[:, 0]))  # (B, d): the [CLS] position only
        logits = self.classifier(self.dropout(pooled))  # (B, n_classes)
        return logits, (None if labels is None else F.cross_entropy(logits, labels))
