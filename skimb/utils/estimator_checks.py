"""The skimb estimator check suite.

scikit-learn's ``check_estimator`` skips estimators whose input is text, so this
module runs the applicable scikit-learn API checks plus text-specific ones over
classifiers, token classifiers, transformers (embedders), samplers and the method components,
in the manner of imbalanced-learn's ``utils/estimator_checks.py``. Every object also gets a
parameter-validation check (every parameter in its ``_parameter_constraints`` table; each bad
type, bad range and unknown option the table implies gives a clear error naming the class, the
parameter and the value before any training) and a docstring check (every parameter documented in the
numpydoc ``Parameters`` section, none stale).

:func:`all_estimators` discovers the public estimators, components and samplers by walking the
package's ``__all__``s, so a new one is checked without being listed. Use
:func:`parametrize_with_checks` in a test module::

    @parametrize_with_checks([TransformerClassifier(backbone=path, max_epochs=1)])
    def test_skimb_compatible(estimator, check):
        check(estimator)
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import re
from functools import partial

import numpy as np
from sklearn import clone
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as sk_checks
from sklearn.utils import get_tags

__all__ = ["all_estimators", "estimator_checks_generator", "parametrize_with_checks", "make_check_texts",
           "make_check_tokens"]

#: The required constructor arguments a discovered class may have: the estimator a
#: meta-estimator wraps, the (name, estimator) pairs of an ensemble (pass them to construct it).
META_PARAMETERS = ("estimator", "estimators")

#: The public modules whose ``__all__`` is walked for estimators, components and samplers.
PUBLIC_MODULES = ("skimb", "skimb.samplers", "skimb.heads", "skimb.training", "skimb.training.hamr",
                  "skimb.backbones", "skimb.baselines", "skimb.model_selection", "skimb.ensemble")

_WORDS = ("flood rain help water food shelter rescue people missing road bridge power money "
          "thanks love storm wind river city news update").split()
_KEYWORDS = ("flood", "donate", "injured")


def make_check_texts(n_per_class=(16, 8, 6), seed=0):
    """Toy texts whose class is marked by a keyword; labels ``'a'``, ``'b'``, ``'c'``."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for c, n in enumerate(n_per_class):
        for _ in range(n):
            words = list(rng.choice(_WORDS, size=int(rng.integers(2, 9))))
            words.insert(int(rng.integers(0, len(words) + 1)), _KEYWORDS[c])
            texts.append(" ".join(words))
            labels.append("abc"[c])
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.array(labels)[order]


