"""Cross-validation splitters that keep rare classes in every fold where scikit-learn cannot
stratify: multi-label indicator targets and tagged sentences."""

from __future__ import annotations

from collections import Counter
from numbers import Integral

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import check_cv as sklearn_check_cv
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length

from ..metrics._multilabel import _check_indicator
from ..utils._param_validation import Boolean, Interval, RandomState, validate_params
from ..utils._split import iterative_stratification

__all__ = ["MultilabelStratifiedKFold", "TagStratifiedKFold", "check_cv"]


class _KFold:
    """``split(X, y, groups=None)`` and ``get_n_splits`` of a K-fold splitter whose folds are
    assigned by :meth:`_fold_of`."""

    _parameter_constraints = {"n_splits": [Interval(Integral, 2, None)], "shuffle": [Boolean()],
                              "random_state": [RandomState()]}

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y, groups=None):
        validate_params(self._parameter_constraints, vars(self), owner=type(self).__name__)
        if not self.shuffle and self.random_state is not None:  # ignored otherwise: every seed, the same folds
            raise ValueError(f"{type(self).__name__}: setting a random_state has no effect since shuffle is False; "
                             "leave random_state to its default (None), or set shuffle=True.")
        if y is None:
            raise ValueError(f"{type(self).__name__} needs y to stratify on.")
        check_consistent_length(X, y, groups)  # scikit-learn's splitters' error on mismatched lengths
        n = y.shape[0] if hasattr(y, "toarray") else len(y)  # a sparse matrix has no len()
        if self.n_splits > n:
            raise ValueError(f"Cannot have n_splits={self.n_splits} greater than the number of samples ({n}).")
        fold = self._fold_of(y)
        for k in range(self.n_splits):
            yield np.flatnonzero(fold != k), np.flatnonzero(fold == k)

    def _seed(self):
        # without shuffling the folds still come out the same on every call
        return check_random_state(self.random_state if self.shuffle else 0)

    def __repr__(self):
        return f"{type(self).__name__}(n_splits={self.n_splits}, shuffle={self.shuffle}, random_state={self.random_state})"


class MultilabelStratifiedKFold(_KFold):
    """K folds of a multi-label 0/1 indicator target, each with its share of every label's
    positives, by iterative stratification (Sechidis et al., 2011). ``cv=int`` on a multi-label
    target falls back to unstratified ``KFold`` in scikit-learn; pass this instead.

    Parameters
    ----------
    n_splits : int, default=5
    shuffle : bool, default=False
        Break ties between folds at random (``random_state``); otherwise the same folds every call.
    random_state : int, RandomState instance or None, default=None
        With ``shuffle=True`` only (an error otherwise, as for scikit-learn's ``KFold``).

    Examples
    --------
    >>> Y = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 1], [1, 0], [0, 0], [0, 0]])
    >>> cv = MultilabelStratifiedKFold(n_splits=3)
    >>> [Y[test].sum(0).tolist() for _, test in cv.split(np.zeros(len(Y)), Y)]  # every label in every fold
    [[1, 1], [2, 1], [1, 2]]
    """

    def _fold_of(self, y):
        binarize = "; for label lists use sklearn.preprocessing.MultiLabelBinarizer"
        try:
            Y = _dense(y)
        except ValueError:  # ragged: label lists
            raise ValueError(f"{type(self).__name__} needs a 2-D 0/1 indicator target, got rows of different "
                             f"lengths{binarize}.") from None
        if Y.ndim != 2:
            raise ValueError(f"{type(self).__name__} needs a 2-D 0/1 indicator target, got shape {Y.shape}; "
                             "use StratifiedKFold for 1-D labels.")
        if Y.dtype.kind in "US":  # label names, not 0/1
            raise ValueError(f"{type(self).__name__} needs a 2-D 0/1 indicator target, got {Y.dtype} values"
                             f"{binarize}.")
        Y = _check_indicator(Y, "y")  # NaN or a 2 named by position, not numpy's errors or silent folds
        return iterative_stratification(Y, np.full(self.n_splits, 1.0 / self.n_splits), random_state=self._seed())


