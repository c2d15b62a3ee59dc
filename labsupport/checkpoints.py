"""The course's own tiny pre-trained models: trained by its scripts, shipped, checksummed.

A checkpoint ``NAME`` is three files in ``labsupport/data/checkpoints/``:

- ``NAME.safetensors`` — the weights (never pickle);
- ``NAME.json`` — the model's configuration (plain JSON: the fields of its config dataclass) and the
  training summary (steps, seconds, final losses, seed);
- ``NAME.md`` — the model card: data, recipe, results, licence, how to rebuild.

The safetensors and JSON files are listed in ``labsupport/data/SHA256SUMS``; :func:`load` verifies
them and says how to rebuild on a mismatch (``python -m labsupport.pretrain NAME``, deterministic on
the CPU). Nothing is ever downloaded.

>>> sorted(available())  # doctest: +SKIP
['bert', 'gpt']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from labsupport.data import DATA_DIR, DataError, path, record, sha256

CHECKPOINT_DIR = DATA_DIR / "checkpoints"


class CheckpointError(DataError):
    """A checkpoint is missing, corrupted or was built by a different recipe."""


def _rebuild(name: str) -> str:
    return f"rebuild it with `python -m labsupport.pretrain {name}` (deterministic; 15 to 20 minutes on a 2-core CPU)"


def available() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.safetensors"))


def load(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The verified weights (a state dict on the CPU) and the JSON metadata of checkpoint ``name``."""
    from safetensors.torch import load_file

    try:
        weights = path(f"checkpoints/{name}.safetensors")
        meta = path(f"checkpoints/{name}.json")
    except DataError as err:
        raise CheckpointError(f"checkpoint {name!r}: {err}; or {_rebuild(name)}") from None
    return load_file(str(weights)), json.loads(meta.read_text(encoding="utf-8"))


def save(name: str, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], card: str) -> Path:
    """Write checkpoint ``name`` (weights, metadata, model card) and record its checksums.

    Used by :mod:`labsupport.pretrain`; tensors are made contiguous CPU copies (tied weights are
    stored once per name, as safetensors requires distinct storage).
    """
    from safetensors.torch import save_file

    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    weights = CHECKPOINT_DIR / f"{name}.safetensors"
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}, str(weights))
    meta_file = CHECKPOINT_DIR / f"{name}.json"
    meta_file.write_text(json.dumps(dict(meta), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (CHECKPOINT_DIR / f"{name}.md").write_text(card, encoding="utf-8")
    for file in (weights, meta_file, CHECKPOINT_DIR / f"{name}.md"):
        file.chmod(0o644)  # shipped data: readable by the grading sandbox's unprivileged user and by students
    record({f"checkpoints/{name}.safetensors": sha256(weights), f"checkpoints/{name}.json": sha256(meta_file)})
    return weights
