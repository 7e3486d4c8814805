"""Input validation shared by every skimb estimator and sampler.

Each check returns new containers (never the caller's object) and raises a
``TypeError``/``ValueError`` that names the offending position.
"""

from __future__ import annotations

import numbers
from collections import abc

import numpy as np

__all__ = [
    "class_index",
    "check_texts",
    "check_token_lists",
    "check_labels",
    "check_consistent_length",
    "is_multilabel_target",
    "check_sample_weight",
]


#: pandas' missing-value scalars, known by name so that pandas need not be imported to spot them.
_PANDAS_MISSING = {"NAType": "pd.NA", "NaTType": "NaT"}


def _missing_name(value) -> str | None:
    """How a missing value is named in errors ("None", "NaN", "pd.NA", "NaT"), or None for a
    value that is not missing."""
    if value is None:
        return "None"
    kind = type(value)
    if kind.__module__.split(".")[0] == "pandas" and kind.__name__ in _PANDAS_MISSING:
        return _PANDAS_MISSING[kind.__name__]
    try:
        return "NaN" if isinstance(value, numbers.Number) and np.isnan(value) else None
    except TypeError:
        return None


def _is_missing(value) -> bool:
    """None, float NaN, or pandas' ``pd.NA``/``pd.NaT`` (which ``string``/``Int64`` data hold)."""
    return _missing_name(value) is not None


def check_ordered(values, what: str) -> None:
    """Refuse a set (its order is arbitrary: items would meet the wrong partners in X and y) or a
    mapping (its keys would be taken for the items)."""
    if isinstance(values, abc.Mapping):
        raise TypeError(f"{what} must be a sequence, got a {type(values).__name__}, whose keys would be taken for "
                        "its items; pass a list (list(d.values()) for a dict's values).")
    if isinstance(values, abc.Set) and not isinstance(values, abc.MappingView):  # a dict's keys keep their order
        raise TypeError(f"{what} must be an ordered sequence, got a {type(values).__name__}, whose order is "
                        "arbitrary: X and y would be paired at random; pass a list.")


def _as_sequence(X, what: str, *, unwrap_rows: bool = True):
    """Turn lists, tuples, 1-D arrays, pandas Series and one-column 2-D inputs into a list."""
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{what} must be a sequence of strings, got a single {type(X).__name__}; "
            "wrap it in a list: [text]."
        )
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"{what} as a DataFrame must have exactly one column, got {X.shape[1]}.")
        return list(X.iloc[:, 0])
    if hasattr(X, "to_numpy") and hasattr(X, "iloc"):  # pandas Series
        return list(X.to_numpy())
    if isinstance(X, np.ndarray):
        if X.ndim == 2:
            if X.shape[1] != 1:
                raise ValueError(
                    f"{what} as a 2-D array must have exactly one column of texts, got shape {X.shape}."
                )
            return list(X[:, 0])
        if X.ndim != 1:
            raise ValueError(f"{what} must be 1-D or a one-column 2-D array, got {X.ndim}-D.")
        return list(X)
    check_ordered(X, what)
    try:
        items = list(X)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of strings, got {type(X).__name__}.") from None
    # a list of one-element rows, as produced by some pipelines
    if unwrap_rows and items and all(isinstance(i, (list, tuple, np.ndarray)) and len(i) == 1 for i in items):
        items = [i[0] for i in items]
    return items


def check_texts(X, *, what: str = "X", allow_empty: bool = False) -> list[str]:
    """Validate a collection of texts and return it as a new ``list[str]``.

    An empty string is valid text; ``None``, NaN, numbers and other objects are not.

    >>> check_texts(["a", "", "b"])
    ['a', '', 'b']
    >>> check_texts(["a", None])
    Traceback (most recent call last):
    ...
    TypeError: X[1] is None; every element of X must be a string (an empty string is allowed).
    """
    items = _as_sequence(X, what)
    if not items and not allow_empty:
        raise ValueError(f"{what} is empty: at least one text is needed.")
    out = []
    for i, t in enumerate(items):
        if isinstance(t, str):
            out.append(str(t))  # np.str_ -> str
            continue
        missing = _missing_name(t)
        name = type(t).__name__
        desc = f"is {missing}" if missing else f"is {'an' if name[0] in 'aeiou' else 'a'} {name} ({t!r:.40})"
        raise TypeError(
            f"{what}[{i}] {desc}; every element of {what} must be a string (an empty string is allowed)."
        )
    return out


