"""Post-hoc decision rules for single-label classifiers, fitted on a validation split."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["tune_logit_offsets", "calibrated_logit_offsets", "macro_f1_from_labels"]

_TAUS = np.round(np.arange(0, 2.01, 0.25), 2)
_STEPS = np.round(np.arange(-2.0, 2.01, 0.25), 2)
#: The calibrated rule's share of the balanced shift (round 28: ahead of the tuned offsets there).
CALIBRATED_TAU = 0.25


def f1_from_counts(tp, support, predicted) -> np.ndarray:
    """Per-class F1, ``2 tp / (support + predicted)``, from the counts of true positives, true
    and predicted items (0 for a class with neither).

    >>> f1_from_counts(np.array([1, 0, 0]), np.array([2, 1, 0]), np.array([1, 1, 0]))
    array([0.66666667, 0.        , 0.        ])
    """
    total = np.asarray(support + predicted)
    return np.divide(2 * tp, total, out=np.zeros(total.shape), where=total > 0)


def macro_f1_from_labels(y_true, y_pred, n_classes: int, labels=None) -> float:
    """Macro-F1 over the classes present in ``y_true`` or ``y_pred`` (integer labels 0..C-1),
    as scikit-learn's ``f1_score(average="macro")`` computes it, from one confusion count;
    ``labels`` (class indices) averages over those classes instead.

    >>> macro_f1_from_labels([0, 0, 1, 2], [0, 1, 1, 2], 3)
    0.7777777777777777
    """
    y_true = _class_codes(y_true, "y_true", n_classes)
    y_pred = _class_codes(y_pred, "y_pred", n_classes)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of one length, got shapes {y_true.shape} and "
                         f"{y_pred.shape}.")
    for name, codes in (("y_true", y_true), ("y_pred", y_pred)):
        outside = np.flatnonzero((codes < 0) | (codes >= n_classes))
        if len(outside):
            raise ValueError(f"{name}[{outside[0]}] = {codes[outside[0]]} is no class index of n_classes="
                             f"{n_classes} (0..{n_classes - 1}).")
    return _macro_f1_of_codes(y_true, y_pred, n_classes, _check_label_codes(labels, n_classes))


def _check_label_codes(labels, n_classes: int):
    """``labels`` as class indices, or None; -1 would average over the last class unasked."""
    if labels is None:
        return None
    codes = _class_codes(np.asarray(labels).ravel(), "labels", n_classes)
    if codes.size == 0:
        raise ValueError("labels is empty: give the class indices to average over, or None for every class seen.")
    outside = codes[(codes < 0) | (codes >= n_classes)]
    if outside.size:
        raise ValueError(f"labels must be class indices 0..{n_classes - 1} of n_classes={n_classes}, got "
                         f"{outside[0]}.")
    return codes


def _class_codes(values, name: str, n_classes: int) -> np.ndarray:
    """``values`` as int64 class codes, refusing what a cast would truncate (0.5) or fail on ("a").

    >>> _class_codes([0, 1.5], "y_true", 3)
    Traceback (most recent call last):
    ...
    ValueError: y_true[1] is 1.5: class codes must be whole numbers 0..2; map labels to their index in the classes first (np.searchsorted(classes, y)).
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biu" or arr.ndim != 1:  # other shapes: the caller names them
        return arr.astype(np.int64) if arr.dtype.kind in "biuf" else arr
    items = arr.tolist() if arr.dtype.kind == "f" else list(values)  # positions of the caller's items
    for i, v in enumerate(items):
        whole = isinstance(v, numbers.Integral) or (isinstance(v, numbers.Real) and float(v).is_integer())
        if not whole:
            raise ValueError(f"{name}[{i}] is {v!r}: class codes must be whole numbers 0..{n_classes - 1}; map "
                             "labels to their index in the classes first (np.searchsorted(classes, y)).")
    return arr.astype(np.int64) if arr.dtype.kind == "f" else np.asarray(items, dtype=np.int64)


def _macro_f1_of_codes(y_true, y_pred, n_classes, labels=None) -> float:
    """:func:`macro_f1_from_labels` on checked int64 codes (the searches' inner loop)."""
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    support = np.bincount(y_true, minlength=n_classes)
    predicted = np.bincount(y_pred, minlength=n_classes)
    present = (support + predicted) > 0
    f1 = f1_from_counts(tp, support, predicted)
    if labels is not None:
        return float(f1[np.asarray(labels, dtype=np.int64)].mean())
    return float(f1[present].mean()) if present.any() else 0.0


