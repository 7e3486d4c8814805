"""Stratified folds for multi-label targets and tagged sentences."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from skimb.model_selection import MultilabelStratifiedKFold, TagStratifiedKFold
from skimb.utils._param_validation import InvalidParameterError

from conftest import make_ner


def _rare_multilabel(n=120, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 6)) < [0.5, 0.3, 0.2, 0.1, 0.05, 0.05]).astype(int)
    Y[:5, 5] = 1  # at least five positives of each rare label
    Y[5:10, 4] = 1
    return Y


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_multilabel_folds_partition_and_keep_every_label(n_splits):
    Y = _rare_multilabel()
    folds = list(MultilabelStratifiedKFold(n_splits).split(np.zeros(len(Y)), Y))
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(len(Y)))  # a partition
    for train, test in folds:
        assert not set(train) & set(test)
        assert (Y[test].sum(0) >= 1).all()  # every label's positives reach every fold
    unstratified = [Y[te].sum(0).min() for _, te in KFold(5).split(Y)]
    assert min(unstratified) == 0  # what scikit-learn's fallback does on this target


def test_multilabel_folds_are_reproducible_and_shuffle_with_the_seed():
    Y = _rare_multilabel()
    a = [te.tolist() for _, te in MultilabelStratifiedKFold(3).split(Y, Y)]
    assert a == [te.tolist() for _, te in MultilabelStratifiedKFold(3).split(Y, Y)]
    b = [te.tolist() for _, te in MultilabelStratifiedKFold(3, shuffle=True, random_state=1).split(Y, Y)]
    assert b == [te.tolist() for _, te in MultilabelStratifiedKFold(3, shuffle=True, random_state=1).split(Y, Y)]
    assert a != b


def test_tag_folds_keep_rare_types_in_every_fold():
    X, y = make_ner(60)
    folds = list(TagStratifiedKFold(3).split(X, y))
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(X)))
    types = {t[2:] for s in y for t in s if t != "O"}
    for _, test in folds:
        assert {t[2:] for i in test for t in y[i] if t != "O"} == types


def test_splitters_work_in_a_grid_search():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    Y = _rare_multilabel()
    X = np.random.default_rng(0).normal(size=(len(Y), 4)) + Y[:, :1]
    search = GridSearchCV(OneVsRestClassifier(LogisticRegression()), {"estimator__C": [0.1, 1.0]},
                          cv=MultilabelStratifiedKFold(3), scoring="f1_macro").fit(X, Y)
    assert search.n_splits_ == 3


@pytest.mark.parametrize("cv,y,match", [
    (MultilabelStratifiedKFold(1), np.zeros((4, 2)), "n_splits"),
    (MultilabelStratifiedKFold(2), np.zeros(4), "2-D"),
    (TagStratifiedKFold(2), ["B-PER", "O"], "sequence of tags"),
    (MultilabelStratifiedKFold(5), np.zeros((3, 2)), "greater than the number of samples"),
])
def test_bad_input_is_a_clear_error(cv, y, match):
    with pytest.raises((ValueError, InvalidParameterError), match=match):
        list(cv.split(y, y))


def test_check_cv_stratifies_what_scikit_learn_cannot():
    from sklearn.model_selection import StratifiedKFold

    from skimb.model_selection import check_cv

    Y = _rare_multilabel()
    assert isinstance(check_cv(3, Y), MultilabelStratifiedKFold) and check_cv(3, Y).n_splits == 3
    _, tags = make_ner(30)
    assert isinstance(check_cv(2, tags), TagStratifiedKFold)
    assert isinstance(check_cv(3, Y[:, 0]), StratifiedKFold)  # 1-D labels: scikit-learn's choice
    assert isinstance(check_cv(3, Y, classifier=False), KFold)  # a regressor's 2-D target
    given = KFold(4)
    assert check_cv(given, Y) is given
    # every rare label reaches every test fold, which KFold does not promise
    for _, test in check_cv(5, Y).split(Y, Y):
        assert (Y[test].sum(0) > 0).all()


def test_check_cv_reads_a_pandas_series_of_tag_lists_as_tag_sequences():
    # a DataFrame column of tag lists (the tagger fits on it) met scikit-learn's "legacy multi-label data
    # representation" error
    pd = pytest.importorskip("pandas")
    from skimb.model_selection import check_cv

    X, tags = make_ner(30)
    cv = check_cv(3, pd.Series(tags, index=range(100, 130)))
    assert isinstance(cv, TagStratifiedKFold)
    assert [t.tolist() for _, t in cv.split(X, pd.Series(tags))] == [t.tolist() for _, t in cv.split(X, tags)]


def test_sparse_multilabel_targets_are_stratified_like_dense_ones():
    import scipy.sparse as sp

    from skimb.model_selection import check_cv

    Y = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 1], [1, 0], [0, 0], [0, 0]])
    assert isinstance(check_cv(3, sp.csr_matrix(Y)), MultilabelStratifiedKFold)
    dense = [test.tolist() for _, test in MultilabelStratifiedKFold(3).split(None, Y)]
    assert [test.tolist() for _, test in MultilabelStratifiedKFold(3).split(None, sp.csr_matrix(Y))] == dense


def test_tag_arrays_get_tag_stratified_folds_and_a_lone_rare_type_raises_no_warning():
    import warnings

    from skimb.model_selection import check_cv

    assert isinstance(check_cv(2, [np.array(["B-PER", "O"]), np.array(["O"])]), TagStratifiedKFold)
    y = [["B-A"]] * 6 + [["B-Z"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's "least populated class" warning
        folds = list(TagStratifiedKFold(3).split(y, y))
    assert sorted(i for _, test in folds for i in test) == list(range(7))


@pytest.mark.parametrize("bad,match", [(np.nan, r"y\[0, 1\] is .*nan.*; an indicator matrix holds only 0 and 1"),
                                       (2, r"y\[0, 1\] is .*2.*; an indicator matrix holds only 0 and 1")])
def test_multilabel_folds_refuse_values_other_than_0_and_1(bad, match):
    Y = np.array([[0, bad], [1, 0], [0, 1], [1, 1]], dtype=float)
    with pytest.raises(ValueError, match=match):
        list(MultilabelStratifiedKFold(2).split(np.zeros(4), Y))


def test_tags_in_a_pandas_series_are_stratified_by_position_whatever_its_index():
    # a column of a shuffled or sliced data frame: its index need not start at 0
    import pandas as pd

    from skimb.model_selection import check_cv

    X, y = make_ner(40)
    tags = pd.Series(y, dtype=object).iloc[5:]
    cv = check_cv(3, tags)
    assert isinstance(cv, TagStratifiedKFold)
    expected = [test.tolist() for _, test in TagStratifiedKFold(3).split(X[5:], y[5:])]
    assert [test.tolist() for _, test in cv.split(X[5:], tags)] == expected


def test_check_cv_none_is_five_folds_as_in_scikit_learn():
    from skimb.model_selection import check_cv

    Y = _rare_multilabel()
    assert repr(check_cv(None, Y)) == repr(check_cv(5, Y)) == repr(MultilabelStratifiedKFold(5))
    _, tags = make_ner(30)
    assert repr(check_cv(None, tags)) == repr(TagStratifiedKFold(5))


@pytest.mark.parametrize("cv", [MultilabelStratifiedKFold, TagStratifiedKFold])
def test_a_random_state_without_shuffle_is_refused_as_scikit_learns_kfold_does(cv):
    # it would be ignored: every seed of a repeated cross-validation would get the same folds
    X, tags = make_ner(30)
    y = _rare_multilabel(30) if cv is MultilabelStratifiedKFold else tags
    with pytest.raises(ValueError, match="random_state has no effect since shuffle is False.*shuffle=True"):
        list(cv(3, random_state=1).split(X, y))
    assert [t.tolist() for _, t in cv(3, shuffle=True, random_state=1).split(X, y)] != \
        [t.tolist() for _, t in cv(3, shuffle=True, random_state=2).split(X, y)]


@pytest.mark.parametrize("labels", [[["a", "b"], ["a"], ["b"], ["c"]], [["a"], ["b"], ["a"], ["b"]]])
def test_label_lists_are_refused_with_the_binarizer_as_remedy(labels):
    # numpy's "inhomogeneous shape" error or a dtype said nothing of what MultilabelStratifiedKFold wants
    with pytest.raises(ValueError, match=r"0/1 indicator .*MultiLabelBinarizer"):
        list(MultilabelStratifiedKFold(2).split(np.zeros(4), labels))
