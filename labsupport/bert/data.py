"""Text for the tiny BERT: a WordPiece vocabulary, the pre-training stream, the sentence-polarity split.

The vocabulary is trained (deterministically) with Hugging Face ``tokenizers`` on the course's
own text and shipped beside the checkpoint (``checkpoints/bert.vocab.txt``, one token per line,
the id is the line number). Encoding is BERT's: lower-case, split on whitespace and punctuation,
then chapter 1's greedy longest-match-first WordPiece; a sentence becomes ``[CLS] … [SEP]``.

>>> SPECIAL_TOKENS
('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
"""

from __future__ import annotations

from pathlib import Path

import torch

from labsupport import data

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0 … 4
PAD, UNK, CLS, SEP, MASK = range(5)
VOCAB_FILE = "checkpoints/bert.vocab.txt"
POLARITY_TEST = 1000  # held-out sentences of the polarity split (never seen in pre-training)


def polarity_split(seed: int = 0) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]]]:
    """Sentence polarity shuffled with ``seed``: ``(train_texts, train_labels), (test_texts, test_labels)``."""
    texts, labels = data.sentence_polarity()
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    n = len(texts) - POLARITY_TEST
    return (texts[:n], labels[:n]), (texts[n:], labels[n:])


def pretraining_texts() -> list[str]:
    """The pre-training corpus: the *training* polarity sentences, texts only (never their labels).

    Tiny Shakespeare is left out: at this budget, text from the target domain is what pays (see the
    chapter; domain-adaptive pre-training).
    """
    return polarity_split()[0][0]


def train_vocab(texts: list[str], vocab_size: int, out: Path) -> Path:
    """Train a WordPiece vocabulary with Hugging Face ``tokenizers``; write ``vocab.txt`` to ``out``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        min_frequency=2, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    learned = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))  # the trainer's id order varies between runs
    out.write_text("".join(f"{t}\n" for t in (*SPECIAL_TOKENS, *learned)), encoding="utf-8")
    return out


def load_tokenizer(vocab: Path | None = None):
    """A fast BERT tokenizer (``tokenizers.BertWordPieceTokenizer``) over the shipped vocabulary."""
    from tokenizers import BertWordPieceTokenizer

    vocab = vocab or data.path(VOCAB_FILE)
    return BertWordPieceTokenizer(str(vocab), lowercase=True, strip_accents=True)


def vocab_list(vocab: Path | None = None) -> list[str]:
    """The tokens of the shipped vocabulary, by id."""
    return (vocab or data.path(VOCAB_FILE)).read_text(encoding="utf-8").splitlines()


def encode_batch(tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] text [SEP]`` padded/truncated to ``max_len``: ``(input_ids, attention_mask)``, both ``(N, max_len)``."""
    tokenizer.enable_truncation(max_len)
    tokenizer.enable_padding(pad_id=PAD, pad_token="[PAD]", length=max_len)
    enc = tokenizer.encode_batch(texts)
    return torch.tensor([e.ids for e in enc]), torch.tensor([e.attention_mask for e in enc])


def token_stream(tokenizer, texts: list[str]) -> torch.Tensor:
    """Every text's WordPiece ids followed by ``[SEP]``, concatenated: one long 1-D tensor."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    ids: list[int] = []
    for e in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(e.ids)
        ids.append(SEP)
    return torch.tensor(ids)


def stream_batches(stream: torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator):
    """Endless ``(B, seq_len)`` windows of the stream, each starting with ``[CLS]`` (RoBERTa's full sentences)."""
    while True:
        starts = torch.randint(len(stream) - seq_len, (batch_size,), generator=generator)
        body = torch.stack([stream[s:s + seq_len - 1] for s in starts.tolist()])  # (B, T − 1)
        yield torch.cat([torch.full((batch_size, 1), CLS), body], 1)  # (B, T)