def tune_logit_offsets(y_true, logits, *, class_prior=None, search="offsets", taus=None, steps=None,
                       n_rounds=2, n_bootstrap=0, random_state=0):
    """Per-class logit offsets ``b`` that maximise macro-F1 of ``argmax(logits + b)``.

    Post-hoc logit adjustment (Menon et al., 2021), fitted on a validation split. First the
    one-parameter rule ``b = -tau * log(prior)`` with ``tau`` from ``taus``; then, with
    ``search="offsets"``, a coordinate search that moves one class's offset at a time by
    ``steps`` and keeps a move only when it raises macro-F1 (``n_rounds`` passes over the
    classes). Ties keep the smaller change, so the rule stays near the plain argmax when the
    validation data cannot tell candidates apart. Macro-F1 is taken over the classes present in
    ``y_true``; a class absent from it keeps its ``tau``-rule offset (no example says where its
    boundary lies), within each bootstrap resample too.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        Class indices 0..C-1.
    logits : array-like of shape (n_samples, C)
        Or, for two classes, the margin ``logit[:, 1] - logit[:, 0]`` of shape (n_samples,).
    class_prior : array-like of shape (C,), default=None
        Training class counts or frequencies (any scale; finite, >= 0, not all 0: a 0 reads as
        1e-12); None skips the ``tau`` rule.
    search : {"tau", "offsets"}, default="offsets"
    taus, steps : array-like of float, default=None
        Candidate ``tau`` values (default 0, 0.25, ..., 2) and offset moves (default
        -2, -1.75, ..., 2).
    n_rounds : int, default=2
    n_bootstrap : int, default=0
        With ``B > 0``, the offsets are the mean of those tuned on ``B`` bootstrap resamples of
        the validation split (bagging): a small validation split with a handful of examples of
        the rarest classes makes a single search noisy, and averaging cuts that variance.
    random_state : int, default=0
        Seeds the bootstrap resamples.

    Returns
    -------
    offsets : ndarray of shape (C,)

    Examples
    --------
    >>> import numpy as np
    >>> logits = np.array([[2.0, 1.5], [2.0, 1.0], [2.0, 1.8], [0.0, 1.0]])
    >>> y = np.array([1, 0, 1, 1])
    >>> tune_logit_offsets(y, logits, class_prior=[0.9, 0.1], search="tau")
    array([-0.27465307,  0.27465307])
    >>> tune_logit_offsets(y, logits, search="offsets")
    array([-0.75,  0.  ])
    >>> tune_logit_offsets(y, logits, search="offsets", n_bootstrap=20).round(2)
    array([-0.46,  0.21])
    """
    if search not in ("tau", "offsets"):
        raise ValueError(f"search must be 'tau' or 'offsets', got {search!r}.")
    check_n_bootstrap(n_bootstrap)
    taus, steps = check_search_grid(taus=taus, steps=steps, n_rounds=n_rounds)
    y_true, logits = _validation_logits(y_true, logits, class_prior)
    kwargs = dict(class_prior=class_prior, search=search, taus=taus, steps=steps, n_rounds=n_rounds)
    full = _search_offsets(y_true, logits, **kwargs)
    if not n_bootstrap:
        return full
    rng = np.random.default_rng(random_state)
    total, count = np.zeros_like(full), np.zeros_like(full)
    for _ in range(int(n_bootstrap)):
        i = rng.integers(0, len(y_true), len(y_true))
        present = np.bincount(y_true[i], minlength=len(full)) > 0
        total[present] += _search_offsets(y_true[i], logits[i], **kwargs)[present]
        count[present] += 1
    # a class that no resample holds keeps the full split's offset (its tau-rule value)
    return np.where(count > 0, total / np.maximum(count, 1), full)


