"""HAMR's hardness-aware neighbourhood resampling as a stand-alone imbalanced-learn sampler on
numeric features (typically sentence embeddings), with hardness taken from an out-of-fold probe
classifier instead of the meta-learned sample weights. The numeric core (FAISS neighbourhoods,
boost, sampling probabilities) is :mod:`skimb.utils._neighbors`, shared with HAMR.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ..utils._neighbors import (DRAW_SCHEMES, INDEX_KINDS, WEIGHT_CLIP, _as_float32_rows, _top_share,
                                build_index, draw_epoch_indices, neighbor_boost, sampling_probabilities)
from ..utils._param_validation import HasMethods, Interval, Options
from ._base import BaseEmbeddingSampler, sampler_constraints
from ._probe import out_of_fold_proba

__all__ = ["HardnessNeighborhoodSampler"]


class HardnessNeighborhoodSampler(BaseEmbeddingSampler):
    """Over-sample hard examples and their embedding-space neighbourhoods (HAMR, stand-alone).

    The region resampling of HAMR (Rao et al., 2025, §2.2) on numeric features ``X`` (typically sentence
    embeddings), with per-sample hardness from an out-of-fold probe classifier instead of
    HAMR's meta-learned sample weights:

    1. probe error ``e_i = 1 − p̂(y_i | x_i)``, ``p̂`` from ``cross_val_predict(probe, X, y, cv=cv,
       method="predict_proba")``, put on the scale of HAMR's hardness (the EMA of its WNet
       weights, which are mean-normalised and clipped to ``WEIGHT_CLIP = (0.1, 8)``): hardness
       ``h_i = clip(e_i / mean(e), 0.1, 8)`` (all 1 when ``e`` is all 0);
    2. the ``knn_ratio`` share of samples with the largest probe error is the hard set;
    3. neighbourhood boost ``b_i`` = hit count of ``i`` among the hard samples' ``knn_k``
       nearest neighbours (cosine, FAISS; a hard sample counts itself) / the largest hit count;
    4. ``p_i ∝ ((h_i + 1e-6) ** (1 / temperature)) ** hardness_alpha · (1 + knn_lambda · b_i)``;
    5. ``round(oversample_ratio · n_samples)`` draws with replacement from ``p``, systematic
       by default (each row drawn ``floor`` or ``ceil`` of its expected count).

    Parameters
    ----------
    probe : classifier, default=None
        Any scikit-learn classifier with ``predict_proba``; cloned, never fitted in place.
        ``None`` means ``LogisticRegression(max_iter=1000)``. A probe whose ``random_state`` is
        ``None`` gets one drawn from ``random_state``.
    cv : int or cross-validation splitter, default=5
        Folds of the out-of-fold probe. An integer gives shuffled stratified folds, their number
        capped at the smallest class count (at least 2: a class with a single row is then absent
        from one training fold and gets probability 0, i.e. hardness 1, there; a training fold left
        with one class predicts it with certainty). With only single-row classes the probe is
        fitted in-sample.
    knn_ratio : float in (0, 1], default=0.1
        Share of hardest samples forming the hard set (floor, at least one sample).
    knn_k : int, default=10
        Neighbours retrieved per hard sample, itself included.
    hardness_alpha : float, default=0.7
    knn_lambda : float, default=0.7
    temperature : float, default=1.0
        The base ``h + 1e-6`` is raised to ``1 / temperature`` (1.0 = the HAMR reference).
    oversample_ratio : float, default=1.2
        Output size as a multiple of the input size.
    draw_scheme : {"systematic", "multinomial"}, default="systematic"
        Systematic resampling draws each row ``floor`` or ``ceil`` of ``n_draws · p_i`` times, so
        every row whose expected count is at least 1 is kept; independent (multinomial) draws,
        the paper's, leave out about a third of the rows at near-uniform ``p``
        (:func:`skimb.training.hamr.draw_indices`). HAMR's training uses the same default.
    index : {"auto", "flat", "ivf", "hnsw"}, default="auto"
        FAISS index for the neighbour search (:func:`skimb.training.hamr.build_index`); "flat" is
        exact, "auto" exact up to 50,000 rows and IVF above.
    random_state : int, RandomState instance or None, default=None
        Controls the folds, the draws and the IVF k-means seed.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_samples_new,)
        Row of the input behind each output row.
    hardness_ : ndarray of shape (n_samples,)
        ``h``: the probe error on HAMR's weight scale (mean 1 before clipping, in [0.1, 8]).
    probe_error_ : ndarray of shape (n_samples,)
        ``1 − p̂(true class)`` from the out-of-fold probe, in [0, 1].
    hard_indices_ : ndarray
        Ids of the hard set, hardest first.
    neighbor_boost_ : ndarray of shape (n_samples,)
        Boost in [0, 1].
    sampling_probabilities_ : ndarray of shape (n_samples,)
        ``p`` (sums to 1).
    classes_ : ndarray
    sampling_strategy_ : str
        ``"auto"``; unused (this sampler does not target class counts).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string feature names.

    Notes
    -----
    Sparse ``X`` is accepted (the probe sees it as is), but the neighbour search densifies a
    float32 copy: meant for embeddings, not for wide TF-IDF matrices. ``fit_resample(X, y,
    sample_weight=w)`` returns ``(X_res, y_res, w[sample_indices_])``: the weights are passed
    through, not used by the probe. Inputs are never modified.

    Hardness is on HAMR's scale so that HAMR's defaults (``hardness_alpha=0.7``) mean the same
    here: the raw error ``1 − p̂`` would send samples the probe gets right with confidence to a
    base near ``1e-6`` and make the draw extreme. On this scale the largest ratio of two sampling
    probabilities is at most ``(8 / 0.1) ** (hardness_alpha / temperature) · (1 + knn_lambda)``
    (about 37 with the defaults); lower ``temperature`` to sharpen it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=200, weights=[0.8], random_state=0)
    >>> sampler = HardnessNeighborhoodSampler(random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> X_res.shape
    (240, 20)
    >>> bool(np.all(X_res == X[sampler.sample_indices_]))
    True
    """

    _sampling_type = "bypass"
    _provides_sample_indices = True
    _parameter_constraints = {
        **sampler_constraints(),
        "probe": [None, HasMethods("fit", "predict_proba")],
        "cv": [Interval(Integral, 2, None), HasMethods("split")],
        "knn_ratio": [Interval(Real, 0, 1, closed="right")],
        "knn_k": [Interval(Integral, 1, None)],
        "hardness_alpha": [Interval(Real, 0, None)],
        "knn_lambda": [Interval(Real, 0, None)],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "oversample_ratio": [Interval(Real, 0, None, closed="neither")],
        "draw_scheme": [Options(*DRAW_SCHEMES)],
        "index": [Options(*INDEX_KINDS)],
    }

    def __init__(
        self,
        *,
        probe=None,
        cv=5,
        knn_ratio=0.1,
        knn_k=10,
        hardness_alpha=0.7,
        knn_lambda=0.7,
        temperature=1.0,
        oversample_ratio=1.2,
        draw_scheme="systematic",
        index="auto",
        random_state=None,
    ):
        super().__init__()
        self.probe = probe
        self.cv = cv
        self.knn_ratio = knn_ratio
        self.knn_k = knn_k
        self.hardness_alpha = hardness_alpha
        self.knn_lambda = knn_lambda
        self.temperature = temperature
        self.oversample_ratio = oversample_ratio
        self.draw_scheme = draw_scheme
        self.index = index
        self.random_state = random_state

    def _out_of_fold_hardness(self, X, y_enc, n_classes, rng) -> np.ndarray:
        probe = LogisticRegression(max_iter=1000) if self.probe is None else clone(self.probe)
        params = probe.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            probe.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        counts = np.bincount(y_enc, minlength=n_classes)
        if isinstance(self.cv, Integral) and counts.max() < 2:  # only single-row classes: no out-of-fold estimate
            proba = probe.fit(X, y_enc).predict_proba(X)
        else:
            cv = self.cv
            if isinstance(cv, Integral):
                n_splits = int(max(2, min(int(cv), int(counts.min()))))
                cv = StratifiedKFold(n_splits=n_splits, shuffle=True,
                                     random_state=int(rng.randint(np.iinfo(np.int32).max)))
            proba = out_of_fold_proba(probe, X, y_enc, n_classes, cv)
        p_true = np.asarray(proba, dtype=np.float64)[np.arange(y_enc.size), y_enc]
        return np.clip(1.0 - p_true, 0.0, 1.0)

    @staticmethod
    def _hamr_scale(error: np.ndarray) -> np.ndarray:
        """Probe error on HAMR's weight scale: ``error / mean(error)`` clipped to ``WEIGHT_CLIP``."""
        mean = float(error.mean())
        if not mean > 0:  # the probe is right with certainty everywhere: all equally hard
            return np.ones_like(error)
        return np.clip(error / mean, *WEIGHT_CLIP)

    def _fit_resample(self, X, y, rng):
        classes, y_enc = np.unique(y, return_inverse=True)
        y_enc = y_enc.reshape(-1)
        self.classes_ = classes
        error = self._out_of_fold_hardness(X, y_enc, classes.size, rng)
        hardness = self._hamr_scale(error)

        hard = _top_share(error, float(self.knn_ratio))  # the raw error: no ties from the clip
        emb = _as_float32_rows(X, "X")
        index = build_index(emb, self.index, random_state=int(rng.randint(np.iinfo(np.int32).max)))
        boost = neighbor_boost(index, emb, hard, int(self.knn_k))
        p = sampling_probabilities(
            hardness,
            boost,
            hardness_alpha=float(self.hardness_alpha),
            knn_lambda=float(self.knn_lambda),
            temperature=float(self.temperature),
        )
        idx = draw_epoch_indices(p, float(self.oversample_ratio), rng, self.draw_scheme)

        self.hardness_ = hardness
        self.probe_error_ = error
        self.hard_indices_ = hard
        self.neighbor_boost_ = boost
        self.sampling_probabilities_ = p
        self.sample_indices_ = idx
        return X[idx], y[idx], lambda w: w[idx]
