"""Loss registry and the :func:`make_loss` factory used by the estimators."""

from __future__ import annotations

import copy
import re

from torch import nn

from ..utils._components import unregistered_here
from ..utils._warnings import warn_caller
from ._base import ImbalanceLoss

__all__ = ["LOSSES", "FLAT_PARAMS", "TASKS", "register_loss", "make_loss", "available_losses", "loss_balances_classes",
           "loss_focuses"]

TASKS = ("multiclass", "multilabel")

#: Loss hyperparameters shared by several losses (the estimators route them as ``loss__gamma``
#: etc.). A loss ignores the ones it does not use, with a warning; every other parameter must
#: be accepted or ``TypeError`` is raised.
FLAT_PARAMS = ("gamma", "alpha", "beta", "tau", "max_gamma")

#: ``LOSSES[task][name]`` -> loss class. Filled by :func:`register_loss`.
LOSSES: dict[str, dict[str, type]] = {task: {} for task in TASKS}

_EXTRA_PREFIX = "loss__"


def _check_task(task):
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    return task


def register_loss(name, task, *, overwrite=False):
    """Class decorator registering a loss under ``name`` for one or more tasks.

    Parameters
    ----------
    name : str
        Registry name (lower case), e.g. ``"focal"``.
    task : {"multiclass", "multilabel"} or tuple of them
        Task(s) the name is valid for. One name may map to different classes for
        different tasks (``"afl"``, and the multi-label aliases ``"ce"`` -> ``"bce"``).
    overwrite : bool, default=False
        Replace an existing, different class registered under the same name.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import ImbalanceLoss, LOSSES, register_loss
    >>> @register_loss("hinge_demo", "multiclass")
    ... class HingeDemo(ImbalanceLoss):
    ...     task = "multiclass"
    ...     def _per_sample(self, logits, target):
    ...         true = logits.gather(1, target[:, None]).squeeze(1)
    ...         return torch.relu(1 - true)
    >>> LOSSES["multiclass"]["hinge_demo"] is HingeDemo
    True
    >>> del LOSSES["multiclass"]["hinge_demo"]
    """
    tasks = (task,) if isinstance(task, str) else tuple(task)
    for t in tasks:
        _check_task(t)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}.")

    def decorator(cls):
        for t in tasks:
            current = LOSSES[t].get(name)
            same = current is not None and (
                current is cls or current.__qualname__ == cls.__qualname__
                and current.__module__ == cls.__module__
            )
            if current is not None and not same and not overwrite:
                raise ValueError(
                    f"a loss named {name!r} is already registered for task {t!r} "
                    f"({current.__name__}); pass overwrite=True to replace it."
                )
            LOSSES[t][name] = cls
        return cls

    return decorator


def available_losses(task):
    """Sorted registry names valid for ``task``.

    Parameters
    ----------
    task : {"multiclass", "multilabel"}

    Returns
    -------
    list of str

    Examples
    --------
    >>> from skimb.losses import available_losses
    >>> "afl" in available_losses("multiclass") and "afl" in available_losses("multilabel")
    True
    """
    return sorted(LOSSES[_check_task(task)])


def _split_params(params):
    """Split into (flat, extras); ``loss__x`` -> ``x``. A parameter given as None is kept (None is
    a value: AFL's ``max_gamma=None`` is "no cap"); one not given is absent."""
    flat, extras = {}, {}
    for key, value in params.items():
        if key.startswith(_EXTRA_PREFIX):
            extras[key[len(_EXTRA_PREFIX):]] = value
        elif key in FLAT_PARAMS:
            flat[key] = value
        else:
            extras[key] = value
    return flat, extras


