"""A classifier whose decision rule is tuned for macro-F1 on a split it holds out."""

from __future__ import annotations

import copy

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted

from .._validation import _is_missing, check_labels, check_sample_weight, check_texts, is_multilabel_target
from ..metrics import calibrated_logit_offsets, tune_logit_offsets
from ..metrics._decision import CALIBRATED_TAU
from ..utils._meta import inner_estimators
from ..utils._components import changed_params
from ..utils._param_validation import HasMethods, Interval, Options, RandomState, validate_params
from ..utils._warnings import warn_ignored

__all__ = ["TunedOffsetsClassifier"]


class TunedOffsetsClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Per-class logit offsets, tuned for macro-F1 or calibrated, on a split held out around any classifier.

    ``fit`` holds out a stratified ``validation_fraction`` of the training data, fits a clone of
    ``estimator`` on the rest (or, with ``validation="estimator"``, fits it on everything and uses
    the validation split it holds out itself), and tunes one offset per class, added to the
    log-probabilities, that maximises macro-F1 on that split (:func:`skimb.metrics.tune_logit_offsets`:
    the logit-adjustment rule ``-tau * log(prior)``, then a coordinate search, bagged over
    ``n_bootstrap`` resamples of the split). ``predict`` is the argmax of the log-probabilities
    plus the offsets. A model trained for accuracy sits its rare classes' boundaries too far in;
    the offsets move them back where macro-F1 wants them.

    It is ``TransformerClassifier(threshold="tuned")`` for any classifier with ``predict_proba``:
    a scikit-learn ``VotingClassifier(voting="soft")`` of a class-weighted and a HAMR
    fine-tuning, wrapped here, is the recipe ``docs/which_method.md`` recommends for many classes
    and extreme imbalance (GoEmotions, 28 classes: +4.0 points of macro-F1 over class weighting,
    3 seeds), and an embedding pipeline gains the same rule.

    ``validation="estimator"`` is for estimators that hold out a split of their own: a skimb
    classifier with ``validation_fraction`` (HAMR draws its meta set from it), or an ensemble of
    them with the same ``validation_fraction`` and ``random_state``, which hold out the same split.
    Nothing is then held out twice: a HAMR member trains on 90% of the data, not 81%, and its meta
    set is the tuning split.

    Parameters
    ----------
    estimator : classifier
        Any scikit-learn classifier with ``predict_proba``; cloned, never fitted in place.
    validation : {"hold_out", "estimator"}, default="hold_out"
        Where the tuning split comes from. ``"hold_out"``: this class holds out
        ``validation_fraction`` of each class and fits ``estimator`` on the rest. ``"estimator"``:
        ``estimator`` is fitted on all the data and holds out its own split (every skimb estimator
        in it with the same one, read from their ``validation_indices_``); ``validation_fraction``
        is then the estimator's parameter, not this one's. Refused where a pipeline resamples the
        rows (a sampler's ``fit_resample``) before the estimator that holds out the split.
    validation_fraction : float in (0, 1), default=0.1
        ``validation="hold_out"``: the share of each class held out for tuning (rounded half up; one
        example at least, so every class needs 2).
    search : {"offsets", "tau", "calibrated"}, default="offsets"
        ``"tau"`` keeps the one-parameter rule ``-tau * log(prior)``; ``"offsets"`` searches each
        class's offset from there. ``"calibrated"`` searches nothing: a temperature and class
        biases fitted by likelihood on the split, then ``tau`` of the balanced rule's shift
        (:func:`skimb.metrics.calibrated_logit_offsets`; ``TransformerClassifier(threshold="calibrated")``
        with another ``tau``).
    tau : float >= 0, default=0.25
        ``search="calibrated"``: the share of the balanced rule's shift ``-log(prior)`` (0: the
        calibrated model's most probable class; 1: the balanced rule).
    n_bootstrap : int, default=30
        Resamples of the held-out split whose tuned offsets are averaged; 0 tunes once on the split
        (noisier with a handful of examples of the rarest classes). Not with ``search="calibrated"``,
        which fits two parameters per class on the whole split.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split and the resamples (not ``estimator``, which has its own).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator`` (on the training data less the held-out split, or on all
        of it with ``validation="estimator"``).
    classes_ : ndarray of shape (n_classes,)
    offsets_ : ndarray of shape (n_classes,)
        Added to ``log(predict_proba)`` by :meth:`decision_function` and :meth:`predict`.
    validation_indices_ : ndarray of int
        Positions (in the training data) of the tuning split, sorted.
    n_features_in_ : int
        ``estimator_``'s, where it records one (numeric X; not texts).
    feature_names_in_ : ndarray of str
        ``estimator_``'s, where it records them (X with column names, e.g. a DataFrame).

    See Also
    --------
    skimb.metrics.tune_logit_offsets : the search, on logits you already have.
    skimb.metrics.calibrated_logit_offsets : the calibrated rule, likewise.

    Notes
    -----
    :meth:`predict_proba` is the fitted estimator's, unchanged (probability scores such as ROC AUC
    do not depend on the rule); :meth:`decision_function` carries the offsets.

    Examples
    --------
    A logistic regression on 2-D points, 5% of them in the rare class:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import f1_score
    >>> from skimb.model_selection import TunedOffsetsClassifier
    >>> def points(seed):
    ...     rng = np.random.default_rng(seed)
    ...     X = np.r_[rng.normal(0, 1, (950, 2)), rng.normal(1.5, 1, (50, 2))]
    ...     return X, np.r_[np.zeros(950, int), np.ones(50, int)]
    >>> (X, y), (X_test, y_test) = points(0), points(1)
    >>> plain = LogisticRegression().fit(X, y)
    >>> tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    >>> tuned.offsets_.round(2)
    array([-0.4,  0.4])
    >>> [round(f1_score(y_test, m.predict(X_test), average="macro"), 3) for m in (plain, tuned)]
    [0.747, 0.795]
    """

    _parameter_constraints = {
        "estimator": [HasMethods("fit", "predict_proba")],
        "validation": [Options("hold_out", "estimator")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "search": [Options("offsets", "tau", "calibrated")],
        "tau": [Interval(Real, 0, None)],
        "n_bootstrap": [Interval(Integral, 0, None)],
        "random_state": [RandomState()],
    }

    def __init__(self, estimator, *, validation="hold_out", validation_fraction=0.1, search="offsets",
                 tau=CALIBRATED_TAU, n_bootstrap=30, random_state=None):
        self.estimator = estimator
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.search = search
        self.tau = tau
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit ``estimator`` (on all but the held-out split, or on everything with
        ``validation="estimator"``), then tune the offsets on the split.

        Parameters
        ----------
        X : texts, array-like or anything ``estimator`` takes, with ``len(X) == len(y)``
        y : array-like of shape (n_samples,)
            Single-label classes (multi-label targets: tune per-label thresholds instead,
            ``TransformerClassifier(threshold="tuned")``).
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to ``estimator.fit`` for the rows it is fitted on.

        Returns
        -------
        self
        """
        validate_params(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        self._warn_ignored()
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)  # a failed refit leaves no model of the earlier fit behind
        if is_multilabel_target(y):
            raise ValueError(f"{type(self).__name__} tunes one decision among classes (single-label y); "
                             "for a multi-label y use TransformerClassifier(threshold='tuned') or "
                             "skimb.metrics.tune_thresholds.")
        X, labels = _check_samples(X), check_labels(y, owner=type(self).__name__)
        if _n_samples(X) != len(labels):
            raise ValueError(f"X and y have different lengths: {_n_samples(X)} != {len(labels)}.")
        sample_weight = check_sample_weight(sample_weight, len(labels), positive_sum=True)
        classes, codes = np.unique(labels, return_inverse=True)
        rng = check_random_state(self.random_state)
        seed = int(self.random_state) if isinstance(self.random_state, Integral) else int(rng.randint(2**31 - 1))
        rows = np.arange(len(labels))
        if self.validation == "estimator":
            sampler = _resampling_step(self.estimator)
            if sampler:
                raise ValueError(f"validation='estimator' tunes on the split the estimator holds out, but {sampler} "
                                 "resamples the rows before it: that split indexes the resampled rows, not X. "
                                 "Use validation='hold_out'.")
            if self.validation_fraction != 0.1:
                warnings.warn(f"validation_fraction={self.validation_fraction} is ignored with validation='estimator': "
                              "the estimator holds out its own split (set its validation_fraction).",
                              UserWarning, stacklevel=2)
            estimator = self._fit_estimator(X, labels, sample_weight, rows, classes)
            valid_idx = _estimator_split(estimator)
            fit_idx = np.setdiff1d(rows, valid_idx)  # what the estimator trained on
        else:
            self._check_counts(classes, np.bincount(codes))
            if _holds_out_itself(self.estimator):
                remedy = ("set its validation_fraction=None, turning off what reads that split (early_stopping, "
                          "a tuned threshold); with a sampler before it, validation='estimator' cannot be used"
                          if _resampling_step(self.estimator)
                          else "use validation='estimator' to tune on its split instead")
                warnings.warn("the estimator holds out a validation split of its own (validation_fraction) and "
                              f"validation='hold_out' holds out another: it trains on what both leave; {remedy}.",
                              UserWarning, stacklevel=2)
            valid_idx = _held_out(codes, self.validation_fraction, np.random.RandomState(seed))
            fit_idx = np.setdiff1d(rows, valid_idx)
            estimator = self._fit_estimator(X, labels, sample_weight, fit_idx, classes)
        log_proba = _log(estimator.predict_proba(_rows(X, valid_idx)))
        prior = np.bincount(codes[fit_idx], minlength=len(classes)) + 1.0
        if self.search == "calibrated":
            self.offsets_ = calibrated_logit_offsets(codes[valid_idx], log_proba, class_prior=prior, tau=self.tau)
        else:
            self.offsets_ = tune_logit_offsets(codes[valid_idx], log_proba, class_prior=prior, search=self.search,
                                               n_bootstrap=self.n_bootstrap, random_state=seed)
        self.estimator_, self.classes_, self.validation_indices_ = estimator, classes, valid_idx
        return self

    def _warn_ignored(self):
        """Name a parameter changed from its default that the chosen ``search`` does not use."""
        if self.search == "calibrated":
            unused = {"n_bootstrap": "search='calibrated' fits the whole split once"}
        else:
            unused = {"tau": "only search='calibrated' uses it (the searches choose their own)"}
        warn_ignored({name: unused[name] for name in changed_params(self, unused)}, owner=type(self).__name__,
                     prefix="")

    def _fit_estimator(self, X, labels, sample_weight, rows, classes):
        """A clone of ``estimator`` fitted on ``rows``; it must learn every class."""
        fit_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[rows]}
        whole = len(rows) == len(labels)
        estimator = clone(self.estimator).fit(X if whole else _rows(X, rows), labels[rows], **fit_kwargs)
        if not np.array_equal(np.asarray(estimator.classes_), classes):
            raise ValueError(f"{type(estimator).__name__} learned the classes {list(estimator.classes_)} "
                             f"from {list(classes)}; it must keep every class of y.")
        return estimator

    def _check_counts(self, classes, counts):
        rare = [str(c) for c, n in zip(classes, counts) if n < 2]
        if rare:
            raise ValueError(f"{type(self).__name__} holds out validation_fraction={self.validation_fraction} of "
                             f"every class and needs at least 2 examples of each; class(es) {rare} have 1. "
                             "Drop or merge them, or tune on logits you hold out yourself "
                             "(skimb.metrics.tune_logit_offsets).")

    def decision_function(self, X):
        """``log(predict_proba(X)) + offsets_``, shape (n_samples, n_classes); for two classes,
        as scikit-learn's scorers expect, the second column minus the first, shape (n_samples,)."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """The class of the largest ``log(predict_proba(X)) + offsets_``."""
        scores = self._scores(X)  # raises NotFittedError first
        return self.classes_[scores.argmax(1)]

    def _scores(self, X):
        check_is_fitted(self, "offsets_")
        return _log(self.estimator_.predict_proba(X)) + self.offsets_

    def predict_proba(self, X):
        """The fitted estimator's class probabilities (without the offsets)."""
        check_is_fitted(self, "offsets_")
        return self.estimator_.predict_proba(X)

    # X goes to ``estimator`` as given, so what it accepts and records is the estimator's.
    @property
    def n_features_in_(self):
        return self._from_estimator("n_features_in_")

    @property
    def feature_names_in_(self):
        return self._from_estimator("feature_names_in_")

    def _from_estimator(self, name):
        """``estimator_``'s attribute ``name``; AttributeError (so ``hasattr`` is False) before fit or
        where the fitted estimator has none (texts have no features)."""
        if not hasattr(self.__dict__.get("estimator_"), name):
            raise AttributeError(f"{type(self).__name__} has no {name}: it is the fitted estimator_'s, which "
                                 f"{'does not exist before fit' if 'estimator_' not in self.__dict__ else 'has none'}.")
        return getattr(self.estimator_, name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:  # X reaches ``estimator`` unchanged (texts are only checked): it takes what the estimator takes
            tags.input_tags = copy.copy(get_tags(self.estimator).input_tags)
        except (AttributeError, TypeError, ValueError):
            pass  # not an estimator (refused at fit) or one without tags: the defaults, as scikit-learn's Pipeline
        tags.input_tags.pairwise = False  # the held-out split takes rows only, not a kernel's columns
        return tags


def _estimator_split(estimator):
    """The validation split that ``estimator`` (every skimb estimator in it: ensemble members,
    wrapped estimators) held out: ``validation_indices_``, the same in all of them."""
    found, plain = [], []

    def visit(est, name):
        if hasattr(est, "validation_indices_"):
            found.append((name, np.asarray(est.validation_indices_)))
            return
        inner = list(inner_estimators(est, fitted=True))
        if not inner and hasattr(est, "predict"):  # a predictor that held out nothing (a transformer decides nothing)
            plain.append(name)
        for suffix, member in inner:
            visit(member, name + suffix)

    visit(estimator, type(estimator).__name__)
    if plain or not found:
        culprits = ", ".join(plain) or type(estimator).__name__
        raise ValueError(f"validation='estimator' tunes on the split the estimator holds out, but {culprits} held "
                         "out none: give every skimb estimator in it validation_fraction=0.1 (the same "
                         "validation_fraction and random_state in all), or use validation='hold_out'.")
    name, first = found[0]
    for other, idx in found[1:]:
        if not np.array_equal(idx, first):
            raise ValueError(f"{name} and {other} held out different validation splits; give them the same "
                             "validation_fraction and random_state, or use validation='hold_out'.")
    return first


def _held_out(codes, fraction, rng):
    """Sorted positions of ``fraction`` of each class (rounded half up), at least one and at most all
    but one."""
    parts = []
    for c in range(codes.max() + 1):
        members = np.flatnonzero(codes == c)
        k = min(max(1, int(np.floor(fraction * len(members) + 0.5))), len(members) - 1)
        parts.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(parts))


