"""Task adapters: everything the transformer estimators do differently by task.

:class:`TaskAdapter` holds what texts and token lists share; :class:`skimb._text_task.TextTask`
(multi-class and multi-label texts) and :class:`skimb._token_task.TokenTask` (token lists, BIO
tags) fill in the rest. An adapter reads its estimator's parameters and fitted attributes; the
estimator's fit skeleton and the components call it (HAMR through the fit context).
"""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Real

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from ._params import FITTED_THRESHOLDS, check_needs_validation
from ._validation import class_index
from .backbones import TextEncoder, autocast_precision, encode_texts, feature_cache
from .heads._components import zero_catch_all_row

__all__ = ["TaskAdapter"]


def _counts(y_enc, task, n_classes) -> np.ndarray:
    """Examples per class of encoded targets (positives per label for multi-label)."""
    return y_enc.sum(0) if task == "multilabel" else np.bincount(y_enc, minlength=n_classes)


def loss_task(task) -> str:
    """The loss family of an estimator's task: ``"multilabel"``, or ``"multiclass"`` for single-label
    texts and tags alike (a tagger's loss is a softmax over each token's tags)."""
    return "multilabel" if task == "multilabel" else "multiclass"


@contextmanager
def validation_split_errors(fraction, data: str):
    """Re-raise a split's ``ValueError`` naming ``validation_fraction`` (scikit-learn's names
    ``test_size``, which the user never set)."""
    try:
        yield
    except ValueError as exc:
        raise ValueError(f"validation_fraction={fraction} cannot split {data} ({exc}); take a fraction that "
                         "leaves every class on both sides, or validation_fraction=None.") from None


