"""The course data, shipped inside the package and verified against ``SHA256SUMS``.

No code in the course downloads anything: JupyterHub servers and exam rooms are often offline.
Each dataset keeps its licence or attribution file beside it (see ``README.md`` in this folder).

>>> text = shakespeare()            # 1,115,394 characters
>>> train, val = shakespeare_split()  # 90 % / 10 %
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


class DataError(RuntimeError):
    """A shipped data file is missing or does not match its recorded checksum."""


@cache
def _checksums() -> dict[str, str]:
    sums = DATA_DIR / "SHA256SUMS"
    if not sums.is_file():
        raise DataError(f"the checksum list {sums} is missing: reinstall labsupport")
    table = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            table[name.strip()] = digest
    return table


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record(digests: dict[str, str]) -> None:
    """Add or replace lines of ``SHA256SUMS`` (``{name: hex digest}``; sorted by name, as sha256sum writes).

    Used by the scripts that make course files (:mod:`labsupport.pretrain`, :mod:`labsupport.results`).
    """
    table = {**_checksums(), **digests}
    (DATA_DIR / "SHA256SUMS").write_text("".join(f"{d}  {f}\n" for f, d in sorted(table.items())))
    _checksums.cache_clear()


def path(name: str) -> Path:
    """Return the verified path of a shipped file, e.g. ``path("tinyshakespeare/input.txt")``.

    Raises :class:`DataError` naming the file when it is unknown, missing or corrupted.
    """
    expected = _checksums().get(name)
    if expected is None:
        known = ", ".join(sorted(_checksums()))
        raise DataError(f"unknown data file {name!r}; the course ships: {known}")
    file = DATA_DIR / name
    if not file.is_file():
        raise DataError(f"data file {file} is missing: reinstall labsupport or restore it from git")
    got = sha256(file)
    if got != expected:
        raise DataError(
            f"data file {file} is corrupted: SHA-256 {got[:12]}… differs from the recorded "
            f"{expected[:12]}…; restore it from git (git checkout -- {file.name})"
        )
    return file


def read_text(name: str) -> str:
    """Verified UTF-8 text of a shipped file."""
    return path(name).read_text(encoding="utf-8")


def shakespeare() -> str:
    """Tiny Shakespeare (char-rnn corpus): 1,115,394 characters, 65 distinct ones."""
    return read_text("tinyshakespeare/input.txt")


def shakespeare_split(train_fraction: float = 0.9) -> tuple[str, str]:
    """Split the corpus at ``train_fraction`` of its characters: (train, validation)."""
    text = shakespeare()
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


def sentence_polarity() -> tuple[list[str], list[int]]:
    """Movie-review snippets (Pang & Lee, CC BY 4.0): texts and labels (1 positive, 0 negative)."""
    pos = read_text("sentence_polarity/rt-polarity.pos").splitlines()
    neg = read_text("sentence_polarity/rt-polarity.neg").splitlines()
    return pos + neg, [1] * len(pos) + [0] * len(neg)


def digits() -> tuple[numpy.ndarray, numpy.ndarray]:  # noqa: F821 (numpy is imported lazily)
    """Handwritten digits (Alpaydin & Kaynak, UCI, CC BY 4.0; the copy scikit-learn ships).

    Returns ``(images, labels)``: float32 ``(1797, 8, 8)`` with pixels scaled from 0..16 to 0..1,
    and int64 ``(1797,)`` labels 0..9.

    >>> images, labels = digits()
    >>> images.shape, int(labels[:10].sum())
    ((1797, 8, 8), 45)
    """
    import gzip

    import numpy as np

    with gzip.open(path("digits/digits.csv.gz"), "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (1797, 65): 64 pixels, then the label
    return (table[:, :64] / 16.0).astype(np.float32).reshape(-1, 8, 8), table[:, 64]
