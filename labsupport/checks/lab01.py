"""Named checks for lab 1 (tokenizers). Test cells call these and nothing else.

Visible checks (``*_examples``) use small hand-checkable cases. Hidden checks compare the
student's functions with Hugging Face ``tokenizers`` (the oracle) and with the reference in
:mod:`labsupport.tokenizers` on seeded random inputs, edge cases and arbitrary Unicode.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping

from hypothesis import given
from hypothesis import strategies as st

from labsupport import data
from labsupport import tokenizers as ref
from labsupport.checks import (
    CheckFailed,
    call,
    check_equal,
    check_true,
    check_type,
    on_student_side,
    passed,
    property_settings,
)
from labsupport.checks import in_range as in_range  # re-exported: test cells call check.in_range
from labsupport.tokenizers.bpe import merge_steps
from labsupport.tokenizers.bytelevel import BPEVocab, bytes_to_unicode

_PROPERTY = property_settings(150)

# Texts that exercise every branch of GPT-2's pre-tokenisation and of byte-level encoding.
VARIED_TEXTS = [
    "Hello world", "hello world!", "  leading and trailing spaces  ", "tabs\tand\nnewlines\n\n\n",
    "don't you'll we've I'm they'd it's", "numbers 12345 and 3.14159, 1,000,000",
    "naïve café Ångström façade", "日本語のテキスト", "emoji 🤗🚀 and ZWJ 👩‍💻", "a" * 100,
    "MiXeD CaSe WoRdS", "punctuation!!! ??? ... ---", "Ġ is not a space", "\u00a0non-breaking\u3000",
    "<|endoftext|>", "before<|endoftext|>after <|endoftext|><|endoftext|>", "",
]


def _random_text(rng: random.Random, n: int) -> str:
    alphabet = "abcdeéü 日本🤗 ,.!'\n0123456789ABCxyz"
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------- count_pairs
def _as_dict(value: object) -> object:
    """A dict subclass (``Counter``, ``defaultdict``) compares as the plain dict it is."""
    return dict(value) if isinstance(value, Mapping) else value


def count_pairs_into(count_pairs: Callable, ids: list[int], counts: dict) -> dict:
    """Trusted helper, run next to the student's code: call ``count_pairs(ids, counts)`` on a dict
    created there and report what came back *and* what became of the dict that was passed in."""
    given = dict(counts)
    got = count_pairs(ids, given)
    return {"returned": _as_dict(got), "given_after": dict(given)}


def count_pairs_examples(count_pairs: Callable) -> None:
    """Hand-checkable pair counts, and accumulation into an existing dict."""
    what = "count_pairs([1, 2, 3, 1, 2])"
    got = call(count_pairs, [1, 2, 3, 1, 2], what=what)
    check_type(got, dict, what=what)
    check_equal(_as_dict(got), {(1, 2): 2, (2, 3): 1, (3, 1): 1}, what=f"{what}: pair counts differ",
                hint="count every adjacent pair (ids[i], ids[i+1]), including repeats")
    _check_accumulates(count_pairs, [1, 2], {(1, 2): 5}, {(1, 2): 6})
    passed("count_pairs counts adjacent pairs")


def _check_accumulates(count_pairs: Callable, ids: list[int], counts: dict, expected: dict) -> None:
    what = f"count_pairs({ids}, counts={counts})"
    try:
        out = on_student_side(count_pairs_into, count_pairs, ids, counts)
    except NotImplementedError:
        raise CheckFailed(f"{what}: not implemented yet",
                          hint="replace `raise NotImplementedError()` with your code") from None
    check_equal(out["returned"], expected, what=f"{what}: the returned counts", hint="return the counts")
    check_equal(out["given_after"], expected, what=f"{what}: the dict passed in as `counts` afterwards",
                hint="add into the dict you were given (not into a copy) and return it")


def count_pairs_hidden(count_pairs: Callable, seed: int = 1) -> None:
    """Random sequences against collections.Counter; empty and single-element edge cases."""
    rng = random.Random(seed)
    for ids in ([], [7], [3, 3, 3, 3], *([rng.randrange(6) for _ in range(rng.randrange(2, 60))]
                                          for _ in range(30))):
        what = f"count_pairs({ids})"
        got = call(count_pairs, list(ids), what=what)
        check_equal(_as_dict(got), dict(Counter(zip(ids, ids[1:]))), what=f"{what}: pair counts differ",
                    hint="a list of n ids has n-1 adjacent pairs; an empty or one-id list has none")
    _check_accumulates(count_pairs, [9, 9, 9], {(9, 9): 1}, {(9, 9): 3})
    _check_accumulates(count_pairs, [4, 5, 4], {(1, 1): 2, (4, 5): 1}, {(1, 1): 2, (4, 5): 2, (5, 4): 1})
    _check_accumulates(count_pairs, [], {(2, 3): 7}, {(2, 3): 7})
    passed("count_pairs matches Counter on random sequences")


# ---------------------------------------------------------------- merge
def merge_examples(merge: Callable) -> None:
    """Hand-checkable merges, including non-overlapping occurrences."""
    cases = [(([5, 6, 7, 6, 7, 1], (6, 7), 99), [5, 99, 99, 1]),
             (([7, 7, 7], (7, 7), 99), [99, 7]),
             (([1, 2], (2, 1), 99), [1, 2])]
    for (ids, pair, new), expected in cases:
        what = f"merge({ids}, {pair}, {new})"
        got = call(merge, list(ids), pair, new, what=what)
        check_equal(got, expected, what=what,
                    hint="scan left to right; after replacing a pair, skip both of its ids")
    passed("merge replaces pairs left to right")


def merge_hidden(merge: Callable, seed: int = 2) -> None:
    """Random sequences from a tiny alphabet (many overlaps) against the reference."""
    rng = random.Random(seed)
    for _ in range(60):
        ids = [rng.randrange(4) for _ in range(rng.randrange(0, 40))]
        pair = (rng.randrange(4), rng.randrange(4))
        what = f"merge({ids}, {pair}, 256)"
        try:
            out = on_student_side(merge_keeps_input, merge, ids, pair, 256)
        except NotImplementedError:
            raise CheckFailed(f"{what}: not implemented yet",
                              hint="replace `raise NotImplementedError()` with your code") from None
        check_equal(out["returned"], ref.merge(ids, pair, 256), what=what,
                    hint="occurrences do not overlap: [a, a, a] with (a, a) gives [new, a]")
        check_true(out["input_after"] == ids, what=f"{what} must not modify its input list",
                   expected=ids, got=out["input_after"], hint="build a new list instead of editing `ids` in place")
    passed("merge matches the reference on random sequences")


def merge_keeps_input(merge: Callable, ids: list[int], pair: tuple[int, int], new_id: int) -> dict:
    """Trusted helper, run next to the student's code: ``merge`` on a list created there, and that
    list afterwards (a check made on the grader's copy of the argument could never fail)."""
    mine = list(ids)
    got = merge(mine, tuple(pair), new_id)
    return {"returned": list(got) if isinstance(got, list) else got, "input_after": list(mine)}


# ---------------------------------------------------------------- train_bpe
def _merges_as_bytes(merges: dict) -> list[tuple[bytes, bytes]]:
    vocab = BPEVocab(merges).vocab
    return [(vocab[a], vocab[b]) for a, b in merges]


def _check_merges(got: object, expected: dict, what: str, hint: str) -> None:
    check_type(got, dict, what=what, hint="return a dict {(left_id, right_id): new_id}")
    check_equal(list(got.items()), list(expected.items()), what=f"{what}: merges differ "
                "(as an ordered list of ((left, right), new_id))", hint=hint)


def train_examples(train_bpe: Callable) -> None:
    """The classic ``aaabdaaabac`` example, and a vocabulary with no merges."""
    what = 'train_bpe("aaabdaaabac", 259)'
    got = call(train_bpe, "aaabdaaabac", 259, what=what)
    _check_merges(got, {(97, 97): 256, (97, 98): 257, (256, 257): 258}, what,
                  "1st: 'aa' (4 times); 2nd: 'ab' and (256, 'a') both occur twice — ties go to "
                  "the smallest pair, (97, 98) < (256, 97)")
    got = call(train_bpe, "hello", 256, what='train_bpe("hello", 256)')
    _check_merges(got, {}, 'train_bpe("hello", 256)', "vocab_size 256 leaves room for no merge")
    passed("train_bpe learns the hand-checked merges")


def _hf_bpe_merges(text: str, vocab_size: int) -> list[tuple[bytes, bytes]]:
    """Merges learned by Hugging Face's BPE trainer with GPT-2's byte-level pre-tokenisation."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer)
    u2b = {u: b for b, u in bytes_to_unicode().items()}
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return [tuple(bytes(u2b[c] for c in side) for side in pair) for pair in pairs]


def train_hidden(train_bpe: Callable, seed: int = 3) -> None:
    """Against Hugging Face's trainer (up to the first tie) and the reference (tie rule)."""
    rng = random.Random(seed)
    start = rng.randrange(0, 900_000)
    corpus = data.shakespeare()[start:start + 12_000] + " naïve café 日本語 🤗🤗 don't 1999 "
    vocab_size = 256 + 120
    what = f"train_bpe(<12,000 characters of Shakespeare from offset {start}>, {vocab_size})"
    got = call(train_bpe, corpus, vocab_size, what=what)
    check_type(got, dict, what=what, hint="return a dict {(left_id, right_id): new_id}")
    steps = list(merge_steps(corpus, vocab_size))
    untied = next((i for i, s in enumerate(steps) if s.tied), len(steps))
    hf = _hf_bpe_merges(corpus, vocab_size)[:untied]
    mine = _merges_as_bytes(got)[:untied] if _ids_consistent(got) else None
    check_equal(mine, hf, what=f"{what}: the first {untied} merges (before any tie) differ from "
                "Hugging Face's BPE trainer, as (left bytes, right bytes)",
                hint="split text with GPT2_SPLIT_PATTERN first and count pairs inside chunks only; "
                     "new ids are 256, 257, … in learning order")
    _check_merges(got, {s.pair: s.new_id for s in steps}, what,
                  "on ties pick the smallest pair (compare left ids, then right ids)")
    for k in range(3):  # tie-heavy corpora: tiny alphabets, words repeated
        words = ["".join(rng.choice("ab c") for _ in range(rng.randrange(1, 6))) for _ in range(40)]
        text = " ".join(rng.choice(words) for _ in range(300))
        what = f"train_bpe(<tie-heavy corpus {k}: {text[:40]!r}…>, 300)"
        _check_merges(call(train_bpe, text, 300, what=what), ref.train_bpe(text, 300), what,
                      "on ties pick the smallest pair (compare left ids, then right ids); stop "
                      "early when no pair is left")
    passed("train_bpe matches Hugging Face's trainer and the tie rule")


def _ids_consistent(merges: dict) -> bool:
    """True when every merge refers only to ids known at that point (so bytes can be rebuilt)."""
    known = set(range(256))
    for (a, b), new in merges.items():
        if a not in known or b not in known:
            return False
        known.add(new)
    return True


# ---------------------------------------------------------------- encode
def _hf_gpt2():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE.from_file(str(data.path("gpt2_tokenizer/encoder.json")),
                                         str(data.path("gpt2_tokenizer/vocab.bpe"))))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def encode_examples(encode: Callable) -> None:
    """GPT-2's known ids, and a toy vocabulary."""
    gpt2 = ref.load_gpt2()
    for text, expected in [("Hello world", [15496, 995]),
                           ("hello <|endoftext|>", [31373, 220, 50256]),
                           ("hello\n\nworld  again", [31373, 198, 198, 6894, 220, 757])]:
        what = f"encode({text!r}, gpt2)"
        got = call(encode, text, gpt2, what=what)
        check_equal(got, expected, what=what, hint="split off special tokens, then chunks with "
                    "GPT2_SPLIT_PATTERN; map bytes through bpe.byte_ids; apply merges lowest id first")
    toy = BPEVocab({(97, 97): 256, (97, 98): 257, (256, 257): 258})
    check_equal(call(encode, "aaabdaaabac", toy, what='encode("aaabdaaabac", toy)'),
                [258, 100, 258, 97, 99], what='encode("aaabdaaabac", toy)',
                hint="apply merges in the order they were learned (lowest new id first)")
    across = BPEVocab({(111, 32): 256})  # one merge: "o" + " " — it can never apply inside a chunk
    what = 'encode("go go", {(ord("o"), ord(" ")): 256})'
    check_equal(call(encode, "go go", across, what=what), [103, 111, 32, 103, 111], what=what,
                hint="pre-tokenise with GPT2_SPLIT_PATTERN first ('go', ' go'): a merge never crosses "
                     "a chunk boundary")
    passed("encode reproduces GPT-2's ids")


