"""Declarative parameter constraints, checked before any training starts.

A class lists, per constructor parameter, the values it accepts (scikit-learn's
``_parameter_constraints`` idea, written here so that skimb imports no private scikit-learn
module)::

    _parameter_constraints = {
        "k": [Interval(Integral, 1, None)],
        "routing": [Options("topk", "pseudo")],
        "alpha": [None, Interval(Real, 0, None, closed="neither")],
    }

:func:`validate_params` raises :class:`InvalidParameterError` naming the owner, the parameter,
the bad value and what would be accepted, followed by a remedy when a constraint recognises the
mistake (:meth:`hint`: a near-miss option, a number given as a string). Torch-free: losses,
samplers and components use it.
"""

from __future__ import annotations

import re

import difflib
import math
import numbers
from numbers import Integral, Real

import numpy as np

__all__ = ["InvalidParameterError", "Interval", "Options", "Boolean", "HasMethods", "InstanceOf",
           "RandomState", "Satisfies", "invalid_values", "validate_params"]


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a value its class does not accept (both a ``ValueError``
    and a ``TypeError``, as scikit-learn's, so that either ``except`` catches it)."""


class _Constraint:
    def is_satisfied_by(self, value) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def bad_values(self) -> list:
        """Values violating this constraint alone (used by the check suite)."""
        return []

    def hint(self, value):
        """A remedy for ``value``, which this constraint rejects, when the mistake is
        recognisable (a sentence, or None)."""
        return None


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


class Interval(_Constraint):
    """Numbers of ``type`` (``Integral`` or ``Real``) between ``left`` and ``right`` (``None``:
    unbounded); ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``. Booleans
    and NaN never satisfy it, nor do infinities unless ``allow_inf`` (then ``+inf`` is in when
    ``right`` is None, ``-inf`` when ``left`` is None)."""

    def __init__(self, type, left, right, *, closed="both", allow_inf=False):
        self.type, self.left, self.right, self.closed = type, left, right, closed
        self.allow_inf = allow_inf

    def is_satisfied_by(self, value) -> bool:
        if _is_bool(value) or not isinstance(value, self.type):
            return False
        if math.isnan(float(value)) or (math.isinf(float(value)) and not self.allow_inf):
            return False
        lo_ok = self.left is None or (value >= self.left if self.closed in ("both", "left") else value > self.left)
        hi_ok = self.right is None or (value <= self.right if self.closed in ("both", "right") else value < self.right)
        return lo_ok and hi_ok

    def __str__(self):
        kind = "an int" if self.type is Integral else "a number"
        lo = "(" if self.closed in ("right", "neither") and not (self.left is None and self.allow_inf) else "["
        hi = ")" if self.closed in ("left", "neither") and not (self.right is None and self.allow_inf) else "]"
        left = "-inf" if self.left is None else self.left
        right = "inf" if self.right is None else self.right
        return f"{kind} in {lo}{left}, {right}{hi}"

    def bad_values(self):
        out = ["not-a-number"] + ([float("nan")] if self.type is Real else [])
        if self.left is not None:
            out.append(self.left - 1 if self.closed in ("both", "left") else self.left)
        if self.right is not None:
            out.append(self.right + 1 if self.closed in ("both", "right") else self.right)
        return out

    def hint(self, value):
        if isinstance(value, str):  # "3" for 3
            try:
                number = float(value)
            except ValueError:
                return None
            candidate = int(number) if self.type is Integral and number.is_integer() else number
            form = f"the number {candidate!r}, not the string {value!r}"
        elif (self.type is Integral and isinstance(value, Real) and not _is_bool(value)
              and float(value).is_integer()):  # 3.0 for 3
            candidate = int(value)
            form = f"the int {candidate!r}"
        else:
            return None
        return f"Pass {form}." if self.is_satisfied_by(candidate) else None


class Options(_Constraint):
    """One of the given values (compared with ``==``; strings only match strings)."""

    def __init__(self, *options):
        self.options = tuple(options)

    def is_satisfied_by(self, value) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options if isinstance(o, str)) or any(
            value is o for o in self.options if not isinstance(o, str))

    def __str__(self):
        return "one of " + ", ".join(repr(o) for o in self.options)

    def bad_values(self):
        return ["__unknown_option__"]

    def hint(self, value):
        names = [o for o in self.options if isinstance(o, str)]
        if not isinstance(value, str) or not names:
            return None
        by_case = {o.lower(): o for o in names}
        close = ([by_case[value.strip().lower()]] if value.strip().lower() in by_case
                 else difflib.get_close_matches(value, names, n=1, cutoff=0.6))
        return f"Did you mean {close[0]!r}?" if close else None


