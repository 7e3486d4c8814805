"""HAMR's region resampling as numeric building blocks, shared by HAMR and the hardness sampler.

Torch-free and knowing nothing of the estimators, so that both users import it from below:
:mod:`skimb.training.hamr` (the integrated training) and
:class:`skimb.samplers.HardnessNeighborhoodSampler` (the stand-alone sampler). FAISS cosine
indexes on L2-normalised embeddings (:func:`build_index`, :func:`knn_search`,
:func:`recall_at_k`), the neighbourhood boost (:func:`neighbor_boost`), the sampling probability
(:func:`sampling_probabilities`) and the per-epoch draw (:func:`draw_epoch_indices`).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from scipy import sparse

__all__ = [
    "HARDNESS_EPS",
    "WEIGHT_CLIP",
    "INDEX_KINDS",
    "AUTO_EXACT_MAX",
    "BlockedIVFIndex",
    "auto_index_kind",
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
#: its hardness tracks: the WNet's clipping (``skimb.training.hamr._wnet``), and the scale the
#: hardness sampler puts its probe's hardness on.
WEIGHT_CLIP = (0.1, 8.0)

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")

#: ``kind="auto"`` searches exactly up to this many vectors and with IVF above.
AUTO_EXACT_MAX = 50_000
#: IVF as ``"auto"`` builds it: ``AUTO_NLIST_PER_SQRT_N · sqrt(N)`` lists, ``max(AUTO_NPROBE,
#: nlist / 64)`` visited per query, k-means trained on ``AUTO_TRAIN_PER_LIST`` points a list
#: (recall@10 ≥ 0.99 at 10^5 and 10^6 vectors in ``benchmarks/knn_index.py``).
AUTO_NLIST_PER_SQRT_N = 1
AUTO_NPROBE = 8
AUTO_TRAIN_PER_LIST = 16
#: Iterations of the IVF k-means (FAISS's default is 25; 10 loses no recall in the benchmark).
KMEANS_ITER = 10


def auto_index_kind(n_samples: int) -> str:
    """The index ``kind="auto"`` builds for ``n_samples`` vectors.

    >>> auto_index_kind(10_000), auto_index_kind(200_000)
    ('flat', 'ivf')
    """
    return "flat" if int(n_samples) <= AUTO_EXACT_MAX else "ivf"


# --------------------------------------------------------------------------------------------
# FAISS helpers
# --------------------------------------------------------------------------------------------


def _import_faiss():
    from ._optional import import_optional

    return import_optional("faiss")


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


#: Rows per block of :func:`unit_rows`: the temporaries of a 10⁶-row array stay at one block's size.
NORMALIZE_BLOCK = 16384


def unit_rows(emb: np.ndarray, *, inplace: bool) -> np.ndarray:
    """``emb`` with every row scaled to unit L2 norm (all-zero rows stay zero), block by block,
    so that no temporary as large as ``emb`` is made; in place when ``inplace``.

    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), inplace=False).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    out = emb if inplace else np.empty_like(emb)
    for start in range(0, len(emb), NORMALIZE_BLOCK):
        block = emb[start:start + NORMALIZE_BLOCK]
        norms = np.linalg.norm(block, axis=1, keepdims=True)  # row by row: as over the whole array
        np.divide(block, np.maximum(norms, 1e-12), out=out[start:start + NORMALIZE_BLOCK])
    return out


def _l2_normalised(x, what: str) -> np.ndarray:
    """L2-normalised float32 copy of ``x``; all-zero rows stay zero."""
    return unit_rows(_as_float32_rows(x, what), inplace=True)


