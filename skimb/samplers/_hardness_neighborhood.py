"""HAMR's hardness-aware neighbourhood resampling, as numeric building blocks and as a sampler.

Two layers live here, both free of torch:

* the numeric core of HAMR's region resampling (METHODS.md §3): FAISS cosine indexes on
  L2-normalised embeddings (:func:`build_index`, :func:`knn_search`, :func:`recall_at_k`), the
  neighbourhood boost (:func:`neighbor_boost`), the sampling probability
  (:func:`sampling_probabilities`) and the per-epoch draw (:func:`draw_epoch_indices`).
  ``skimb.training.hamr`` re-exports them (training sits above samplers, so the shared code lives
  here, in the lower layer);
* :class:`HardnessNeighborhoodSampler`, the same resampling as a stand-alone imbalanced-learn
  sampler on numeric features (typically sentence embeddings), with hardness taken from an
  out-of-fold probe classifier instead of the meta-learned sample weights.
"""

from __future__ import annotations

import contextlib
import os
from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ._base import BaseEmbeddingSampler, _check_int, _check_real

__all__ = [
    "HardnessNeighborhoodSampler",
    "build_index",
    "knn_search",
    "neighbor_boost",
    "recall_at_k",
    "sampling_probabilities",
    "draw_epoch_indices",
]

#: Added to the hardness before it is raised to a power (the reference's ``epsilon``).
HARDNESS_EPS = 1e-6

#: Clip range of HAMR's mean-normalised sample weights (``w / mean(w)``, then clipped), which
#: its hardness tracks. Defined here, in the torch-free lower layer, and imported by
#: ``skimb.training.hamr._wnet`` (the WNet's clipping) and by :class:`HardnessNeighborhoodSampler`
#: (to put the probe's hardness on the same scale).
WEIGHT_CLIP = (0.1, 8.0)

INDEX_KINDS = ("flat", "ivf", "hnsw")


# --------------------------------------------------------------------------------------------
# FAISS helpers
# --------------------------------------------------------------------------------------------


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a declared dependency
        raise ImportError(
            "HAMR's neighbourhood search needs FAISS: pip install faiss-cpu (or faiss-gpu)."
        ) from exc
    return faiss


