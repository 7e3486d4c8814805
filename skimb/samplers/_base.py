"""Shared machinery of the skimb samplers.

Two template-method bases, both subclasses of imbalanced-learn's public
:class:`imblearn.base.BaseSampler` (so :func:`imblearn.pipeline.make_pipeline` and
``imblearn.base.is_sampler`` recognise them):

* :class:`BaseTextSampler` -- X is a collection of texts (a 1-D sequence of strings, a 1-D
  array, a one-column 2-D array, a pandas Series or a one-column DataFrame), which
  imbalanced-learn's own samplers reject. ``y`` is 1-D labels or a 2-D 0/1 multi-label
  indicator matrix.
* :class:`BaseEmbeddingSampler` -- X is a 2-D numeric matrix (embeddings produced by an
  embedder), validated like imbalanced-learn validates it.

Both bases implement ``fit_resample`` once: parameter checks (each sampler's
``_parameter_constraints`` table, :mod:`skimb.utils._param_validation`), input checks (texts or numbers,
labels, consistent lengths, ``sample_weight``, multi-label detection), resolution of
``sampling_strategy`` with :func:`imblearn.utils.check_sampling_strategy`, a call to the
subclass's ``_fit_resample`` and the conversion of the outputs back to the caller's
containers. ``fit_resample(X, y, sample_weight=w)`` returns ``(X_res, y_res, w_res)``; without
``sample_weight`` it returns the usual ``(X_res, y_res)``.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np
import scipy.sparse as sp
from imblearn.base import BaseSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from sklearn.preprocessing import label_binarize
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets

try:  # public since scikit-learn 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    from sklearn_compat.utils.validation import validate_data

from skimb._validation import (
    check_consistent_length,
    check_sample_weight,
    check_labels,
    check_texts,
    is_multilabel_target,
)
from skimb.utils._param_validation import Options, RandomState, _Constraint, validate_params

__all__ = ["BaseTextSampler", "BaseEmbeddingSampler"]

_STRATEGY_STRINGS = {
    "over-sampling": {"auto", "minority", "not minority", "not majority", "all"},
    "under-sampling": {"auto", "majority", "not minority", "not majority", "all"},
}


# --------------------------------------------------------------------------- parameter checks
class SamplingStrategy(_Constraint):
    """imbalanced-learn's ``sampling_strategy`` for one ``sampling_type``: a strategy name of
    that type, a float in (0, 1], a dict ``{class: int}`` or a callable. Whether the classes
    and counts fit ``y`` is checked by :func:`imblearn.utils.check_sampling_strategy` later."""

    def __init__(self, sampling_type: str):
        self.sampling_type = sampling_type
        self.names = sorted(_STRATEGY_STRINGS[sampling_type])

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, str):
            return value in self.names
        if isinstance(value, Mapping):
            return all(_is_count(n) for n in value.values())
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return 0 < value <= 1
        return callable(value)

    def __str__(self):
        return (f"one of {', '.join(map(repr, self.names))}, a float in (0, 1], a dict "
                "{class: int number of samples} or a callable y -> dict")

    def _other_type(self, value):
        return next((t for t, names in _STRATEGY_STRINGS.items() if t != self.sampling_type and value in names), None)

    def bad_values(self):
        wrong_type = sorted(n for n in set().union(*_STRATEGY_STRINGS.values()) if self._other_type(n))
        return ["__unknown_option__", *wrong_type, 0.0, 1.5, {"a": 1.5}, [1, 2]]

    def hint(self, value):
        if isinstance(value, str):
            other = self._other_type(value)
            if other:
                return f"{value!r} is an {other} strategy; this sampler does {self.sampling_type}."
            return Options(*self.names).hint(value)
        bad = next(((k, n) for k, n in value.items() if not _is_count(n)), None) if isinstance(value, Mapping) else None
        if bad is not None:
            return f"Give every class an int number of samples: sampling_strategy[{bad[0]!r}] is {bad[1]!r}."
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return "A float is the desired n_minority / n_majority ratio after resampling (binary y only)."
        return None


def _is_count(n) -> bool:
    return isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_))


def sampler_constraints(sampling_type=None) -> dict:
    """The entries every sampler's table shares: ``random_state``, and ``sampling_strategy``
    of ``sampling_type`` for the samplers that take one."""
    table = {"random_state": [RandomState()]}
    if sampling_type is not None:
        table["sampling_strategy"] = [SamplingStrategy(sampling_type)]
    return table


class _ValidatedSampler(BaseSampler):
    """A sampler whose ``_parameter_constraints`` table is checked before any work: first thing
    in ``fit`` and ``fit_resample`` (and scikit-learn's ``_validate_params`` hook)."""

    _parameter_constraints: dict = {}

    def _validate_params(self) -> None:
        """Check every parameter against the table, then the combinations of parameters;
        raise :class:`~skimb.utils._param_validation.InvalidParameterError`."""
        validate_params(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        self._check_param_combinations()

    def _check_param_combinations(self) -> None:
        """Constraints between parameters, which the per-parameter table cannot express."""


def _cycle_draw(pool, n: int, rng: np.random.RandomState) -> np.ndarray:
    """Draw ``n`` items from ``pool`` by cycling through fresh random permutations of it.

    Every item is drawn ``floor(n / len(pool))`` or ``ceil(n / len(pool))`` times: without
    replacement while ``n <= len(pool)``, then as evenly as possible.
    """
    pool = np.asarray(pool, dtype=np.int64)
    if n <= 0 or pool.size == 0:
        return np.empty(0, dtype=np.int64)
    reps = -(-n // pool.size)
    return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]


# --------------------------------------------------------------------------- text containers
def _text_container(X):
    """Describe the caller's text container so the output can take the same form."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        return {"kind": "dataframe", "columns": list(X.columns), "dtypes": X.dtypes}
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):
        return {"kind": "series", "name": X.name, "dtype": X.dtype}
    if isinstance(X, np.ndarray):
        return {"kind": "2d" if X.ndim == 2 else "1d", "dtype": X.dtype}
    try:
        first = X[0] if len(X) else None
    except (TypeError, KeyError, IndexError):
        first = None
    outer = tuple if isinstance(X, tuple) else list  # any other sequence comes back as a list
    if isinstance(first, (list, tuple, np.ndarray)) and not isinstance(first, str):
        return {"kind": "rows", "outer": outer}
    return {"kind": "list", "outer": outer}


def _make_text_output(texts: list, info: dict):
    kind = info["kind"]
    if kind == "list":
        return info["outer"](texts)
    if kind == "rows":
        return info["outer"]([t] for t in texts)
    if kind in ("1d", "2d"):
        dtype = info["dtype"]
        arr = np.empty(len(texts), dtype=object)
        arr[:] = texts
        if dtype != object:
            arr = arr.astype(str) if len(texts) else np.empty(0, dtype=dtype)
        return arr.reshape(-1, 1) if kind == "2d" else arr
    import pandas as pd

    if kind == "series":
        try:
            return pd.Series(texts, name=info["name"], dtype=info["dtype"])
        except (TypeError, ValueError):
            return pd.Series(texts, name=info["name"], dtype=object)
    out = pd.DataFrame({info["columns"][0]: texts})
    try:
        return out.astype(info["dtypes"])
    except (TypeError, ValueError):
        return out


def _take_rows(y, idx: np.ndarray):
    """Rows ``idx`` of the caller's ``y``, in the caller's container (a new object): a list, tuple,
    array, sparse matrix, pandas Series/DataFrame or pandas array (a Categorical keeps its categories
    and order); any other sequence comes back as a list."""
    if sp.issparse(y):
        return y[idx]
    if hasattr(y, "iloc"):
        return y.iloc[idx].reset_index(drop=True)
    if isinstance(y, np.ndarray) or _is_pandas_array(y):
        return y[idx]
    items = list(y)
    rows = [list(items[i]) if isinstance(items[i], (list, np.ndarray)) else items[i] for i in idx]
    return tuple(rows) if isinstance(y, tuple) else rows


def _is_pandas_array(y) -> bool:
    """A pandas extension array (Categorical, StringArray, ...), told by its module so that pandas is
    not imported where the caller has not imported it."""
    return type(y).__module__.split(".")[0] == "pandas" and hasattr(y, "dtype") and hasattr(y, "take")


class _TextData:
    """Validated inputs handed to :meth:`BaseTextSampler._fit_resample`.

    Attributes
    ----------
    texts : list of str
    codes : ndarray of int, shape (n_samples,)
        Class code of each sample, ``0 .. n_classes - 1``. A class is a label (1-D ``y``) or a
        distinct label set (multi-label ``y``).
    classes : list
        ``classes[code]``: the label, or the label set as a tuple of column indices.
    multilabel : bool
    Y : ndarray of shape (n_samples, n_labels) or None
        Dense 0/1 indicator matrix when ``multilabel``.
    labels : ndarray or None
        The validated 1-D labels when not ``multilabel``.
    """

    def __init__(self, texts, codes, classes, multilabel, Y, labels):
        self.texts = texts
        self.codes = codes
        self.classes = classes
        self.multilabel = multilabel
        self.Y = Y
        self.labels = labels

    @property
    def n_samples(self):
        return len(self.texts)


def _check_indicator(y) -> np.ndarray:
    Y = y.toarray() if sp.issparse(y) else np.asarray(y)
    if Y.dtype == object:
        try:
            Y = Y.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError("a 2-D y must be a 0/1 multi-label indicator matrix of numbers.") from None
    if Y.dtype.kind == "f" and np.isnan(Y).any():
        raise ValueError("y contains NaN: labels must not be missing.")
    if not np.isin(Y, (0, 1)).all():
        raise ValueError(
            "a 2-D y must be a 0/1 multi-label indicator matrix; multi-output targets with other "
            "values are not supported."
        )
    return Y.astype(np.int8)


# --------------------------------------------------------------------------- text base
class BaseTextSampler(_ValidatedSampler):
    """Template-method base of the samplers whose X is a collection of texts.

    ``fit_resample`` performs, in order: the parameter checks (``_parameter_constraints``); the input
    checks (``skimb._validation.check_texts``, ``skimb._validation.check_labels``, equal
    lengths, ``sample_weight``); multi-label detection (a 2-D 0/1 ``y`` with more than one
    column: every distinct label set is then a class); the resolution of ``sampling_strategy``
    (``sampling_strategy_``); then it calls ``_fit_resample(data, strategy, rng)`` which returns
    ``(source_indices, texts_out)``: for every output row, the input row it comes from, and the
    output texts (``None`` when they are the source texts). ``y`` and ``sample_weight`` follow
    ``source_indices``. X is returned in the caller's kind of container: list in, list out;
    tuple in, tuple out; 1-D array in, 1-D array out; one-column 2-D array in, one-column 2-D
    array out; a pandas Series or one-column DataFrame likewise; any other sequence comes back as
    a list. ``y`` keeps its container too (a list, tuple, array, sparse matrix, pandas Series,
    DataFrame or array: a Categorical with its categories and order), other sequences and
    generators as a list.

    With a multi-label ``y``, the keys of a dict ``sampling_strategy`` (and of the fitted
    ``sampling_strategy_``) are label sets written as sorted tuples of column indices, e.g.
    ``(0, 2)`` for the rows whose labels 0 and 2 are on, ``()`` for rows with no label.
    """

    _sampling_type = "over-sampling"
    _provides_sample_indices = True

    # -- hooks --------------------------------------------------------------------------
    def _resolve_strategy(self, data: _TextData):
        """Return ``{class code: n}`` and set ``sampling_strategy_`` (in the caller's labels)."""
        strategy = self.sampling_strategy
        if data.multilabel:
            if isinstance(strategy, Mapping):
                strategy = {self._label_set_code(data, k): v for k, v in strategy.items()}
            elif callable(strategy) and not isinstance(strategy, str):
                user = strategy(data.Y.copy())
                if not isinstance(user, Mapping):
                    raise TypeError("a callable sampling_strategy must return a dict.")
                strategy = {self._label_set_code(data, k): v for k, v in user.items()}
            resolved = check_sampling_strategy(strategy, data.codes, self._sampling_type)
            codes = OrderedDict((int(k), int(v)) for k, v in resolved.items())
        else:
            resolved = check_sampling_strategy(strategy, data.labels, self._sampling_type)
            index = {c: i for i, c in enumerate(data.classes)}
            codes = OrderedDict((index[k], int(v)) for k, v in resolved.items())
        self.sampling_strategy_ = OrderedDict((data.classes[c], n) for c, n in codes.items())
        return codes

    def _fit_resample(self, data: _TextData, strategy, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _label_set_code(data: _TextData, key) -> int:
        if isinstance(key, (str, bytes)) or not hasattr(key, "__iter__"):
            raise ValueError(
                f"with a multi-label y, sampling_strategy keys are label sets given as tuples of "
                f"column indices, e.g. (0, 2); got {key!r}."
            )
        try:
            key = tuple(sorted(int(k) for k in key))
        except (TypeError, ValueError):
            raise ValueError(f"label set {key!r} must hold integer column indices.") from None
        try:
            return data.classes.index(key)
        except ValueError:
            raise ValueError(f"the label set {key} is not present in y.") from None

    def _validate_inputs(self, X, y, sample_weight):
        info = _text_container(X)
        texts = check_texts(X)
        if y is None:
            raise ValueError(f"{type(self).__name__} needs y: resampling is driven by the labels.")
        if is_multilabel_target(y):
            Y = _check_indicator(y)
            check_consistent_length(texts, Y)
            rows = [tuple(np.flatnonzero(r).tolist()) for r in Y]
            classes = sorted(set(rows))
            if len(classes) < 2:
                raise ValueError(
                    f"y has a single distinct label set {classes[0]}; at least 2 classes "
                    "(label sets) are needed to resample."
                )
            index = {c: i for i, c in enumerate(classes)}
            codes = np.array([index[r] for r in rows], dtype=np.int64)
            data = _TextData(texts, codes, classes, True, Y, None)
        else:
            n_y = _n_rows(y)
            if n_y >= 0 and n_y != len(texts):
                raise ValueError(f"X and y have different lengths: {len(texts)} != {n_y}.")
            labels = check_labels(y)
            check_consistent_length(texts, labels)
            classes, codes = np.unique(labels, return_inverse=True)
            data = _TextData(texts, codes.astype(np.int64).ravel(), classes.tolist(), False, None, labels)
        w = None if sample_weight is None else check_sample_weight(sample_weight, len(texts))
        return info, data, w

    # -- public API ---------------------------------------------------------------------
    def fit(self, X, y):
        """Check the inputs and compute ``sampling_strategy_``; use :meth:`fit_resample`."""
        self._validate_params()
        _, data, _ = self._validate_inputs(X, y, None)
        self._resolve_strategy(data)
        return self

    def fit_resample(self, X, y, *, sample_weight=None):
        """Resample the texts.

        Parameters
        ----------
        X : sequence of str, array of str of shape (n_samples,) or (n_samples, 1)
            The texts. ``None``/NaN entries raise ``TypeError``; empty strings are valid.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a 0/1 multi-label indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            When given, resampled with the same indices and returned as a third output.

        Returns
        -------
        X_resampled : same kind of container as X
        y_resampled : same kind of container as y
        sample_weight_resampled : ndarray of shape (n_resampled,)
            Only when ``sample_weight`` is given.
        """
        self._validate_params()
        if isinstance(y, Iterator):  # a generator is spent by the checks: read it once, rows are taken later
            y = list(y)
        info, data, w = self._validate_inputs(X, y, sample_weight)
        strategy = self._resolve_strategy(data)
        rng = check_random_state(self.random_state)
        source, texts_out = self._fit_resample(data, strategy, rng)
        source = np.asarray(source, dtype=np.int64)
        if texts_out is None:
            texts_out = [data.texts[i] for i in source]
        if self._provides_sample_indices:
            self.sample_indices_ = source
        X_res = _make_text_output(texts_out, info)
        y_res = _take_rows(y, source)
        if w is None:
            return X_res, y_res
        return X_res, y_res, w[source]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.input_tags.sparse = False
        tags.input_tags.dataframe = True
        tags.input_tags.allow_nan = False
        tags.target_tags.two_d_labels = True
        tags.sampler_tags.sample_indices = self._provides_sample_indices
        return tags


def _n_rows(y) -> int:
    if hasattr(y, "shape"):
        return y.shape[0]
    try:
        return len(y)
    except TypeError:
        return -1


# --------------------------------------------------------------------------- numeric base
class _ArrayContainers:
    """Remember the caller's X/y containers and convert results back (list, DataFrame, ...)."""

    def __init__(self, X, y):
        self.x = self._props(X)
        self.y = self._props(y)

    @staticmethod
    def _props(a):
        return {
            "type": type(a).__name__.lower(),
            "columns": getattr(a, "columns", None),
            "name": getattr(a, "name", None),
            "dtypes": getattr(a, "dtypes", None),
        }

    @staticmethod
    def _one(a, props):
        kind = props["type"]
        if kind in ("list", "tuple"):
            return a.toarray().tolist() if sp.issparse(a) else np.asarray(a).tolist()
        if kind == "dataframe":
            import pandas as pd

            if sp.issparse(a):
                out = pd.DataFrame.sparse.from_spmatrix(a, columns=props["columns"])
            else:
                out = pd.DataFrame(a, columns=props["columns"])
            try:
                out = out.astype(props["dtypes"])
            except (TypeError, ValueError):
                pass
            return out
        if kind == "series":
            import pandas as pd

            return pd.Series(a, dtype=props["dtypes"], name=props["name"])
        return a

    def restore(self, X, y):
        X = self._one(X, self.x)
        y = self._one(y, self.y)
        if self.x["type"] == "dataframe" and self.y["type"] in ("series", "dataframe"):
            y.index = X.index
        return X, y


class BaseEmbeddingSampler(_ValidatedSampler):
    """Template-method base of the samplers whose X is a 2-D numeric matrix (embeddings).

    ``fit_resample`` mirrors :class:`imblearn.base.BaseSampler`: classification targets only
    (multi-label and continuous ``y`` raise ``ValueError``; a one-vs-all encoded ``y`` is
    decoded and re-encoded), X validated as a dense or sparse numeric matrix (sets
    ``n_features_in_``/``feature_names_in_``), ``sampling_strategy_`` from
    :func:`imblearn.utils.check_sampling_strategy`, and outputs converted back to the caller's
    containers (list, pandas DataFrame/Series). The subclass's
    ``_fit_resample(X, y, rng, **params)`` returns ``(X_res, y_res, weight_fn)`` where
    ``weight_fn(w)`` maps the input sample weights to the output ones.
    """

    _sampling_type = "over-sampling"
    _provides_sample_indices = False
    _accept_sparse = ("csr", "csc")

    def _check_X_y(self, X, y, accept_sparse=None):
        if not is_multilabel_target(y):  # the text samplers' label checks: 1 and "1" kept apart, positions named
            check_labels(y, owner=type(self).__name__)
        check_classification_targets(y)
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X, y = validate_data(self, X=X, y=y, reset=True, accept_sparse=list(self._accept_sparse))
        return X, y, binarize_y

    def fit(self, X, y):
        """Check the inputs and compute ``sampling_strategy_``; use :meth:`fit_resample`."""
        self._validate_params()
        X, y, _ = self._check_X_y(X, y)
        self.sampling_strategy_ = check_sampling_strategy(
            self.sampling_strategy, y, self._sampling_type
        )
        return self

    def fit_resample(self, X, y, *, sample_weight=None, **params):
        """Resample the dataset.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            When given, returned resampled as a third output (synthetic samples follow the
            rule documented by each sampler).
        **params : dict
            Extra data-dependent inputs of the sampler (e.g. ``probe_proba`` for
            :class:`LabelNoiseRebalancer`).

        Returns
        -------
        X_resampled, y_resampled[, sample_weight_resampled]
        """
        self._validate_params()
        containers = _ArrayContainers(X, y)
        X, y_, binarize_y = self._check_X_y(X, y)
        w = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
        self.sampling_strategy_ = check_sampling_strategy(
            self.sampling_strategy, y_, self._sampling_type
        )
        rng = check_random_state(self.random_state)
        X_res, y_res, weight_fn = self._fit_resample(X, y_, rng, **params)
        if binarize_y:
            y_res = label_binarize(y_res, classes=np.unique(y_))
        X_res, y_res = containers.restore(X_res, y_res)
        if w is None:
            return X_res, y_res
        return X_res, y_res, weight_fn(w)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.dataframe = True
        tags.input_tags.string = False
        tags.input_tags.allow_nan = False
        tags.sampler_tags.sample_indices = self._provides_sample_indices
        return tags
