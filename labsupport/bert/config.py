"""The size of a BERT model: one dataclass shared by the reference, the lab and the checkpoint.

>>> cfg = BertConfig(vocab_size=1000, d_model=64, n_layers=2, n_heads=4, d_ff=256)
>>> cfg.block_config().activation, cfg.block_config().norm_first
('gelu', False)
"""

from __future__ import annotations

from dataclasses import dataclass

from labsupport.multihead import EncoderBlockConfig


@dataclass
class BertConfig:
    """Sizes and settings of a BERT encoder. BERT-base is ``BertConfig(30522, 768, 12, 12, 3072, 512)``."""

    vocab_size: int
    d_model: int = 128  # hidden size H
    n_layers: int = 2  # L encoder blocks
    n_heads: int = 4  # A attention heads per block
    d_ff: int = 512  # FFN inner size (4H in BERT)
    max_len: int = 128  # learned positions 0 … max_len − 1 (512 in BERT)
    n_segments: int = 2  # segment (token type) ids: 0 = sentence A, 1 = sentence B
    dropout: float = 0.1  # on embeddings, attention weights and every sub-layer output
    layer_norm_eps: float = 1e-12  # BERT's LayerNorm epsilon (torch's default is 1e-5)
    pad_id: int = 0  # the [PAD] id: its embedding gets no gradient
    fast: bool = False  # fused attention kernel when attention weights are not asked for

    def block_config(self) -> EncoderBlockConfig:
        """One BERT encoder block = chapter 3's post-LN block with GELU and BERT's epsilon."""
        return EncoderBlockConfig(self.d_model, self.n_heads, self.d_ff, self.dropout, activation="gelu",
                                  norm_first=False, layer_norm_eps=self.layer_norm_eps, fast=self.fast)