class TagStratifiedKFold(_KFold):
    """K folds of tagged sentences (NER), stratified by each sentence's rarest entity type, so that
    rare types reach every fold. ``y`` is one sequence of IOB2 tags per sentence.

    Parameters
    ----------
    n_splits : int, default=5
    shuffle : bool, default=False
        Shuffle within the strata (``random_state``); otherwise the same folds every call.
    random_state : int, RandomState instance or None, default=None
        With ``shuffle=True`` only (an error otherwise, as for scikit-learn's ``KFold``).

    Examples
    --------
    >>> y = [["B-PER", "O"], ["B-LOC"], ["O", "B-PER"], ["B-LOC", "I-LOC"], ["O"], ["O"]]
    >>> cv = TagStratifiedKFold(n_splits=2)
    >>> [sorted({t[2:] for i in test for t in y[i] if t != "O"}) for _, test in cv.split(y, y)]
    [['LOC', 'PER'], ['LOC', 'PER']]
    """

    def _fold_of(self, y):
        y = list(y)  # by position: a pandas Series's index need not start at 0
        if len(y) and isinstance(y[0], str):
            raise ValueError(f"{type(self).__name__} needs one sequence of tags per sentence, got strings.")
        types = [{t.split("-", 1)[1] for t in tags if t != "O" and "-" in t} for tags in y]
        counts = Counter(t for ts in types for t in ts)
        keys = np.array([min(ts, key=lambda t: (counts[t], t)) if ts else "" for ts in types], dtype=object)
        # a type with fewer sentences than folds cannot be in every fold: group it with the untagged ones,
        # and those, if still too few, with the largest group
        sizes = Counter(keys.tolist())
        keys = np.array([k if sizes[k] >= self.n_splits else "" for k in keys.tolist()], dtype=object)
        sizes = Counter(keys.tolist())
        if 0 < sizes[""] < self.n_splits and len(sizes) > 1:
            largest = max((k for k in sizes if k), key=lambda k: (sizes[k], k))
            keys[keys == ""] = largest
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=self._seed())
        fold = np.empty(len(y), dtype=np.int64)
        for k, (_, test) in enumerate(folds.split(np.zeros(len(y)), keys)):
            fold[test] = k
        return fold


def _dense(y) -> np.ndarray:
    """``y`` as an array; a scipy sparse indicator matrix made dense."""
    return np.asarray(y.toarray() if hasattr(y, "toarray") else y)


def _is_tag_sequences(y) -> bool:
    """One sequence of tags per sentence: lists, tuples or 1-D arrays of strings, in a list, a tuple or
    a 1-D object array."""
    outer_ok = isinstance(y, (list, tuple)) or (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype == object)
    return (outer_ok and len(y) > 0
            and all((isinstance(tags, (list, tuple)) or (isinstance(tags, np.ndarray) and tags.ndim == 1))
                    and all(isinstance(t, str) for t in tags) for tags in y))


def _is_indicator(y) -> bool:
    if _is_tag_sequences(y):
        return False
    try:
        Y = _dense(y)
    except ValueError:  # ragged
        return False
    return Y.ndim == 2 and Y.shape[1] > 1 and np.isin(Y, (0, 1)).all()


def check_cv(cv=5, y=None, *, classifier=True):
    """A cross-validation splitter for ``y``, as scikit-learn's ``check_cv``, except that an int
    ``cv`` stratifies the targets scikit-learn cannot: a 2-D 0/1 multi-label target gets
    :class:`MultilabelStratifiedKFold`, a list (or a pandas Series) of tag sequences (NER)
    :class:`TagStratifiedKFold` (scikit-learn gives both an unstratified ``KFold``, and refuses the
    Series); ``None`` is 5, as in scikit-learn. Anything else is scikit-learn's choice.

    Pass the result as ``cv=`` to ``GridSearchCV``, ``cross_validate`` and friends.

    Parameters
    ----------
    cv : int, cross-validation splitter or iterable, default=5
        As for scikit-learn's ``check_cv``; only an int is turned into a stratified splitter.
    y : array-like, list of tag lists or None, default=None
        The target.
    classifier : bool, default=True
        Whether the estimator is a classifier: scikit-learn stratifies 1-D class labels and skimb
        multi-label targets only then. True by default, unlike scikit-learn's ``check_cv``, since a
        tagger is no scikit-learn classifier and skimb's estimators classify (tag sequences are
        stratified either way).

    Examples
    --------
    >>> check_cv(3, np.array([[1, 0], [0, 1], [1, 1]]))
    MultilabelStratifiedKFold(n_splits=3, shuffle=False, random_state=None)
    >>> check_cv(2, [["B-PER", "O"], ["O"]])
    TagStratifiedKFold(n_splits=2, shuffle=False, random_state=None)
    >>> check_cv(4, np.array([0, 1, 0, 1]))
    StratifiedKFold(n_splits=4, random_state=None, shuffle=False)
    """
    cv = 5 if cv is None else cv  # scikit-learn's default, stratified here as an int is
    if isinstance(cv, Integral) and not isinstance(cv, bool) and y is not None:
        series = hasattr(y, "iloc") and getattr(y, "ndim", 0) == 1  # a pandas Series (a DataFrame column)
        if _is_tag_sequences(y.to_numpy() if series else y):  # before the indicator test: equal-length tag
            return TagStratifiedKFold(cv)  # lists make a 2-D array
        if classifier and _is_indicator(y):
            return MultilabelStratifiedKFold(cv)
    return sklearn_check_cv(cv, y, classifier=classifier)