def check_token_lists(X, *, what: str = "X") -> list[list[str]]:
    """Validate a list of token lists (one list of word strings per sentence).

    >>> check_token_lists("John lives here")
    Traceback (most recent call last):
    ...
    TypeError: X must be a list of token lists, got a single str; split each sentence into its words and pass a list of them, e.g. [['John', 'lives', 'here']].
    """
    if isinstance(X, (str, bytes)):  # not _as_sequence's "wrap it in a list", which gives a list of texts
        raise TypeError(f"{what} must be a list of token lists, got a single {type(X).__name__}; split each "
                        "sentence into its words and pass a list of them, e.g. [['John', 'lives', 'here']].")
    if isinstance(X, np.ndarray) and X.dtype.kind == "U" and X.ndim == 2:  # sentences of one length
        X = X.tolist()
    elif isinstance(X, np.ndarray) and X.dtype != object:
        raise TypeError(f"{what} must be a list of token lists, got a {X.ndim}-D {X.dtype} array; give a list "
                        "of lists of strings (or a 2-D array of strings, sentences of one length).")
    items = list(X) if isinstance(X, np.ndarray) else _as_sequence(X, what, unwrap_rows=False)
    if not items:
        raise ValueError(f"{what} is empty: at least one sentence is needed.")
    out = []
    for i, sent in enumerate(items):
        if isinstance(sent, (str, bytes)) or not hasattr(sent, "__iter__"):
            raise TypeError(
                f"{what}[{i}] must be a list of tokens (strings), got {type(sent).__name__}; "
                "X is a list of token lists, e.g. [['John', 'lives', 'here']]."
            )
        if isinstance(sent, (abc.Set, abc.Mapping)):  # words in arbitrary order, or a dict's keys: misaligned tags
            raise TypeError(f"{what}[{i}] must be a list of tokens in their order, got a {type(sent).__name__}, "
                            f"which {'orders its words arbitrarily' if isinstance(sent, abc.Set) else 'gives its keys'}"
                            " and would pair them with the wrong tags; pass the sentence's words as a list.")
        toks = list(sent)
        for j, t in enumerate(toks):
            if not isinstance(t, str):
                raise TypeError(f"{what}[{i}][{j}] must be a string token, got {type(t).__name__} ({t!r:.40}).")
        out.append([str(t) for t in toks])
    return out


def check_consistent_length(X, y, *, names=("X", "y")) -> None:
    if len(X) != len(y):
        raise ValueError(
            f"{names[0]} and {names[1]} have different lengths: {len(X)} != {len(y)}."
        )


def is_multilabel_target(y) -> bool:
    """True for a 2-D 0/1 indicator matrix (dense or sparse) with more than one column."""
    if hasattr(y, "toarray"):
        return y.ndim == 2 and y.shape[1] > 1
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    return arr.ndim == 2 and arr.shape[1] > 1


def _check_items(items, what: str) -> None:
    """Refuse missing labels (None/NaN) and labels that mix strings, bytes and numbers, naming the
    position."""
    for i, v in enumerate(items):
        missing = _missing_name(v)
        if missing:
            raise ValueError(f"{what}[{i}] is {missing}: labels must not be missing (None/NaN).")
    first_str = next((i for i, v in enumerate(items) if isinstance(v, str)), None)
    first_num = next((i for i, v in enumerate(items) if isinstance(v, numbers.Number)), None)
    if first_str is not None and first_num is not None:
        raise TypeError(f"{what} mixes strings and numbers ({what}[{first_num}] is {items[first_num]!r}, "
                        f"{what}[{first_str}] is {items[first_str]!r}); use one type of label.")
    _refuse_mixed_bytes(items, what, first_str if first_str is not None else first_num)


def _refuse_mixed_bytes(items, what: str, other) -> None:
    """Refuse bytes labels beside strings or numbers (position ``other``): numpy would turn
    b"a" and "a" into one class.

    >>> _refuse_mixed_bytes([b"a", "a"], "y", 1)
    Traceback (most recent call last):
    ...
    TypeError: y mixes bytes and strings (y[0] is b'a', y[1] is 'a'); decode the bytes labels (label.decode()) so that every label is a string.
    """
    first_bytes = next((i for i, v in enumerate(items) if isinstance(v, bytes)), None)
    if first_bytes is None or other is None:
        return
    if isinstance(items[other], str):
        kind, remedy = "strings", "decode the bytes labels (label.decode()) so that every label is a string"
    else:
        kind, remedy = "numbers", "use one type of label"
    raise TypeError(f"{what} mixes bytes and {kind} ({what}[{first_bytes}] is {items[first_bytes]!r}, "
                    f"{what}[{other}] is {items[other]!r}); {remedy}.")


#: What a row of labels may be where one label is expected (multi-label targets as label lists or sets).
_LABEL_COLLECTIONS = (list, tuple, np.ndarray, abc.Set)


def _refuse_label_lists(items, what: str) -> None:
    """Refuse rows that hold several labels (label lists of uneven lengths, label sets): multi-label
    targets are a 0/1 indicator matrix. Rows of one label each (``[[0], [1]]``) pass, unwrapped
    later.

    >>> _refuse_label_lists([["a", "b"], ["c"]], "y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y holds label lists (y[0] is a list of 2 labels); ... use sklearn.preprocessing.MultiLabelBinarizer ...
    """
    rows = [i for i, v in enumerate(items) if isinstance(v, _LABEL_COLLECTIONS)]
    if not rows:
        return
    odd = next((i for i in rows if isinstance(items[i], abc.Set) or len(items[i]) != 1), None)
    if odd is None and len(rows) == len(items):
        return
    i = rows[0] if odd is None else odd
    n = len(items[i])
    raise ValueError(f"{what} holds label lists ({what}[{i}] is a {type(items[i]).__name__} of {n} label"
                     f"{'' if n == 1 else 's'}); a multi-label {what} must be a 0/1 indicator matrix: use "
                     "sklearn.preprocessing.MultiLabelBinarizer for label lists.")


