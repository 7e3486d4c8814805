"""Tests for skimb.metrics: multi-class, multi-label, span-level metrics, tables and plots."""

from __future__ import annotations

import math
import random
import re
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from skimb.metrics import (
    format_report,
    get_entities,
    imbalance_report,
    multilabel_report,
    plot_per_class_f1,
    plot_quartile_f1,
    quartile_f1,
    real_class_f1_score,
    span_f1_score,
    span_report,
    tune_thresholds,
)

# ---------------------------------------------------------------------------
# multi-class
# ---------------------------------------------------------------------------

# 10 samples, classes a (4), b (3), c (2), d (1)
Y_TRUE = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "d"]
Y_PRED = ["a", "a", "a", "b", "b", "b", "a", "c", "a", "a"]
# by hand:
#   a: tp=3, predicted 6 (0,1,2,6,8,9), true 4 -> P=1/2, R=3/4, F1=0.6
#   b: tp=2, predicted 3 (3,4,5),       true 3 -> P=2/3, R=2/3, F1=2/3
#   c: tp=1, predicted 1,               true 2 -> P=1,   R=1/2, F1=2/3
#   d: tp=0, predicted 0,               true 1 -> P=0,   R=0,   F1=0
HAND_F1 = {"a": 0.6, "b": 2 / 3, "c": 2 / 3, "d": 0.0}