def encode_hidden(encode: Callable, seed: int = 4) -> None:
    """Varied and random text against Hugging Face ``tokenizers`` loading the same GPT-2 files."""
    rng = random.Random(seed)
    gpt2, hf = ref.load_gpt2(), _hf_gpt2()
    start = rng.randrange(0, 1_000_000)
    texts = [*VARIED_TEXTS, data.shakespeare()[start:start + 3000],
             *(_random_text(rng, rng.randrange(1, 80)) for _ in range(20))]
    for text in texts:
        what = f"encode({text[:60]!r}{'…' if len(text) > 60 else ''}, gpt2)"
        check_equal(call(encode, text, gpt2, what=what), hf.encode(text).ids,
                    what=f"{what} differs from Hugging Face tokenizers",
                    hint="apply merges in learned order (lowest merge id first), not by frequency; "
                         "keep each chunk's leading space")
    # learned order ≠ frequency order: "bc" was learned first although "ab" is more frequent here
    toy = BPEVocab({(98, 99): 256, (97, 98): 257})
    check_equal(call(encode, "abc", toy, what='encode("abc", toy)'), [97, 256],
                what='encode("abc", {(b,c): 256, (a,b): 257})',
                hint="the merge learned first (lowest id) wins, wherever it is in the chunk")

    @_PROPERTY
    @given(st.text(max_size=40))
    def round_trip(s: str) -> None:
        ids = call(encode, s, gpt2, what=f"encode({s!r}, gpt2)")
        if ref.decode(ids, gpt2) != s:
            raise CheckFailed(f"decode(encode({s!r})) must give the text back", s,
                              ref.decode(ids, gpt2), "encode every byte of every chunk")

    round_trip()
    passed("encode matches Hugging Face tokenizers on varied and random text")