def calibrated_logit_offsets(y_true, logits, *, class_prior, tau=CALIBRATED_TAU, l2=1e-3):
    """Per-class logit offsets from a calibrated model: ``argmax(logits + offsets)`` is
    ``argmax(logits / T + b - tau * log(prior))``.

    Bias-corrected temperature scaling (Alexandari et al., 2020): a temperature ``T`` and a bias
    per class ``b`` fitted by likelihood on a validation split (``y_true``, ``logits``), so that
    the scores are calibrated to the training distribution, whatever the loss re-balanced; then
    post-hoc logit adjustment with a fixed ``tau`` (Menon et al., 2021), which moves the decisions
    part of the way from the most probable class to the balanced rule (``tau=1``). Nothing is
    searched for macro-F1, so a small validation split with a handful of rare examples moves it
    less than :func:`tune_logit_offsets`. Round 28 (``docs/benchmarks.md``): with ``tau=0.25``
    ahead of the tuned offsets on 10 of 12 class-balanced fine-tuned models.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        Class indices 0..C-1 of the validation split.
    logits : array-like of shape (n_samples, C)
        Or, for two classes, the margin ``logit[:, 1] - logit[:, 0]`` of shape (n_samples,).
    class_prior : array-like of shape (C,)
        Training class counts or frequencies (any scale; finite, >= 0, not all 0: a 0 reads as
        1e-12).
    tau : float, default=0.25
        The share of the balanced rule's shift, ``-tau * log(prior)``.
    l2 : float, default=1e-3
        L2 penalty on the biases: a class absent from ``y_true`` keeps a finite bias.

    Returns
    -------
    offsets : ndarray of shape (C,)

    Examples
    --------
    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [1.5, 0.5], [0.2, 1.0], [1.0, 0.8]])
    >>> calibrated_logit_offsets([0, 0, 1, 1], logits, class_prior=[3, 1]).round(3)
    array([-0.275,  0.275])
    >>> calibrated_logit_offsets([0, 0, 1, 1], logits, class_prior=[3, 1], tau=0).round(3)
    array([-0.262,  0.262])
    """
    if class_prior is None:
        raise ValueError("calibrated_logit_offsets needs class_prior: the training count of each class.")
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite number >= 0 (0: the calibrated rule alone, 1: balanced), got {tau!r}.")
    _check_l2(l2)
    y_true, logits = _validation_logits(y_true, logits, class_prior)
    temperature, bias = _temperature_and_biases(y_true, logits, l2)
    log_prior = np.log(np.clip(np.asarray(class_prior, dtype=np.float64), 1e-12, None))
    shift = bias - tau * (log_prior - log_prior.mean())
    # argmax(z / T + shift) == argmax(z + T * shift): offsets on the raw logits
    return temperature * (shift - shift.mean())


def temperature_and_biases(y_true, logits, *, l2=1e-3):
    """Bias-corrected temperature scaling: the temperature ``T`` and per-class biases ``b`` that
    minimise the mean negative log-likelihood of ``softmax(logits / T + b)`` on ``y_true``, with an
    L2 penalty ``l2`` on ``b`` (a class absent from ``y_true`` keeps a finite bias)."""
    _check_l2(l2)
    return _temperature_and_biases(*_validation_logits(y_true, logits), l2)


def _check_l2(l2) -> None:
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2 must be a finite penalty >= 0 (default 1e-3), got {l2!r}.")


def _temperature_and_biases(y_true, logits, l2):
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    n_classes = logits.shape[1]
    rows = np.arange(len(y_true))

    def nll(params):
        scores = log_softmax(logits / params[0] + params[1:], axis=1)
        return -scores[rows, y_true].mean() + l2 * np.square(params[1:]).sum()

    start = np.r_[1.0, np.zeros(n_classes)]
    fit = minimize(nll, start, method="L-BFGS-B", bounds=[(0.05, 20.0)] + [(None, None)] * n_classes)
    return fit.x[0], fit.x[1:]


