import pytest
import torch

from labsupport import data, results
from labsupport.positional import ENCODINGS, length_extrapolation


def test_shakespeare_known_answers():
    text = data.shakespeare()
    assert len(text) == 1_115_394
    assert len(set(text)) == 65
    train, val = data.shakespeare_split()
    assert (len(train), len(val)) == (1_003_854, 111_540)


def test_sentence_polarity_balanced():
    texts, labels = data.sentence_polarity()
    assert len(texts) == 10_662 and sum(labels) == 5_331


def test_every_listed_file_verifies():
    for name in data._checksums():
        assert data.path(name).is_file()


def test_unknown_file_is_named():
    with pytest.raises(data.DataError, match="unknown data file 'nope.txt'"):
        data.path("nope.txt")


def test_missing_and_corrupted_files_give_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "SHA256SUMS").write_text(
        "0" * 64 + "  tinyshakespeare/input.txt\n" + "1" * 64 + "  gone.txt\n")
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("tampered")
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    data._checksums.cache_clear()
    try:
        with pytest.raises(data.DataError, match=r"input.txt is corrupted: SHA-256"):
            data.shakespeare()
        with pytest.raises(data.DataError, match=r"gone.txt is missing"):
            data.path("gone.txt")
    finally:
        data._checksums.cache_clear()


def test_a_missing_stored_result_says_how_to_rebuild_it():
    with pytest.raises(data.DataError, match=r"python -m labsupport.results nothing"):
        results.load("nothing")
    assert set(results.load("extrapolation")["losses"]) == set(ENCODINGS)


def test_extrapolation_runs_split_by_encoding_give_the_same_numbers():
    """What lets `python -m labsupport.results extrapolation` train each encoding in its own process."""
    ids = torch.randint(0, 20, (4000,), generator=torch.Generator().manual_seed(0))
    small = dict(seeds=(0, 1), steps=3, d_model=16, eval_lens=(32, 64), progress=False)
    together = length_extrapolation(ids[:3000], ids[3000:], 20, encodings=("none", "alibi"), **small)
    for e in ("none", "alibi"):
        alone = length_extrapolation(ids[:3000], ids[3000:], 20, encodings=(e,), **small)[e]
        assert torch.equal(alone, together[e])
