"""labsupport: the library every chapter and lab of *Transformers, lab by lab* imports.

Modules, each with one job:

- :mod:`labsupport.device`     — pick CUDA, then Apple MPS, then CPU; seed every RNG.
- :mod:`labsupport.data`       — the course data shipped with the package, checksum-verified.
- :mod:`labsupport.train`      — a small training loop with progress bars and loss curves.
- :mod:`labsupport.plots`      — the figures the chapters and labs share.
- :mod:`labsupport.widgets`    — the tokenizer explorer (BPE computed in the page, chapter 1).
- :mod:`labsupport.tokenizers` — reference tokenizers (chapter 1).
- :mod:`labsupport.bert`       — BERT: embeddings, MLM masking and head, [CLS] classifier, checkpoint (chapter 5).
- :mod:`labsupport.gpt`        — a GPT-2-style language model with a KV cache; the course's GPT (chapter 6).
- :mod:`labsupport.sampling`   — temperature, top-k and top-p sampling (chapter 6).
- :mod:`labsupport.t5`         — T5: span corruption, relative position buckets and bias, RMSNorm, the
  encoder–decoder with greedy decoding, prefix-told synthetic tasks (chapter 7).
- :mod:`labsupport.efficient`  — efficient attention: blockwise (online softmax), Linformer, sparse masks,
  Transformer-XL memory (chapter 8).
- :mod:`labsupport.vit`        — patches, patch embedding, the ViT classifier, MAE masking, loss and a small
  masked autoencoder; the 8×8 digits as tensors (chapter 9).
- :mod:`labsupport.lora`       — LoRA layers, injection by module name, adapter checkpoints, soft prompts
  (chapter 10).
- :mod:`labsupport.rlhf`       — the reward-model loss, sequence log-probabilities, policy gradient with a KL
  penalty, DPO, and the chapter's preference-tuning experiment (chapter 11).
- :mod:`labsupport.distill`    — knowledge distillation (soft targets at a temperature, a training step with a
  frozen teacher, hidden-state matching through a projection), int8 quantisation and magnitude pruning
  (chapter 12).
- :mod:`labsupport.explorer`   — explorers that respond in the online book without a kernel.
- :mod:`labsupport.checkpoints` — the course's own tiny pre-trained models (weights, metadata, model card).
- :mod:`labsupport.pretrain`   — ``python -m labsupport.pretrain bert|gpt`` rebuilds those checkpoints.
- :mod:`labsupport.checks`     — the checking helpers that every test cell calls.

labsupport knows nothing about grading or the book: it is an ordinary, documented library.
"""

from labsupport.device import get_device, seed_everything

__all__ = ["get_device", "seed_everything"]
__version__ = "0.1.0"
