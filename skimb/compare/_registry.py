"""The registry of methods that ``skimb compare`` can run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Budget", "Method", "METHODS", "register_method", "get_methods"]


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
    """Decorator registering ``build(budget, seed, context)`` under ``name``; ``default``: True
    (a default for every task in ``tasks``), False, or the tasks it is a default for."""

    def decorator(build):
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is already registered")
        supported = frozenset(tasks)
        default_for = supported if default is True else frozenset(default or ()) & supported
        METHODS[name] = Method(name, build, description, supported, default_for, family, tuple(requires))
        return build

    return decorator


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
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {sorted(METHODS)}")
    unsupported = [n for n in names if task not in METHODS[n].tasks]
    if unsupported:
        raise ValueError(f"method(s) {unsupported} do not support {task} data")
    return [METHODS[n] for n in names]