def test_hand_computed_multiclass():
    rep = imbalance_report(Y_TRUE, Y_PRED, digits=None)
    assert list(rep["per_class"]) == ["a", "b", "c", "d"]
    assert rep["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.75, "f1": 0.6, "support": 4})
    assert rep["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert rep["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert rep["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rep["macro_f1"] == pytest.approx(sum(HAND_F1.values()) / 4)
    assert rep["weighted_f1"] == pytest.approx((4 * 0.6 + 3 * 2 / 3 + 2 * 2 / 3 + 0) / 10)
    assert rep["accuracy"] == pytest.approx(0.6)
    assert rep["micro_f1"] == pytest.approx(0.6)
    assert rep["balanced_accuracy"] == pytest.approx((0.75 + 2 / 3 + 0.5 + 0) / 4)
    # quartiles by test frequency: d(1) | c(2) | b(3) | a(4)
    assert rep["quartile_labels"] == {"Q1": ["d"], "Q2": ["c"], "Q3": ["b"], "Q4": ["a"]}
    assert rep["quartile_f1"] == pytest.approx({"Q1": 0.0, "Q2": 2 / 3, "Q3": 2 / 3, "Q4": 0.6})
    assert rep["frequency_source"] == "test"
    assert rep["support"] == 10
    # default digits=4 rounds
    assert imbalance_report(Y_TRUE, Y_PRED)["macro_f1"] == round(sum(HAND_F1.values()) / 4, 4)


def test_geometric_mean_matches_imblearn():
    from imblearn.metrics import geometric_mean_score

    rep = imbalance_report(Y_TRUE, Y_PRED, digits=None)
    assert rep["geometric_mean"] == pytest.approx(geometric_mean_score(Y_TRUE, Y_PRED, average="macro"))


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.choice(6, size=200, p=[0.5, 0.2, 0.12, 0.1, 0.05, 0.03])
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 7, 200))  # class 6 only predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak
        rep = imbalance_report(y_true, y_pred, digits=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert rep["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
        assert rep["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted", zero_division=0))
        assert rep["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro"))
        assert rep["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
        per = f1_score(y_true, y_pred, average=None, labels=list(range(7)), zero_division=0)
    assert [rep["per_class"][k]["f1"] for k in range(7)] == pytest.approx(per)
    assert all(type(k) is int for k in rep["per_class"])
    assert rep["per_class"][6]["support"] == 0


@pytest.mark.parametrize("digits", [-1, 2.5, True])
def test_imbalance_report_refuses_digits_that_are_no_count_of_decimals(digits):
    # -1 rounded every figure to tens: an accuracy of 1.0 read 0.0
    with pytest.raises(ValueError, match=f"digits must be None or an integer >= 0, got {digits!r}"):
        imbalance_report(Y_TRUE, Y_PRED, digits=digits)
    assert imbalance_report(Y_TRUE, Y_TRUE, digits=0)["accuracy"] == 1.0


def test_a_single_string_for_labels_or_label_names_is_refused():
    # labels="fire" reported the classes 'f', 'i', 'r', 'e' (all support 0); "flood" said "duplicates"
    from skimb.metrics import example_counts, real_class_f1_score

    y, p = ["flood", "fire", "flood"], ["flood", "flood", "fire"]
    for call in (lambda: imbalance_report(y, p, labels="fire"), lambda: quartile_f1(y, p, labels="flood"),
                 lambda: real_class_f1_score(y, p, catch_all="fire", labels="flood")):
        with pytest.raises(TypeError, match=r"labels must be a sequence of classes, got the single string .*\['"):
            call()
    with pytest.raises(TypeError, match=r"labels must be a sequence of classes, got the single string 'flood'"):
        example_counts("multiclass", y, p, labels="flood")
    with pytest.raises(TypeError, match=r"label_names must be a sequence of names, got the single string 'ab'"):
        multilabel_report([[1, 0]], [[1, 0]], label_names="ab")


def test_string_and_int_labels_give_same_numbers():
    mapping = {"a": 10, "b": 20, "c": 30, "d": 40}
    rs = imbalance_report(Y_TRUE, Y_PRED, digits=None)
    ri = imbalance_report([mapping[v] for v in Y_TRUE], np.array([mapping[v] for v in Y_PRED]), digits=None)
    assert set(ri["per_class"]) == {10, 20, 30, 40}
    for k, v in mapping.items():
        assert rs["per_class"][k] == ri["per_class"][v]
    for key in ("macro_f1", "weighted_f1", "micro_f1", "accuracy", "balanced_accuracy", "geometric_mean"):
        assert rs[key] == pytest.approx(ri[key])
    assert rs["quartile_f1"] == pytest.approx(ri["quartile_f1"])


def test_mixed_label_types_and_lengths_raise():
    with pytest.raises(ValueError, match="strings"):
        imbalance_report(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="lengths"):
        imbalance_report(["a", "b"], ["a"])


@pytest.mark.parametrize("func", [imbalance_report, quartile_f1, real_class_f1_score])
def test_single_label_metrics_point_a_multilabel_target_to_multilabel_report(func):
    Y = np.array([[1, 0, 1], [0, 1, 0]])
    kwargs = {"catch_all": 0} if func is real_class_f1_score else {}
    for y_true, y_pred, name in ((Y, Y, "y_true"), (Y[:, 0], Y, "y_pred")):
        with pytest.raises(ValueError, match=rf"{name} has shape \(2, 3\): one label per sample \(1-D\) is needed; .*"
                                             r"indicator matrix is scored by skimb.metrics.multilabel_report"):
            func(y_true, y_pred, **kwargs)


def test_explicit_labels_subset_and_order():
    rep = imbalance_report(Y_TRUE, Y_PRED, labels=["d", "a"], digits=None)
    assert list(rep["per_class"]) == ["d", "a"]
    assert rep["macro_f1"] == pytest.approx(0.3)


def test_quartile_assignment_with_train_labels():
    # 8 classes, train frequencies 1..8 in a shuffled order -> two classes per quartile
    classes = list("hgfedcba")
    train = [c for i, c in enumerate(classes) for _ in range(i + 1)]  # h:1, g:2, ..., a:8
    y_true = list("abcdefgh")
    y_pred = list("abcdxxxx")  # a..d right (F1 1), e..h wrong (F1 0)
    rep = imbalance_report(y_true, y_pred, train_labels=train, digits=None)
    assert rep["frequency_source"] == "train"
    assert rep["quartile_labels"] == {"Q1": ["h", "g"], "Q2": ["f", "e"], "Q3": ["d", "c"], "Q4": ["b", "a"]}
    assert rep["quartile_f1"] == {"Q1": 0.0, "Q2": 0.0, "Q3": 1.0, "Q4": 1.0}
    # "x" appears only in y_pred: in the table, not in the quartiles
    assert "x" in rep["per_class"] and "x" not in rep["frequencies"]
    assert quartile_f1(y_true, y_pred, train_labels=train) == rep["quartile_f1"]


def test_quartile_split_uneven_and_fewer_than_four_classes():
    # 5 classes with frequencies 1..5 -> array_split sizes 2,1,1,1
    y = ["a"] * 1 + ["b"] * 2 + ["c"] * 3 + ["d"] * 4 + ["e"] * 5
    rep = imbalance_report(y, y, digits=None)
    assert rep["quartile_labels"] == {"Q1": ["a", "b"], "Q2": ["c"], "Q3": ["d"], "Q4": ["e"]}
    # 2 classes -> Q3 and Q4 empty -> NaN
    q = quartile_f1(["a", "a", "b"], ["a", "b", "b"])
    assert q["Q1"] == pytest.approx(2 / 3) and q["Q2"] == pytest.approx(2 / 3)
    assert math.isnan(q["Q3"]) and math.isnan(q["Q4"])
    # a class unseen in training has frequency 0 -> rarest
    q = imbalance_report(["a", "b", "z"], ["a", "b", "b"], train_labels=["a", "a", "b"], digits=None)
    assert q["quartile_labels"]["Q1"] == ["z"]
    # ties keep sorted-label order
    assert imbalance_report(list("dcba"), list("dcba"))["quartile_labels"] == {
        "Q1": ["a"], "Q2": ["b"], "Q3": ["c"], "Q4": ["d"]
    }


def test_format_report_markdown_and_text():
    rep = imbalance_report(Y_TRUE, Y_PRED)
    md = format_report(rep)
    assert md.splitlines()[0] == "| class | precision | recall | f1 | support |"
    assert "| d | 0.0000 | 0.0000 | 0.0000 | 1 |" in md
    assert "| macro_f1 | 0.4833 |" in md
    assert "quartile_f1 Q1 (rarest, n=1)" in md
    txt = format_report(rep, "text", digits=3)
    assert "macro_f1" in txt and "|" not in txt and "0.483" in txt
    with pytest.raises(ValueError, match="fmt"):
        format_report(rep, "html")
    for digits in (-1, 2.5, True):
        with pytest.raises(ValueError, match=r"digits must be an int >= 0"):
            format_report(rep, digits=digits)
    assert "| macro_f1 | 0 |" in format_report(rep, digits=0)
    # other report kinds
    ml = multilabel_report([[1, 0], [0, 1]], [[1, 0], [1, 1]], label_names=["x", "y"])
    assert format_report(ml).startswith("| label |")
    sp = span_report([["B-PER", "O"]], [["B-PER", "O"]])
    assert format_report(sp, "text").startswith("type")


def test_format_report_keeps_a_label_with_a_line_break_on_its_row():
    # a class name holding "\n" split its row in two, breaking the Markdown table
    rep = imbalance_report(["a", "two\nlines", "a"], ["a", "two\nlines", "two\nlines"])
    for fmt in ("markdown", "text"):
        rows = format_report(rep, fmt).split("\n\n")[0].splitlines()
        assert len(rows) == 4 and "two\\nlines" in rows[3], rows


# ---------------------------------------------------------------------------
# multi-label
# ---------------------------------------------------------------------------


def _multilabel_data(seed=0, n=300, L=6):
    rng = np.random.default_rng(seed)
    rates = np.array([0.4, 0.25, 0.15, 0.08, 0.03, 0.0])[:L]  # last label: no positives
    Y = (rng.random((n, L)) < rates).astype(int)
    score = np.clip(0.35 * Y + rng.random((n, L)) * 0.7, 0, 1)
    return Y, score


def test_multilabel_agrees_with_sklearn():
    Y, S = _multilabel_data()
    P = (S >= 0.5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = multilabel_report(Y, P, Y_score=S, label_names=list("abcdef"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg in ("macro", "micro", "weighted", "samples"):
            assert rep[f"{avg}_f1"] == pytest.approx(f1_score(Y, P, average=avg, zero_division=0))
        assert rep["micro_recall"] == pytest.approx(recall_score(Y, P, average="micro", zero_division=0))
        assert rep["micro_precision"] == pytest.approx(precision_score(Y, P, average="micro", zero_division=0))
        per = f1_score(Y, P, average=None, zero_division=0)
    assert [v["f1"] for v in rep["per_label"].values()] == pytest.approx(per)
    assert rep["per_label"]["a"]["support"] == int(Y[:, 0].sum())
    # label f has no positive -> skipped for macro AUC
    assert rep["n_labels_auc_skipped"] == 1
    assert math.isnan(rep["per_label"]["f"]["roc_auc"])
    assert rep["macro_roc_auc"] == pytest.approx(roc_auc_score(Y[:, :5], S[:, :5], average="macro"))
    assert rep["micro_roc_auc"] == pytest.approx(roc_auc_score(Y, S, average="micro"))
    # quartiles over the 5 labels with positives, by frequency a > b > c > d > e
    assert rep["quartile_labels"] == {"Q1": ["e", "d"], "Q2": ["c"], "Q3": ["b"], "Q4": ["a"]}


def test_multilabel_without_scores_sparse_and_train_Y():
    import scipy.sparse as sp

    Y, S = _multilabel_data(1, n=80, L=4)
    P = (S >= 0.5).astype(int)
    rep = multilabel_report(sp.csr_matrix(Y), sp.csr_matrix(P), train_Y=Y[::-1])
    assert math.isnan(rep["macro_roc_auc"]) and rep["n_labels_auc_skipped"] is None
    assert list(rep["per_label"]) == [0, 1, 2, 3]
    assert rep["frequency_source"] == "train"
    with pytest.raises(ValueError, match="indicator"):
        multilabel_report([[0, 2]], [[0, 1]])
    with pytest.raises(ValueError, match="MultiLabelBinarizer"):
        multilabel_report([0, 1], [0, 1])
    with pytest.raises(ValueError, match="label columns"):
        multilabel_report([[0, 1]], [[0, 1, 1]])


def test_multilabel_report_of_one_label_column():
    # scikit-learn reads one column as a binary target: "Samplewise metrics are not available outside of
    # multilabel classification"
    Y, S = _multilabel_data(2, n=60, L=3)
    P = (S >= 0.5).astype(int)
    one, full = multilabel_report(Y[:, :1], P[:, :1], Y_score=S[:, :1]), multilabel_report(Y, P, Y_score=S)
    assert one["per_label"][0] == full["per_label"][0] and one["n_labels"] == 1
    assert one["macro_f1"] == one["micro_f1"] == pytest.approx(full["per_label"][0]["f1"])
    assert one["hamming_loss"] == pytest.approx(np.mean(Y[:, 0] != P[:, 0]))
    assert one["subset_accuracy"] == pytest.approx(np.mean(Y[:, 0] == P[:, 0]))
    # a row's F1 over one label: 1 where it is a true positive, else 0 (zero_division=0)
    assert one["samples_f1"] == pytest.approx(np.mean((Y[:, 0] == 1) & (P[:, 0] == 1)))


def test_tune_thresholds_improves_f1():
    rng = np.random.default_rng(3)
    n = 400
    Y = np.zeros((n, 3), dtype=int)
    Y[:, 0] = rng.random(n) < 0.3
    Y[:, 1] = rng.random(n) < 0.05
    # label 0: well calibrated; label 1: rare, positives score only ~0.3 (under-confident);
    # label 2: no positives at all
    S = np.empty((n, 3))
    S[:, 0] = np.where(Y[:, 0] == 1, rng.uniform(0.55, 1.0, n), rng.uniform(0.0, 0.45, n))
    S[:, 1] = np.where(Y[:, 1] == 1, rng.uniform(0.25, 0.4, n), rng.uniform(0.0, 0.2, n))
    S[:, 2] = rng.random(n)
    thr = tune_thresholds(Y, S)
    assert thr.shape == (3,)
    assert thr[0] == pytest.approx(0.5)  # separable around 0.5: the tie goes to the default
    grid = np.round(np.arange(1, 20) * 0.05, 2)
    # a generator grid is read (it was float()'s TypeError); a grid of no numbers is named
    np.testing.assert_array_equal(tune_thresholds(Y, S, grid=(t for t in grid)), tune_thresholds(Y, S, grid=grid))
    with pytest.raises(ValueError, match="grid must be a non-empty sequence of finite thresholds, got 'abc'"):
        tune_thresholds(Y, S, grid="abc")
    assert 0.2 < thr[1] <= 0.25
    assert thr[2] == 0.5  # no positives -> default
    f1_default = f1_score(Y[:, :2], (S[:, :2] >= 0.5).astype(int), average="macro", zero_division=0)
    f1_tuned = f1_score(Y[:, :2], (S[:, :2] >= thr[:2]).astype(int), average="macro", zero_division=0)
    assert f1_tuned > f1_default + 0.3
    assert f1_tuned == pytest.approx(1.0)
    # custom grid and default
    thr2 = tune_thresholds(Y, S, grid=[0.1, 0.3], default=0.0)
    assert thr2[2] == 0.0 and thr2[1] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="grid"):
        tune_thresholds(Y, S, grid=[])
    with pytest.raises(ValueError, match="shape"):
        tune_thresholds(Y, S[:, :2])
    for default in (float("nan"), None, "0.5", True):  # NaN gave a label without positives a NaN threshold
        with pytest.raises(ValueError, match=f"default must be a finite threshold .*got {re.escape(repr(default))}"):
            tune_thresholds(Y, S, default=default)


def test_bagged_thresholds_average_the_bootstrap_searches():
    """Bagging averages the searches on resampled rows, for each label over the resamples that hold
    some of its positives."""
    rng = np.random.default_rng(5)
    n = 200
    Y = np.zeros((n, 2), dtype=int)
    Y[:, 0] = rng.random(n) < 0.3
    Y[0, 1] = 1  # one positive, scored among the negatives
    S = np.where(Y == 1, rng.uniform(0.5, 1.0, (n, 2)), rng.uniform(0.0, 0.45, (n, 2)))
    S[0, 1] = 0.12
    single = tune_thresholds(Y, S)
    assert single[1] <= 0.12  # one search follows the lone positive down
    bagged = tune_thresholds(Y, S, n_bootstrap=25, random_state=0)
    draws = np.random.default_rng(0)
    rows = [draws.integers(0, n, n) for _ in range(25)]
    np.testing.assert_allclose(bagged[0], np.mean([tune_thresholds(Y[r], S[r])[0] for r in rows]))
    holding = [r for r in rows if 0 in r]
    assert 0 < len(holding) < 25  # some resamples miss the lone positive ...
    np.testing.assert_allclose(bagged[1], np.mean([tune_thresholds(Y[r], S[r])[1] for r in holding]))
    assert bagged[1] <= 0.12  # ... and do not pull its threshold to the default, above the positive
    np.testing.assert_array_equal(tune_thresholds(Y, S, n_bootstrap=25, random_state=0), bagged)
    # two positives: 4 of 30 resamples hold neither; their default 0.5 lifted the mean above both (0.197)
    Y2, S2 = np.zeros((40, 1), dtype=int), np.full((40, 1), 0.05)
    Y2[:2], S2[:2] = 1, 0.15
    assert tune_thresholds(Y2, S2, n_bootstrap=30, random_state=0)[0] <= 0.15
    # a label without positives anywhere keeps the default
    assert tune_thresholds(np.c_[Y2, np.zeros(40, int)], np.c_[S2, S2], n_bootstrap=5, default=0.4)[1] == 0.4
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 0, got -2"):
        tune_thresholds(Y, S, n_bootstrap=-2)  # returned NaN thresholds


# ---------------------------------------------------------------------------
# spans
# ---------------------------------------------------------------------------

TYPES = ["PER", "LOC", "ORG", "MISC", "DATE"]
TYPE_WEIGHTS = [8, 4, 2, 1, 0.3]  # imbalanced entity types


def _type(rng: random.Random) -> str:
    return rng.choices(TYPES, weights=TYPE_WEIGHTS)[0]


def _random_iob2(rng: random.Random, n: int, valid: bool) -> list[str]:
    """A random IOB2 sequence; valid=False also emits stray I- tags and type switches."""
    tags, prev_type = [], None
    for _ in range(n):
        u = rng.random()
        if u < 0.45:
            tags.append("O")
            prev_type = None
        elif u < 0.7 or (valid and prev_type is None):
            prev_type = _type(rng)
            tags.append("B-" + prev_type)
        else:
            t = prev_type if (valid or rng.random() < 0.6) and prev_type else _type(rng)
            tags.append("I-" + t)
            prev_type = t
    return tags


def _perturb(rng: random.Random, tags: list[str]) -> list[str]:
    out = list(tags)
    for i in range(len(out)):
        if rng.random() < 0.2:
            # "EVENT" occurs only in predictions
            other = rng.choice(TYPES + ["EVENT"])
            out[i] = rng.choice(["O", "B-" + other, "I-" + other, out[i - 1] if i else "O"])
    return out


def _random_corpus(seed: int, n_sent: int = 200):
    rng = random.Random(seed)
    y_true, y_pred = [], []
    for s in range(n_sent):
        n = rng.randint(0, 25)
        true = _random_iob2(rng, n, valid=s % 3 != 0)
        y_true.append(true)
        y_pred.append(_perturb(rng, true) if rng.random() < 0.85 else _random_iob2(rng, n, valid=False))
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_span_metrics_equal_seqeval_strict(seed):
    pytest.importorskip("seqeval")
    from seqeval.metrics import classification_report
    from seqeval.metrics import f1_score as seq_f1
    from seqeval.scheme import IOB2, Tokens

    y_true, y_pred = _random_corpus(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True)
        ref_f1 = {
            avg: seq_f1(y_true, y_pred, mode="strict", scheme=IOB2, average=avg)
            for avg in ("micro", "macro", "weighted")
        }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = span_report(y_true, y_pred)

    types = [k for k in ref if not k.endswith(" avg")]
    assert sorted(rep["per_type"]) == sorted(types)
    assert "EVENT" in types and rep["per_type"]["EVENT"]["support"] == 0
    for t in types:
        ours = rep["per_type"][t]
        assert ours["precision"] == pytest.approx(ref[t]["precision"])
        assert ours["recall"] == pytest.approx(ref[t]["recall"])
        assert ours["f1"] == pytest.approx(ref[t]["f1-score"])
        assert ours["support"] == ref[t]["support"]
    for avg in ("micro", "macro", "weighted"):
        for ours_key, ref_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert rep[f"{avg}_{ours_key}"] == pytest.approx(ref[f"{avg} avg"][ref_key])
        assert span_f1_score(y_true, y_pred, average=avg) == pytest.approx(ref_f1[avg])
    assert rep["support"] == ref["micro avg"]["support"]
    # sentence by sentence, the decoded spans are seqeval's
    for tags in y_true + y_pred:
        ref_spans = [(e.tag, e.start, e.end) for e in Tokens(tags, IOB2).entities]
        assert get_entities(tags) == ref_spans


def test_iobes_and_bilou_decoding_match_seqeval():
    pytest.importorskip("seqeval")
    from seqeval.scheme import BILOU, IOBES, Tokens

    rng = random.Random(7)
    for _ in range(200):
        vocab = ["O", "O"] + [p + "-" + t for p in "BIES" for t in TYPES[:3]]
        tags = [rng.choice(vocab) for _ in range(rng.randint(0, 15))]
        ref = [(e.tag, e.start, e.end) for e in Tokens(tags, IOBES).entities]
        assert get_entities(tags, scheme="IOBES") == ref
        bilou = [t.replace("E-", "L-").replace("S-", "U-") for t in tags]
        ref_b = [(e.tag, e.start, e.end) for e in Tokens(bilou, BILOU).entities]
        assert get_entities(bilou, scheme="BILOU") == ref_b == ref


def test_span_hand_cases():
    # I- without B- is not an entity in strict IOB2
    assert get_entities(["I-PER", "I-PER", "O"]) == []
    assert get_entities(["O", "I-LOC"]) == []
    # adjacent B-B: two entities
    assert get_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]
    # type change I-PER -> I-LOC: PER ends, the stray I-LOC is no entity
    assert get_entities(["B-PER", "I-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 2)]
    # IOB1 (CoNLL convention) does start entities at I-
    assert get_entities(["I-PER", "I-PER", "B-PER", "I-LOC"], scheme="IOB1") == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 3, 4)
    ]
    # IOBES: an unterminated B is dropped
    assert get_entities(["B-PER", "I-PER", "O", "S-LOC"], scheme="IOBES") == [("LOC", 3, 4)]

    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "O"]]
    y_pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    rep = span_report(y_true, y_pred)
    # true spans: PER, LOC (the stray I-ORG is nothing); predicted: PER, ORG, ORG
    assert rep["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert rep["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rep["micro_precision"] == pytest.approx(1 / 3) and rep["micro_recall"] == pytest.approx(1 / 2)
    assert rep["micro_f1"] == pytest.approx(0.4)
    assert rep["macro_f1"] == pytest.approx(1 / 3)
    assert rep["weighted_f1"] == pytest.approx(0.5)
    # quartiles only over the types with support (LOC, PER: both 1 span)
    assert rep["quartile_labels"] == {"Q1": ["LOC"], "Q2": ["PER"], "Q3": [], "Q4": []}
    assert rep["quartile_f1"]["Q2"] == 1.0 and math.isnan(rep["quartile_f1"]["Q4"])
    assert span_f1_score(y_true, y_pred, average=None) == {"LOC": 0.0, "ORG": 0.0, "PER": 1.0}


def test_span_report_no_entities_and_train_tags():
    rep = span_report([["O", "O"]], [["O", "O"]])
    assert rep["micro_f1"] == 0.0 and rep["weighted_f1"] == 0.0 and math.isnan(rep["macro_f1"])
    train = [["B-LOC"], ["B-LOC"], ["B-PER"]]
    rep = span_report([["B-PER", "B-LOC"]], [["B-PER", "O"]], train_tags=train)
    assert rep["frequencies"] == {"LOC": 2, "PER": 1}
    assert rep["quartile_labels"]["Q1"] == ["PER"]


def test_span_report_names_train_tags_that_are_not_tag_lists():
    # one flat list of tags was read as sentences of letters: "malformed tag 'B'" at train sentence 0
    with pytest.raises(TypeError, match=r"train_tags\[0\] is a string .* lists of tag lists"):
        span_report([["B-PER"]], [["B-PER"]], train_tags=["B-PER", "O"])


def test_span_input_errors():
    with pytest.raises(ValueError, match="sentence 1: y_true has 2 tags but y_pred has 1"):
        span_report([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 sentences but y_pred has 1"):
        span_report([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match=r"sentence 1, position 2: malformed tag 'B_PER'"):
        span_report([["O"], ["O", "B-PER", "O"]], [["O"], ["O", "O", "B_PER"]])
    with pytest.raises(ValueError, match="sentence 0, position 0: malformed tag 'E-PER' for scheme IOB2"):
        span_report([["E-PER"]], [["O"]])
    with pytest.raises(ValueError, match="position 1: malformed tag 'B-'"):
        get_entities(["O", "B-"])
    with pytest.raises(ValueError, match="not a string"):
        span_report([["O", -100]], [["O", "O"]])
    with pytest.raises(ValueError, match="scheme"):
        get_entities(["O"], scheme="BIO3")
    # the aliases skimb.tokens accepts name the same schemes here
    tags = [["B-PER", "I-PER", "O", "S-LOC"]]
    assert span_f1_score(tags, tags, scheme="bioes") == span_f1_score(tags, tags, scheme="IOBES") == 1.0
    assert get_entities(["B-PER", "I-PER"], scheme="BIO") == get_entities(["B-PER", "I-PER"], scheme="IOB2")
    with pytest.raises(TypeError, match="one sentence"):
        get_entities([["B-PER"]])
    with pytest.raises(ValueError, match="average"):
        span_f1_score([["O"]], [["O"]], average="samples")


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_write_png(tmp_path):
    rep_a = imbalance_report(Y_TRUE, Y_PRED, train_labels=Y_TRUE)
    rep_b = imbalance_report(Y_TRUE, Y_TRUE)
    per_class = {
        "ce": {k: v["f1"] for k, v in rep_a["per_class"].items()},
        "focal": {k: v["f1"] for k, v in rep_b["per_class"].items()},
    }
    out = plot_per_class_f1(per_class, tmp_path / "sub" / "per_class.png", title="per class",
                            class_counts=rep_a["frequencies"])
    assert out == tmp_path / "sub" / "per_class.png"
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == PNG_MAGIC
    out2 = plot_per_class_f1(per_class, str(tmp_path / "plain.png"))
    assert out2.read_bytes()[:8] == PNG_MAGIC

    quart = {"ce": rep_a["quartile_f1"], "focal": quart_with_nan()}
    out3 = plot_quartile_f1(quart, tmp_path / "quartiles.png")
    assert out3.stat().st_size > 1000 and out3.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="non-empty"):
        plot_quartile_f1({}, tmp_path / "x.png")


def test_plots_draw_dollar_signs_in_names_as_they_are(tmp_path):
    # matplotlib read text between two "$" as TeX: a class named "$\\frac$" failed at savefig with a
    # ParseSyntaxException, "$5 or $10" came out in italics without its dollars
    pytest.importorskip("matplotlib")
    from skimb.metrics import plot_gaps

    names = {"ce $\\frac$": {"$\\frac$": 0.5, "$5 or $10": 0.7}}
    for out in (plot_per_class_f1(names, tmp_path / "c.png", class_counts={"$\\frac$": 3}),
                plot_quartile_f1({"ce $\\frac$": quart_with_nan()}, tmp_path / "q.png"),
                plot_gaps({"$\\frac$": (0.1, -0.1, 0.2)}, tmp_path / "g.png", baseline="$\\frac$")):
        assert out.read_bytes()[:8] == PNG_MAGIC
    from skimb.metrics._plots import _literal

    assert _literal("$5 or $10") == "\\$5 or \\$10"


def test_plots_name_a_report_passed_for_its_scores(tmp_path):
    # a whole report, or its per_class dicts, per method: was "float() argument must be ... not 'dict'"
    rep = imbalance_report(Y_TRUE, Y_PRED)
    with pytest.raises(TypeError, match=r"results\['ce'\]\['per_class'\] must be an F1 score \(a number\), got "
                                        r"dict; pass e.g. report\['quartile_f1'\]"):
        plot_quartile_f1({"ce": rep}, tmp_path / "q.png")
    with pytest.raises(TypeError, match=r"results\['ce'\]\[.+\] must be an F1 score .+ for k, v in "
                                        r"report\['per_class'\]"):
        plot_per_class_f1({"ce": rep["per_class"]}, tmp_path / "c.png")
    with pytest.raises(TypeError, match=r"results\['ce'\] must be a dict of scores, got float; pass e.g. "
                                        r"report\['quartile_f1'\]"):
        plot_quartile_f1({"ce": 0.5}, tmp_path / "q.png")
    assert not list(tmp_path.iterdir())


def quart_with_nan():
    return {"Q1": 0.5, "Q2": 0.7, "Q3": 0.9, "Q4": float("nan")}


def test_paired_bootstrap_of_a_method_against_itself_is_zero():
    from skimb.metrics import example_counts, paired_bootstrap_gap

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    c = example_counts("multiclass", y, pred, labels=np.arange(4))
    assert paired_bootstrap_gap([c, c], [c, c], n_boot=200) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("task, y_true, y_pred, match", [
    ("multiclass", [0, 0, 1], ["0", "0", "1"], "mix label types"),
    ("multiclass", [0, 1], [0], "different lengths: 2 != 1"),
    ("multilabels", [[0, 1]], [[0, 1]], "task must be 'multiclass', 'multilabel' or 'token'"),
    ("multilabel", [[0, 2]], [[0, 1]], "0/1 indicator matrices"),
    ("token", [["B-A", "O"]], [["B-A"]], "sentence 0: y_true has 2 tags but y_pred has 1"),
])
def test_example_counts_refuse_what_would_count_wrongly(task, y_true, y_pred, match):
    from skimb.metrics import example_counts

    with pytest.raises(ValueError, match=match):
        example_counts(task, y_true, y_pred)
    same_type = np.asarray(["a", "b"], dtype=object)  # object arrays of strings are strings too
    assert example_counts("multiclass", same_type, np.array(["a", "a"]))[:, :, 0].sum() == 1


def test_example_counts_take_a_sparse_indicator_and_refuse_missing_labels():
    # a sparse indicator was a TypeError from len(); a NaN label counted nowhere (NaN != NaN), None a '<' error
    sp = pytest.importorskip("scipy.sparse")
    from skimb.metrics import example_counts

    Y, P = np.array([[1, 0], [0, 1], [1, 1]]), np.array([[1, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(example_counts("multilabel", sp.csr_matrix(Y), sp.csr_matrix(P)),
                                  example_counts("multilabel", Y, P))
    with pytest.raises(ValueError, match=r"y_true\[1\] is NaN: labels must not be missing"):
        example_counts("multiclass", [1.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"y_pred\[0\] is None: labels must not be missing"):
        example_counts("multiclass", ["a", "b"], [None, "a"])


def test_example_counts_reproduce_each_tasks_macro_f1():
    from sklearn.metrics import f1_score

    from skimb.metrics import example_counts, span_report
    from skimb.metrics._bootstrap import _macro_f1

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    assert _macro_f1(example_counts("multiclass", y, p).sum(0)) == pytest.approx(f1_score(y, p, average="macro"))
    Y, P = rng.integers(0, 2, (50, 4)), rng.integers(0, 2, (50, 4))
    assert _macro_f1(example_counts("multilabel", Y, P).sum(0)) == pytest.approx(
        f1_score(Y, P, average="macro", zero_division=0))
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG"], ["B-PER", "O"]]
    assert _macro_f1(example_counts("token", gold, pred).sum(0)) == pytest.approx(
        span_report(gold, pred)["macro_f1"])


def test_paired_bootstrap_names_mismatched_inputs():
    from skimb.metrics import example_counts, paired_bootstrap_gap

    c = example_counts("multiclass", [0, 1], [0, 1])
    with pytest.raises(ValueError, match="same number"):
        paired_bootstrap_gap([c], [c, c])
    with pytest.raises(ValueError, match="same test examples"):
        paired_bootstrap_gap([c], [example_counts("multiclass", [0, 1, 1], [0, 1, 1])])
    # columns of other classes: with every_column=True the narrower run's macro-F1 lacked a 0
    wide = example_counts("multiclass", [0, 1], [0, 1], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="have 2 and 3 columns; give example_counts the same labels"):
        paired_bootstrap_gap([c], [wide], every_column=True)
    with pytest.raises(ValueError, match=r"counts_a\[1\] has shape \(2, 3, 3\) but counts_a\[0\] \(2, 2, 3\)"):
        paired_bootstrap_gap([c, wide], [c, c])  # was numpy's "all input arrays must have the same shape"
    with pytest.raises(ValueError, match="confidence must be a fraction in \\(0, 1\\), e.g. 0.95, got '0.9'"):
        paired_bootstrap_gap([c], [c], confidence="0.9")  # was a TypeError from '<'


def test_paired_bootstrap_names_one_runs_counts_given_without_a_list():
    # one example_counts array for counts_a: numpy's "truth value of an array ... is ambiguous"
    from skimb.metrics import example_counts, paired_bootstrap_gap

    c = example_counts("multiclass", [0, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match=r"counts_a is one array of shape \(3, 2, 3\).*\[counts\]"):
        paired_bootstrap_gap(c, c)
    assert paired_bootstrap_gap([c], [c], n_boot=10) == (0.0, 0.0, 0.0)


def test_example_counts_refuse_classes_missing_from_labels():
    # labels of another type (codes against names) or without a class counted its examples nowhere:
    # every gap came out 0, or the macro-F1 left the class out
    from skimb.metrics import example_counts

    with pytest.raises(ValueError, match=r"classes \[0, 1\] of y_true or y_pred are not in labels \['0', '1'\]"):
        example_counts("multiclass", [0, 1, 1], [0, 1, 0], labels=["0", "1"])
    with pytest.raises(ValueError, match=r"classes \['c'\] .* not in labels"):
        example_counts("multiclass", ["a", "b", "c"], ["a", "b", "b"], labels=["a", "b"])
    counts = example_counts("multiclass", ["a", "b"], ["a", "a"], labels=np.array(["a", "b", "z"]))
    assert counts.shape == (2, 3, 3) and counts[:, 2].sum() == 0  # a class nobody saw: a column of zeros


def test_span_counts_line_up_when_runs_predict_other_types():
    from skimb.metrics import example_counts, paired_bootstrap_gap

    gold = [["B-PER", "O"], ["O", "B-LOC"]]
    types = ["LOC", "ORG", "PER"]
    a = example_counts("token", gold, [["B-PER", "O"], ["B-ORG", "B-LOC"]], labels=types)
    b = example_counts("token", gold, [["B-PER", "O"], ["O", "O"]], labels=types)
    assert a.shape[1:] == b.shape[1:] == (3, 3)  # the same columns, whatever each run predicts
    with pytest.raises(ValueError, match=r"\['ORG'\] are not in labels"):
        example_counts("token", gold, [["B-ORG", "O"], ["O", "O"]], labels=["LOC", "PER"])
    gap, low, high = paired_bootstrap_gap([a], [b], n_boot=50)
    assert low <= gap <= high


# -- round 42: one macro average per task, and the searches' arguments checked ----------------------

def test_multilabel_bootstrap_gap_counts_an_absent_label_as_the_reports_do():
    from skimb.compare._report import gaps_to_baseline
    from skimb.compare._runner import RunResult
    from skimb.metrics import example_counts, multilabel_report, paired_bootstrap_gap

    Y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    A = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    B = A.copy()
    B[3, 2] = 1  # one false positive on the label no example has
    report_gap = multilabel_report(Y, A)["macro_f1"] - multilabel_report(Y, B)["macro_f1"]
    counts_a, counts_b = example_counts("multilabel", Y, A), example_counts("multilabel", Y, B)
    gap, _, _ = paired_bootstrap_gap([counts_a], [counts_b], n_boot=10, every_column=True)
    assert gap == pytest.approx(report_gap) == pytest.approx(0.0)
    assert paired_bootstrap_gap([counts_a], [counts_b], n_boot=10)[0] > 0.2  # the multi-class reading
    runs = [RunResult("a", 0, counts=counts_a), RunResult("b", 0, counts=counts_b)]
    assert gaps_to_baseline(runs, "b", n_boot=10, task="multilabel")["a"][0] == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_boot": 0}, "n_boot must be a whole number of draws >= 1"),
    ({"n_boot": 2.5}, "n_boot must be"),
    ({"confidence": 95}, r"confidence must be a fraction in \(0, 1\)"),
])
def test_paired_bootstrap_gap_checks_its_draws_and_confidence(kwargs, message):
    from skimb.metrics import example_counts, paired_bootstrap_gap

    g = example_counts("multiclass", list("aab"), list("aab"))
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_gap([g], [g], **kwargs)


def test_macro_f1_from_labels_names_a_length_mismatch_and_a_code_out_of_range():
    from skimb.metrics._decision import macro_f1_from_labels

    with pytest.raises(ValueError, match=r"one length, got shapes \(3,\) and \(2,\)"):
        macro_f1_from_labels([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match=r"y_true\[1\] = 5 is no class index of n_classes=3"):
        macro_f1_from_labels([0, 5], [0, 1], 3)


def test_offset_searches_refuse_empty_grids_and_bad_penalties():
    from skimb.metrics import calibrated_logit_offsets, tune_logit_offsets, tune_span_offsets

    logits = np.array([[2.0, 1.5], [2.0, 1.0], [2.0, 1.8], [0.0, 1.0]])
    y = [1, 0, 1, 1]
    for kwargs, message in [({"n_rounds": -1}, "n_rounds must be an integer >= 1"), ({"steps": []}, "steps must be a non-empty"),
                            ({"taus": [np.nan], "class_prior": [9, 1]}, "taus must be a non-empty list of finite")]:
        with pytest.raises(ValueError, match=message):
            tune_logit_offsets(y, logits, **kwargs)
    # a single tau is a grid of one
    np.testing.assert_array_equal(tune_logit_offsets(y, logits, class_prior=[9, 1], taus=1.0, search="tau"),
                                  tune_logit_offsets(y, logits, class_prior=[9, 1], taus=[1.0], search="tau"))
    with pytest.raises(ValueError, match="l2 must be a finite penalty >= 0"):
        calibrated_logit_offsets([0, 0, 1, 1], logits, class_prior=[3, 1], l2=-1)
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        calibrated_logit_offsets([0, 0, 1, 1], logits, class_prior=[3, 1], tau=-1)
    with pytest.raises(ValueError, match="n_rounds must be"):
        tune_span_offsets([["O"]], [np.array([[1.0]])], ["O"], n_rounds=0)


def test_span_offsets_of_a_tagger_without_entity_tags_are_zero():
    from skimb.metrics import tune_span_offsets

    np.testing.assert_array_equal(tune_span_offsets([["O", "O"]], [np.array([[1.0], [2.0]])], ["O"]), [0.0])


def test_macro_f1_from_labels_refuses_codes_it_would_truncate_or_fail_on():
    from skimb.metrics import macro_f1_from_labels

    with pytest.raises(ValueError, match=r"y_true\[0\] is 0\.5: class codes must be whole numbers 0\.\.2"):
        macro_f1_from_labels([0.5, 1, 2], [0, 1, 2], 3)
    with pytest.raises(ValueError, match=r"y_pred\[1\] is 'a': class codes must be whole numbers 0\.\.1; map labels"):
        macro_f1_from_labels([0, 1], [0, "a"], 2)
    with pytest.raises(ValueError, match=r"y_true\[1\] is None"):
        macro_f1_from_labels([0, None], [0, 1], 2)
    with pytest.raises(ValueError, match=r"y_pred\[2\] is nan"):
        macro_f1_from_labels([0, 1, 1], np.array([0, 1, np.nan]), 2)
    # whole floats and bools are codes, as before
    assert macro_f1_from_labels([0.0, 1.0], np.array([0, 1]), 2) == 1.0
    assert macro_f1_from_labels(np.array([False, True]), [0, 1], 2) == 1.0
