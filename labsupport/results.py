"""Results of runs too long for a chapter, made by the course once and shipped with their provenance.

A chapter executes in at most 90 s on a 2-core CPU, so its live experiments are small. Where a claim
needs a larger budget (more seeds, more steps), the same function runs once at that budget:

    python -m labsupport.results extrapolation            # on the CPU (about 15 minutes on 2 cores)
    python -m labsupport.results extrapolation --device cuda

writes ``labsupport/data/results/extrapolation.json`` — the settings, the numbers, torch's version, the
device and the seconds it took — and records its SHA-256 in ``SHA256SUMS``. The chapter reads it with
:func:`load` and plots and glues from it, so its prose still quotes numbers that code produced.

>>> sorted(RUNS)
['extrapolation']
>>> load("extrapolation")["settings"]["steps"]
2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from labsupport import data

RESULTS_DIR = data.DATA_DIR / "results"


def extrapolation(device: torch.device) -> dict[str, Any]:
    """Chapter 4's length extrapolation at the conclusive budget: five seeds, 2000 steps, d_model 128.

    The same :func:`labsupport.positional.length_extrapolation` as the chapter's live run (one-layer
    character models of Tiny Shakespeare, trained on 32 characters, evaluated on 32 to 256), larger.
    Each encoding's models train in their own process on the CPU (one thread each): a model's result
    depends only on its encoding and seed, so splitting the work changes no number.
    """
    from labsupport.positional import ENCODINGS

    settings = {"seeds": [0, 1, 2, 3, 4], "steps": 2000, "d_model": 128, "train_len": 32,
                "eval_lens": [32, 64, 128, 256], "train_chars": 900_000}
    jobs = 1 if device.type != "cpu" else min(len(ENCODINGS), os.cpu_count() or 1)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = pool.map(_extrapolation_of, ENCODINGS, [settings] * len(ENCODINGS), [device.type] * len(ENCODINGS))
        losses = dict(zip(ENCODINGS, rows))
    return {"settings": settings, "losses": losses}


def _extrapolation_of(encoding: str, settings: dict[str, Any], device: str) -> list[list[float | None]]:
    """One encoding's ``(seeds, eval_lens)`` losses; NaN (a learned table beyond its rows) as ``None``."""
    from labsupport.positional import length_extrapolation

    text = data.shakespeare()
    stoi = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = torch.tensor([stoi[c] for c in text])
    cut = settings["train_chars"]
    losses = length_extrapolation(ids[:cut], ids[cut:], len(stoi), encodings=(encoding,),
                                  seeds=tuple(settings["seeds"]), steps=settings["steps"],
                                  d_model=settings["d_model"], train_len=settings["train_len"],
                                  eval_lens=tuple(settings["eval_lens"]), device=torch.device(device),
                                  progress=False)[encoding]
    return [[None if v != v else round(v, 5) for v in row] for row in losses.tolist()]


RUNS: dict[str, Callable[[torch.device], dict[str, Any]]] = {"extrapolation": extrapolation}


def run(name: str, device: torch.device) -> Path:
    """Run ``name`` on ``device`` and write ``results/NAME.json`` with its provenance; return the path."""
    t0 = time.perf_counter()
    result = RUNS[name](device)
    result["provenance"] = {"command": f"python -m labsupport.results {name} --device {device.type}",
                            "torch": torch.__version__, "device": device.type,
                            "seconds": round(time.perf_counter() - t0, 1)}
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    out.chmod(0o644)  # shipped data: readable by students and by the grading sandbox
    data.record({f"results/{name}.json": data.sha256(out)})
    return out


def load(name: str) -> dict[str, Any]:
    """The verified stored result ``name`` (see :data:`RUNS`); missing or changed files say how to rebuild."""
    try:
        file = data.path(f"results/{name}.json")
    except data.DataError as err:
        raise data.DataError(f"{err}; or rebuild it with `python -m labsupport.results {name}`") from None
    return json.loads(file.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labsupport.results", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=sorted(RUNS))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name}: wrote {run(name, torch.device(args.device))}")


if __name__ == "__main__":
    main()
