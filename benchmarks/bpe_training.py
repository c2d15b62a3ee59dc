"""Benchmark: the reference byte-level BPE trainer vs Hugging Face `tokenizers`, in one run.

    python benchmarks/bpe_training.py [--merges 2000] [--repeats 3]

Both train on the whole Shakespeare corpus with GPT-2's byte-level pre-tokenisation to
256 + merges ids. Prints the best time of each and their ratio (goal: reference within 20x).
"""

from __future__ import annotations

import argparse
import time

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from labsupport import data
from labsupport.tokenizers import train_bpe


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def hf_train(text: str, vocab_size: int) -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merges", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = data.shakespeare()
    vocab_size = 256 + args.merges
    ours = best_time(lambda: train_bpe(text, vocab_size), args.repeats)
    theirs = best_time(lambda: hf_train(text, vocab_size), args.repeats)
    print(f"corpus: {len(text):,} characters; vocab {vocab_size:,} ({args.merges:,} merges); "
          f"best of {args.repeats}")
    print(f"labsupport.tokenizers.train_bpe : {ours:7.2f} s")
    print(f"tokenizers BpeTrainer           : {theirs:7.2f} s")
    print(f"ratio (ours / Hugging Face)     : {ours / theirs:7.1f}x   (goal: <= 20x)")


if __name__ == "__main__":
    main()