def _check_samples(X):
    """Texts are checked here, so that an error names the caller's position (not the position in
    the fitted part); anything else (numeric rows, dicts, sparse matrices, ...) is ``estimator``'s
    to check, and goes to it unchanged."""
    if isinstance(X, (str, bytes)):
        raise TypeError("X must be a collection of samples, got a single string; pass [text] for one text.")
    if hasattr(X, "__array__") and not hasattr(X, "shape"):
        X = np.asarray(X)  # an array-like known only by __array__: rows cannot be taken from it otherwise
    elif not hasattr(X, "__len__") and not hasattr(X, "shape"):
        X = list(X)  # a generator: read once
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 2:
        return X
    return check_texts(X) if _holds_texts(X) else X


def _holds_texts(X) -> bool:
    """Whether 1-D ``X`` is texts: a string among its items, or nothing but missing values (None, NaN),
    so that check_texts names the position of a missing or stray item."""
    items = list(X)
    return any(isinstance(item, str) for item in items) or (bool(items) and all(map(_is_missing, items)))


def _rows(X, idx):
    """Rows ``idx`` of ``X``; the sparse formats that cannot index rows (COO, DIA, BSR) are read as CSR."""
    if sp.issparse(X) and X.format in ("coo", "dia", "bsr"):
        X = X.tocsr()
    return _safe_indexing(X, idx)


def _n_samples(X) -> int:
    shape = getattr(X, "shape", None)  # arrays, sparse matrices, data frames
    return int(shape[0]) if shape is not None and len(shape) else len(X)


def _resampling_step(estimator, name=None):
    """The path of a sampler (``fit_resample``) that a pipeline in ``estimator`` runs before its
    last step, or None: after one, the rows a skimb estimator holds out are not rows of ``X``."""
    name = name or type(estimator).__name__
    steps = getattr(estimator, "steps", None) or ()
    for step, transform in steps[:-1]:
        if hasattr(transform, "fit_resample"):
            return f"{name}['{step}']"
    for suffix, member in inner_estimators(estimator, fitted=False):
        found = _resampling_step(member, name + suffix)
        if found:
            return found
    return None


def _holds_out_itself(estimator) -> bool:
    """Whether a skimb estimator in ``estimator`` holds out a validation split of its own."""
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return any(key.split("__")[-1] == "validation_fraction" and value is not None for key, value in params.items())


def _log(proba):
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, None))
