"""The text task adapter: binary, multi-class and multi-label classification of raw texts."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from ._params import FITTED_THRESHOLDS
from ._task import TaskAdapter, validation_split_errors
from ._validation import (check_consistent_length, check_labels, check_sample_weight, check_texts,
                          is_multilabel_target)
from .backbones import (EncodedTextDataset, SequenceClassifier, autocast_precision, encode_texts, feature_cache,
                        tokenize)
from .heads._components import prior_log_odds
from .utils._split import multilabel_train_test_split
from .utils._warnings import warn_caller

__all__ = ["TextTask", "FeatureDataset"]


class FeatureDataset(torch.utils.data.Dataset):
    """Cached pooled features with targets (frozen backbone)."""

    def __init__(self, features, y, sample_weight=None):
        self.features = features
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        item = {"features": self.features[i], "index": i}
        if self.sample_weight is not None:
            item["sample_weight"] = self.sample_weight[i]
        return item, self.y[i]


#: Bootstrap resamples of the validation split averaged by ``threshold="tuned"`` (multi-class).
OFFSET_BOOTSTRAPS = 30


class TextTask(TaskAdapter):
    """Texts in, one label (or a 0/1 label vector) out."""

    def validate_X(self, X, what="X"):
        return check_texts(X, what=what)

    def encode_targets(self, y, X):
        """``(classes, encoded targets, task)``."""
        n = len(X)
        if is_multilabel_target(y):
            from .metrics._multilabel import _check_indicator

            try:  # the error names the first bad cell, y[row, column]
                Y = _check_indicator(y, "y")
            except ValueError as exc:
                raise ValueError(f"{exc} A 2-D y is a multi-label target, a 0/1 indicator matrix; "
                                 "use sklearn.preprocessing.MultiLabelBinarizer for label lists.") from None
            check_consistent_length(range(n), Y, names=("X", "y"))
            if (Y.sum(0) == 0).any():
                empty = np.flatnonzero(Y.sum(0) == 0).tolist()
                warn_caller(f"labels {empty} have no positive example in y.")
            if getattr(self.est, "threshold", None) == "calibrated":
                raise ValueError("threshold='calibrated' applies to single-label targets; for multi-label "
                                 "data use threshold='tuned' (one threshold per label, tuned on the "
                                 "validation split).")
            return np.arange(Y.shape[1]), Y.astype(np.float32), "multilabel"
        labels = check_labels(y, owner=type(self.est).__name__)
        check_consistent_length(range(n), labels, names=("X", "y"))
        threshold = getattr(self.est, "threshold", None)
        if threshold not in FITTED_THRESHOLDS and threshold is not None and float(threshold) != 0.5:
            warn_caller(f"{type(self.est).__name__}: threshold={threshold!r} is ignored for single-label targets "
                        "(predict takes the most probable class); to move the decisions use threshold='tuned' or "
                        "'calibrated' with validation_fraction.")
        classes, encoded = np.unique(labels, return_inverse=True)
        return classes, encoded.astype(np.int64), "multiclass"

    def encode_known_targets(self, y, X, classes, task, what):
        """Labels for ``X`` against the fitted ``classes`` (HAMR's explicit meta set); ``what``
        names them in errors (e.g. ``"meta_set y"``)."""
        if task == "multilabel":
            Y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            if Y.ndim != 2 or Y.shape[1] != len(classes) or not np.isin(Y, (0, 1)).all():
                raise ValueError(f"{what} must be a 0/1 indicator matrix with {len(classes)} "
                                 f"columns, like y; got shape {Y.shape}.")
            encoded = Y.astype(np.float32)
        else:
            labels = check_labels(y, what=what, min_classes=1)
            known = np.isin(labels, classes)
            if not known.all():
                unknown = sorted({str(v) for v in labels[~known]})
                raise ValueError(f"{what.split()[0]} has labels not seen in y: {unknown}.")
            encoded = np.searchsorted(classes, labels).astype(np.int64)
        if len(X) != len(encoded):
            raise ValueError(f"{what.split()[0]}: X has {len(X)} samples but y has {len(encoded)}.")
        return encoded

    def split(self, y_enc, task, seed):
        vf = self.est.validation_fraction
        idx = np.arange(len(y_enc))
        if vf is None:
            return idx, None
        if task == "multilabel":
            with validation_split_errors(vf, f"{len(idx)} examples"):
                train, valid = multilabel_train_test_split(y_enc, test_size=vf, random_state=seed)
            _warn_unlearnt_labels(np.asarray(y_enc), train, vf)
            return train, valid
        counts = np.bincount(y_enc)
        single = counts[y_enc] == 1  # a class of one example trains: a split would leave it unlearnt or unvalidated
        everyone_single = bool(single.all())
        if everyone_single:  # nothing else to validate on, nor to stratify
            single[:] = False
            warn_caller("every class has a single example: the validation split is not stratified, and the classes "
                        "it takes are not learnt; validation_fraction=None trains on them all.")
        elif single.any():
            warn_caller(f"{np.count_nonzero(counts == 1)} class(es) have a single example (indices "
                        f"{np.flatnonzero(counts == 1)[:10].tolist()} of classes_): it trains and is not validated.")
        pool = idx[~single]
        with validation_split_errors(vf, f"{len(idx)} examples of {np.count_nonzero(counts)} classes"):
            tr, va = train_test_split(pool, test_size=vf, random_state=seed,
                                      stratify=None if counts.max() == 1 else y_enc[pool])
        tr = np.concatenate([tr, idx[single]])
        if not everyone_single:  # said above, with the remedy that works there
            warn_unlearnt_classes(counts, np.bincount(y_enc[tr], minlength=counts.size), vf)
        return np.sort(tr), np.sort(va)

    def sample_weights(self, ctx):
        """Per-sample loss weights (class_weight x sample_weight, mean 1), or None; class weights
        come from the training split, as the losses' class counts do."""
        sw = check_sample_weight(ctx.sample_weight, len(ctx.y), positive_sum=True)
        if self.est.class_weight is not None and ctx.multilabel:
            raise ValueError("class_weight applies to single-label targets; for multi-label data use "
                             "loss='distribution_balanced' or 'weighted_bce' (each label's positives "
                             "weighted), or head='calora' (docs/which_method.md, 'Multi-label').")
        ctx.class_weight = self.class_weights(ctx.classes, ctx.y[ctx.train_idx])
        weights = ctx.class_weight[ctx.y] if self.est.class_weight is not None else None
        if sw is not None:
            weights = sw if weights is None else weights * sw
        what = " x ".join(name for name, given in (("class_weight", self.est.class_weight is not None),
                                                    ("sample_weight", sw is not None)) if given)
        self.check_training_weights(weights, ctx.train_idx, what)
        if weights is not None:
            weights = (weights / weights.mean()).astype(np.float32)
        ctx.weights = weights

    # -- the model and the data -----------------------------------------------------------------
    def build_module(self, backbone_model, n_outputs, finetune, classes=None):
        encoder = finetune.build_encoder(backbone_model, self.est.pooling)
        return SequenceClassifier(encoder, n_outputs, dropout=self.est.dropout)

    def init_head(self, module, ctx):
        """Multi-label: each label's bias starts at its training prior's log-odds, so that the first
        steps do not spend the backbone's updates on learning that most labels are absent
        (the prior initialisation of Lin et al. 2017; on GoEmotions it is what lets a short
        fine-tuning learn at all). And the catch-all row of the base class."""
        super().init_head(module, ctx)
        bias = getattr(module.head, "bias", None)  # a cosine head has none
        if ctx.multilabel and bias is not None:
            bias.data.copy_(torch.from_numpy(prior_log_odds(ctx.y[ctx.train_idx])))

    def frozen_features(self, texts, encoder, device, *, variant=None, desc="encoding"):
        """Pooled features of a frozen backbone, through the process-wide cache (``variant``: an
        int8 encoder's features are cached apart, and bf16 ones under ``amp``)."""
        est = self.est
        pooling = getattr(encoder, "pooling", est.pooling)  # as built at fit: est.pooling may be set since
        key = self.feature_key(pooling, int(est.max_length), variant, autocast_precision(device, est.amp))
        return feature_cache.get_or_compute(key, texts,
                                            lambda missing: self.encode(missing, encoder, device, desc=desc))

    def datasets(self, texts, y_enc, weights, train_idx, valid_idx, module, device):
        """``(train_dataset, valid_dataset or None)`` for the net."""
        frozen = self.finetune.frozen
        if frozen:
            features = torch.from_numpy(self.frozen_features(texts, module.encoder, device))
        else:
            input_ids = tokenize(self.est.tokenizer_, texts, self.est.max_length)

        def dataset(idx):
            w = None if weights is None else weights[idx]
            if frozen:
                return FeatureDataset(features[idx], y_enc[idx], w)
            return EncodedTextDataset([input_ids[i] for i in idx], y_enc[idx], w)

        return dataset(train_idx), (dataset(valid_idx) if valid_idx is not None else None)

    def stage2_inputs(self, ctx):
        """``(features, targets, weights)`` of a head's stage 2: the penultimate features of the
        training samples, their targets and loss weights (or None)."""
        features = torch.from_numpy(self.est.embed([ctx.X[i] for i in ctx.train_idx]))
        w = None if ctx.weights is None else torch.as_tensor(ctx.weights[ctx.train_idx])
        return features, torch.as_tensor(ctx.y[ctx.train_idx]), w

    def stage2_token_ids(self, ctx):
        """Token ids of the training samples, in the order of :meth:`stage2_inputs`."""
        return tokenize(self.est.tokenizer_, [ctx.X[i] for i in ctx.train_idx], self.est.max_length)

    def after_fit(self, ctx):
        """The decision rule, tuned on the validation split when asked."""
        est, y_enc, valid_idx = self.est, ctx.y, ctx.valid_idx
        if ctx.multilabel:
            if est.threshold != "tuned":
                return {"thresholds_": np.full(y_enc.shape[1], float(est.threshold))}
            from .metrics import tune_thresholds

            scores = self.scores([ctx.X[i] for i in valid_idx])
            # bagged, as the single-label offsets are: one search overfits a label's few positives
            return {"thresholds_": np.asarray(tune_thresholds(y_enc[valid_idx], scores, n_bootstrap=OFFSET_BOOTSTRAPS,
                                                              random_state=ctx.seed), dtype=np.float64)}
        if est.threshold not in FITTED_THRESHOLDS:
            return {}
        from .metrics import calibrated_logit_offsets, tune_logit_offsets

        train = np.setdiff1d(np.arange(len(y_enc)), valid_idx)
        prior = np.bincount(y_enc[train], minlength=ctx.n_classes) + 1.0
        logits = self.logits([ctx.X[i] for i in valid_idx]).numpy()
        if est.threshold == "calibrated":
            return {"logit_offsets_": calibrated_logit_offsets(y_enc[valid_idx], logits, class_prior=prior)}
        # bagged over resamples of the validation split: a single search overfits its rare classes
        return {"logit_offsets_": tune_logit_offsets(y_enc[valid_idx], logits, class_prior=prior,
                                                     n_bootstrap=OFFSET_BOOTSTRAPS, random_state=ctx.seed)}

    def validation_report(self, ctx):
        """The imbalance report of the fitted model on the validation split (its decision rule)."""
        from .metrics import imbalance_report, multilabel_report

        texts = [ctx.X[i] for i in ctx.valid_idx]
        if ctx.multilabel:  # the scores too: without them the report's ROC AUCs are NaN
            proba = self.est.predict_proba(texts)
            return multilabel_report(ctx.y[ctx.valid_idx], self.est._labels_from_proba(proba),
                                     Y_score=proba, label_names=[str(c) for c in ctx.classes])
        return imbalance_report(ctx.classes[ctx.y[ctx.valid_idx]], self.est.predict(texts))

    # -- prediction -----------------------------------------------------------------------------
    def logits(self, texts) -> torch.Tensor:
        est = self.est
        module, device, variant = est._inference_module()
        module.eval()
        feats = None
        if getattr(module.encoder, "routing", None) is not None:
            pass  # class adapters inside the encoder: its features are the fitted model's own
        elif self.finetune.frozen:
            feats = self.frozen_features(texts, module.encoder, device, variant=variant, desc="predicting")
        elif getattr(est, "_stage1_key_", None) is not None:
            # Staged heads whose candidates share a stage 1 share its (frozen) encoder: encode each
            # text once for all of them, e.g. a grid search scoring every candidate on a fold. The
            # max_length of now, as for the frozen features: set_params may have changed it since fit.
            key = ("calora-stage1", est._stage1_key_, int(est.max_length), variant,
                   autocast_precision(device, est.amp))
            feats = feature_cache.get_or_compute(key, texts,
                                                 lambda missing: self.encode(missing, module.encoder, device,
                                                                             desc="predicting"))
        if feats is not None:
            with torch.inference_mode():
                return _finite(torch.cat([module(features=chunk.to(device)).float().cpu()
                                          for chunk in torch.from_numpy(feats).split(4096)]))
        return _finite(encode_texts(module, est.tokenizer_, texts, max_length=est.max_length,
                                    batch_size=max(est.batch_size, 64), device=device, desc="predicting",
                                    verbose=est.verbose, amp=est.amp))

    def decision_function(self, texts):
        return self.logits(texts).numpy()

    def scores(self, texts) -> np.ndarray:
        logits = self.logits(texts)
        if self.est.multilabel_:
            return torch.sigmoid(logits).numpy()
        return torch.softmax(logits, dim=-1).numpy()

    def embed(self, texts) -> np.ndarray:
        est = self.est
        module = est.net_.module_
        if self.finetune.frozen and getattr(module.encoder, "routing", None) is None:
            return self.frozen_features(texts, module.encoder, est.net_.device)
        return self.encode(texts, module.encoder, est.net_.device)


def _finite(logits: torch.Tensor) -> torch.Tensor:
    """``logits``, or a ``ValueError`` naming the first text whose logits are NaN (or +inf): a model
    that diverged in training predicts nothing, rather than its first class everywhere."""
    bad = torch.isnan(logits) | (logits == float("inf"))  # +inf (an overflow under amp) makes NaN probabilities
    bad = bad.flatten(1).any(1) if logits.ndim > 1 else bad
    if bool(bad.any()):
        raise ValueError(f"text {int(bad.nonzero()[0])}: the model's logits contain NaN (it diverged in training): "
                         "refit it, with a lower lr say.")
    return logits


def warn_unlearnt_classes(counts, train_counts, validation_fraction, what="class(es)") -> None:
    """Warn where the validation split took every example of a class (an unstratified split, a class
    of one example): the fit never sees it."""
    unlearnt = np.flatnonzero((train_counts == 0) & (counts > 0))
    if unlearnt.size:
        shown = unlearnt[:10].tolist()
        warn_caller(f"validation_fraction={validation_fraction} leaves {unlearnt.size} {what} no example to train "
                    f"on (indices {shown}{' ...' if unlearnt.size > 10 else ''} of classes_): they are not learnt; "
                    "another random_state, more examples of them or validation_fraction=None keeps them.")


def _warn_unlearnt_labels(Y, train, validation_fraction) -> None:
    """Warn where the validation split took every positive of a label (the fit cannot learn it)."""
    unlearnt = np.flatnonzero((Y[train].sum(axis=0) == 0) & (Y.sum(axis=0) > 0))
    if unlearnt.size:
        shown = unlearnt[:10].tolist()
        warn_caller(f"validation_fraction={validation_fraction} leaves {unlearnt.size} label(s) no positive example "
                    f"to train on (columns {shown}{' ...' if unlearnt.size > 10 else ''} of classes_): they are not "
                    "learnt; a smaller validation_fraction keeps them.")