def make_loss(loss, *, task, class_counts=None, n_samples=None, **params):
    """Build the per-sample loss module an estimator trains with.

    Parameters
    ----------
    loss : str or torch.nn.Module or ImbalanceLoss subclass
        A registered name (see :func:`available_losses`), a loss class, or a user
        module. A user module is deep-copied (the argument is never mutated); if it
        has a ``reduction`` attribute the copy's is set to ``"none"``, otherwise
        its ``forward`` must already return per-sample losses (the estimators average
        per-label rows ``(N, C)`` over the labels and refuse a single number).
    task : {"multiclass", "multilabel"}
        Names valid for both tasks resolve by task: ``"afl"`` gives
        :class:`AdaptiveFocalLoss` or :class:`BinaryAdaptiveFocalLoss`; for
        ``"multilabel"``, ``"ce"``, ``"weighted_ce"`` and ``"focal"`` are aliases of
        ``"bce"``, ``"weighted_bce"`` and ``"focal_bce"``.
    class_counts : array-like of shape (C,), default=None
        Training examples per class (multi-label: positives per label).
    n_samples : int, default=None
        Number of training examples N.
    **params
        The flat hyperparameters ``gamma``, ``alpha``, ``beta``, ``tau`` and
        ``max_gamma`` (ignored by losses that do not use them, with a warning, silently where
        the value is None; a parameter the configured loss does not read, ``class_balanced``'s
        ``gamma`` without ``base="focal"``, warns too: :meth:`ImbalanceLoss.unused_params`) and loss-specific extras, with or without the ``loss__`` prefix
        (``loss__smooth=0.5``). A ``loss__`` extra overrides the flat parameter of
        the same name. An extra the loss does not accept raises ``TypeError``. A value of
        None is passed on as given (``max_gamma=None``: AFL without a cap); leave a
        parameter out for the loss's default.

    Returns
    -------
    torch.nn.Module
        ``forward(logits, target)`` returns per-sample losses of shape ``(N,)``.

    Raises
    ------
    ValueError
        Unknown task or loss name (the message lists the names for the task).
    TypeError
        An extra parameter the loss does not accept, or ``loss`` of the wrong type.

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import make_loss
    >>> loss = make_loss("afl", task="multilabel", class_counts=[40, 10, 5],
    ...                  n_samples=50, gamma=2.0, tau=1.0)  # tau: not used by AFL
    >>> loss.gamma_
    tensor([ 2.,  8., 10.])
    >>> loss(torch.zeros(4, 3), torch.ones(4, 3)).shape
    torch.Size([4])
    """
    _check_task(task)
    if isinstance(loss, nn.Module):
        flat, extras = _split_params(params)
        if extras:
            raise TypeError(
                f"loss parameters {sorted(extras)} apply to named losses only; configure "
                f"the {type(loss).__name__} instance before passing it."
            )
        flat = {k: v for k, v in flat.items() if v is not None}  # a shared name set to None: nothing
        if flat:  # shared names, as for a named loss that does not use them
            warn_caller(f"the loss instance {type(loss).__name__} takes no parameters here; "
                        f"{', '.join(sorted(flat))} ignored (configure the instance).")
        if isinstance(loss, ImbalanceLoss) and loss.task != task:
            raise ValueError(f"{type(loss).__name__} is a {loss.task} loss, not a {task} one.")
        module = copy.deepcopy(loss)
        if hasattr(module, "reduction"):
            module.reduction = "none"
        return module

    cls, label = _loss_class(loss, task)
    accepted = cls.accepted_params()
    flat, extras = _split_params(params)
    unknown = sorted(k for k in extras if k not in accepted)
    if unknown:
        raise TypeError(
            f"loss {label!r} ({cls.__name__}) got unexpected parameter(s) "
            f"{', '.join(unknown)}; accepted parameters: "
            f"{', '.join(accepted) if accepted else '(none)'}."
        )
    ignored = sorted(k for k, v in flat.items() if k not in accepted and v is not None)  # None: nothing to ignore
    kwargs = {k: v for k, v in flat.items() if k in accepted}
    kwargs.update(extras)
    # and those taken but not read in this configuration (class_balanced's gamma without its focal base)
    unused = getattr(cls, "unused_params", lambda **_: {})(**kwargs)
    ignored += [f"{name} with {why}" for name, why in unused.items()]
    if ignored:  # shared names (a grid over loss x loss__gamma): not an error, but said
        warn_caller(f"loss {label!r} ({cls.__name__}) does not use {', '.join(ignored)}; ignored.")
    return cls.from_counts(class_counts, n_samples, reduction="none", **kwargs)


def _loss_class(loss, task):
    """``(class, label)`` of a registered loss name or an :class:`ImbalanceLoss` subclass."""
    if isinstance(loss, str):
        key = loss.lower()
        registry = LOSSES[task]
        if key not in registry:
            elsewhere = "" if any(key in names for names in LOSSES.values()) else unregistered_here(
                "loss", "pass the class (loss=MyLoss), which travels with it")
            raise ValueError(
                f"unknown loss {loss!r} for task {task!r}; available: "
                f"{', '.join(available_losses(task))}.{elsewhere}"
            )
        return registry[key], key
    if isinstance(loss, type) and hasattr(loss, "from_counts"):
        if getattr(loss, "task", task) != task:
            raise ValueError(f"{loss.__name__} is a {loss.task} loss, not a {task} one.")
        return loss, loss.__name__
    raise TypeError(
        f"loss must be a registered name, an ImbalanceLoss subclass or a torch.nn.Module, "
        f"got {type(loss).__name__}."
    )


def loss_balances_classes(loss, *, task, **params) -> bool:
    """Whether the loss :func:`make_loss` builds from the same arguments re-balances the classes
    (:meth:`ImbalanceLoss.balances_classes`); False for a user module and an unknown name.

    Examples
    --------
    >>> from skimb.losses import loss_balances_classes
    >>> loss_balances_classes("weighted_ce", task="multiclass"), loss_balances_classes("focal", task="multiclass")
    (True, False)
    >>> loss_balances_classes("afl", task="multiclass", loss__alpha="balanced")
    True
    """
    return _loss_property(loss, task, "balances_classes", params)


