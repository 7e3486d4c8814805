"""Method components and their registries (torch-free).

A component is one method an estimator composes (a head, a training strategy, a fine-tuning
mode): a small scikit-learn-style object whose ``__init__`` stores its parameters, with its
own constraints table, defaults and docstring. An estimator parameter selects it by name
(``head="calora"``) or takes an instance (``head=CALoRAHead(k=2)``); the method's parameters
are routed skorch-style (``head__k=3``). A :class:`Registry` per slot maps names to classes,
so that a new method registers itself and touches no estimator.
"""

from __future__ import annotations

import inspect

from sklearn.base import BaseEstimator

from ._param_validation import InvalidParameterError, validate_params
from ._warnings import warn_caller, warn_ignored

__all__ = ["Component", "Registry", "changed_params"]


def changed_params(obj, names) -> list:
    """Which of ``names`` differ from their default in ``type(obj).__init__``'s signature."""
    defaults = inspect.signature(type(obj).__init__).parameters
    return [n for n in names if getattr(obj, n) is not defaults[n].default and getattr(obj, n) != defaults[n].default]


class Component(BaseEstimator):
    """Base of the method components: parameters, constraints, defaults and docs in one object.

    Subclasses store their parameters in ``__init__`` and list them in
    ``_parameter_constraints`` (see :mod:`skimb.utils._param_validation`).
    """

    #: The registry name, set by ``Registry.register``.
    name = None
    _parameter_constraints: dict = {}

    def validate(self, *, owner=None, prefix=""):
        """Check every parameter against the constraints table; return ``self``. ``owner`` and
        ``prefix`` name the estimator and the routed spelling in errors (``head__k``)."""
        owner = type(self).__name__ if owner is None else f"{owner} ({type(self).__name__})"
        validate_params(self._parameter_constraints, self.get_params(deep=False), owner, prefix=prefix)
        return self

    def ignored_params(self) -> dict:
        """``{parameter: reason}`` for parameters moved off their default that this
        configuration does not use (the estimator warns about them)."""
        return {}

    def _changed(self, names) -> list:
        """Which of ``names`` differ from their constructor default."""
        return changed_params(self, names)

    def to_json(self) -> dict:
        """``{"component": class name, "params": {...}}`` (``save_pretrained``)."""
        return {"component": type(self).__name__, "params": self.get_params(deep=False)}


def unregistered_here(kind: str, remedy: str) -> str:
    """What an unknown name's error adds: the workers of a parallel search import skimb afresh, not
    the script that registered the ``kind`` (``"head"``, ``"loss"``); ``remedy`` is what travels."""
    return (f" A {kind} registered with register_{kind} in another process (the script of a search with n_jobs > 1) "
            f"is unknown in this one: {remedy}, or register it in a module the processes import.")


class Registry:
    """Names of one slot's components (``"head"``: ``"linear"``, ``"calora"``, ...).

    Parameters
    ----------
    slot : str
        The estimator parameter that selects a component (``"head"``).
    base : type
        The components' base class; instances of it are accepted as they are.

    Examples
    --------
    >>> from skimb.utils._components import Component, Registry
    >>> HEADS = Registry("head", Component)
    >>> @HEADS.register("demo")
    ... class DemoHead(Component):
    ...     def __init__(self, k=2):
    ...         self.k = k
    >>> HEADS.resolve("demo", {"k": 3}, owner="Estimator")
    DemoHead(k=3)
    """

    def __init__(self, slot: str, base: type):
        self.slot = slot
        self.base = base
        self._classes: dict[str, type] = {}

    def register(self, name: str, *, overwrite: bool = False):
        """Class decorator registering a component under ``name``."""

        def decorator(cls):
            current = self._classes.get(name)
            if current is not None and current.__qualname__ != cls.__qualname__ and not overwrite:
                raise ValueError(f"a {self.slot} named {name!r} is already registered ({current.__name__}); "
                                 "pass overwrite=True to replace it.")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorator

    def names(self) -> list:
        return list(self._classes)

    def classes(self) -> list:
        return list(self._classes.values())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._classes

    def by_class_name(self, class_name: str) -> type:
        for cls in self._classes.values():
            if cls.__name__ == class_name:
                return cls
        raise ValueError(f"no registered {self.slot} component is called {class_name!r}; "
                         f"registered: {[c.__name__ for c in self._classes.values()]}.")

    def _class_of(self, value, owner):
        if isinstance(value, self.base):
            return type(value), value.get_params(deep=False)
        if value in self:
            return self._classes[value], {}
        hint = "" if not isinstance(value, str) else unregistered_here(
            self.slot, f"pass an instance ({self.slot}=My{self.slot.capitalize()}(...)), which carries its class")
        raise InvalidParameterError(
            f"{owner}: {self.slot} must be one of {self.names()} or a {self.base.__name__} instance, "
            f"got {value!r}.{hint}")

    def defaults(self, value) -> dict:
        """The parameters of the component ``value`` selects (empty for an unknown name)."""
        if isinstance(value, self.base):
            return value.get_params(deep=False)
        return self._classes[value]().get_params(deep=False) if value in self else {}

    def resolve(self, value, routed: dict, *, owner: str):
        """A new, validated component for ``value`` (a name or an instance, never mutated) with
        the routed ``<slot>__<name>`` parameters applied.

        A routed parameter that only another component of the slot takes is ignored with a
        warning (a grid over ``head`` and ``head__k``); one that no component takes raises.
        """
        cls, params = self._class_of(value, owner)
        own = set(cls().get_params(deep=False))
        for key, val in routed.items():
            if key in own:
                params[key] = val
            elif any(key in c().get_params(deep=False) for c in self._classes.values()):
                warn_caller(f"{owner}: {self.slot}__{key} is ignored by {self.slot}={value!r} "
                            f"({cls.__name__} has no {key!r}).")
            else:
                raise InvalidParameterError(
                    f"{owner}: {self.slot}__{key} is not a parameter of {cls.__name__}; "
                    f"its parameters are {sorted(own) or '(none)'}.")
        component = cls(**params).validate(owner=owner, prefix=f"{self.slot}__")
        warn_ignored(component.ignored_params(), owner=owner, prefix=f"{self.slot}__")
        return component