def check_search_grid(*, taus=None, steps=None, n_rounds=2):
    """``(taus, steps)`` as 1-D float arrays (None stays None: the default grid), or a ``ValueError``
    for an empty or non-finite grid or a number of passes ``n_rounds`` that is not an integer >= 1
    (either searched nothing and returned zeros)."""
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, (int, np.integer)) or n_rounds < 1:
        raise ValueError(f"n_rounds must be an integer >= 1 (passes of the search), got {n_rounds!r}.")
    grids = []
    for name, grid in (("taus", taus), ("steps", steps)):
        if grid is not None:
            try:
                grid = np.atleast_1d(np.asarray(grid, dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be numbers, got {grid!r}.") from None
            if grid.ndim != 1 or not len(grid) or not np.isfinite(grid).all():
                raise ValueError(f"{name} must be a non-empty list of finite numbers (None: the default grid), "
                                 f"got {grid.tolist()!r}.")
        grids.append(grid)
    return tuple(grids)


def check_n_bootstrap(n_bootstrap) -> None:
    """Refuse a number of bootstrap resamples that is not an integer >= 0 (a negative one was
    ignored or gave NaN)."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}.")


def _validation_logits(y_true, logits, class_prior=None):
    """``y_true`` as int64 codes and ``logits`` as float64 ``(n_samples, n_classes)``, checked. A
    binary margin (shape ``(n_samples,)``, what ``decision_function`` gives for two classes) reads
    as the logits ``[0, margin]``: offsets and softmax do not change when a row gains a constant."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits = np.column_stack([np.zeros_like(logits), logits])
    codes = np.asarray(y_true)
    if codes.dtype == object:  # integers held as objects (a pandas object Series)
        try:
            codes = codes.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if codes.ndim != 1 or codes.dtype.kind not in "biuf" or (codes.dtype.kind == "f" and
                                                            not np.array_equal(codes, np.round(codes))):
        raise ValueError("y_true must be 1-D class codes 0..n_classes-1 (integers); encode labels with "
                         "np.unique(labels, return_inverse=True).")
    if logits.ndim != 2 or len(logits) != len(codes) or not len(codes):
        raise ValueError(f"logits must have shape (n_samples, n_classes) with n_samples={len(codes)} > 0, "
                         f"got {logits.shape}.")
    codes = codes.astype(np.int64)
    if codes.min() < 0 or codes.max() >= logits.shape[1]:
        raise ValueError(f"y_true holds codes outside 0..{logits.shape[1] - 1}, the columns of logits.")
    if np.isnan(logits).any():
        raise ValueError("logits contain NaN: the model diverged (train with a lower learning rate).")
    if class_prior is not None:
        _check_prior(class_prior, logits.shape[1])
    return codes, logits


def _check_prior(class_prior, n_classes) -> None:
    """One finite, non-negative value per class (counts or shares), not all zero."""
    if np.shape(class_prior) != (n_classes,):
        raise ValueError(f"class_prior must have one value per class ({n_classes}), got shape {np.shape(class_prior)}.")
    try:
        prior = np.asarray(class_prior, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"class_prior must hold numbers (class counts or shares), got {class_prior!r}.") from None
    bad = np.flatnonzero(~np.isfinite(prior) | (prior < 0))
    if bad.size or not prior.sum() > 0:
        where = f"class_prior[{bad[0]}] is {prior[bad[0]]}" if bad.size else "class_prior sums to 0"
        raise ValueError(f"{where}: give each class's training count (or share), finite and >= 0, not all 0.")


def _search_offsets(y_true, logits, *, class_prior, search, taus, steps, n_rounds):
    n_classes = logits.shape[1]

    present = np.flatnonzero(np.bincount(y_true, minlength=n_classes) > 0)

    def score(b):
        return _macro_f1_of_codes(y_true, (logits + b).argmax(1), n_classes, labels=present)

    offsets = np.zeros(n_classes)
    best = score(offsets)
    if class_prior is not None:
        log_prior = np.log(np.clip(np.asarray(class_prior, dtype=np.float64), 1e-12, None))
        log_prior -= log_prior.mean()
        for tau in (_TAUS if taus is None else np.asarray(taus, dtype=float)):
            candidate = -tau * log_prior
            s = score(candidate)
            if s > best:
                best, offsets = s, candidate
    if search == "offsets":
        offsets = coordinate_search(score, offsets, present, steps, n_rounds)
    return offsets


def coordinate_search(score, start, free, steps=None, n_rounds=2):
    """Offsets that ``score`` rates higher than ``start``: one coordinate of ``free`` at a time
    moves by ``steps`` (default -2, -1.75, ..., 2; the smallest change first, so that ties keep
    it), a move kept only when the score rises; at most ``n_rounds`` passes over ``free``."""
    moves = _STEPS if steps is None else np.asarray(steps, dtype=float)
    moves = moves[np.argsort(np.abs(moves), kind="stable")]
    offsets, best = np.asarray(start, dtype=np.float64), score(start)
    for _ in range(int(n_rounds)):
        improved = False
        for c in free:
            for d in moves:
                if d == 0:
                    continue
                candidate = offsets.copy()
                candidate[c] += d
                s = score(candidate)
                if s > best:
                    best, offsets, improved = s, candidate, True
        if not improved:
            break
    return offsets
