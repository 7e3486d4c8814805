"""The registry of methods that ``skimb compare`` can run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Budget", "Method", "METHODS", "TASKS", "register_method", "get_methods"]

#: The kinds of data a method can support (``data.task`` of the loaders).
TASKS = ("multiclass", "multilabel", "token")
#: A method name: it names report files (``confusion_<name>.png``) and is given comma-separated to
#: ``--methods``, so letters, digits, '_', '-' and '.' only.
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_RESERVED_NAMES = ("default", "all")  # what ``--methods`` takes besides names


@dataclass(frozen=True)
class Budget:
    """What every method gets alike: backbone, epochs, batch size, length, learning rate
    (``"auto"``: the estimators' own, 1e-4 for texts and 2e-4 for tagging with the bundled
    MiniLM's full fine-tuning, up to twice that on fits of under 600 optimiser steps)."""

    backbone: str | None = None
    max_epochs: int = 3
    batch_size: int = 16
    max_length: int = 64
    lr: float | str = "auto"
    device: str = "auto"

    def finetune_params(self, seed) -> dict:
        return dict(backbone=self.backbone, max_epochs=self.max_epochs, batch_size=self.batch_size,
                    max_length=self.max_length, lr=self.lr, device=self.device, random_state=seed)


@dataclass(frozen=True)
class Method:
    """A named way to fit a model: ``build(budget, seed, context) -> estimator``.

    ``context`` holds facts about the training data a builder may need (``task``,
    ``min_class_count``; multi-class: ``class_counts``, label -> training texts). ``tasks`` lists the tasks the method supports; ``default`` those of
    them on which it runs when ``--methods`` is not given.
    """

    name: str
    build: Callable
    description: str
    tasks: frozenset = field(default_factory=lambda: frozenset({"multiclass"}))
    default: frozenset = frozenset()
    family: str = "baseline"
    #: Optional packages the method needs (``skimb.utils._optional.EXTRAS``): without them it is
    #: left out of the default run.
    requires: tuple = ()


METHODS: dict[str, Method] = {}


def register_method(name, *, description, tasks=("multiclass",), default=False, family="baseline", requires=()):
    """Decorator registering ``build(budget, seed, context)`` under ``name``.

    Parameters
    ----------
    name : str
        Letters, digits, '_', '-' and '.' (it names report files and ``--methods`` entries);
        not ``"default"`` or ``"all"``.
    description : str
        One line for ``--list-methods`` and the report.
    tasks : str or iterable of str, default=("multiclass",)
        The tasks the method supports, of ``"multiclass"``, ``"multilabel"`` and ``"token"``; a
        single string is one task.
    default : bool, str or iterable of str, default=False
        True: a default for every task in ``tasks``; False (or None): for none; otherwise the
        tasks (a subset of ``tasks``) it is a default for.
    family : str, default="baseline"
    requires : tuple of str, default=()
        Optional packages the method needs.
    """
    _check_name(name)
    supported = _task_set(tasks, "tasks")
    if not supported:
        raise ValueError(f"register_method({name!r}): tasks names no task; give one or more of {list(TASKS)}.")
    default_for = _default_tasks(name, default, supported)

    def decorator(build):
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is already registered")
        METHODS[name] = Method(name, build, description, supported, default_for, family, tuple(requires))
        return build

    return decorator


def _check_name(name) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"register_method: the method name {name!r} must be a non-empty string of letters, "
                         "digits, '_', '-' and '.' only (it names report files and --methods entries); "
                         "e.g. 'lr_balanced' rather than 'lr/balanced'.")
    if name in _RESERVED_NAMES:
        raise ValueError(f"register_method: {name!r} is reserved (--methods default / all); choose another name.")


def _task_set(tasks, param) -> frozenset:
    """``tasks`` (one task name, or an iterable of them) as a frozenset of known task names."""
    if isinstance(tasks, str):
        tasks = (tasks,)
    try:
        chosen = frozenset(tasks)
    except TypeError:
        raise TypeError(f"register_method: {param} must be a task name or a list of them (from {list(TASKS)}), "
                        f"got {tasks!r}.") from None
    unknown = sorted(map(repr, chosen - set(TASKS)))
    if unknown:
        raise ValueError(f"register_method: {param} holds unknown task(s) {', '.join(unknown)}; "
                         f"the tasks are {list(TASKS)}.")
    return chosen


def _default_tasks(name, default, supported) -> frozenset:
    """The tasks ``default`` (True, False/None, or task names) makes ``name`` a default for."""
    if default is True:
        return supported
    if default is False or default is None:
        return frozenset()
    chosen = _task_set(default, "default")
    if not chosen <= supported:
        raise ValueError(f"register_method({name!r}): default names task(s) {sorted(chosen - supported)} that "
                         f"are not in its tasks {sorted(supported)}; add them to tasks or leave them out.")
    return chosen


def refuse_repeated_methods(names) -> None:
    """A ``ValueError`` where a method is named more than once (it would rerun the same fits)."""
    names = list(names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"method(s) {repeated} are named more than once; name each method once "
                         "(a repeated method reruns the same fits).")


def get_methods(names, task) -> list[Method]:
    """Resolve ``names`` (list, or "default"/"all") to methods that support ``task``."""
    if names in (None, "default", ["default"]):
        from ..utils._optional import has_optional

        chosen = [m for m in METHODS.values() if task in m.default and all(has_optional(r) for r in m.requires)]
        if not chosen:
            chosen = [m for m in METHODS.values() if task in m.tasks]
        return chosen
    if names in ("all", ["all"]):
        return [m for m in METHODS.values() if task in m.tasks]
    refuse_repeated_methods(names)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {sorted(METHODS)}")
    unsupported = [n for n in names if task not in METHODS[n].tasks]
    if unsupported:
        raise ValueError(f"method(s) {unsupported} do not support {task} data")
    return [METHODS[n] for n in names]
