"""BERT (chapter 5): an encoder-only transformer pre-trained by masked language modelling.

One concept per file, read in this order:

- :mod:`~labsupport.bert.config`     — :class:`BertConfig`, the sizes.
- :mod:`~labsupport.bert.embeddings` — token + learned position + segment embeddings, LayerNorm, dropout.
- :mod:`~labsupport.bert.model`      — the encoder: embeddings + chapter 3's post-LN GELU blocks.
- :mod:`~labsupport.bert.masking`    — the MLM corruption (15 %, then 80/10/10).
- :mod:`~labsupport.bert.heads`      — the tied masked-LM head and the [CLS] classifier.
- :mod:`~labsupport.bert.hf`         — weights to and from Hugging Face's BERT classes.
- :mod:`~labsupport.bert.data`       — WordPiece vocabulary, pre-training stream, polarity split.
- :mod:`~labsupport.bert.recipe`     — pre-training the course checkpoint; fine-tuning.
"""

from labsupport.bert.config import BertConfig
from labsupport.bert.embeddings import BertEmbeddings
from labsupport.bert.heads import BertForMaskedLM, BertForSequenceClassification
from labsupport.bert.masking import IGNORE, mask_tokens
from labsupport.bert.model import BertModel, attention_maps
from labsupport.bert.recipe import (
    compare_finetuning,
    finetune,
    load_encoder,
    load_pretrained,
    pretrain_checkpoint,
    pretrained_mlm,
)

__all__ = [
    "BertConfig", "BertEmbeddings", "BertModel", "attention_maps", "mask_tokens", "IGNORE",
    "BertForMaskedLM", "BertForSequenceClassification", "load_pretrained", "pretrained_mlm", "load_encoder",
    "finetune", "compare_finetuning", "pretrain_checkpoint",
]
