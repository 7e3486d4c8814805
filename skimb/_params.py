"""Parameters of the transformer estimators: the shared parameter table, the ``__init__`` that
stores it, and the skorch-style routing of ``<slot>__<name>`` parameters to components."""

from __future__ import annotations

import difflib
import inspect
from numbers import Integral, Real

from ._base import BACKBONE_CONSTRAINT, DEVICE_CONSTRAINT, N_THREADS_CONSTRAINT
from .backbones import FINETUNES
from .heads import HEADS
from .training import TRAININGS
from .utils._param_validation import (Boolean, Interval, InvalidParameterError, Options, RandomState,
                                      Satisfies, validate_params)

__all__ = ["ComponentParamsMixin", "estimator_init", "SHARED_PARAMS", "SHARED_CONSTRAINTS"]

#: The method slots: an estimator parameter selecting a component by name or instance.
SLOTS = {"finetune": FINETUNES, "head": HEADS, "training": TRAININGS}
#: Prefixes of the routed parameters (``loss__gamma``, ``head__k``, ...).
ROUTED_PREFIXES = ("loss",) + tuple(SLOTS)

#: The parameters (and defaults) both transformer estimators take.
SHARED_PARAMS = dict(
    backbone=None, finetune="full", max_length=128, batch_size=16, max_epochs=3, lr="auto", head_lr_multiplier="auto", weight_decay=0.01,
    warmup_ratio=0.1, max_grad_norm=1.0, ema_decay=None, dropout=0.1, loss="ce", class_weight=None, head="linear",
    training="standard", validation_fraction=None, early_stopping=False, patience=3, device="auto", amp=True,
    random_state=None, verbose=0, callbacks=None, quantize=None, n_threads=None,
)


def _positive_int():
    return [Interval(Integral, 1, None)]


SHARED_CONSTRAINTS = {
    "backbone": BACKBONE_CONSTRAINT,
    "max_length": _positive_int(), "batch_size": _positive_int(), "max_epochs": _positive_int(),
    "lr": [Options("auto"), Interval(Real, 0, None, closed="neither")],
    "head_lr_multiplier": [Options("auto"), Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None)],
    "warmup_ratio": [Interval(Real, 0, 1, closed="left")],
    "max_grad_norm": [None, Interval(Real, 0, None)],
    "ema_decay": [None, Interval(Real, 0, 1, closed="neither")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "loss": [Satisfies(lambda v: isinstance(v, str) or hasattr(v, "forward") or hasattr(v, "from_counts"),
                       "a loss name (skimb.losses), an ImbalanceLoss class or a torch.nn.Module", bad=[3])],
    "class_weight": [None, Options("balanced"), Satisfies(lambda v: isinstance(v, dict), "a dict")],
    "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
    "early_stopping": [Boolean(), Options("f1_macro")], "patience": _positive_int(),
    "device": DEVICE_CONSTRAINT,
    "amp": [Boolean()], "random_state": [RandomState()],
    "verbose": [Interval(Integral, 0, None), Boolean()],
    "callbacks": [None, Satisfies(lambda v: isinstance(v, (list, tuple)), "a list of skorch callbacks", bad=[3])],
    "quantize": [None, Options("int8", "onnx-int8")],
    "n_threads": N_THREADS_CONSTRAINT,
    "head": "no_validation", "training": "no_validation", "finetune": "no_validation",  # their registries check
}


def estimator_init(params: dict):
    """An ``__init__`` storing ``params`` (name -> default; the first may be positional) and the
    routed ``<slot>__<name>`` keywords, with a real signature for ``get_params`` and ``clone``.

    One table per estimator instead of a 25-line hand-written ``__init__`` per estimator; like
    any scikit-learn ``__init__`` it stores and never validates.
    """
    names = list(params)

    def __init__(self, *args, **kwargs):
        if len(args) > 1:
            raise TypeError(f"{type(self).__name__} takes one positional argument ({names[0]}); "
                            "pass the others by keyword.")
        if args:
            kwargs[names[0]] = args[0]
        for name, default in params.items():
            setattr(self, name, kwargs.pop(name, default))
        for key, value in kwargs.items():  # routed (loss__gamma, head__k) or a typo: checked in fit
            setattr(self, key, value)

    P = inspect.Parameter
    signature = [P("self", P.POSITIONAL_OR_KEYWORD), P(names[0], P.POSITIONAL_OR_KEYWORD, default=params[names[0]])]
    signature += [P(name, P.KEYWORD_ONLY, default=params[name]) for name in names[1:]]
    __init__.__signature__ = inspect.Signature(signature + [P("kwargs", P.VAR_KEYWORD)])
    return __init__


def _unknown_names(keys, names: set) -> list:
    """The keys neither in ``names`` (constructor parameters) nor routed (``<slot>__<name>``) to a slot
    or the loss."""
    def known(key):
        prefix, routed, rest = key.partition("__")
        return prefix in ROUTED_PREFIXES and bool(rest) if routed else key in names
    return [k for k in keys if not known(k)]