def make_check_tokens(n=24, seed=0):
    """Toy sentences with PER entities (IOB2 tags) for token classifiers."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(2, 7)))]
        tags = ["O"] * len(words)
        p = int(rng.integers(0, len(words) + 1))
        words[p:p], tags[p:p] = ["john", "smith"], ["B-PER", "I-PER"]
        X.append(words)
        y.append(tags)
    return X, y


def all_estimators():
    """The public estimator, component and sampler classes, found through ``__all__``.

    Returns
    -------
    list of (name, class)
        Concrete classes (not abstract bases) that have ``get_params`` and need no constructor
        argument, except the meta-estimators' ``estimator`` and the ensembles' ``estimators``
        (:data:`META_PARAMETERS`), sorted by name.
    """
    found = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) and issubclass(obj, BaseEstimator)) or name.startswith("Base"):
                continue
            if any(c.__module__.startswith("skorch") for c in obj.__mro__):
                continue  # the skorch nets are torch machinery, not estimators of ours
            required = [p.name for p in inspect.signature(obj.__init__).parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                        and p.name != "self"]
            if set(required) <= set(META_PARAMETERS) and not vars(obj).get("_abstract", False):
                found[name] = obj
    return sorted(found.items())


def make_check_embeddings(seed=0):
    """Toy embeddings (class-dependent means) with the labels of :func:`make_check_texts`."""
    _, y = make_check_texts(seed=seed)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8))
    return centres[np.searchsorted(np.unique(y), y)] + 0.5 * rng.normal(size=(len(y), 8)), y


def _kind(estimator):
    if hasattr(estimator, "fit_resample"):
        return "embedding_sampler" if getattr(estimator, "_accept_sparse", None) else "sampler"
    if not any(hasattr(estimator, m) for m in ("fit", "fit_resample")):
        return "component"
    if is_classifier(estimator):
        return "classifier"
    if _is_tagger(estimator):
        return "token"
    return "transformer"


def _is_tagger(estimator) -> bool:
    """A predictor of string input that scikit-learn types as neither classifier nor regressor: its
    ``y`` is tag lists (a token classifier, a vote of them)."""
    tags = get_tags(estimator)
    return (tags.estimator_type is None and tags.input_tags.string and callable(getattr(estimator, "predict", None))
            and not hasattr(estimator, "transform"))


def _data(est):
    kind = _kind(est)
    if kind == "token":
        return make_check_tokens()
    return make_check_embeddings() if kind == "embedding_sampler" else make_check_texts()


def _fit(est, X, y):
    if _kind(est) in ("sampler", "embedding_sampler"):
        return est.fit_resample(X, y)
    return est.fit(X, y)


def _output(est, X, y=None):
    """What the fitted estimator computes: probabilities, embeddings or resampled data."""
    kind = _kind(est)
    if kind == "token":
        return np.concatenate(est.predict_proba(X))
    if kind == "classifier":
        return est.predict_proba(X)
    if kind == "transformer":
        return est.transform(X)
    return est.fit_resample(X, y)


def _assert_same_output(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same_output(u, v)
        return
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the checks
def check_fit_returns_self(name, est):
    X, y = _data(est)
    if _kind(est) in ("sampler", "embedding_sampler"):
        return
    est = clone(est)
    assert est.fit(X, y) is est, f"{name}.fit must return self"


def check_clone_before_and_after_fit(name, est):
    X, y = _data(est)
    before = clone(est)
    assert before.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    fitted = clone(est)
    _fit(fitted, X, y)
    again = clone(fitted)
    fitted_attrs = [k for k in vars(again) if k.endswith("_") and not k.startswith("__")]
    assert not fitted_attrs, f"clone of a fitted {name} carries fitted attributes {fitted_attrs}"
    for key, value in est.get_params(deep=False).items():
        assert repr(again.get_params(deep=False)[key]) == repr(value)


def check_fitted_attributes_end_with_underscore(name, est):
    X, y = _data(est)
    est = clone(est)
    init_keys = set(vars(est))
    _fit(est, X, y)
    new = [k for k in vars(est) if k not in init_keys and not k.startswith("_") and not k.endswith("_")]
    assert not new, f"{name} sets attributes without a trailing underscore in fit: {new}"
    for key, value in est.get_params(deep=False).items():  # parameters are not overwritten
        assert repr(getattr(est, key)) == repr(value)


def check_pickle_roundtrip(name, est):
    X, y = _data(est)
    est = clone(est)
    _fit(est, X, y)
    if _kind(est) in ("sampler", "embedding_sampler"):
        restored = pickle.loads(pickle.dumps(est))
        _assert_same_output(restored.fit_resample(X, y), est.fit_resample(X, y))
        return
    out = _output(est, X)
    restored = pickle.loads(pickle.dumps(est))
    _assert_same_output(_output(restored, X), out)


def check_refit_determinism(name, est):
    X, y = _data(est)
    params = est.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        est = clone(est).set_params(random_state=0)
    a, b = clone(est), clone(est)
    out_a = _fit(a, X, y) if _kind(est) in ("sampler", "embedding_sampler") else _output(_fit(a, X, y), X)
    out_b = _fit(b, X, y) if _kind(est) in ("sampler", "embedding_sampler") else _output(_fit(b, X, y), X)
    _assert_same_output(out_a, out_b)


def check_string_and_integer_labels(name, est):
    X, y = _data(est)
    if _kind(est) == "transformer":
        return
    for labels in (y, np.searchsorted(np.unique(y), y) + 3):
        e = clone(est)
        if _kind(est) in ("sampler", "embedding_sampler"):
            _, y_res = e.fit_resample(X, labels)
            assert set(np.unique(y_res)) <= set(np.unique(labels))
            continue
        e.fit(X, labels)
        assert e.classes_.dtype.kind == labels.dtype.kind, f"{name}.classes_ changed the label type"
        assert set(e.predict(X).tolist()) <= set(labels.tolist())


def check_score_with_unseen_test_labels(name, est):
    if _kind(est) != "classifier":
        return
    X, y = make_check_texts()
    e = clone(est).fit(X, y)
    y_test = y.copy()
    y_test[:3] = "zzz"  # a label never seen in training
    score = e.score(X, y_test)
    assert 0.0 <= score <= 1.0


def check_not_fitted(name, est):
    X, _ = _data(est)
    kind = _kind(est)
    if kind == "sampler":
        return
    method = est.transform if kind == "transformer" else est.predict
    try:
        method(X)
    except NotFittedError:
        return
    raise AssertionError(f"{name} did not raise NotFittedError before fit")


def check_inputs_not_mutated(name, est):
    X, y = make_check_texts()
    X_arr = np.array(X, dtype=object)
    X_copy, y_copy, X_arr_copy = list(X), y.copy(), X_arr.copy()
    e = clone(est)
    _fit(e, X, y)
    _fit(clone(est), X_arr, y)
    assert X == X_copy and np.array_equal(y, y_copy) and np.array_equal(X_arr, X_arr_copy)


def check_text_containers(name, est):
    """A list, a 1-D array, a pandas Series and a one-column 2-D array give the same result."""
    X, y = make_check_texts()
    containers = [np.asarray(X, dtype=object), np.asarray(X, dtype=object).reshape(-1, 1)]
    try:
        import pandas as pd

        containers.append(pd.Series(X))
    except ImportError:  # pragma: no cover
        pass
    e = _fit(clone(est), X, y)
    if _kind(est) in ("sampler", "embedding_sampler"):
        ref = e
        for c in containers:
            got = clone(est).fit_resample(c, y)
            assert len(got[0]) == len(ref[0]) and np.array_equal(got[1], ref[1])
        return
    ref = _output(e, X)
    for c in containers:
        _assert_same_output(_output(e, c), ref)


def check_bad_texts(name, est):
    X, y = make_check_texts()
    bad_cases = {
        "None": (X[:-1] + [None], TypeError),
        "NaN": (X[:-1] + [float("nan")], TypeError),
        "number": (X[:-1] + [3], TypeError),
        "empty list": ([], ValueError),
        "single string": ("just one text", TypeError),
    }
    for what, (bad_X, error) in bad_cases.items():
        bad_y = y if len(bad_X) == len(y) else y[: len(bad_X)]
        try:
            _fit(clone(est), bad_X, bad_y)
        except error as exc:
            assert str(exc), f"{name}: empty message for {what}"
        else:
            raise AssertionError(f"{name} accepted {what} in X")
    # an empty string is valid text
    _fit(clone(est), X[:-1] + [""], y)


def check_bad_labels(name, est):
    if _kind(est) == "transformer":
        return
    X, y = make_check_texts()
    y_none = y.astype(object)
    y_none[0] = None
    y_nan = np.searchsorted(np.unique(y), y).astype(float)
    y_nan[1] = np.nan
    cases = {
        "None label": (X, y_none),
        "NaN label": (X, y_nan),
        "single class": (X, np.full(len(X), "a")),
        "length mismatch": (X[:-2], y),
    }
    for what, (bX, by) in cases.items():
        try:
            _fit(clone(est), bX, by)
        except ValueError as exc:
            assert str(exc)
        else:
            raise AssertionError(f"{name} accepted {what}")


def check_predict_before_fit_message(name, est):
    """Errors on unfitted use name the estimator (scikit-learn's NotFittedError)."""
    if _kind(est) in ("sampler", "embedding_sampler"):
        return
    X, _ = _data(est)
    method = est.transform if _kind(est) == "transformer" else est.predict
    try:
        method(X)
    except NotFittedError as exc:
        assert type(est).__name__ in str(exc)


def _validation_trigger(est):
    """What runs an object's parameter checks: ``validate`` (components), ``fit`` or
    ``fit_resample`` on toy data."""
    kind = _kind(est)
    if kind == "component":
        return est.validate
    X, y = _data(est)
    return partial(_fit, est, X, y)


#: Parameters checked where they are used (skorch's callbacks, the verbosity), not by the tables.
_CHECKED_WHERE_USED = ("callbacks", "verbose")


def _bad_values(est, name):
    """Values of ``name`` that ``est``'s constraints table rejects: a bad type, a bad range, an
    unknown option (:func:`~skimb.utils._param_validation.invalid_values`)."""
    from ._param_validation import invalid_values

    constraints = getattr(est, "_parameter_constraints", {}).get(name)
    if constraints is not None and all(not isinstance(c, type) for c in (constraints if isinstance(constraints, list) else [])):
        try:
            return invalid_values(constraints)
        except TypeError:  # scikit-learn/imbalanced-learn's own constraint objects
            pass
    return [object()]  # no table of ours: a value of no accepted type


def check_param_validation(name, est):
    """Every constructor parameter has an entry in the ``_parameter_constraints`` table, and
    every bad value the table implies (type, range, unknown option) raises a ``ValueError`` or
    ``TypeError`` naming the class, the parameter and the value, before any training (no fitted
    attribute is set). The same for estimators, components and samplers: a new one is covered
    by declaring its table."""
    params = est.get_params(deep=False)
    table = getattr(est, "_parameter_constraints", {})
    undeclared = sorted(p for p in params if p not in table and p not in _CHECKED_WHERE_USED and "__" not in p)
    assert not undeclared, (f"{name}: parameters missing from its _parameter_constraints table: {undeclared} "
                            "(list the accepted values, or 'no_validation' where another check owns them)")
    for param in params:
        if param in _CHECKED_WHERE_USED:
            continue
        for bad in _bad_values(est, param):
            e = clone(est).set_params(**{param: bad})
            try:
                _validation_trigger(e)()
            except (ValueError, TypeError) as exc:
                for part in (name, param, repr(bad)):
                    assert part in str(exc), f"{name}: the error for {param}={bad!r} does not name {part}: {exc}"
            else:
                raise AssertionError(f"{name} accepted {param}={bad!r}")
            fitted = [k for k in vars(e) if k.endswith("_") and not k.startswith("_") and k != "tokenizer_"
                      and k != "backbone_path_"]
            assert not fitted, f"{name}: {param}={bad!r} was reported only after training ({fitted})"


_DOC_PARAM = re.compile(r"^(\*{0,2}[A-Za-z_][\w, \\*]*?)\s*(?::.*)?$")


def documented_parameters(cls) -> list:
    """Names in the numpydoc ``Parameters`` section of ``cls``'s docstring (grouped names
    such as ``batch_size, max_epochs : int`` count one by one)."""
    doc = inspect.cleandoc(cls.__doc__ or "").replace("\\\n", " ")
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-{3,}|\Z)", doc, flags=re.S | re.M)
    if not match:
        return []
    names = []
    for line in match.group(1).splitlines():
        if not line or line[0].isspace():
            continue
        head = line.split(" : ", 1)[0]
        names += [n.strip() for n in head.split(",") if n.strip()]
    return names