def _n_threads() -> int:
    """Threads FAISS may use: ``OMP_NUM_THREADS`` when set, else the CPUs this process may run on."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env.split(",")[0])
            if n > 0:
                return n
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _faiss_threads():
    """Run FAISS with :func:`_n_threads` OpenMP threads, restoring the previous setting after."""
    faiss = _import_faiss()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(_n_threads())
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(previous)


def _as_float32_rows(x, what: str) -> np.ndarray:
    """A new C-contiguous float32 2-D array (never a view of the caller's data)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
        x = x.detach().cpu().numpy()
    if sparse.issparse(x):
        x = x.toarray()
    arr = np.array(x, dtype=np.float32, copy=True, order="C")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (one row per sample), got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    return arr


def _l2_normalised(x, what: str) -> np.ndarray:
    """L2-normalised float32 copy of ``x``; all-zero rows stay zero."""
    arr = _as_float32_rows(x, what)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    arr /= np.maximum(norms, np.float32(1e-12))
    return arr


def build_index(
    embeddings,
    kind: str = "flat",
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int = 64,
    random_state: int = 0,
):
    """Build a FAISS cosine-similarity index over the rows of ``embeddings``.

    Rows are L2-normalised (on a float32 copy; the caller's array is never modified) and
    compared by inner product, so similarities are cosines.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        One embedding per training sample (numpy, torch or scipy sparse).
    kind : {"flat", "ivf", "hnsw"}, default="flat"
        ``"flat"``: exact search (``IndexFlatIP``), the HAMR reference.
        ``"ivf"``: ``IndexIVFFlat`` with ``METRIC_INNER_PRODUCT`` (spherical k-means coarse
        quantiser). ``"hnsw"``: ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``.
        Check an approximate index with :func:`recall_at_k` against a flat one.
    nlist : int, optional
        IVF only: number of inverted lists. Default ``min(4·sqrt(N), N // 39)`` (at least 1),
        so that k-means has the 39 points per centroid FAISS asks for.
    nprobe : int, optional
        IVF only: lists visited per query. Default ``ceil(nlist / 4)``.
    hnsw_m : int, default=32
        HNSW only: graph degree.
    ef_search : int, default=64
        HNSW only: search beam width (raised to ``k`` at search time when smaller).
    random_state : int, default=0
        Seed of the IVF k-means.

    Returns
    -------
    index : faiss.Index
        Holds ``n_samples`` vectors; the row number is the sample id.

    Notes
    -----
    FAISS runs with ``OMP_NUM_THREADS`` threads when that variable is set, else with the CPUs
    available to the process; the global FAISS setting is restored afterwards. A multi-threaded
    HNSW build is not bit-for-bit reproducible; flat and IVF (fixed seed) are.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> index = build_index(X)
    >>> index.ntotal
    3
    >>> knn_search(index, X[:1], 2)[1]
    array([[0, 1]])
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}.")
    x = _l2_normalised(embeddings, "embeddings")
    n, d = x.shape
    with _faiss_threads() as faiss:
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(x)
            return index
        if kind == "ivf":
            if nlist is None:
                nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
            nlist = int(nlist)
            if not 1 <= nlist <= n:
                raise ValueError(f"nlist must be in [1, n_samples={n}], got {nlist}.")
            if nprobe is None:
                nprobe = int(np.ceil(nlist / 4))
            nprobe = int(nprobe)
            if nprobe < 1:
                raise ValueError(f"nprobe must be >= 1, got {nprobe}.")
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(random_state)
            index.cp.spherical = True
            index.train(x)
            index.add(x)
            index.nprobe = min(nprobe, nlist)
            return index
        # hnsw
        if int(hnsw_m) < 2:
            raise ValueError(f"hnsw_m must be >= 2, got {hnsw_m}.")
        index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = int(ef_search)
        index.add(x)
        return index


def knn_search(index, queries, k: int):
    """The ``k`` most cosine-similar indexed rows of each query.

    Parameters
    ----------
    index : faiss.Index
        From :func:`build_index`.
    queries : array-like of shape (n_queries, n_features)
        L2-normalised on a copy before the search.
    k : int
        Neighbours per query, capped at ``index.ntotal``.

    Returns
    -------
    similarities : ndarray of shape (n_queries, k), float32
        Cosine similarities, best first.
    indices : ndarray of shape (n_queries, k), int64
        Row ids in the index, best first; ``-1`` where an approximate index found fewer than
        ``k`` candidates.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if index.ntotal == 0:
        raise ValueError("The index is empty.")
    q = _l2_normalised(queries, "queries")
    if q.shape[1] != index.d:
        raise ValueError(f"queries have {q.shape[1]} features, the index has {index.d}.")
    k = min(k, int(index.ntotal))
    with _faiss_threads() as faiss:
        params = None
        hnsw = getattr(index, "hnsw", None)
        if hnsw is not None and hnsw.efSearch < k:
            params = faiss.SearchParametersHNSW(efSearch=k)
        if params is None:
            sims, ids = index.search(q, k)
        else:
            sims, ids = index.search(q, k, params=params)
    return sims, ids.astype(np.int64, copy=False)


def _check_indices(indices, n: int, what: str) -> np.ndarray:
    idx = np.asarray(indices.detach().cpu().numpy() if hasattr(indices, "detach") else indices)
    idx = idx.reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        if np.all(np.mod(idx, 1) == 0):
            idx = idx.astype(np.int64)
        else:
            raise TypeError(f"{what} must hold integer sample indices, got dtype {idx.dtype}.")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"{what} must lie in [0, {n}), got values in [{idx.min()}, {idx.max()}].")
    return idx