class TaskAdapter:
    """The hooks of one task, bound to an estimator."""

    #: What an error about a label-keyed parameter adds (taggers: the keys are IOB2 tags).
    class_key_hint = ""

    @property
    def sequence_loss(self) -> bool:
        """Whether training takes one loss per sequence (a tagger's CRF) in place of one per item."""
        return False

    def __init__(self, est, finetune=None):
        self.est = est
        # The fine-tuning mode: the fit's resolved component, or the fitted one when predicting.
        self.finetune = finetune if finetune is not None else getattr(est, "finetune_", None)

    # -- checks and targets ---------------------------------------------------------------------
    def check_params(self, components=None) -> None:
        """Checks that involve several parameters of the task's own (``components``: the resolved
        components by slot)."""
        threshold = getattr(self.est, "threshold", None)
        if threshold in FITTED_THRESHOLDS:
            check_needs_validation(self.est, f"threshold={threshold!r}")

    def class_weights(self, classes, y_enc) -> np.ndarray:
        """Per-class weights of ``class_weight`` from the training split's codes ``y_enc``."""
        cw = self.est.class_weight
        if cw is None:
            return np.ones(len(classes))
        if cw == "balanced":
            present = np.unique(y_enc)
            w = np.ones(len(classes))
            w[present] = compute_class_weight("balanced", classes=present, y=y_enc)
            return w
        unknown = set(cw) - set(classes.tolist())
        if unknown:
            raise ValueError(f"class_weight has labels not in y: {sorted(map(str, unknown))}; its keys are the "
                             f"classes_ of the fit, {classes.tolist()}{self.class_key_hint}.")
        bad = {c: v for c, v in cw.items()
               if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or v < 0}
        if bad:
            raise ValueError(f"class_weight values must be finite numbers >= 0; got {bad!r}. "
                             "Give each class a non-negative weight (a class left out weighs 1).")
        w = np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])
        if not (w[np.unique(y_enc)] > 0).any():
            raise ValueError("class_weight gives every class in the training split weight 0: nothing would train. "
                             "Give at least one class a positive weight.")
        return w

    def feature_key(self, *parts) -> tuple:
        """A feature-cache key: the backbone as it was when the estimator loaded it (its files'
        identity, so that a model saved again at the same path keys apart from the one this
        estimator holds), then ``parts``. Estimators pickled before the identity was recorded
        give their path (the cache reads the folder's identity then)."""
        est = self.est
        return (est.__dict__.get("_backbone_identity") or est.backbone_path_, *parts)

    @staticmethod
    def check_training_weights(weights, train_idx, what: str) -> None:
        """Refuses per-example weights that are 0 on every training example: nothing would train
        (a weighted mean of 0 over 0, or no gradient at all)."""
        if weights is not None and not np.any(weights[train_idx] > 0):
            raise ValueError(f"{what} is 0 on every training example: nothing would train. Give some "
                             "training example a positive weight (those held out by validation_fraction "
                             "do not train).")

    def n_training_rows(self, ctx) -> int:
        """The rows stage 1 trains on, for the optimiser steps of ``lr="auto"``: the training
        examples."""
        return len(ctx.train_idx)

    # -- the model and the loss -----------------------------------------------------------------
    def make_loss(self, ctx, task=None, y_enc=None):
        """The loss of ``self.est.loss`` with its routed ``loss__*`` parameters, from the
        training split's class counts."""
        from .losses import make_loss

        if y_enc is None:
            y_enc, task = self.train_targets(ctx)
        elif task is None:
            task = ctx.task
        counts = _counts(y_enc, task, ctx.n_classes)
        params = self.est.routed_params_for("loss")
        if params.get("catch_all") is not None:  # a label, as everywhere else in the estimator
            params["catch_all"] = class_index(params["catch_all"], ctx.classes, "loss__catch_all")
        return make_loss(self.est.loss, task=loss_task(task),
                         class_counts=counts, n_samples=len(y_enc), **params)

    def init_head(self, module, ctx):
        """Set the freshly built head's initial weights from the training split: a loss's
        ``zero_logit_class`` (the ranking loss's catch-all class) gets a zero row in a linear
        or cosine head (``head="cosine"``, whose zero row scores exactly 0), which its zero
        gradient keeps at zero, so that its logit is always 0."""
        zero_catch_all_row(module.head, ctx.criterion)

    def loss_for_loading(self, n_classes, task):
        # Prediction does not use the loss; rebuild a plain one so that the net is complete.
        from .losses import make_loss

        return make_loss("ce", task=loss_task(task),
                         class_counts=np.ones(n_classes), n_samples=n_classes)

    def net_kwargs(self, finetune) -> dict:
        return {}

    def fitted_attributes(self, ctx) -> dict:
        """Task-specific attributes set once stage 1 is fitted."""
        return {}

    def after_fit(self, ctx) -> dict:
        """Attributes that need the final model (a decision rule tuned on validation)."""
        return {}

    def validation_report(self, ctx):
        """The fitted model's report on the validation split, or None where there is none."""
        return None

    def class_counts(self, ctx) -> np.ndarray:
        """Training examples per class (positives per label; labelled tokens per tag)."""
        return _counts(*self.train_targets(ctx), ctx.n_classes)

    def train_targets(self, ctx):
        """``(encoded targets of the training split, "multilabel" or "multiclass")``."""
        return ctx.y[ctx.train_idx], loss_task(ctx.task)

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, texts, encoder, device, batch_size=None, desc="encoding") -> np.ndarray:
        """Pooled features of ``encoder`` for ``texts``, no cache."""
        est = self.est
        encoder.to(device).eval()
        batch_size = max(est.batch_size, 64) if batch_size is None else batch_size
        return encode_texts(encoder, est.tokenizer_, texts, max_length=est.max_length, batch_size=batch_size,
                            device=device, desc=desc, verbose=est.verbose, amp=est.amp).numpy()

    def pretrained_embeddings(self, texts, module, device) -> np.ndarray:
        """The backbone's own mean-pooled *pretrained* features, through the feature cache
        (HAMR's kNN boost).

        Computed before any training step (LoRA adapters start at zero, so a LoRA model still gives
        the pretrained features), keyed like the frozen-backbone features ``(backbone, "mean",
        max_length)`` and so shared with ``finetune="head"`` and ``TransformerEmbedder``.
        """
        est = self.est
        encoder = module.encoder
        if getattr(encoder, "pooling", None) != "mean":
            encoder = TextEncoder(encoder.backbone, pooling="mean")
        return feature_cache.get_or_compute(
            self.feature_key("mean", int(est.max_length), None, autocast_precision(device, est.amp)), texts,
            lambda missing: self.encode(missing, encoder, device, batch_size=max(int(est.batch_size), 64),
                                        desc="HAMR embeddings"))