def check_do_not_raise_errors_in_init_or_set_params(name, est):
    """``__init__`` and ``set_params`` store any value of every named parameter without checking it
    (scikit-learn's check, less the ``**kwargs`` catch-all for routed names, which is no parameter:
    ``set_params`` refuses an unknown name at once)."""
    Estimator = type(est)
    names = [p.name for p in inspect.signature(Estimator).parameters.values() if p.kind != p.VAR_KEYWORD]
    for value in (-1, 3.0, "helloworld", np.array([1.0, 4.0]), [1], {}, []):
        params = dict.fromkeys(names, value)
        Estimator(**params).set_params(**params)


def check_docstring_parameters(name, est):
    """Every constructor parameter is documented, and no documented one is stale."""
    params = set(est.get_params(deep=False)) - {k for k in est.get_params(deep=False) if "__" in k}
    documented = documented_parameters(type(est))
    missing = sorted(params - set(documented))
    stale = sorted(set(documented) - params - {"**kwargs", "*args"})
    assert not missing, f"{name}: parameters not documented in its docstring: {missing}"
    assert not stale, f"{name}: documented parameters that it does not take: {stale}"


_SKLEARN_API_CHECKS = (
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_valid_tag_types",
)

_OWN_CHECKS = (
    check_fit_returns_self,
    check_clone_before_and_after_fit,
    check_fitted_attributes_end_with_underscore,
    check_pickle_roundtrip,
    check_refit_determinism,
    check_string_and_integer_labels,
    check_score_with_unseen_test_labels,
    check_not_fitted,
    check_predict_before_fit_message,
    check_inputs_not_mutated,
    check_text_containers,
    check_bad_texts,
    check_bad_labels,
)


