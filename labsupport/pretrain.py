"""Train the course's own checkpoints: ``python -m labsupport.pretrain NAME [NAME …]`` (or ``all``).

Each recipe lives beside its model: the module named in :data:`RECIPES` defines
``pretrain_checkpoint(seed: int = 0) -> pathlib.Path``, which trains deterministically on the CPU and
stores the result with :func:`labsupport.checkpoints.save` (weights, metadata, model card, checksums).
Nothing is downloaded: the recipes read only the data shipped in :mod:`labsupport.data`.
"""

from __future__ import annotations

import argparse
import importlib
import time

RECIPES: dict[str, str] = {
    "bert": "labsupport.bert",  # chapter 5: tiny BERT pre-trained with masked LM on the course corpus
    "gpt": "labsupport.gpt",    # chapter 6: tiny GPT language model on the course corpus
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labsupport.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=[*RECIPES, "all"], help="checkpoints to (re)build")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = list(RECIPES) if "all" in args.names else args.names
    for name in names:
        t0 = time.perf_counter()
        out = importlib.import_module(RECIPES[name]).pretrain_checkpoint(seed=args.seed)
        print(f"{name}: wrote {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
