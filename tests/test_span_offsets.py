"""Per-entity-type logit offsets tuned for span macro-F1 (``skimb.metrics.tune_span_offsets``)."""

import numpy as np
import pytest

from skimb.metrics import span_f1_score, span_macro_f1_from_logits, tune_span_offsets
from skimb.tokens import repair_bio

CLASSES = ["B-A", "B-B", "I-A", "I-B", "O"]


def _random_sentences(seed, n=40, max_len=8):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, max_len, size=n)  # empty sentences too
    tags = [repair_bio([CLASSES[k] for k in rng.integers(0, len(CLASSES), size=m)]) for m in lengths]
    logits = [rng.normal(size=(m, len(CLASSES))) for m in lengths]
    return tags, logits


@pytest.mark.parametrize("seed", range(20))
def test_the_vectorised_score_is_seqevals_macro_f1_of_the_repaired_argmax(seed):
    tags, logits = _random_sentences(seed)
    offsets = np.random.default_rng(100 + seed).normal(size=len(CLASSES))
    pred = [repair_bio([CLASSES[k] for k in (lg + offsets).argmax(1)]) for lg in logits]
    assert span_macro_f1_from_logits(tags, logits, CLASSES, offsets) == pytest.approx(
        span_f1_score(tags, pred, average="macro"), abs=1e-12)


def _shy_tagger(seed, n=300):
    """Sentences of one to three words; the tagger's logits for the rare type B sit 1.5 below where
    they should, so it misses most B spans."""
    rng = np.random.default_rng(seed)
    tags, logits = [], []
    for _ in range(n):
        sent = [str(rng.choice(["O", "B-A", "B-B"], p=[0.6, 0.3, 0.1])) for _ in range(rng.integers(1, 4))]
        lg = rng.normal(0.0, 0.7, size=(len(sent), len(CLASSES)))
        for i, t in enumerate(sent):
            lg[i, CLASSES.index(t)] += 2.0
        lg[:, [1, 3]] -= 1.5
        tags.append(sent)
        logits.append(lg)
    return tags, logits


def test_offsets_tuned_on_one_split_raise_span_macro_f1_on_another():
    tags, logits = _shy_tagger(0)
    offsets = tune_span_offsets(tags, logits, CLASSES)
    assert offsets[1] == offsets[3] > 0.5 and offsets[4] == 0.0  # B and I of a type move together; O stays
    test_tags, test_logits = _shy_tagger(1)
    before = span_macro_f1_from_logits(test_tags, test_logits, CLASSES)
    after = span_macro_f1_from_logits(test_tags, test_logits, CLASSES, offsets)
    assert after > before + 0.05


def test_bagged_offsets_are_reproducible_and_stay_near_the_single_search():
    tags, logits = _shy_tagger(0)
    single = tune_span_offsets(tags, logits, CLASSES)
    bagged = tune_span_offsets(tags, logits, CLASSES, n_bootstrap=8, random_state=1)
    np.testing.assert_array_equal(bagged, tune_span_offsets(tags, logits, CLASSES, n_bootstrap=8, random_state=1))
    assert not np.array_equal(bagged, single) and np.abs(bagged - single).max() < 1.0


@pytest.mark.parametrize("n_bootstrap", [0, 5])
def test_a_type_without_true_spans_neither_moves_nor_counts(n_bootstrap):
    # y holds A and O only and every A is found; the tagger also predicts B on the O sentences.
    # Pushing B down, or A up over B there, would raise this split's macro-F1 over the predicted
    # types, and suppress B wherever it does occur: the search scores the true types only.
    tags = [["B-A"], ["O"]] * 20
    logits = [np.array([[1.0, 0.0, 0.0, 0.0, 0.0]]), np.array([[0.0, 0.2, 0.0, 0.0, 0.1]])] * 20
    np.testing.assert_array_equal(tune_span_offsets(tags, logits, CLASSES, n_bootstrap=n_bootstrap), np.zeros(5))


def test_a_split_without_entities_keeps_the_argmax():
    tags = [["O", "O"], ["O"]]
    logits = [np.zeros((2, 5)), np.zeros((1, 5))]
    np.testing.assert_array_equal(tune_span_offsets(tags, logits, CLASSES), np.zeros(5))


@pytest.mark.parametrize("tags,logits,classes,message", [
    ([["O", "B-A"]], [np.zeros((3, 5))], CLASSES, r"sentence 0: 2 tags and 5 classes need logits of shape \(2, 5\)"),
    ([["O"], ["B-C"]], [np.zeros((1, 5)), np.zeros((1, 5))], CLASSES, r"sentence 1: tag 'B-C' is not in classes"),
    ([["O"]], [np.zeros((1, 5)), np.zeros((1, 5))], CLASSES, "y_true has 1 sentences but logits 2"),
    ([["O"]], [np.zeros((1, 2))], ["O", "PER"], "classes must be IOB2 tags"),
])
def test_bad_input_names_the_sentence(tags, logits, classes, message):
    with pytest.raises(ValueError, match=message):
        tune_span_offsets(tags, logits, classes)


def test_nan_logits_wrong_offsets_and_a_negative_bootstrap_are_refused():
    tags = [["O", "B-A"]]
    with pytest.raises(ValueError, match="logits contain NaN"):  # tuned to zeros before
        tune_span_offsets(tags, [np.full((2, 5), np.nan)], CLASSES)
    with pytest.raises(ValueError, match=r"offsets must have one value per tag \(5\), got shape \(1,\)"):
        span_macro_f1_from_logits(tags, [np.zeros((2, 5))], CLASSES, offsets=[1.0])  # broadcast before
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 0"):
        tune_span_offsets(tags, [np.zeros((2, 5))], CLASSES, n_bootstrap=-1)