class Boolean(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        return _is_bool(value)

    def __str__(self):
        return "True or False"

    def bad_values(self):
        return ["yes"]


class HasMethods(_Constraint):
    """An object with the named methods (``HasMethods("fit", "transform")``)."""

    def __init__(self, *methods):
        self.methods = methods

    def is_satisfied_by(self, value) -> bool:
        return all(callable(getattr(value, m, None)) for m in self.methods)

    def __str__(self):
        return "an object with " + " and ".join(f"{m}()" for m in self.methods)

    def bad_values(self):
        return [object()]


class InstanceOf(_Constraint):
    def __init__(self, *types, description=None):
        self.types, self.description = types, description

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, self.types) and not (_is_bool(value) and bool not in self.types)

    def __str__(self):
        return self.description or "an instance of " + " or ".join(t.__name__ for t in self.types)


class RandomState(_Constraint):
    """None, an int in [0, 2**32) or a ``numpy.random.RandomState``."""

    def is_satisfied_by(self, value) -> bool:
        if value is None or isinstance(value, np.random.RandomState):
            return True
        return isinstance(value, numbers.Integral) and not _is_bool(value) and 0 <= value < 2**32

    def __str__(self):
        return "None, an int in [0, 2**32 - 1] or a numpy RandomState"

    def bad_values(self):
        return ["seed"]


class Satisfies(_Constraint):
    """A value for which ``predicate(value)`` is true, described by ``description``."""

    def __init__(self, predicate, description, bad=()):
        self.predicate, self.description, self.bad = predicate, description, list(bad)

    def is_satisfied_by(self, value) -> bool:
        return bool(self.predicate(value))

    def __str__(self):
        return self.description

    def bad_values(self):
        return list(self.bad)


def _describe(constraints) -> str:
    parts = ["None" if c is None else str(c) for c in constraints]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _satisfied(constraints, value) -> bool:
    return any(value is None if c is None else c.is_satisfied_by(value) for c in constraints)


def validate_params(constraints: dict, params: dict, owner: str, *, prefix: str = "") -> None:
    """Raise :class:`InvalidParameterError` for the first parameter of ``params`` whose value
    satisfies none of its ``constraints`` (parameters without constraints are not checked);
    ``prefix`` is how the owner's caller spells the parameters (``"head__"``). The message ends
    with the first remedy a constraint offers for the value (:meth:`_Constraint.hint`).

    Examples
    --------
    >>> validate_params({"k": [Interval(Integral, 1, None)]}, {"k": 0}, "CALoRAHead")
    Traceback (most recent call last):
    ...
    skimb.utils._param_validation.InvalidParameterError: CALoRAHead: k must be an int in [1, inf], got 0.
    >>> validate_params({"draw": [Options("quota", "random")]}, {"draw": "quotas"}, "Sampler")
    Traceback (most recent call last):
    ...
    skimb.utils._param_validation.InvalidParameterError: Sampler: draw must be one of 'quota', 'random', got 'quotas'. Did you mean 'quota'?
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is None or allowed == "no_validation" or _satisfied(allowed, value):
            continue
        hint = next((h for c in allowed if c is not None for h in [c.hint(value)] if h), None)
        raise InvalidParameterError(f"{owner}: {prefix}{name} must be {_describe(allowed)}, got {_short_repr(value)}."
                                    + (f" {hint}" if hint else ""))


def _short_repr(value, limit: int = 120) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters: a model or a long array as a value
    would otherwise fill the message.

    >>> _short_repr("x" * 200, limit=20)
    "'xxxxxxxxxxxxxxx... (a str)"
    """
    text = re.sub(r"\s*\n\s*", " ", repr(value))  # a multi-line repr on one line; a string's spaces kept
    return text if len(text) <= limit else f"{text[:limit - 4]}... (a {type(value).__name__})"


def invalid_values(constraints) -> list:
    """Values that satisfy none of ``constraints`` (for the check suite's validation check)."""
    if constraints == "no_validation":
        return []
    candidates = [v for c in constraints if c is not None for v in c.bad_values()]
    if None not in constraints:
        candidates.append(None)
    return [v for v in candidates if not _satisfied(constraints, v)]

