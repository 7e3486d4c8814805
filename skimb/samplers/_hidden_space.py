"""Hidden-space augmentation on embeddings: TextCut, GE3 and REPRINT.

These samplers work on a 2-D numeric X (sentence embeddings, e.g. the output of an embedder
step of an :class:`imblearn.pipeline.Pipeline`) and follow imbalanced-learn's over-sampling
contract: ``sampling_strategy`` says how many synthetic vectors each class receives
(``"auto"`` = every class but the majority up to the majority's count), the output holds the
input rows first, in input order, then the synthetic rows class by class (sorted class
order). Sparse input is accepted for pipeline compatibility and densified internally (the
synthetic rows are dense vectors); the output is then sparse in the input's format. Integer
X gives float64 output; float32 stays float32.

``sample_indices_`` is not defined (synthetic rows are not drawn from the input). Which input
rows each synthetic row was built from is exposed instead (``parent_indices_``,
``donor_indices_``, ``source_indices_``; see each class). With ``sample_weight``, a
synthetic row inherits the weight of its parent (``parent_indices_``); GE3 rows, which have
no parent of their own class, take the mean weight of their class.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from ..utils._param_validation import Interval, Options
from ._base import BaseEmbeddingSampler, _cycle_draw, sampler_constraints

__all__ = ["TextCutOverSampler", "GE3OverSampler", "REPRINTOverSampler"]

#: The ``source`` classes of the extrapolating samplers (GE3, REPRINT).
_SOURCES = [Options("larger", "all")]


class _BaseHiddenSpaceOverSampler(BaseEmbeddingSampler):
    """Loop over the classes to augment; subclasses implement ``_generate``."""

    _sampling_type = "over-sampling"
    _provides_sample_indices = False
    _index_attributes: tuple = ()

    def _prepare(self, X, y, members):
        return None

    def _generate(self, X, y, cls, n_new, members, state, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_resample(self, X, y, rng):
        sparse_in = sp.issparse(X)
        Xd = X.toarray() if sparse_in else np.asarray(X)
        out_dtype = Xd.dtype if Xd.dtype.kind == "f" else np.dtype(np.float64)
        Xf = Xd.astype(np.float64, copy=False)
        members = {c: np.flatnonzero(y == c) for c in np.unique(y)}
        state = self._prepare(Xf, y, members)
        rows, labels = [], []
        collected = {name: [] for name in self._index_attributes}
        for cls, n_new in self.sampling_strategy_.items():
            if n_new <= 0:
                continue
            new_rows, indices = self._generate(Xf, y, cls, int(n_new), members, state, rng)
            rows.append(new_rows)
            labels.append(np.full(int(n_new), cls, dtype=y.dtype))
            for name in self._index_attributes:
                collected[name].append(indices[name])
        for name in self._index_attributes:
            setattr(self, name, np.concatenate(collected[name]).astype(np.int64)
                    if collected[name] else np.empty(0, dtype=np.int64))
        X_new = np.vstack(rows).astype(out_dtype) if rows else np.empty((0, Xd.shape[1]), out_dtype)
        y_new = np.concatenate(labels) if labels else np.empty(0, dtype=y.dtype)
        if sparse_in:
            X_res = sp.vstack([X.astype(out_dtype), sp.csr_matrix(X_new)], format=X.format)
        else:
            X_res = np.vstack([Xd.astype(out_dtype, copy=True), X_new])
        y_res = np.concatenate([y, y_new])

        def weight_fn(w):
            if "parent_indices_" in self._index_attributes:
                return np.concatenate([w, w[self.parent_indices_]])
            means = {c: float(w[m].mean()) if m.size else 0.0 for c, m in members.items()}
            return np.concatenate([w, np.array([means[c] for c in y_new], dtype=np.float64)])

        return X_res, y_res, weight_fn

    @staticmethod
    def _source_pool(cls, members, source):
        """Input rows whose deviation from their class mean is transplanted to class ``cls``."""
        others = [c for c in members if c != cls]
        if source == "larger":
            larger = [c for c in others if members[c].size > members[cls].size]
            others = larger or others
        return np.concatenate([members[c] for c in others])


class TextCutOverSampler(_BaseHiddenSpaceOverSampler):
    """TextCut (Jiang et al. 2021): replace small regions of a minority representation.

    Inspired by CutMix, TextCut "randomly replaces small parts of the BERT representation of
    one instance with those of the other" (survey, §3.2). Here a representation is one row of
    X. Each synthetic row starts as a copy of a *parent* row of the class to augment (parents
    cycle through random permutations of the class); ``n_regions`` contiguous regions of
    dimensions, of ``max(1, round(cut_ratio * n_features))`` dimensions in total, are then
    copied from a *donor* row (region starts are uniform; regions may overlap, so up to that
    many dimensions change). The synthetic row keeps its parent's label.

    Choices where the description is vague (documented): regions are spans of the feature
    axis of a sentence vector (not token spans of a sequence of hidden states); the donor is
    another row of the same class by default (label-preserving; CutMix would mix the labels,
    which imbalanced-learn's hard-label contract cannot express), or any other row with
    ``donor="any"`` (the label stays the parent's, which the small ``cut_ratio`` justifies).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        imbalanced-learn's over-sampling semantics.
    cut_ratio : float in (0, 1], default=0.1
        Share of the dimensions taken from the donor.
    n_regions : int, default=2
        Number of contiguous regions the replaced dimensions are split into (at most the
        number of replaced dimensions).
    donor : {"same_class", "any"}, default="same_class"
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        ``{class: number of synthetic rows}``.
    parent_indices_ : ndarray of shape (n_synthetic,)
        Row the synthetic row was copied from (same class; its weight is inherited).
    donor_indices_ : ndarray of shape (n_synthetic,)
        Row the replaced regions come from (the parent itself only when it is alone in its
        class with ``donor="same_class"``).
    n_features_in_ : int
    feature_names_in_ : ndarray
        Defined when X is a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skimb.samplers import TextCutOverSampler
    >>> X = np.arange(20, dtype=float).reshape(5, 4)
    >>> y = np.array([0, 0, 0, 1, 1])
    >>> X_res, y_res = TextCutOverSampler(cut_ratio=0.5, random_state=0).fit_resample(X, y)
    >>> X_res.shape, y_res.tolist()
    ((6, 4), [0, 0, 0, 1, 1, 1])
    """

    _index_attributes = ("parent_indices_", "donor_indices_")
    _parameter_constraints = {
        **sampler_constraints("over-sampling"),
        "cut_ratio": [Interval(Real, 0, 1, closed="right")],
        "n_regions": [Interval(Integral, 1, None)],
        "donor": [Options("same_class", "any")],
    }

    def __init__(self, *, sampling_strategy="auto", cut_ratio=0.1, n_regions=2,
                 donor="same_class", random_state=None):
        self.sampling_strategy = sampling_strategy
        self.cut_ratio = cut_ratio
        self.n_regions = n_regions
        self.donor = donor
        self.random_state = random_state

    def _generate(self, X, y, cls, n_new, members, state, rng):
        n, d = X.shape
        pool = members[cls]
        parents = _cycle_draw(pool, n_new, rng)
        donor_pool = pool if self.donor == "same_class" else np.arange(n)
        if donor_pool.size == 1:
            donors = parents.copy()
        else:  # uniform over the donor pool minus the parent
            k = rng.randint(donor_pool.size - 1, size=n_new)
            k += k >= np.searchsorted(donor_pool, parents)
            donors = donor_pool[k]
        n_cut = max(1, int(round(float(self.cut_ratio) * d)))
        n_reg = min(int(self.n_regions), n_cut)
        lengths = [n_cut // n_reg + (1 if r < n_cut % n_reg else 0) for r in range(n_reg)]
        cols = np.arange(d)
        mask = np.zeros((n_new, d), dtype=bool)
        for length in lengths:
            starts = rng.randint(0, d - length + 1, size=n_new)[:, None]
            mask |= (cols >= starts) & (cols < starts + length)
        rows = np.where(mask, X[donors], X[parents])
        return rows, {"parent_indices_": parents, "donor_indices_": donors}


class GE3OverSampler(_BaseHiddenSpaceOverSampler):
    """GE3, good-enough example extrapolation (Wei 2021), in the representation space.

    "To synthesize a new minority instance, GE3 adds the vector representing the difference
    between a majority class instance and the centroid of the respective majority class to the
    mean of a minority class" (survey, §3.2):

    .. math:: \\tilde x = \\mu_{t} + (x_s - \\mu_{y_s})

    for a target class ``t`` and a *source* row ``x_s`` of another class. Source rows are
    drawn by cycling through random permutations of the source pool (without repetition while
    possible).

    Choices where the description is vague (documented): "majority class" = every class
    larger than the target (``source="larger"``, the default); if there is none (the majority
    itself is targeted, e.g. by a dict), every other class is used. ``source="all"``
    extrapolates from every other class, as GE3's paper does. Class means are computed on all
    rows of the class.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
    source : {"larger", "all"}, default="larger"
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
    source_indices_ : ndarray of shape (n_synthetic,)
        The row whose deviation from its class mean was extrapolated.
    class_means_ : dict
        ``{class: mean row}``.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    There is no ``parent_indices_``: a GE3 row has no parent of its own class. With
    ``sample_weight``, it takes the mean weight of its class.

    Examples
    --------
    >>> import numpy as np
    >>> from skimb.samplers import GE3OverSampler
    >>> X = np.array([[0., 0.], [2., 0.], [0., 2.], [2., 2.], [10., 10.]])
    >>> y = np.array([0, 0, 0, 0, 1])
    >>> ge3 = GE3OverSampler(sampling_strategy={1: 5}, random_state=0)
    >>> X_res, y_res = ge3.fit_resample(X, y)
    >>> X_res[5:][np.lexsort(X_res[5:].T[::-1])]
    array([[ 9.,  9.],
           [ 9., 11.],
           [11.,  9.],
           [11., 11.]])
    """

    _index_attributes = ("source_indices_",)
    _parameter_constraints = {**sampler_constraints("over-sampling"), "source": _SOURCES}

    def __init__(self, *, sampling_strategy="auto", source="larger", random_state=None):
        self.sampling_strategy = sampling_strategy
        self.source = source
        self.random_state = random_state

    def _prepare(self, X, y, members):
        self.class_means_ = {c: X[m].mean(axis=0) for c, m in members.items()}
        return self.class_means_

    def _generate(self, X, y, cls, n_new, members, means, rng):
        sources = _cycle_draw(self._source_pool(cls, members, self.source), n_new, rng)
        source_means = np.vstack([means[c] for c in y[sources]])
        rows = means[cls] + (X[sources] - source_means)
        return rows, {"source_indices_": sources}


class REPRINTOverSampler(_BaseHiddenSpaceOverSampler):
    """REPRINT (Wei et al. 2022): extrapolation with class principal subspaces.

    REPRINT refines GE3: "to account for [a different minority distribution] when subtracting
    out majority characteristics, REPRINT performs a principal component analysis (PCA) for
    each class, leveraging the information on relevant dimensions during sample generation"
    with "one hyperparameter determining the dimension of subspace" (survey §3.2; paper
    abstract: examples are extrapolated "in a randomized fashion ... using subspaces spanned by
    principal components to summarize distribution structure of both source and target class
    ... [to] diversify the target while maintaining the original geometry of target
    distribution").

    Our reading (documented choice): with ``U_c`` the top ``k`` principal directions of class
    ``c`` (``P_c = U_c U_c^T``), a source row ``x_s`` of class ``s`` and a randomly drawn row
    ``x_t`` of the target class ``t`` (its *parent*),

    .. math::

        d_s = x_s - \\mu_s, \\quad
        r = (I - P_t)(I - P_s)\\, d_s, \\quad
        \\tilde x = \\mu_t + P_t (x_t - \\mu_t) + r

    i.e. the source deviation with the source class's own principal structure subtracted out
    (the "majority characteristics") fills the directions outside the target's principal
    subspace, while inside that subspace the synthetic row has the coordinates of a real target
    row, which keeps the target's geometry. With ``n_components=0`` this is GE3's formula (and,
    with a single class to augment and the same ``random_state``, GE3's very rows). The paper's label refinement (soft labels) is not
    used: synthetic rows take the target's hard label.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
    n_components : int, default=5
        ``k``, the subspace dimension; per class it is capped at the rank of the centred class
        data (so a class of one row has none).
    source : {"larger", "all"}, default="larger"
        Source classes, as in :class:`GE3OverSampler`.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
    parent_indices_ : ndarray of shape (n_synthetic,)
        The target-class row whose principal coordinates the synthetic row takes (its weight is
        inherited).
    source_indices_ : ndarray of shape (n_synthetic,)
        The source row whose residual deviation was extrapolated.
    class_means_ : dict
        ``{class: mean row}``.
    components_ : dict
        ``{class: array of shape (k_c, n_features)}``, the principal directions used.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from skimb.samplers import REPRINTOverSampler
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (20, 3)), rng.normal(5, 1, (4, 3))])
    >>> y = np.array([0] * 20 + [1] * 4)
    >>> X_res, y_res = REPRINTOverSampler(n_components=1, random_state=0).fit_resample(X, y)
    >>> X_res.shape, int((y_res == 1).sum())
    ((40, 3), 20)
    """

    _index_attributes = ("parent_indices_", "source_indices_")
    _parameter_constraints = {
        **sampler_constraints("over-sampling"),
        "n_components": [Interval(Integral, 0, None)],
        "source": _SOURCES,
    }

    def __init__(self, *, sampling_strategy="auto", n_components=5, source="larger",
                 random_state=None):
        self.sampling_strategy = sampling_strategy
        self.n_components = n_components
        self.source = source
        self.random_state = random_state

    def _prepare(self, X, y, members):
        self.class_means_ = {c: X[m].mean(axis=0) for c, m in members.items()}
        self.components_ = {}
        for c, m in members.items():
            centred = X[m] - self.class_means_[c]
            k = int(self.n_components)
            if k == 0 or m.size < 2:
                self.components_[c] = np.empty((0, X.shape[1]))
                continue
            _, s, vt = np.linalg.svd(centred, full_matrices=False)
            tol = s.max() * max(centred.shape) * np.finfo(np.float64).eps if s.size else 0.0
            rank = int((s > tol).sum())
            self.components_[c] = vt[: min(k, rank)]
        return self.class_means_, self.components_

    def _generate(self, X, y, cls, n_new, members, state, rng):
        means, comps = state
        sources = _cycle_draw(self._source_pool(cls, members, self.source), n_new, rng)
        parents = _cycle_draw(members[cls], n_new, rng)
        resid = X[sources] - np.vstack([means[c] for c in y[sources]])
        for c in np.unique(y[sources]):
            rows_c = y[sources] == c
            V = comps[c]
            resid[rows_c] -= (resid[rows_c] @ V.T) @ V
        Vt = comps[cls]
        resid -= (resid @ Vt.T) @ Vt
        target_part = ((X[parents] - means[cls]) @ Vt.T) @ Vt
        rows = means[cls] + target_part + resid
        return rows, {"parent_indices_": parents, "source_indices_": sources}
