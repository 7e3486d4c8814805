"""The estimators inside meta-estimators, ensembles and pipelines."""

from __future__ import annotations

from collections.abc import Iterator


def inner_estimators(est, *, fitted: bool) -> Iterator[tuple[str, object]]:
    """``(path suffix, estimator)`` for each estimator directly inside ``est``: a meta-estimator's
    wrapped estimator, an ensemble's members and a pipeline's steps; ``"drop"``/``"passthrough"``
    and None skipped. ``fitted=True`` reads what fitting made (``estimator_``, ``named_estimators_``
    or ``estimators_``, the steps), ``fitted=False`` the parameters (``estimator``, ``estimators``,
    ``steps``).

    >>> from sklearn.ensemble import VotingClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> vote = VotingClassifier([("a", LogisticRegression()), ("b", "drop")])
    >>> [name for name, _ in inner_estimators(vote, fitted=False)]
    ["['a']"]
    """
    if fitted:
        wrapped = [(".estimator_", getattr(est, "estimator_", None))]
        named = getattr(est, "named_estimators_", None)
        members = list(named.items()) if named else list(enumerate(getattr(est, "estimators_", None) or ()))
    else:
        wrapped = [(".estimator", getattr(est, "estimator", None))]
        members = list(getattr(est, "estimators", None) or ())
    steps = getattr(est, "steps", None) or ()
    for suffix, inner in wrapped + [(f"[{key!r}]", member) for key, member in [*members, *steps]]:
        if inner is not None and not isinstance(inner, str):
            yield suffix, inner
