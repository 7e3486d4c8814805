"""Controlled (synthetic) class imbalance: step and long-tail profiles."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_consistent_length, check_labels

__all__ = ["make_imbalance"]

_PROFILES = ("step", "longtail")


def _take(obj, idx):
    """Select rows ``idx`` of ``obj``, returning a new container of the same kind."""
    if hasattr(obj, "iloc"):  # pandas Series / DataFrame
        return obj.iloc[idx].copy()
    if type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "take"):  # Categorical, StringArray
        return obj.take(np.asarray(idx, dtype=np.intp))  # keeps categories and their order
    if isinstance(obj, np.ndarray) or hasattr(obj, "tocsr"):  # numpy / scipy.sparse
        return obj[idx].copy() if isinstance(obj, np.ndarray) else obj[idx]
    if isinstance(obj, tuple):
        return tuple(obj[i] for i in idx)
    try:
        return [obj[i] for i in idx]
    except (TypeError, IndexError, KeyError):
        items = list(obj)
        return [items[i] for i in idx]


def _class_order(y: np.ndarray):
    """Classes sorted by decreasing count, ties broken by label order."""
    classes, counts = np.unique(y, return_counts=True)  # np.unique sorts labels
    order = sorted(range(len(classes)), key=lambda k: (-counts[k], k))
    return classes[order], counts[order]


def _n_minority(n_classes: int, minority_share: float) -> int:
    n_min = int(math.floor(minority_share * n_classes + 0.5))  # round half up
    if not 1 <= n_min <= n_classes - 1:
        raise ValueError(
            f"minority_share={minority_share} with {n_classes} classes gives {n_min} minority "
            f"classes; it must give between 1 and {n_classes - 1} (use a share between "
            f"{0.5 / n_classes:.3g} and {1 - 0.5 / n_classes:.3g})."
        )
    return n_min


def _profile(n_classes: int, profile: str, ratio: float, minority_share: float) -> np.ndarray:
    """Relative class sizes (head first), as multiples of the smallest (tail) size."""
    if profile == "step":
        n_min = _n_minority(n_classes, minority_share)
        return np.array([ratio] * (n_classes - n_min) + [1.0] * n_min)
    # long tail: exponential decay from ratio * tail down to tail
    i = np.arange(n_classes)
    return ratio ** ((n_classes - 1 - i) / (n_classes - 1))


def _sizes(tail: int, rel: np.ndarray) -> np.ndarray:
    sizes = np.floor(tail * rel + 0.5).astype(np.int64)  # round half up
    sizes[-1] = tail
    return sizes


def make_imbalance(
    X,
    y,
    *,
    profile="step",
    ratio=10.0,
    minority_share=0.5,
    random_state=None,
    min_per_class=1,
    max_per_class=None,
):
    """Subsample a data set to a prescribed step or long-tail class imbalance.

    The two prototypical label distributions of Buda et al. (2018), as
    described in §2.1 of Henning et al., *A Survey of Methods for Addressing
    Class Imbalance in Deep-Learning Based NLP* (EACL 2023):

    * **step** imbalance: a fraction ``minority_share`` (μ) of the classes are
      minority classes of equal size ``n``; the other (majority) classes all
      have size ``ratio * n`` (ρ = majority size / minority size);
    * **long-tail** imbalance: class sizes decay exponentially from the head,
      ``n_i = n * ratio ** ((K - 1 - i) / (K - 1))`` for the ``i``-th of ``K``
      classes, so the head has ``ratio`` times the examples of the tail
      (``minority_share`` is ignored).

    Classes are ranked by their frequency in the input (ties broken by label
    order): the most frequent class stays the head, the least frequent
    becomes the tail, so the data usually allow the largest result.  The
    tail size ``n`` is the largest one every class can supply (and that keeps
    the head within ``max_per_class``); sizes are
    rounded to whole examples (the achieved ratio is exactly ``ratio`` when
    ``ratio * n`` is an integer).  Examples are drawn without replacement and
    returned in their input order.

    Parameters
    ----------
    X : list, tuple, numpy array, scipy sparse matrix or pandas object
        Samples (texts, token lists, feature rows...), one per label.
    y : array-like of shape (n_samples,)
        1-D class labels (strings or integers).
    profile : {"step", "longtail"}, default="step"
        Shape of the target distribution.
    ratio : float, default=10.0
        Imbalance ratio ρ >= 1: size of the largest class over the smallest.
    minority_share : float, default=0.5
        Fraction μ of minority classes for the step profile; the number of
        minority classes is ``μ * K`` rounded half up and must be between 1 and K - 1.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.
    min_per_class : int, default=1
        Smallest acceptable size of the smallest class; an error is raised
        when the data cannot give every class at least this many examples at
        the requested ratio.
    max_per_class : int or None, default=None
        Largest acceptable size of the largest class (the head), to draw a
        smaller set than the data allow: ``max_per_class=2000, ratio=1000``
        gives a head of 2,000 and a tail of 2, as long-tailed benchmarks
        (CIFAR-LT's ``n_max``) do.  A cap, not a target: the tail is a whole
        number, so ``max_per_class=1500, ratio=1000`` gives a head of 1,000.
        None: the largest the data allow.

    Returns
    -------
    X_new : same kind as ``X``
        New container holding the selected samples (lists stay lists, arrays
        stay arrays, pandas objects keep their index).
    y_new : same kind as ``y``
        Their labels (a pandas Categorical keeps its categories and their order).

    Raises
    ------
    ValueError
        If the parameters are invalid or a class cannot supply its target
        count with at least ``min_per_class`` examples in the smallest class.

    Examples
    --------
    >>> X = [f"text {i}" for i in range(300)]
    >>> y = ["a"] * 100 + ["b"] * 100 + ["c"] * 60 + ["d"] * 40
    >>> X_new, y_new = make_imbalance(X, y, profile="step", ratio=10, random_state=0)
    >>> from collections import Counter
    >>> sorted(Counter(y_new).items())
    [('a', 100), ('b', 100), ('c', 10), ('d', 10)]
    >>> _, y_lt = make_imbalance(X, y, profile="longtail", ratio=8, random_state=0)
    >>> sorted(Counter(y_lt).items())
    [('a', 96), ('b', 48), ('c', 24), ('d', 12)]
    >>> _, y_small = make_imbalance(X, y, profile="longtail", ratio=8, max_per_class=40, random_state=0)
    >>> sorted(Counter(y_small).items())
    [('a', 40), ('b', 20), ('c', 10), ('d', 5)]
    """
    if profile not in _PROFILES:
        raise ValueError(f"profile must be one of {_PROFILES}, got {profile!r}.")
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not np.isfinite(ratio):
        raise TypeError(f"ratio must be a finite number >= 1, got {ratio!r}.")
    if ratio < 1:
        raise ValueError(
            f"ratio must be >= 1 (size of the largest class over the smallest), got {ratio}."
        )
    if isinstance(minority_share, bool) or not isinstance(minority_share, numbers.Real):
        raise TypeError(f"minority_share must be a float in (0, 1), got {minority_share!r}.")
    if not 0 < minority_share < 1:
        raise ValueError(f"minority_share must be in (0, 1), got {minority_share}.")
    if isinstance(min_per_class, bool) or not isinstance(min_per_class, numbers.Integral):
        raise TypeError(f"min_per_class must be an int >= 1, got {min_per_class!r}.")
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, got {min_per_class}.")
    if max_per_class is not None and (
        isinstance(max_per_class, bool) or not isinstance(max_per_class, numbers.Integral)
    ):
        raise TypeError(f"max_per_class must be an int >= 1 or None, got {max_per_class!r}.")

    y_arr = check_labels(y, min_classes=2)
    n_X = X.shape[0] if hasattr(X, "shape") else len(X)
    check_consistent_length(range(n_X), y_arr)

    classes, counts = _class_order(y_arr)
    rel = _profile(len(classes), profile, float(ratio), float(minority_share))
    head_cap = np.inf if max_per_class is None else max_per_class
    needed = _sizes(min_per_class, rel)  # the smallest draw allowed
    if needed[0] > head_cap:
        raise ValueError(
            f"max_per_class={max_per_class} cannot hold a head {ratio:g} times a tail of "
            f"min_per_class={min_per_class} (the head would be {needed[0]}); "
            "raise max_per_class or lower the ratio."
        )
    # the head is tail * ratio rounded half up, so a cap of h allows tail * ratio up to h + 0.5
    tail = int(np.floor(min(np.min(counts / rel), (head_cap + 0.5) / rel[0]) + 1e-9))
    # the 1e-9 slack and the rounding of the sizes may overshoot a class's count or the cap
    while tail > 0:
        sizes = _sizes(tail, rel)
        if np.all(sizes <= counts) and sizes[0] <= head_cap:
            break
        tail -= 1
    if tail < min_per_class:
        names = classes.tolist()
        short = [
            f"class {names[k]!r} needs {needed[k]} but has {counts[k]}"
            for k in range(len(classes))
            if needed[k] > counts[k]
        ]
        raise ValueError(
            f"Cannot build a {profile} imbalance with ratio={ratio} and at least "
            f"{min_per_class} example(s) per class: {'; '.join(short)}. "
            "Lower the ratio, or use a larger input."
        )
    sizes = _sizes(tail, rel)

    rng = check_random_state(random_state)
    chosen = []
    for cls, size in zip(classes, sizes):
        members = np.flatnonzero(y_arr == cls)
        chosen.append(rng.choice(members, size=int(size), replace=False))
    idx = np.sort(np.concatenate(chosen))
    return _take(X, idx), _take(y, idx)