#: The checks that apply to token classifiers (their data are token lists, not texts).
_TOKEN_CHECKS = (check_fit_returns_self, check_clone_before_and_after_fit, check_fitted_attributes_end_with_underscore,
                 check_pickle_roundtrip, check_refit_determinism, check_not_fitted, check_predict_before_fit_message)
#: The checks that apply to samplers of embeddings (their data are numeric matrices).
_EMBEDDING_CHECKS = (check_clone_before_and_after_fit, check_fitted_attributes_end_with_underscore,
                     check_pickle_roundtrip, check_refit_determinism, check_string_and_integer_labels)
_ALWAYS = (check_do_not_raise_errors_in_init_or_set_params, check_param_validation, check_docstring_parameters)


def estimator_checks_generator(estimator):
    """Yield ``(estimator, check)`` pairs; ``check(estimator)`` runs one check."""
    name = type(estimator).__name__
    kind = _kind(estimator)
    for check_name in _SKLEARN_API_CHECKS:
        check = getattr(sk_checks, check_name, None)
        if check is not None:
            yield estimator, partial(check, name)
    own = {"component": (), "token": _TOKEN_CHECKS, "embedding_sampler": _EMBEDDING_CHECKS}.get(kind, _OWN_CHECKS)
    for check in own + _ALWAYS:
        yield estimator, partial(check, name)


def _check_id(obj):
    if isinstance(obj, partial):
        return obj.func.__name__
    if hasattr(obj, "get_params"):
        return type(obj).__name__
    return None


def parametrize_with_checks(estimators):
    """pytest decorator running every applicable check on each estimator."""
    import pytest

    pairs = [(copy.deepcopy(est), check) for e in estimators for est, check in estimator_checks_generator(e)]
    return pytest.mark.parametrize("estimator, check", pairs, ids=_check_id)
