"""The reference tokenizers against Hugging Face `tokenizers` and hand-checked examples."""

from hypothesis import given, settings
from hypothesis import strategies as st

from labsupport import data
from labsupport.checks import lab01 as check
from labsupport.tokenizers import BPEVocab, decode, encode, load_gpt2, merge, train_bpe, wordpiece_encode
from labsupport.tokenizers.bpe import merge_steps


def test_gpt2_known_answers():
    gpt2 = load_gpt2()
    assert gpt2.size == 50_257
    assert encode("Hello world", gpt2) == [15496, 995]
    assert encode("hello <|endoftext|>", gpt2) == [31373, 220, 50256]


def test_gpt2_matches_hugging_face_on_varied_text():
    gpt2, hf = load_gpt2(), check._hf_gpt2()
    for text in [*check.VARIED_TEXTS, data.shakespeare()[:5000]]:
        assert encode(text, gpt2) == hf.encode(text).ids, text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_any_unicode(s):
    gpt2 = load_gpt2()
    assert decode(encode(s, gpt2), gpt2) == s


def test_hand_checked_training_example():
    merges = train_bpe("aaabdaaabac", 259)
    assert merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert [BPEVocab(merges).vocab[i] for i in merges.values()] == [b"aa", b"ab", b"aaab"]


def test_training_matches_hugging_face_until_the_first_tie():
    text = data.shakespeare()[:50_000]
    steps = list(merge_steps(text, 256 + 300))
    untied = next(i for i, s in enumerate(steps) if s.tied)
    assert untied > 20
    ours = check._merges_as_bytes({s.pair: s.new_id for s in steps})[:untied]
    assert ours == check._hf_bpe_merges(text, 256 + 300)[:untied]


def test_training_stops_when_no_pair_is_left():
    assert train_bpe("ab", 300) == {(97, 98): 256}


def test_merge_does_not_overlap():
    assert merge([7, 7, 7], (7, 7), 9) == [9, 7]


def test_wordpiece_matches_hugging_face():
    check.wordpiece_hidden(wordpiece_encode)
    assert wordpiece_encode("", {"[UNK]": 0}) == []


def test_reference_passes_every_named_check():
    """The lab's checks accept the reference implementation (they can pass)."""
    from labsupport import tokenizers as ref

    for part, fn in [("count_pairs", ref.count_pairs), ("merge", ref.merge), ("train", ref.train_bpe),
                     ("encode", ref.encode), ("decode", ref.decode), ("wordpiece", ref.wordpiece_encode)]:
        getattr(check, f"{part}_examples")(fn)
        getattr(check, f"{part}_hidden")(fn)


def test_count_pairs_checks_accept_a_counter_and_see_the_callers_dict():
    from collections import Counter

    import pytest

    from labsupport.checks import CheckFailed

    def as_counter(ids, counts=None):  # returns a Counter when no dict is given: correct
        pairs = Counter(zip(ids, ids[1:]))
        if counts is None:
            return pairs
        for pair, n in pairs.items():
            counts[pair] = counts.get(pair, 0) + n
        return counts

    check.count_pairs_examples(as_counter)
    check.count_pairs_hidden(as_counter)

    def into_a_copy(ids, counts=None):
        counts = dict(counts or {})
        for pair in zip(ids, ids[1:]):
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    with pytest.raises(CheckFailed, match="passed in"):
        check.count_pairs_hidden(into_a_copy)


def test_merge_check_sees_an_in_place_edit():
    import pytest

    from labsupport.checks import CheckFailed

    def in_place(ids, pair, new_id):
        i = 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == pair:
                ids[i:i + 2] = [new_id]
            i += 1
        return ids

    with pytest.raises(CheckFailed, match="must not modify"):
        check.merge_hidden(in_place)


def test_visible_encode_check_catches_a_missing_pre_tokenisation():
    import pytest

    from labsupport.checks import CheckFailed

    def whole_text(text, bpe):
        ids = [bpe.byte_ids[b] for b in text.encode()]
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: bpe.merges.get(p, float("inf")))
            if pair not in bpe.merges:
                break
            ids = merge(ids, pair, bpe.merges[pair])
        return ids

    with pytest.raises(CheckFailed):
        check.encode_examples(whole_text)
