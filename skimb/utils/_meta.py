"""The estimators inside meta-estimators, ensembles and pipelines."""

from __future__ import annotations

from collections.abc import Iterator


def inner_estimators(est, *, fitted: bool) -> Iterator[tuple[str, object]]:
    """The estimators directly inside a meta-estimator, ensemble or pipeline.

    Parameters
    ----------
    est : object
    fitted : bool
        True: what fitting made (``named_estimators_`` or ``estimators_``, else the wrapped
        ``estimator_``; a search's ``best_estimator_``; a stack's ``final_estimator_``; the steps).
        False: the parameters (``estimator``, ``estimators``, ``final_estimator``, ``steps``).

    Yields
    ------
    (str, object)
        The path suffix (``".estimator_"``, ``"['name']"``) and the estimator; ``"drop"``,
        ``"passthrough"`` and None are skipped.

    Examples
    --------
    >>> from sklearn.ensemble import VotingClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> vote = VotingClassifier([("a", LogisticRegression()), ("b", "drop")])
    >>> [name for name, _ in inner_estimators(vote, fitted=False)]
    ["['a']"]
    """
    if fitted:
        named = getattr(est, "named_estimators_", None)
        members = list(named.items()) if named else list(enumerate(getattr(est, "estimators_", None) or ()))
        # a bagging ensemble's estimator_ is the unfitted template of its fitted estimators_
        wrapped = [] if members else [(".estimator_", getattr(est, "estimator_", None))]
        # a search's refitted model (GridSearchCV, RandomizedSearchCV): fitted on all the rows it was given
        wrapped.append((".best_estimator_", getattr(est, "best_estimator_", None)))
        wrapped.append((".final_estimator_", getattr(est, "final_estimator_", None)))
    else:
        wrapped = [(".estimator", getattr(est, "estimator", None)),
                   (".final_estimator", getattr(est, "final_estimator", None))]
        members = list(getattr(est, "estimators", None) or ())
    steps = getattr(est, "steps", None) or ()
    for suffix, inner in wrapped + [(f"[{key!r}]", member) for key, member in [*members, *steps]]:
        if inner is not None and not isinstance(inner, str):
            yield suffix, inner