def loss_focuses(loss, *, task, **params) -> bool:
    """Whether the loss :func:`make_loss` builds from the same arguments down-weights
    well-classified examples (:meth:`ImbalanceLoss.focuses`); False for a user module and an
    unknown name.

    Examples
    --------
    >>> from skimb.losses import loss_focuses
    >>> loss_focuses("afl", task="multiclass"), loss_focuses("weighted_ce", task="multiclass")
    (True, False)
    >>> loss_focuses("focal", task="multiclass", loss__gamma=0.0)
    False
    """
    return _loss_property(loss, task, "focuses", params)


def loss_schedule_warning(loss, *, task, n_epochs, **params):
    """Why the epoch schedule of the loss :func:`make_loss` builds from the same arguments does
    nothing in a fit of ``n_epochs`` epochs (:meth:`ImbalanceLoss.schedule_warning`), or None; a
    malformed schedule parameter raises, so that an estimator can say so before training.

    Examples
    --------
    >>> from skimb.losses import loss_schedule_warning
    >>> loss_schedule_warning("class_balanced", task="multiclass", n_epochs=3, loss__drw_epoch=1) is None
    True
    >>> loss_schedule_warning("ldam", task="multiclass", n_epochs=1, loss__drw_epoch=1)
    'drw_epoch=1 starts after the last of 1 epochs: training is never re-weighted. Pass a smaller drw_epoch or a fraction of training.'
    """
    check = _loss_classmethod(loss, task, "schedule_warning")
    return None if check is None else check(n_epochs, **_merged_params(params))


def loss_classes_warning(loss, *, task, classes, **params):
    """Why the loss :func:`make_loss` builds from the same arguments may misread the fit's
    ``classes`` (:meth:`ImbalanceLoss.classes_warning`), or None.

    >>> from skimb.losses import loss_classes_warning
    >>> loss_classes_warning("ordinal", task="multiclass", classes=[0, 1, 2]) is None
    True
    """
    check = _loss_classmethod(loss, task, "classes_warning")
    return None if check is None else check(classes, **_merged_params(params))


def name_routed_params(message, loss, *, task, params):
    """A loss's error ``message`` with its parameter names written as an estimator's, ``loss__<name>``:
    the names in the routed ``params`` (prefix removed, as the estimator passes them) and the
    constructor parameters of the loss class ``loss`` names. Returns ``(message, renamed)``.

    A name is rewritten where it stands as a word of its own (not quoted, not in parentheses, not
    part of a longer name), so that ``"gamma must be finite"`` reads ``"loss__gamma must be
    finite"``; ``renamed`` also holds where the message names a ``loss__`` parameter already.

    >>> from skimb.losses._registry import name_routed_params
    >>> name_routed_params("FocalLoss: alpha has 2 entries", "focal", task="multiclass", params={"alpha": [1, 2]})
    ('FocalLoss: loss__alpha has 2 entries', True)
    >>> name_routed_params("got unexpected parameter(s) smoth", "ldam", task="multiclass", params={"smoth": 1})
    ('got unexpected parameter(s) loss__smoth', True)
    >>> name_routed_params("base must be 'ce' or 'focal'", "ce", task="multiclass", params={})
    ("base must be 'ce' or 'focal'", False)
    """
    accepted = _loss_classmethod(loss, task, "accepted_params")
    names = set(params) | set(accepted() if accepted is not None else ())
    if not names:
        return message, False
    words = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    renamed = re.sub(rf"(?<![\w'\"(])({words})(?![\w'\")])", rf"{_EXTRA_PREFIX}\1", message)
    return renamed, re.search(rf"(?<!\w){_EXTRA_PREFIX}({words})(?!\w)", renamed) is not None


def _loss_property(loss, task, name, params) -> bool:
    """The loss class's classmethod ``name`` on the constructor arguments ``params``."""
    method = _loss_classmethod(loss, task, name)
    if method is None:
        return False
    try:
        return bool(method(**_merged_params(params)))
    except (TypeError, ValueError):  # a malformed value: make_loss says what is wrong with it
        return False


def _loss_classmethod(loss, task, name):
    """The classmethod ``name`` of the loss class ``loss`` names, or None: a user module, an
    unknown name (make_loss says what is wrong) or a class without it."""
    _check_task(task)
    try:
        cls, _ = _loss_class(loss, task)
    except (TypeError, ValueError):
        return None
    return getattr(cls, name, None)


def _merged_params(params) -> dict:
    """The constructor arguments of routed ``params``: flat names and ``loss__`` extras."""
    flat, extras = _split_params(params)
    return {**flat, **extras}