def check_labels(y, *, what: str = "y", min_classes: int = 2, owner: str | None = None) -> np.ndarray:
    """Validate 1-D labels (strings or integers) and return them as a new 1-D array.

    ``owner`` names the estimator in the error for a missing ``y`` (``fit(X)``, ``fit(X, None)``).

    >>> check_labels(["a", "b", "a"])
    array(['a', 'b', 'a'], dtype='<U1')
    >>> check_labels([1, None, 2])
    Traceback (most recent call last):
    ...
    ValueError: y[1] is None: labels must not be missing (None/NaN).
    >>> check_labels(None, owner="TransformerClassifier")
    Traceback (most recent call last):
    ...
    ValueError: TransformerClassifier requires y to be passed, but the target y is None: pass the labels, one per sample of X.
    """
    if y is None:  # scikit-learn's wording (its check_requires_y_none looks for it), then the remedy
        raise ValueError(f"{owner or 'this estimator'} requires {what} to be passed, but the target {what} is None: "
                         "pass the labels, one per sample of X.")
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of labels, got a single string.")
    check_ordered(y, what)
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    elif hasattr(y, "__array__") and not hasattr(y, "__len__"):
        y = np.asarray(y)  # an array-like known only by __array__, which list() cannot read
    items = list(y) if not isinstance(y, np.ndarray) else y
    if not isinstance(y, np.ndarray) or (y.dtype == object and y.ndim == 1):
        _refuse_label_lists(items, what)  # numpy would fail on rows of uneven lengths, or keep sets
    if not isinstance(y, np.ndarray):  # numpy would turn [0, "0"] into two equal strings, NaN into "nan"
        _check_items(items, what)
    arr = np.asarray(items)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one label per sample), got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{what} is empty: at least one label is needed.")
    if arr.dtype == object:
        _check_items(arr, what)
        kinds = {type(v) for v in arr}
        if all(issubclass(k, str) for k in kinds):
            arr = arr.astype(str)
        elif all(issubclass(k, numbers.Integral) for k in kinds):
            arr = arr.astype(np.int64)
        elif not all(issubclass(k, (str, numbers.Integral, numbers.Real)) for k in kinds):
            raise TypeError(f"{what} must hold strings or numbers, got {sorted(k.__name__ for k in kinds)}.")
    elif arr.dtype.kind == "f":
        bad = np.flatnonzero(np.isnan(arr))
        if bad.size:
            raise ValueError(f"{what}[{bad[0]}] is NaN: labels must not be missing (None/NaN).")
        bad = np.flatnonzero(np.isinf(arr))  # it would pass as a whole number, then cast to garbage
        if bad.size:
            raise ValueError(f"{what}[{bad[0]}] is {arr[bad[0]]}: labels must be finite; use class numbers or "
                             "names.")
        if np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(
                f"{what} holds continuous values (e.g. {arr[~(arr == np.round(arr))][0]}); "
                "a classifier needs discrete labels."
            )
    else:
        arr = arr.copy()
    n_classes = np.unique(arr).size
    if n_classes < min_classes:
        raise ValueError(
            f"{what} has {n_classes} class ({arr[0]!r}); at least {min_classes} classes are needed to fit a classifier."
        )
    return arr


def check_sample_weight(sample_weight, n_samples: int, *, positive_sum: bool = False) -> np.ndarray | None:
    """A new float64 copy of ``sample_weight`` after checking it (``None`` passes through):
    numeric, 1-D, one weight per sample, finite, non-negative and, with ``positive_sum``, not
    all zero (a model cannot learn from nothing; a sampler can still resample)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype == object or w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D (one weight per sample), got shape {w.shape}.")
    if w.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {w.shape[0]} weights but X has {n_samples} samples.")
    w = w.astype(np.float64, copy=True)
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise ValueError(f"sample_weight[{bad[0]}] is {w[bad[0]]}: weights must be finite ({bad.size} of {w.size} "
                         "are not).")
    bad = np.flatnonzero(w < 0)
    if bad.size:
        raise ValueError(f"sample_weight[{bad[0]}] is {w[bad[0]]}: weights must be non-negative ({bad.size} of "
                         f"{w.size} are negative).")
    if positive_sum and w.sum() <= 0:
        raise ValueError("sample_weight sums to 0 (every weight is zero): nothing to learn from; give some samples "
                         "a positive weight.")
    return w


def class_index(label, classes, what: str) -> int:
    """The position of ``label`` in ``classes``, or a clear error naming them.

    >>> class_index("b", ["a", "b"], "loss__catch_all")
    1
    """
    matches = np.flatnonzero(np.asarray(classes, dtype=object) == label)
    if matches.size == 0:
        raise ValueError(f"{what}={label!r} is not a class of y; the classes are {np.asarray(classes).tolist()}.")
    return int(matches[0])