class ComponentParamsMixin:
    """Routed ``<slot>__<name>`` parameters (``loss__gamma``, ``head__k``, ``training__knn_k``,
    ``finetune__rank``) that ``get_params``/``set_params``/``clone`` carry like ordinary ones.

    A slot holding a name (``head="calora"``) stores its routed parameters on the estimator; a
    slot holding an instance (``head=CALoRAHead()``) has ``set_params`` reach the instance, as
    scikit-learn does for nested estimators, except a value stored beside it (given with it,
    ``head=CALoRAHead(), head__k=3``), which overrides it at fit and is what ``set_params``
    changes. An instance set by ``set_params`` brings its own parameters: values stored for the
    slot before are dropped, unless given in the same call. ``get_params(deep=True)`` lists the
    selected component's parameters either way, and an estimator stored as a routed value
    (``training__embedder=TransformerEmbedder()``) has its own reached as inside an instance
    (``training__embedder__pooling``).
    """

    _parameter_constraints: dict = {}

    def _routed_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if "__" in k and not k.startswith("_")}

    def routed_params_for(self, prefix: str) -> dict:
        """Routed parameters for ``prefix`` (``"loss"``, ``"head"``, ...), prefix removed."""
        head = prefix + "__"
        return {k[len(head):]: v for k, v in self._routed_params().items() if k.startswith(head)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        if deep:
            for slot, registry in SLOTS.items():
                for key, value in registry.defaults(getattr(self, slot)).items():
                    params.setdefault(f"{slot}__{key}", value)
        routed = self._routed_params()
        params.update(routed)
        if deep:  # an estimator routed by name shows its parameters, as one inside an instance does
            for key, value in routed.items():
                if callable(getattr(value, "get_params", None)) and not isinstance(value, type):
                    params.update({f"{key}__{k}": v for k, v in value.get_params(deep=True).items()})
        # a misspelled keyword stored by __init__ travels with clones, so that their fit refuses it too
        params.update({k: v for k, v in vars(self).items() if k not in params and "__" not in k
                       and not k.startswith("_") and not k.endswith("_")})
        return params

    def set_params(self, **params):
        names = set(self._get_param_names())
        self._refuse_unknown_names(params, names)
        rest = {}
        stored = set(self._routed_params())
        for slot in SLOTS:  # a new instance brings its own parameters: values stored for the old one go
            if hasattr(params.get(slot), "set_params"):
                for key in [k for k in stored if k.startswith(slot + "__") and k not in params]:
                    delattr(self, key)
                    stored.discard(key)
        nested = {}
        # fewest "__" first: a routed estimator given in this call is stored before its own parameters
        for key, value in sorted(params.items(), key=lambda item: item[0].count("__")):
            slot = key.split("__", 1)[0]
            target = params.get(slot, getattr(self, slot, None))  # the slot's value after this call
            holder = self._stored_estimator_of(key)
            if holder is not None:  # training__embedder__pooling: the stored embedder's own parameter
                nested.setdefault(holder, {})[key[len(holder) + 2:]] = value
            elif key in names or (slot in SLOTS and hasattr(target, "set_params") and key not in stored):
                rest[key] = value  # a constructor parameter, or a component instance's own
            else:  # routed to a named component or the loss: stored, its name checked in fit; a value
                setattr(self, key, value)  # stored beside an instance overrides it at fit, so it is updated
        if rest:
            super().set_params(**rest)
        for holder, sub in nested.items():
            getattr(self, holder).set_params(**sub)
        return self

    def _refuse_unknown_names(self, params: dict, names: set) -> None:
        """Refuse at once, as scikit-learn's ``set_params`` does, a name that is neither a constructor
        parameter nor routed to a slot or the loss; a routed name's component checks it at fit."""
        unknown = _unknown_names(params, names)
        if unknown:
            close = {k: difflib.get_close_matches(k.split("__", 1)[0], names | set(ROUTED_PREFIXES), n=1)
                     for k in unknown}
            hints = "".join(f" ({k!r}: did you mean {m[0]!r}?)" for k, m in close.items() if m)
            raise ValueError(f"Invalid parameter(s) {unknown} for {type(self).__name__}{hints}; "
                             "get_params() lists the valid ones, and routed ones start with one of "
                             f"{[p + '__' for p in ROUTED_PREFIXES]} (e.g. loss__gamma=2, head__k=3).")

    def _stored_estimator_of(self, key):
        """The stored routed parameter (``training__embedder``) holding an estimator that ``key``
        (``training__embedder__pooling``) names a parameter of, or None."""
        parts = key.split("__")
        for n in range(len(parts) - 1, 1, -1):
            holder = "__".join(parts[:n])
            value = vars(self).get(holder)
            if callable(getattr(value, "set_params", None)) and not isinstance(value, type):
                return holder
        return None

    def _check_params(self) -> dict:
        """Validate every parameter; return the resolved, validated components by slot."""
        owner = type(self).__name__
        unknown = _unknown_names([k for k in vars(self) if not k.startswith("_")  # fitted attributes end in _
                                  and ("__" in k or not k.endswith("_"))],
                                 set(self._get_param_names()))
        if unknown:
            raise TypeError(f"{owner} got unexpected parameter(s) {unknown}; routed parameters start with "
                            f"one of {[p + '__' for p in ROUTED_PREFIXES]} (e.g. loss__gamma=2, head__k=3).")
        validate_params(self._parameter_constraints, self.get_params(deep=False), owner)
        return {slot: registry.resolve(getattr(self, slot), self.routed_params_for(slot), owner=owner)
                for slot, registry in SLOTS.items()}


#: The decision rules (``threshold``) fitted on the validation split.
FITTED_THRESHOLDS = ("tuned", "calibrated")


def check_needs_validation(est, name: str) -> None:
    """``name`` (early stopping, a tuned threshold) needs a validation split."""
    if est.validation_fraction is None:
        raise InvalidParameterError(f"{type(est).__name__}: {name} needs a validation split: set "
                                    "validation_fraction, e.g. 0.1.")