def neighbor_boost(index, embeddings, hard_indices, k: int) -> np.ndarray:
    """HAMR's neighbourhood boost: how often each sample is among the hard samples' neighbours.

    Each hard sample's ``k`` nearest neighbours (cosine, itself included) are retrieved; sample
    ``i``'s hit count is the number of those neighbour lists it appears in, and the boost is the
    hit count divided by the largest hit count (0 for samples never hit).

    Parameters
    ----------
    index : faiss.Index
        Built by :func:`build_index` on ``embeddings`` (same rows, same order).
    embeddings : array-like of shape (n_samples, n_features)
        The indexed embeddings; rows ``hard_indices`` are the queries.
    hard_indices : array-like of int
        Ids of the hard samples (duplicates are counted once).
    k : int
        Neighbours per hard sample, the hard sample itself included (capped at ``n_samples``).

    Returns
    -------
    boost : ndarray of shape (n_samples,), float64
        Values in [0, 1]; 1 for the most-hit samples.

    Notes
    -----
    A hard sample always counts itself: if an approximate index (or a tie with an exact
    duplicate) leaves it out of its own list, it replaces the least similar neighbour.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.95, 0.05], [0.9, 0.2], [0.0, 1.0]])
    >>> index = build_index(X)
    >>> neighbor_boost(index, X, [0, 1], k=2)   # 0 -> {0, 1}; 1 -> {1, 0}
    array([1., 1., 0., 0.])
    >>> neighbor_boost(index, X, [0, 3], k=2)   # 0 -> {0, 1}; 3 -> {3, 2}
    array([1., 1., 1., 1.])
    """
    n = int(index.ntotal)
    emb = _as_float32_rows(embeddings, "embeddings")
    if emb.shape[0] != n:
        raise ValueError(f"embeddings has {emb.shape[0]} rows but the index holds {n} vectors.")
    hard = np.unique(_check_indices(hard_indices, n, "hard_indices"))
    boost = np.zeros(n, dtype=np.float64)
    if hard.size == 0:
        return boost
    _, ids = knn_search(index, emb[hard], k)
    ids = ids.copy()
    k_eff = ids.shape[1]
    missing = ~np.any(ids == hard[:, None], axis=1)
    if np.any(missing):
        n_valid = np.sum(ids >= 0, axis=1)
        slot = np.where(n_valid < k_eff, n_valid, k_eff - 1)
        rows = np.flatnonzero(missing)
        ids[rows, slot[rows]] = hard[rows]
    counts = np.bincount(ids[ids >= 0], minlength=n).astype(np.float64)
    return counts / counts.max()


def recall_at_k(approx_index, exact_index, queries, k: int) -> float:
    """Recall@k of an approximate index: the share of the exact top-``k`` ids it also returns.

    Parameters
    ----------
    approx_index, exact_index : faiss.Index
        Built on the same embeddings (e.g. ``build_index(X, "ivf")`` and ``build_index(X)``).
    queries : array-like of shape (n_queries, n_features)
    k : int

    Returns
    -------
    recall : float
        Mean over queries of ``|approx ∩ exact| / |exact|``, in [0, 1].
    """
    _, a = knn_search(approx_index, queries, k)
    _, e = knn_search(exact_index, queries, k)
    hit = (a[:, :, None] == e[:, None, :]) & (a[:, :, None] >= 0)
    found = hit.any(axis=1)  # per exact neighbour
    valid = e >= 0
    return float(np.mean(found.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)))


# --------------------------------------------------------------------------------------------
# Sampling probability and the per-epoch draw
# --------------------------------------------------------------------------------------------


def _as_float64_vector(x, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.array(x, dtype=np.float64, copy=True).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what} is empty.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    return arr