def build_index(
    embeddings,
    kind: str = "flat",
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int = 64,
    train_per_list: int | None = None,
    random_state: int = 0,
):
    """Build a FAISS cosine-similarity index over the rows of ``embeddings``.

    Rows are L2-normalised (on a float32 copy; the caller's array is never modified) and
    compared by inner product, so similarities are cosines.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
        One embedding per training sample (numpy, torch or scipy sparse).
    kind : {"auto", "flat", "ivf", "hnsw"}, default="flat"
        ``"auto"``: ``"flat"`` up to ``AUTO_EXACT_MAX`` (50,000) vectors, above that ``"ivf"`` with
        ``sqrt(N)`` lists, ``max(8, nlist / 64)`` visited per query and k-means trained on 16
        points a list (recall@10 ≥ 0.99 against exact search at 10^5 and 10^6 vectors in
        ``benchmarks/knn_index.py``).
        ``"flat"``: exact search (``IndexFlatIP``), the HAMR reference.
        ``"ivf"``: an inverted-file index over a spherical k-means (FAISS's), searched list by list
        (:class:`BlockedIVFIndex`). ``"hnsw"``: FAISS's ``IndexHNSWFlat`` with
        ``METRIC_INNER_PRODUCT``.
        Check an approximate index with :func:`recall_at_k` against a flat one.
    nlist : int, optional
        IVF only: number of inverted lists. Default ``min(4·sqrt(N), N // 39)`` (at least 1),
        so that k-means has the 39 points per centroid FAISS asks for.
    nprobe : int, optional
        IVF only: lists visited per query. Default ``ceil(nlist / 4)``.
    train_per_list : int, optional
        IVF only: train the k-means on at most this many points per list (a random sample);
        default FAISS's 256 (``"auto"``: 16).
    hnsw_m : int, default=32
        HNSW only: graph degree.
    ef_search : int, default=64
        HNSW only: search beam width (raised to ``k`` at search time when smaller).
    random_state : int, default=0
        Seed of the IVF k-means.

    Returns
    -------
    index : faiss.Index or BlockedIVFIndex
        Holds ``n_samples`` vectors (``index.ntotal``); the row number is the sample id.

    Notes
    -----
    FAISS runs with ``OMP_NUM_THREADS`` threads when that variable is set, else with the CPUs
    available to the process; the global FAISS setting is restored afterwards. A multi-threaded
    HNSW build is not bit-for-bit reproducible; flat and IVF (fixed seed) are.
    The IVF index is searched by :meth:`BlockedIVFIndex.search`: one matrix product per list for
    all the queries that visit it, where FAISS's ``IndexIVFFlat`` scans the lists query by query.

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
    if kind == "auto":
        kind = auto_index_kind(n)
        if kind == "ivf":
            nlist = nlist if nlist is not None else int(round(AUTO_NLIST_PER_SQRT_N * np.sqrt(n)))
            nprobe = nprobe if nprobe is not None else max(AUTO_NPROBE, int(np.ceil(nlist / 64)))
            train_per_list = train_per_list if train_per_list is not None else AUTO_TRAIN_PER_LIST
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
            kmeans = faiss.Kmeans(d, nlist, niter=KMEANS_ITER, spherical=True, seed=int(random_state),
                                  max_points_per_centroid=int(train_per_list or 256), verbose=False)
            kmeans.train(x)
            return BlockedIVFIndex(x, kmeans.centroids, kmeans.index.search(x, 1)[1][:, 0], min(nprobe, nlist))
        # hnsw
        if int(hnsw_m) < 2:
            raise ValueError(f"hnsw_m must be >= 2, got {hnsw_m}.")
        index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = int(ef_search)
        index.add(x)
        return index


class BlockedIVFIndex:
    """An inverted-file index searched one list at a time: for each list, one matrix product of the
    queries that visit it against its vectors.

    FAISS's ``IndexIVFFlat`` scans the visited lists query by query, which streams each list from
    memory once per query; HAMR's boost asks many queries at once (10% of the samples), so here a
    list is read once and scored by BLAS for all of them (``benchmarks/knn_index.py``). The results
    are those of an IVF search with the same lists and ``nprobe`` (up to ties).

    Parameters
    ----------
    vectors : ndarray of shape (n_samples, d), float32
        The L2-normalised vectors (kept, in list order).
    centroids : ndarray of shape (nlist, d), float32
        The lists' centres.
    assignment : ndarray of shape (n_samples,), int
        Each vector's list.
    nprobe : int
        Lists visited per query, the nearest centres first.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> index = BlockedIVFIndex(X, X[[0, 2]], np.array([0, 0, 1, 1]), nprobe=1)
    >>> index.ntotal, index.search(X[:1], 2)[1].tolist()
    (4, [[0, 1]])
    """

    def __init__(self, vectors, centroids, assignment, nprobe: int):
        assignment = np.asarray(assignment, dtype=np.int64)
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        order = np.argsort(assignment, kind="stable")
        self.vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        self.ids = order.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(assignment, minlength=len(self.centroids)))])
        self.nprobe = int(nprobe)
        if self.nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}.")
        self.ntotal, self.d = self.vectors.shape
        self.nlist = len(self.centroids)

    def search(self, queries, k: int):
        """``(similarities, ids)`` of the ``k`` best of the visited lists, best first; ``-inf`` and
        ``-1`` where the visited lists hold fewer than ``k`` vectors (the FAISS convention)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        nq, k, nprobe = len(q), int(k), min(self.nprobe, self.nlist)
        near = q @ self.centroids.T
        probes = np.argpartition(-near, nprobe - 1, axis=1)[:, :nprobe] if nprobe < self.nlist else np.tile(
            np.arange(self.nlist), (nq, 1))
        # (list, query, slot) triples sorted by list: each list's queries are one contiguous run
        lists, queries_of, slots = probes.ravel(), np.repeat(np.arange(nq), nprobe), np.tile(np.arange(nprobe), nq)
        by_list = np.argsort(lists, kind="stable")
        lists, queries_of, slots = lists[by_list], queries_of[by_list], slots[by_list]
        runs = np.searchsorted(lists, np.arange(self.nlist + 1))
        sims = np.full((nq, nprobe * k), -np.inf, dtype=np.float32)
        ids = np.full((nq, nprobe * k), -1, dtype=np.int64)
        for lst in np.flatnonzero(np.diff(runs)):
            lo, hi = self.offsets[lst], self.offsets[lst + 1]
            if lo == hi:
                continue
            who = queries_of[runs[lst]:runs[lst + 1]]
            scores = q[who] @ self.vectors[lo:hi].T
            kk = min(k, hi - lo)
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < hi - lo else \
                np.broadcast_to(np.arange(kk), (len(who), kk))
            cols = slots[runs[lst]:runs[lst + 1], None] * k + np.arange(kk)
            sims[who[:, None], cols] = np.take_along_axis(scores, top, axis=1)
            ids[who[:, None], cols] = self.ids[lo + top]
        best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, best, axis=1), np.take_along_axis(ids, best, axis=1)