# ---------------------------------------------------------------- decode
def decode_examples(decode: Callable) -> None:
    """Plain decoding and a split multi-byte character."""
    gpt2 = ref.load_gpt2()
    check_equal(call(decode, [15496, 995], gpt2, what="decode([15496, 995], gpt2)"), "Hello world",
                what="decode([15496, 995], gpt2)", hint="join vocab bytes, then .decode('utf-8')")
    euro = gpt2.byte_ids[0xE2], gpt2.byte_ids[0x82]  # the first two bytes of "€" (E2 82 AC)
    what = "decode(<the first 2 of the 3 bytes of '€'>, gpt2)"
    check_equal(call(decode, list(euro), gpt2, what=what), "\ufffd", what=what,
                hint="invalid UTF-8 must show as U+FFFD (errors='replace'), never vanish")
    passed("decode turns ids back into text")


def decode_hidden(decode: Callable, seed: int = 5) -> None:
    """Random id sequences against Hugging Face's ByteLevel decoder; round trip on any Unicode."""
    rng = random.Random(seed)
    gpt2, hf = ref.load_gpt2(), _hf_gpt2()
    for _ in range(40):
        ids = [rng.randrange(50257) for _ in range(rng.randrange(0, 12))]
        ids += [gpt2.byte_ids[b] for b in rng.sample(range(128, 256), 3)]  # stray UTF-8 fragments
        rng.shuffle(ids)
        what = f"decode({ids}, gpt2)"
        check_equal(call(decode, ids, gpt2, what=what), hf.decode(ids, skip_special_tokens=False),
                    what=f"{what} differs from Hugging Face's ByteLevel decoder",
                    hint="decode the concatenated bytes once, with errors='replace'")

    @_PROPERTY
    @given(st.text(max_size=40))
    def round_trip(s: str) -> None:
        got = call(decode, ref.encode(s, gpt2), gpt2, what=f"decode(encode({s!r}))")
        check_equal(got, s, what=f"decode(encode({s!r})) must give the text back",
                    hint="concatenate all bytes before decoding: characters span several tokens")

    round_trip()
    passed("decode matches Hugging Face and round-trips arbitrary Unicode")