def sampling_probabilities(
    m,
    boost=None,
    *,
    hardness_alpha: float = 0.7,
    knn_lambda: float = 0.7,
    temperature: float = 1.0,
) -> np.ndarray:
    """HAMR's per-sample sampling probability from hardness and neighbourhood boost.

    ``p_i ∝ ((m_i + 1e-6) ** (1 / temperature)) ** hardness_alpha · (1 + knn_lambda · b_i)``,
    normalised to sum to 1.

    The temperature enters by raising the base ``m_i + 1e-6`` to ``1 / temperature`` before the
    ``hardness_alpha`` power, i.e. the hardness exponent is ``hardness_alpha / temperature``:
    ``temperature > 1`` flattens the distribution, ``< 1`` sharpens it, and ``1.0`` is the
    reference code (which has no temperature). The boost factor is not tempered.

    Parameters
    ----------
    m : array-like of shape (n_samples,)
        Non-negative hardness (HAMR training: :attr:`HardnessTracker.m`; only the relative
        scale against the 1e-6 offset matters).
    boost : array-like of shape (n_samples,), optional
        Neighbourhood boost in [0, 1] (:func:`neighbor_boost`); ``None`` means all zeros.
    hardness_alpha : float, default=0.7
    knn_lambda : float, default=0.7
    temperature : float, default=1.0

    Returns
    -------
    p : ndarray of shape (n_samples,), float64
        Sums to 1.

    Examples
    --------
    >>> p = sampling_probabilities([1.0, 4.0], [0.0, 1.0], hardness_alpha=0.5, knn_lambda=1.0)
    >>> p.round(4)       # [1 * 1, 2 * 2] / 5
    array([0.2, 0.8])
    >>> sampling_probabilities([1.0, 4.0], hardness_alpha=1.0, temperature=2.0).round(4)
    array([0.3333, 0.6667])
    """
    m = _as_float64_vector(m, "m")
    if np.any(m < 0):
        raise ValueError("m (hardness) must be non-negative.")
    if boost is None:
        b = np.zeros_like(m)
    else:
        b = _as_float64_vector(boost, "boost")
        if b.shape != m.shape:
            raise ValueError(f"boost has {b.size} entries, m has {m.size}.")
        if np.any(b < 0):
            raise ValueError("boost must be non-negative.")
    if not hardness_alpha >= 0:
        raise ValueError(f"hardness_alpha must be >= 0, got {hardness_alpha}.")
    if not knn_lambda >= 0:
        raise ValueError(f"knn_lambda must be >= 0, got {knn_lambda}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    p = np.power(np.power(m + HARDNESS_EPS, 1.0 / temperature), hardness_alpha) * (1.0 + knn_lambda * b)
    total = p.sum()
    if not np.isfinite(total) or total <= 0:
        raise FloatingPointError("sampling probabilities do not sum to a positive finite value.")
    return p / total


def _as_rng(rng):
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    return np.random.default_rng(rng)


def draw_epoch_indices(p, oversample_ratio: float = 1.0, rng=None) -> np.ndarray:
    """Draw one epoch of sample ids, with replacement, following ``p``.

    Parameters
    ----------
    p : array-like of shape (n_samples,)
        Non-negative sampling weights (renormalised to sum to 1).
    oversample_ratio : float, default=1.0
        The epoch has ``round(oversample_ratio · n_samples)`` draws (at least 1; Python's
        ``round``, so exact halves go to the even number).
    rng : numpy Generator, RandomState, int or None
        Source of randomness.

    Returns
    -------
    indices : ndarray of shape (round(oversample_ratio · n_samples),), int64

    Examples
    --------
    >>> idx = draw_epoch_indices([0.0, 0.5, 0.5], 2.0, rng=0)
    >>> idx.shape, bool(set(idx.tolist()) <= {1, 2})
    ((6,), True)
    """
    p = _as_float64_vector(p, "p")
    if np.any(p < 0) or p.sum() <= 0:
        raise ValueError("p must be non-negative with a positive sum.")
    if not oversample_ratio > 0:
        raise ValueError(f"oversample_ratio must be > 0, got {oversample_ratio}.")
    n_draws = max(1, int(round(float(oversample_ratio) * p.size)))
    p = p / p.sum()
    return np.asarray(_as_rng(rng).choice(p.size, size=n_draws, replace=True, p=p), dtype=np.int64)


def _top_share(scores: np.ndarray, ratio: float) -> np.ndarray:
    """Ids of the ``ratio`` share (floor, at least 1) of largest scores; ties -> lower id first."""
    n = scores.size
    n_top = max(1, int(np.floor(ratio * n + 1e-9)))
    return np.argsort(-scores, kind="stable")[: min(n_top, n)].astype(np.int64)


# --------------------------------------------------------------------------------------------
# The stand-alone sampler
# --------------------------------------------------------------------------------------------


class HardnessNeighborhoodSampler(BaseEmbeddingSampler):
    """Over-sample hard examples and their embedding-space neighbourhoods (HAMR, stand-alone).

    The region resampling of HAMR (METHODS.md §3) on numeric features ``X`` (typically sentence
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
    5. ``round(oversample_ratio · n_samples)`` draws with replacement from ``p``.

    Parameters
    ----------
    probe : classifier, default=None
        Any scikit-learn classifier with ``predict_proba``; cloned, never fitted in place.
        ``None`` means ``LogisticRegression(max_iter=1000)``. A probe whose ``random_state`` is
        ``None`` gets one drawn from ``random_state``.
    cv : int or cross-validation splitter, default=5
        Folds of the out-of-fold probe. An integer gives shuffled stratified folds, their number
        capped at the smallest class count (at least 2: a class with a single row is then absent
        from one training fold and gets probability 0, i.e. hardness 1, there). With only
        single-row classes the probe is fitted in-sample.
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
    index : {"flat", "ivf", "hnsw"}, default="flat"
        FAISS index for the neighbour search (:func:`build_index`); "flat" is exact.
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
        index="flat",
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
        self.index = index
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        owner = type(self).__name__
        if self.probe is not None and not (
            hasattr(self.probe, "fit") and hasattr(self.probe, "predict_proba")
        ):
            raise TypeError(
                f"{owner}: probe must be a scikit-learn classifier with predict_proba or None, "
                f"got {self.probe!r}."
            )
        if isinstance(self.cv, Integral) and not isinstance(self.cv, bool):
            if self.cv < 2:
                raise ValueError(f"{owner}: cv must be >= 2, got {self.cv}.")
        elif not hasattr(self.cv, "split"):
            raise TypeError(f"{owner}: cv must be an int or a cross-validation splitter, got {self.cv!r}.")
        _check_real(self.knn_ratio, "knn_ratio", owner, low=0, high=1, low_open=True)
        _check_int(self.knn_k, "knn_k", owner, low=1)
        _check_real(self.hardness_alpha, "hardness_alpha", owner, low=0)
        _check_real(self.knn_lambda, "knn_lambda", owner, low=0)
        _check_real(self.temperature, "temperature", owner, low=0, low_open=True)
        _check_real(self.oversample_ratio, "oversample_ratio", owner, low=0, low_open=True)
        if self.index not in INDEX_KINDS:
            raise ValueError(f"{owner}: index must be one of {INDEX_KINDS}, got {self.index!r}.")

    def _out_of_fold_hardness(self, X, y_enc, n_classes, rng) -> np.ndarray:
        probe = LogisticRegression(max_iter=1000) if self.probe is None else clone(self.probe)
        params = probe.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            probe.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        counts = np.bincount(y_enc, minlength=n_classes)
        if isinstance(self.cv, Integral):
            if counts.max() < 2:  # every class has a single row: no out-of-fold estimate
                proba = probe.fit(X, y_enc).predict_proba(X)
            else:
                n_splits = int(max(2, min(int(self.cv), int(counts.min()))))
                cv = StratifiedKFold(
                    n_splits=n_splits, shuffle=True, random_state=int(rng.randint(np.iinfo(np.int32).max))
                )
                proba = cross_val_predict(probe, X, y_enc, cv=cv, method="predict_proba")
        else:
            proba = cross_val_predict(probe, X, y_enc, cv=self.cv, method="predict_proba")
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
        idx = draw_epoch_indices(p, float(self.oversample_ratio), rng)

        self.hardness_ = hardness
        self.probe_error_ = error
        self.hard_indices_ = hard
        self.neighbor_boost_ = boost
        self.sampling_probabilities_ = p
        self.sample_indices_ = idx
        return X[idx], y[idx], lambda w: w[idx]
