"""Label-noise rebalancing (LNR): flip a few majority labels near the boundary."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ..utils._param_validation import HasMethods, Interval, Satisfies
from ._base import BaseEmbeddingSampler, sampler_constraints
from ._probe import out_of_fold_proba, probe_proba

__all__ = ["LabelNoiseRebalancer"]


def _seed_probe(probe, rng):
    """Give every unset (``None``) ``random_state`` of ``probe``, nested ones included, one seed
    drawn from ``rng``; ``probe`` must be a clone (it is modified in place and returned)."""
    unset = [key for key, value in probe.get_params(deep=True).items()
             if (key == "random_state" or key.endswith("__random_state")) and value is None]
    if unset:
        seed = int(rng.randint(np.iinfo(np.int32).max))
        probe.set_params(**dict.fromkeys(unset, seed))
    return probe


class LabelNoiseRebalancer(BaseEmbeddingSampler):
    """Label-noise rebalancing (LNR, Hu et al. 2025; HAMR's baseline).

    LNR "deliberately flip[s] a small, carefully chosen subset of majority-class labels into
    minority classes", shifting the decision boundary toward rare classes "without discarding
    data or synthesizing new samples" (HAMR, App. B). Here:

    1. a *probe* classifier (default ``LogisticRegression``) gives out-of-fold class
       probabilities ``P`` on X (stratified ``cv``-fold cross-validation; with a class of fewer
       than 2 rows, or ``cv`` larger than that, the folds shrink, down to an in-sample fit), or
       the caller passes them: ``fit_resample(X, y, probe_proba=P)`` (columns in sorted class
       order);
    2. receiving classes are those ``sampling_strategy`` (imbalanced-learn's over-sampling
       semantics) would grow; donor classes are all the others (``"auto"``: the majority);
    3. ``round(flip_ratio * n_donor_rows)`` donor rows are flipped: pairs (donor row ``i``,
       receiving class ``c``) are taken greedily by decreasing ``P[i, c]`` -- the rows nearest
       the decision boundary, on the side of that minority class -- each row at most once, and
       no receiving class beyond its ``sampling_strategy`` target (with ``"auto"``, the
       majority's count). Exact ties are broken at random.

    X is returned unchanged (a copy) with the new ``y``; ``sample_weight`` is returned
    unchanged.

    Parameters
    ----------
    probe : classifier or None, default=None
        Any scikit-learn classifier with ``predict_proba`` or ``decision_function`` (softmax /
        sigmoid of the scores); cloned, never fitted in place. ``None``:
        ``LogisticRegression(max_iter=1000)``. Every ``random_state`` of the clone left at
        ``None`` (nested ones too, e.g. ``estimator__random_state``) gets a seed drawn from
        ``random_state``, so a stochastic probe (a random forest, say) is reproducible.
    flip_ratio : float in [0, 1), default=0.1
        Share of the donor rows whose label is flipped.
    sampling_strategy : float, str, dict or callable, default="auto"
        Which classes receive flipped labels, and the count each may reach.
    cv : int or cross-validation splitter, default=5
    random_state : int, RandomState instance or None, default=None
        Seeds the fold shuffling, the probe and the tie-breaking.

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        imbalanced-learn's resolved strategy ``{class: rows it may gain}``.
    classes_ : ndarray
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        The probabilities used (out-of-fold, or ``probe_proba``).
    flipped_indices_ : ndarray
        Sorted indices of the rows whose label was flipped.
    flipped_from_, flipped_to_ : ndarray
        Old and new label of those rows.
    sample_indices_ : ndarray
        ``arange(n_samples)``: every input row is kept, in order.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from skimb.samplers import LabelNoiseRebalancer
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [9.0], [10.0]])
    >>> y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    >>> P = np.column_stack([1 - X[:, 0] / 10, X[:, 0] / 10])
    >>> lnr = LabelNoiseRebalancer(flip_ratio=0.34)
    >>> X_res, y_res = lnr.fit_resample(X, y, probe_proba=P)
    >>> y_res.tolist(), lnr.flipped_indices_.tolist()
    ([0, 0, 0, 0, 1, 1, 1, 1], [4, 5])
    """

    _sampling_type = "over-sampling"
    _provides_sample_indices = True
    _parameter_constraints = {
        **sampler_constraints("over-sampling"),
        "probe": [None, Satisfies(
            lambda v: hasattr(v, "fit") and (hasattr(v, "predict_proba") or hasattr(v, "decision_function")),
            "a scikit-learn classifier with predict_proba or decision_function", bad=["logreg"])],
        "flip_ratio": [Interval(Real, 0, 1, closed="left")],
        "cv": [Interval(Integral, 2, None), HasMethods("split")],
    }

    def __init__(self, *, probe=None, flip_ratio=0.1, sampling_strategy="auto", cv=5,
                 random_state=None):
        self.probe = probe
        self.flip_ratio = flip_ratio
        self.sampling_strategy = sampling_strategy
        self.cv = cv
        self.random_state = random_state

    def fit_resample(self, X, y, *, sample_weight=None, probe_proba=None):
        """Flip labels; return ``(X_copy, y_new)`` (and the weights when given).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Returned unchanged (as a third output) when given.
        probe_proba : array-like of shape (n_samples, n_classes), default=None
            Class probabilities to use instead of fitting the probe (columns in sorted class
            order). In an :class:`imblearn.pipeline.Pipeline`, route it with metadata routing
            (``sklearn.set_config(enable_metadata_routing=True)`` and
            ``set_fit_resample_request(probe_proba=True)``); without routing, imbalanced-learn's
            pipeline does not pass fit parameters to samplers.
        """
        return super().fit_resample(X, y, sample_weight=sample_weight, probe_proba=probe_proba)

    def _out_of_fold_proba(self, X, y, classes, rng):
        probe = LogisticRegression(max_iter=1000) if self.probe is None else clone(self.probe)
        codes = np.searchsorted(classes, y)
        if isinstance(self.cv, Integral):
            n_splits = min(int(self.cv), int(np.bincount(codes).min()))
            if n_splits < 2:  # a class with a single row: fit in-sample
                return probe_proba(_seed_probe(probe, rng).fit(X, codes), X)
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=rng.randint(2**31 - 1))
        else:
            cv = self.cv
        return out_of_fold_proba(_seed_probe(probe, rng), X, codes, classes.size, cv)

    def _fit_resample(self, X, y, rng, probe_proba=None):
        classes = np.unique(y)
        self.classes_ = classes
        if probe_proba is None:
            P = self._out_of_fold_proba(X, y, classes, rng)
        else:
            P = np.asarray(probe_proba, dtype=np.float64)
            if P.shape != (X.shape[0], classes.size):
                raise ValueError(
                    f"probe_proba must have shape (n_samples, n_classes) = {(X.shape[0], classes.size)}, "
                    f"got {P.shape}; columns in sorted class order {classes.tolist()}."
                )
            if not np.all(np.isfinite(P)):
                raise ValueError("probe_proba contains NaN or infinite values.")
            P = P.copy()
        self.oof_proba_ = P

        receivers = [c for c, n in self.sampling_strategy_.items() if n > 0]
        capacity = {c: int(self.sampling_strategy_[c]) for c in receivers}
        donor_rows = np.flatnonzero(~np.isin(y, receivers))
        budget = int(round(float(self.flip_ratio) * donor_rows.size))
        y_new = y.copy()
        flipped, targets = [], []
        if budget > 0 and receivers and donor_rows.size:
            cols = np.searchsorted(classes, receivers)
            scores = P[np.ix_(donor_rows, cols)].ravel()
            order = np.lexsort((rng.uniform(size=scores.size), -scores))
            taken = np.zeros(donor_rows.size, dtype=bool)
            n_rec = len(receivers)
            for flat in order:
                if len(flipped) == budget:
                    break
                i, j = divmod(int(flat), n_rec)
                c = receivers[j]
                if taken[i] or capacity[c] == 0:
                    continue
                taken[i] = True
                capacity[c] -= 1
                flipped.append(donor_rows[i])
                targets.append(c)
        flipped = np.asarray(flipped, dtype=np.int64)
        order = np.argsort(flipped, kind="stable")
        self.flipped_indices_ = flipped[order]
        self.flipped_from_ = y[self.flipped_indices_]
        self.flipped_to_ = np.asarray(targets, dtype=y.dtype)[order] if targets else y[:0].copy()
        y_new[self.flipped_indices_] = self.flipped_to_
        self.sample_indices_ = np.arange(X.shape[0])
        return X.copy(), y_new, lambda w: w.copy()