# ---------------------------------------------------------------- wordpiece
BERT_LIKE_VOCAB = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "a": 4, "##a": 5, "aff": 6,
                   "play": 7, "##ing": 8, "##in": 9, "##g": 10, "p": 11, "##l": 12, "##ay": 13}


def wordpiece_examples(wordpiece_encode: Callable) -> None:
    """Greedy longest match, continuation prefix, unknown words, too-long words."""
    cases = [("unaffable", [1, 2, 3]), ("playing", [7, 8]), ("play", [7]),
             ("xyz", [0]), ("unx", [0]), ("a" * 101, [0])]
    for word, expected in cases:
        what = f"wordpiece_encode({word[:20]!r}{'…' if len(word) > 20 else ''}, vocab)"
        check_equal(call(wordpiece_encode, word, BERT_LIKE_VOCAB, what=what), expected, what=what,
                    hint="take the longest piece that is in the vocabulary ('##' + piece after the "
                         "start); if any position fails, the whole word is [UNK]; words longer "
                         "than max_input_chars_per_word are [UNK]")
    passed("wordpiece_encode matches greedy longest-match-first")


def wordpiece_hidden(wordpiece_encode: Callable, seed: int = 6) -> None:
    """Random vocabularies and words against Hugging Face's ``WordPiece`` model."""
    from tokenizers.models import WordPiece

    rng = random.Random(seed)
    for trial in range(8):
        pieces = {"".join(rng.choice("abcé") for _ in range(rng.randrange(1, 5))) for _ in range(30)}
        vocab = {"[UNK]": 0}
        for piece in sorted(pieces):
            vocab.setdefault(piece, len(vocab))
            if rng.random() < 0.7:
                vocab.setdefault("##" + piece, len(vocab))
        max_chars = rng.choice([5, 12, 100])
        model = WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=max_chars)
        for _ in range(40):
            word = "".join(rng.choice("abcéd") for _ in range(rng.randrange(1, 14)))
            what = f"wordpiece_encode({word!r}, <random vocab {trial}>, max_input_chars_per_word={max_chars})"
            got = call(wordpiece_encode, word, vocab, "[UNK]", max_chars, what=what)
            check_equal(got, [t.id for t in model.tokenize(word)],
                        what=f"{what} differs from Hugging Face's WordPiece",
                        hint="longest match first: start from the whole remaining word and shrink "
                             "from the right")
    passed("wordpiece_encode matches Hugging Face's WordPiece")
