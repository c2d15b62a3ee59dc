"""T5, the text-to-text transformer (chapter 7).

T5 casts every task as *text in, text out*: a task prefix says what to do ("translate English to
German: …", "summarize: …") and the answer is generated as text, so one encoder–decoder, one loss
and one decoding procedure serve every task. Its pieces, one file each:

- :mod:`labsupport.t5.corruption` — the pre-training objective: **span corruption** (drop ~15 % of
  the tokens in spans of mean length 3, replace each span by a sentinel, predict the spans).
- :mod:`labsupport.t5.relative`   — **relative position bias**: distances → logarithmic buckets →
  one learned scalar per bucket and head, added to the attention scores and shared by all layers.
- :mod:`labsupport.t5.model`      — the **encoder–decoder** with RMSNorm (T5's LayerNorm), unscaled
  attention scores, cross-attention, a tied output embedding, and greedy decoding. Parameter
  names are our own; :func:`labsupport.t5.model.state_from_hf` converts a Hugging Face
  ``T5ForConditionalGeneration`` state dict.
- :mod:`labsupport.t5.tasks`      — synthetic text-to-text tasks told apart only by their prefix
  (``reverse:``, ``sort:``, ``add:``) for the chapter's and the lab's experiment.
"""

from labsupport.t5.corruption import random_segmentation, random_spans_noise_mask, span_corrupt, span_uncorrupt
from labsupport.t5.model import (
    RMSNorm,
    T5Attention,
    T5Config,
    T5DecoderBlock,
    T5EncoderBlock,
    T5Model,
    greedy_decode,
    shift_right,
    state_from_hf,
)
from labsupport.t5.relative import RelativePositionBias, relative_position_bucket

__all__ = [
    "RMSNorm", "RelativePositionBias", "T5Attention", "T5Config", "T5DecoderBlock", "T5EncoderBlock", "T5Model",
    "greedy_decode", "random_segmentation", "random_spans_noise_mask", "relative_position_bucket", "shift_right",
    "span_corrupt", "span_uncorrupt", "state_from_hf",
]