def knn_search(index, queries, k: int):
    """The ``k`` most cosine-similar indexed rows of each query.

    Parameters
    ----------
    index : faiss.Index or BlockedIVFIndex
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
    index : faiss.Index or BlockedIVFIndex
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
    approx_index, exact_index : faiss.Index or BlockedIVFIndex
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
        Non-negative hardness (HAMR training: ``HardnessTracker.m``; only the relative
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


#: How an epoch's draws follow the sampling distribution: independent draws, or systematic
#: (low-variance) resampling, where sample ``i`` is drawn ``floor(n·p_i)`` or ``ceil(n·p_i)`` times.
DRAW_SCHEMES = ("multinomial", "systematic")


def draw_indices(p, n_draws: int, rng, scheme: str = "multinomial") -> np.ndarray:
    """``n_draws`` sample ids following the normalised weights ``p`` (in random order).

    ``"multinomial"``: independent draws with replacement (``rng.choice``); a sample's count
    varies around ``n_draws · p_i``, so at uniform ``p`` only about 63% of the samples are seen.
    ``"systematic"``: one uniform offset and ``n_draws`` evenly spaced points on the cumulative
    distribution; each count is ``floor`` or ``ceil`` of ``n_draws · p_i`` (same expectation, least
    variance), so at uniform ``p`` every sample is seen once.

    >>> rng = np.random.default_rng(0)
    >>> np.bincount(draw_indices([0.1, 0.2, 0.3, 0.4], 10, rng, "systematic"), minlength=4).tolist()
    [1, 2, 3, 4]
    """
    if scheme not in DRAW_SCHEMES:
        raise ValueError(f"scheme must be one of {DRAW_SCHEMES}, got {scheme!r}.")
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    n_draws = int(n_draws)
    if scheme == "multinomial":
        return np.asarray(rng.choice(p.size, size=n_draws, replace=True, p=p), dtype=np.int64)
    points = (rng.random() + np.arange(n_draws)) / n_draws
    idx = np.searchsorted(np.cumsum(p), points, side="right")
    return rng.permutation(np.minimum(idx, p.size - 1)).astype(np.int64)


def draw_epoch_indices(p, oversample_ratio: float = 1.0, rng=None, scheme: str = "multinomial") -> np.ndarray:
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
    scheme : {"multinomial", "systematic"}, default="multinomial"
        Independent draws, or systematic resampling (:func:`draw_indices`).

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
    return draw_indices(p, n_draws, _as_rng(rng), scheme)


def _top_share(scores: np.ndarray, ratio: float) -> np.ndarray:
    """Ids of the ``ratio`` share (floor, at least 1) of largest scores; ties -> lower id first."""
    n = scores.size
    n_top = max(1, int(np.floor(ratio * n + 1e-9)))
    return np.argsort(-scores, kind="stable")[: min(n_top, n)].astype(np.int64)
