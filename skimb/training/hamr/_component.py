"""The HAMR training strategy (``training="hamr"``): its parameters, constraints and defaults."""

from __future__ import annotations

from numbers import Integral, Real

from ...utils._neighbors import DRAW_SCHEMES, INDEX_KINDS
from ...utils._param_validation import Boolean, Interval, Options, Satisfies
from ...utils._warnings import warn_ignored
from .._rdrop import warn_without_dropout
from .._strategies import TrainingStrategy, register_training
from ._meta import META_MODES
from ._trainer import META_TOPUPS, HAMRFit, HAMRNet, hamr_attributes

__all__ = ["HAMRTraining"]

_POSITIVE = Interval(Real, 0, None, closed="neither")


#: What :meth:`HAMRTraining.reference` sets: HAMR as the public reference code runs it.
REFERENCE_PARAMS = dict(meta_step="full", meta_update_lr=2e-4, detach_mean=True, hardness_update="reference",
                        group_by_length=False, meta_topup="none", token_loss="max", oversample_ratio=1.2,
                        draw_scheme="multinomial", meta_loss="mean", wnet_lr="reference", resampling=True,
                        embedder="pretrained", knn_index="flat", weight_norm="batch", weight_unit="sample")


@register_training("hamr")
class HAMRTraining(TrainingStrategy):
    """HAMR, hardness-aware meta-resample (Rao et al., 2025, §2; guide in ``docs/hamr.md``).

    A weight network (WNet) meta-learned on a balanced meta set weights each sample's loss, and
    each epoch draws ``oversample_ratio * N`` samples with replacement, favouring hard samples and
    their embedding-space neighbours (the first epoch: every sample once, when the embeddings come
    from it). Multi-class, multi-label and NER (a window's loss is its
    largest token loss; needs ``finetune="full"`` or ``"lora"``); any ``finetune`` for texts
    (``"head"``: the meta step runs on the head over cached features). ``class_weight`` and
    ``sample_weight`` multiply the per-sample loss, so the effective weight of a sample is (WNet
    weight) x (class/sample weight).

    Parameters
    ----------
    meta_weighting : bool, default=True
        WNet weights on the real loss.
    resampling : bool or "auto", default="auto"
        Hardness-aware resampling. ``"auto"``: on, but for NER off from
        :attr:`RESAMPLING_MAX_SENTENCES` training sentences (those left after the estimator's
        validation split, before the meta set's top-up) and where the most frequent tag (``O``)
        holds under :attr:`RESAMPLING_MIN_TAG_SHARE` of the training tokens. HAMR on focal loss,
        6 seeds each, 10% held out: with 540 training sentences resampling was worth +2.3, +0.9 and
        −0.1 points of span macro-F1 on tweet-like CoNLL-2003 (93% ``O``), CoNLL-2003 (83%) and
        MIT-Restaurant (62%), with 675 +1.7, +0.1 and −0.6; with 810 −1.7, +0.1 and −1.3, with
        1,080 and 2,160 tweet-like ones −0.9 and −1.9 (rounds 21, 29 and 30, ``docs/hamr.md``): the
        draws pay by skipping easy, entity-free sentences, which a short run on sparse entities has
        many of. The fitted ``resampling_`` says which a fit used. With it on and
        ``meta_weighting`` off, WNet is still meta-trained to drive the hardness (the paper's
        "w/o AWE").
    knn : bool, default=True
        The kNN neighbourhood boost of the resampling (no effect without ``resampling``). All
        three switches off is plain fine-tuning, bit-for-bit ``training="standard"``.
    hardness_alpha : float, default=0.7
        Sampling probability ``p_i ~ (m_i + 1e-6)^(hardness_alpha / temperature) *
        (1 + knn_lambda * b_i)``; ``m_i`` is the hardness.
    hardness_momentum : float, default=0.5
        Momentum of the hardness, the moving average of a sample's WNet weight
        (``hardness_update="ema"``; ``"reference"`` decays by a fixed 0.99).
    hardness_update : {"ema", "reference"}, default="ema"
        ``"ema"``: the paper's per-sample moving average (only the batch's samples change);
        ``"reference"``: the reference code's global decay of every entry each step.
    knn_k : int, default=10
        At epoch ends, the ``knn_ratio`` share of hardest samples boosts its ``knn_k`` nearest
        neighbours (cosine) by up to ``knn_lambda``.
    knn_lambda : float or "auto", default="auto"
        Neighbourhood boost; ``"auto"``: the reference's 0.7 for texts, 0.1 for NER.
    knn_ratio : float, default=0.1
        Share of hardest samples whose neighbours are boosted.
    knn_index : {"auto", "flat", "ivf", "hnsw"}, default="auto"
        Neighbour index: ``"auto"`` is exact up to 50,000 training samples and IVF above (recall@10
        ≥ 0.99 in ``benchmarks/knn_index.py``); ``"flat"`` always exact, ``"ivf"``/``"hnsw"``
        approximate.
    knn_build_freq : int, default=1
        Recompute the boost every this many epochs.
    oversample_ratio : float, default=1.0
        Draws per epoch, as a multiple of the number of training samples (the reference: 1.2,
        which gives HAMR 20% more steps than plain training).
    draw_scheme : {"systematic", "multinomial"}, default="systematic"
        How an epoch's draws follow the sampling probabilities: systematic resampling, where
        each sample is drawn ``floor`` or ``ceil`` of ``epoch_size · p_i`` times (the expected
        counts, every sample with ``epoch_size · p_i ≥ 1`` seen;
        :func:`~skimb.training.hamr.draw_indices`), or independent draws with replacement (the
        paper and the reference; at near-uniform hardness a resampled epoch sees only about 63%
        of the samples, which cost 5.7 points of span macro-F1 on CoNLL-2003, ``docs/hamr.md``).
    temperature : float, default=1.0
        Flattens (> 1) or sharpens (< 1) the hardness part of the sampling distribution.
    wnet_lr : float, "auto" or "reference", default="auto"
        Adam learning rate of WNet (weight decay 1e-4). ``"auto"``: 1e-3 for single-label texts
        (round 13: at the reference's 1e-4 WNet moves too little in the few hundred steps of a
        fine-tuning run to weight the rare classes' samples up, ``docs/hamr.md``), the reference's
        1e-4 for multi-label and 3e-4 for NER; ``"reference"``: the reference scripts' 1e-4 for
        texts and 3e-4 for NER (:meth:`reference`).
    meta_update_lr : float or None, default=None
        Step size of the virtual SGD step of the meta step; ``None`` is the task learning rate
        (``lr_``). The reference used 2e-4 with lr 4e-5.
    meta_step : {"head", "first_order", "full"}, default="head"
        How the virtual step is taken: ``"head"`` updates only the classification head (exact
        second order on the head; about one extra forward pass of the meta batch),
        ``"first_order"`` all trainable weights with a finite-difference meta-gradient,
        ``"full"`` all trainable weights with a double backward, as the reference (about 3x a
        plain step). A tagger's CRF stays out of the virtual step in every mode (the meta loss
        reads its live scores). See ``docs/hamr.md``.
    meta_interval : int, default=1
        Run the meta step (WNet's update from a meta batch) every this many training steps,
        starting with the first; the steps in between weight their losses with the current WNet
        and leave it unchanged, at the cost of a plain step. ``1`` is the paper and the reference.
    meta_features : {"auto", "cached", "live"}, default="auto"
        Where the meta step's meta loss comes from. ``"live"``: one batch of the meta set,
        encoded by the backbone at every meta step (the paper and the reference; one extra
        forward pass of a batch per step). ``"cached"`` (``meta_step="head"`` only, since the
        other steps move the backbone): the whole meta set's pooled features (NER: its labelled
        tokens'), re-encoded without dropout ``meta_refresh`` times per epoch, scored through the
        virtual head at every meta step: a meta loss over every meta example instead of one
        batch, for a fraction of the cost (round 12: HAMR's total time 1.15x plain training
        instead of 1.56x on the whole Cyclone-Idai split, macro-F1 level or better; NER level
        at 1.3x instead of 1.7x; ``docs/hamr.md``). ``"auto"``: ``"cached"`` with
        ``meta_step="head"``, ``"live"`` with the other steps.
    meta_refresh : int, default=4
        ``meta_features="cached"``: how many times per epoch the meta set is re-encoded (each
        costs one forward pass over the meta set; a frozen backbone's features never change).
    meta_set : None or (X_meta, y_meta), default=None
        An explicit meta set, used as given (NER: sentences and tags in the estimator's
        ``scheme``). ``None``: the validation split (with ``validation_fraction``), else a
        stratified 10% share held out of the training data, topped up per class with training
        examples until every class reaches the median count (whether those stay in training is
        ``meta_topup``).
    meta_selection : {"validation", "gbc"}, default="validation"
        Where the meta set comes from when ``meta_set`` is None. ``"validation"``: the validation
        split (or held-out share) topped up as ``meta_topup`` says; ``"gbc"`` (multi-class only):
        GBC's gradient clusters (Wu et al., 2023), ``meta_clusters`` representatives per class
        picked from the training split by k-means on each example's head gradient over the
        backbone's pretrained features (:func:`~skimb.training.hamr.gbc_meta_set`); they stay in
        training, and the features cost one pass over the training texts.
    meta_clusters : int, default=10
        Clusters, hence meta examples, per class with ``meta_selection="gbc"``.
    meta_topup : {"share", "move", "none"}, default="share"
        How the meta set is balanced: topped up per class to the median count with training
        examples that also stay in training (``"share"``), that leave training (``"move"``, the
        paper; a class rarer than the target can lose every training example), or not at all
        (``"none"``: the validation split as it is, as the reference code runs).
    meta_loss : {"auto", "mean", "balanced"}, default="auto"
        The meta objective WNet is trained to lower. ``"mean"``: the mean cross-entropy of the
        meta batch (the paper; on an imbalanced meta set, and for NER where most tokens are
        ``O``, it is dominated by the frequent classes); ``"balanced"``: class-weighted so that
        every class (tag; multi-label: each label's positives and negatives) of the meta set
        counts equally, the meta-set counterpart of macro-F1
        (:func:`~skimb.training.hamr.balanced_meta_weights`). ``"auto"``: ``"balanced"`` for
        single-label classification (round 11, whole Cyclone-Idai split without class weights:
        macro-F1 +5 points over ``"mean"`` and over plain fine-tuning, ``docs/hamr.md``), but
        ``"mean"`` where the training loss already balances the classes (the estimator's
        ``class_weight`` set, or a class-balancing loss such as ``loss="weighted_ce"``,
        ``"class_balanced"``, ``"ldam"``, ``"logit_adjusted"`` or a per-class ``loss__alpha``)
        and WNet's weights are normalised over the batch (``weight_norm="batch"``: balancing
        twice cost 2 points, round 12; under ``"class"``, which ``weight_norm="auto"`` chooses
        on such a loss, WNet cannot move weight between classes and the objective stays
        balanced), and ``"mean"`` for NER (level on CoNLL-2003) and multi-label (where no
        objective moved HAMR off BCE's level, round 25), but ``"balanced"`` for NER where one tag (``O``) holds
        at least :attr:`SPARSE_TAG_SHARE` of the training tokens: there the mean is nearly the
        ``O`` tag's own loss (round 19: with 93% ``O``, tweet-like CoNLL-2003, balanced was +2.0
        points on focal loss and +2.3 on CE; with 62–83%, MIT-Restaurant and CoNLL-2003, the mean
        was better by 0.3–1.4); a class-balancing loss over a balanced meta set keeps the mean
        there too. The fitted ``meta_objective_`` says which objective a fit used.
    detach_mean : bool, default=False
        Treat the batch mean of the WNet weights as a constant in the meta-gradient, as the
        reference code does (``w / w.mean().detach()``).
    class_aware : bool, default=False
        Single-label classification: WNet also reads the standardised log size of each
        sample's class (:func:`~skimb.training.hamr.class_size_features`), so the learned weight
        can depend on how rare the class is as well as on the loss (as CMW-Net does). Multi-label
        with ``weight_unit="label"``: WNet reads each term's label size and whether the term is a
        positive. The paper's WNet sees the loss alone.
    weight_unit : {"auto", "sample", "label"}, default="auto"
        What one WNet weight scales: a sample's loss (the paper), or, multi-label only, each
        (sample, label) term of it (``"label"``; the loss must have per-label terms,
        :meth:`~skimb.losses.ImbalanceLoss.per_label`): one weight per text scales its rare
        labels' positives and its negatives alike, so it cannot favour a rare label (round 25:
        per-text HAMR was level with BCE on GoEmotions). Under ``"label"`` the hardness of a text
        is its terms' weights averaged by their losses (the weight its whole loss got), and the
        per-class weight summaries are those of each label's positive terms. ``"auto"``:
        ``"sample"`` (round 26, GoEmotions, 3 seeds: per label level with BCE too, 0.357 against
        0.357; in the run diagnosed WNet's median weight for a rare label's positives reached
        1.3x, where a fixed 3x is worth +4 points, ``docs/hamr.md``). The fitted ``weight_unit_``
        says which.
    weight_norm : {"auto", "batch", "class"}, default="auto"
        Where WNet's weights are normalised to mean 1: over the batch (the paper), or within
        each class of the batch (single-label classification only), so that WNet moves weight
        only between samples of one class and the balance between classes stays the loss's:
        the composition with ``class_weight``, which otherwise balances twice. ``"auto"``:
        ``"class"`` for single-label classification where the training loss already balances
        the classes (as for ``meta_loss``), else ``"batch"`` (rounds 14–16, HAMR on class
        weighting, 3 seeds each: within the class +1.1 and +0.8 points of macro-F1 over the
        batch on GoEmotions-Ekman 1,200 texts and Cyclone-Idai, +1.8 on the reference
        protocol's imbalanced meta set, 2 seeds; ``docs/hamr.md``). The fitted ``weight_norm_``
        says which.
    group_by_length : bool, default=True
        Resampled epochs batch draws of similar length (less padding, faster); ``False`` batches
        them in draw order, as the reference does.
    token_loss : {"mean", "max"}, default="mean"
        Token classification only: the real update's loss. ``"mean"``: every labelled token's
        cross-entropy, weighted by its window's WNet weight; ``"max"``: only the largest token
        loss of each window (the reference), which trains on one token per window and cost
        4 points of span macro-F1 on MIT-Restaurant. WNet and the hardness use the max token loss
        either way; the meta step's virtual update descends the real update's loss. A tagger
        with a CRF (``decoding="crf"``) ignores it: a window's unit is its negative
        log-likelihood per labelled token, and the update its whole likelihood at its weight
        (the meta objective is the CRF's likelihood, ``meta_loss="auto"`` its mean).
    embedder : {"first_epoch", "pretrained"} or transformer, default="first_epoch"
        Sentence embeddings for the kNN boost (NER: of each sentence's words joined by spaces).
        ``"first_epoch"``: the pooled features the backbone computes anyway in the first
        epoch's training forwards, which then visits every training sample once (no separate
        pass; texts only, token classification falls back to ``"pretrained"``);
        ``"pretrained"``: the backbone's own pooled pretrained features, computed once before
        training through the feature cache (the spec's choice, one extra forward pass over the
        training set); or a fitted or unfitted :class:`~skimb.TransformerEmbedder` (any
        transformer of texts; an unfitted one is cloned and fitted).
    rdrop_alpha : float, default=0.0
        R-Drop on HAMR's update (:class:`~skimb.training.RDropTraining`'s ``alpha``): each step
        passes the batch a second time, with its own dropout, weights both passes' losses with the
        same WNet weights, and adds ``rdrop_alpha`` times the symmetric KL divergence between the
        two predictions; the meta step and the hardness read the first pass. 0 (the default) is
        HAMR alone; a step then costs one more forward and backward pass.

    Examples
    --------
    >>> from skimb.training.hamr import HAMRTraining
    >>> HAMRTraining(knn=False).uses_knn
    False
    >>> HAMRTraining().for_task("token").knn_lambda
    0.1
    >>> HAMRTraining().for_task("multiclass").meta_loss, HAMRTraining().for_task("token").meta_loss
    ('balanced', 'mean')
    >>> HAMRTraining().for_task("token", majority_share=0.93).meta_loss  # 93% of the tokens are O
    'balanced'
    >>> HAMRTraining().for_task("token", n_sentences=600, majority_share=0.93).resampling
    True
    >>> HAMRTraining().for_task("token", n_sentences=600, majority_share=0.62).resampling  # entities dense
    False
    >>> HAMRTraining().for_task("token", n_sentences=2400).resampling
    False
    >>> HAMRTraining(weight_norm="batch").for_task("multiclass", balanced_loss=True).meta_loss
    'mean'
    >>> HAMRTraining(meta_topup="none").for_task("multiclass", balanced_loss=True).meta_loss
    'balanced'
    >>> HAMRTraining(weight_norm="class").for_task("multiclass", balanced_loss=True).meta_loss
    'balanced'
    >>> HAMRTraining().for_task("multiclass", balanced_loss=True).weight_norm  # on class weights: within each class
    'class'
    >>> HAMRTraining().for_task("multiclass").weight_norm, HAMRTraining().for_task("token", balanced_loss=True).weight_norm
    ('batch', 'batch')
    >>> HAMRTraining().for_task("multiclass").meta_features, HAMRTraining.reference().for_task("multiclass").meta_features
    ('cached', 'live')
    >>> HAMRTraining(rdrop_alpha=1.0).for_task("token").rdrop_alpha  # HAMR on top of R-Drop
    1.0
    """

    net_class = HAMRNet
    supports_data_parallel = False  # the meta step and the hardness see one process's batches
    #: The values of the ``"auto"`` parameters, by task (the reference code's for ``knn_lambda`` and for
    #: ``wnet_lr`` but single-label's, which round 13 measured; ``meta_loss`` measured here).
    TASK_DEFAULTS = {"multiclass": {"knn_lambda": 0.7, "wnet_lr": 1e-3, "meta_loss": "balanced", "resampling": True,
                                    "weight_unit": "sample"},
                     "multilabel": {"knn_lambda": 0.7, "wnet_lr": 1e-4, "meta_loss": "mean", "resampling": True,
                                    "weight_unit": "sample"},
                     "token": {"knn_lambda": 0.1, "wnet_lr": 3e-4, "meta_loss": "mean", "resampling": True,
                               "weight_unit": "sample"}}
    #: ``wnet_lr="reference"``: the reference scripts' WNet learning rates.
    REFERENCE_WNET_LR = {"multiclass": 1e-4, "multilabel": 1e-4, "token": 3e-4}
    #: NER: the share of the training tokens under the most frequent tag from which
    #: ``meta_loss="auto"`` is class-balanced (entities sparse; measured at 0.62, 0.83 and 0.93).
    SPARSE_TAG_SHARE = 0.9
    #: NER: the training sentences from which ``resampling="auto"`` is off (measured after the
    #: validation split: on was better at 540 and 675, off at 810, 1,080 and 2,160;
    #: ``docs/benchmarks.md``, rounds 21 and 29).
    RESAMPLING_MAX_SENTENCES = 750
    #: NER: the share of the training tokens under the most frequent tag below which
    #: ``resampling="auto"`` is off, whatever the size: where nearly every sentence holds entities
    #: the draws have no easy sentences to skip (MIT-Restaurant, 62% ``O``: −0.1, −0.6 and −1.3 at
    #: 540, 675 and 810 sentences; CoNLL-2003, 83%: +0.9, +0.1, +0.1; tweet-like, 93%: +2.3, +1.7;
    #: rounds 21, 29 and 30).
    RESAMPLING_MIN_TAG_SHARE = 0.75
    _parameter_constraints = {
        "meta_weighting": [Boolean()], "resampling": [Boolean(), Options("auto")], "knn": [Boolean()],
        "hardness_alpha": [Interval(Real, 0, None)],
        "hardness_momentum": [Interval(Real, 0, 1, closed="left")],
        "hardness_update": [Options("ema", "reference")],
        "knn_k": [Interval(Integral, 1, None)],
        "knn_lambda": [Options("auto"), Interval(Real, 0, None)],
        "knn_ratio": [Interval(Real, 0, 1, closed="right")],
        "knn_index": [Options(*INDEX_KINDS)],
        "knn_build_freq": [Interval(Integral, 1, None)],
        "oversample_ratio": [_POSITIVE], "temperature": [_POSITIVE],
        "draw_scheme": [Options(*DRAW_SCHEMES)],
        "wnet_lr": [Options("auto", "reference"), _POSITIVE],
        "meta_update_lr": [None, _POSITIVE],
        "meta_step": [Options(*META_MODES)],
        "meta_interval": [Interval(Integral, 1, None)],
        "meta_features": [Options("auto", "cached", "live")],
        "meta_refresh": [Interval(Integral, 1, None)],
        "meta_set": [None, Satisfies(lambda v: isinstance(v, (tuple, list)) and len(v) == 2,
                                     "a pair (X_meta, y_meta)", bad=[[1, 2, 3]])],
        "meta_selection": [Options("validation", "gbc")],
        "meta_clusters": [Interval(Integral, 1, None)],
        "meta_topup": [Options(*META_TOPUPS)],
        "meta_loss": [Options("auto", "mean", "balanced")],
        "class_aware": [Boolean()],
        "weight_norm": [Options("auto", "batch", "class")],
        "weight_unit": [Options("auto", "sample", "label")],
        "detach_mean": [Boolean()],
        "group_by_length": [Boolean()],
        "token_loss": [Options("mean", "max")],
        "embedder": [Options("first_epoch", "pretrained"), Satisfies(lambda v: callable(getattr(v, "transform", None)),
                                     "a transformer of texts with a transform method (e.g. skimb.TransformerEmbedder)",
                                     bad=["bge-large"])],
        "rdrop_alpha": [Interval(Real, 0, None)],
    }
    _KNN_PARAMS = ("knn_k", "knn_lambda", "knn_ratio", "knn_index", "knn_build_freq")
    _RESAMPLING_PARAMS = ("hardness_alpha", "oversample_ratio", "draw_scheme", "temperature", "group_by_length")
    _WNET_PARAMS = ("wnet_lr", "meta_update_lr", "meta_step", "meta_interval", "meta_features",
                    "meta_refresh", "meta_set", "hardness_momentum", "hardness_update",
                    "meta_selection", "meta_clusters", "meta_topup", "meta_loss", "detach_mean", "class_aware",
                    "weight_norm", "weight_unit")

    def sequence_loss_refusal(self):
        if self.uses_wnet and self.meta_loss == "balanced":
            return ("training__meta_loss='balanced' weights the meta loss tag by tag, and a sequence likelihood "
                    "has no per-tag terms; use training__meta_loss='mean' (or 'auto')")
        return None

    def __init__(self, meta_weighting=True, resampling="auto", knn=True, hardness_alpha=0.7, hardness_momentum=0.5,
                 hardness_update="ema", knn_k=10, knn_lambda="auto", knn_ratio=0.1, knn_index="auto",
                 knn_build_freq=1, oversample_ratio=1.0, draw_scheme="systematic", temperature=1.0,
                 wnet_lr="auto", meta_update_lr=None, meta_step="head", meta_interval=1, meta_features="auto",
                 meta_refresh=4, meta_set=None,
                 meta_selection="validation", meta_clusters=10, meta_topup="share", meta_loss="auto", detach_mean=False, class_aware=False,
                 weight_norm="auto", weight_unit="auto", group_by_length=True, token_loss="mean",
                 embedder="first_epoch", rdrop_alpha=0.0):
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
        self.draw_scheme = draw_scheme
        self.temperature = temperature
        self.wnet_lr = wnet_lr
        self.meta_update_lr = meta_update_lr
        self.meta_step = meta_step
        self.meta_interval = meta_interval
        self.meta_features = meta_features
        self.meta_refresh = meta_refresh
        self.meta_set = meta_set
        self.meta_selection = meta_selection
        self.meta_clusters = meta_clusters
        self.meta_topup = meta_topup
        self.meta_loss = meta_loss
        self.detach_mean = detach_mean
        self.class_aware = class_aware
        self.weight_norm = weight_norm
        self.weight_unit = weight_unit
        self.group_by_length = group_by_length
        self.token_loss = token_loss
        self.embedder = embedder
        self.rdrop_alpha = rdrop_alpha

    @classmethod
    def reference(cls, **overrides) -> "HAMRTraining":
        """HAMR as the public reference code runs it: a full second-order virtual step with
        its own step size 2e-4, the batch mean detached, the reference's global-decay hardness,
        random batches of 1.2 N independent draws per epoch, embeddings from a separate pass
        before training, exact neighbour search, and the validation split as the meta set (no
        top-up).

        >>> HAMRTraining.reference().meta_step
        'full'
        >>> HAMRTraining.reference().for_task("multiclass").wnet_lr, HAMRTraining().for_task("multiclass").wnet_lr
        (0.0001, 0.001)
        """
        return cls(**{**REFERENCE_PARAMS, **overrides})

    def _changed(self, names) -> list:
        """Which of ``names`` differ from their default: for an instance of :meth:`reference` (one that
        holds most of its values, an ablation's few overrides included), the reference's values count as
        defaults, so that a configuration that does not read one (``token_loss`` on texts, ``knn_index``
        without the kNN boost) warns only about the values the user set."""
        changed = super()._changed(names)
        if 2 * sum(getattr(self, n) == v for n, v in REFERENCE_PARAMS.items()) <= len(REFERENCE_PARAMS):
            return changed
        return [n for n in changed if n not in REFERENCE_PARAMS or getattr(self, n) != REFERENCE_PARAMS[n]]

    @property
    def uses_wnet(self) -> bool:
        """WNet, the meta set and the meta step are needed."""
        return bool(self.meta_weighting or self.resampling)

    @property
    def reads_validation_split(self) -> bool:
        """The meta set is built from the validation split: WNet is on, no explicit ``meta_set``,
        and ``meta_selection="validation"`` (the default). GBC's picks come from the training
        split, an explicit ``meta_set`` is the user's own."""
        return self.uses_wnet and self.meta_set is None and self.meta_selection == "validation"

    @property
    def caches_meta_features(self) -> bool:
        """The meta loss comes from cached meta-set features (``meta_features``, ``"auto"``
        resolved: the other virtual steps move the backbone, so cached features would be stale)."""
        return self.meta_features == "cached" or (self.meta_features == "auto" and self.meta_step == "head")

    @property
    def uses_knn(self) -> bool:
        return bool(self.resampling and self.knn)

    @property
    def weighs_label_terms(self) -> bool:
        """One WNet weight per (sample, label) term (``weight_unit="label"``; ``"auto"`` is ``"sample"``)."""
        return self.weight_unit == "label"

    def epoch_size(self, n_train: int, state=None) -> int:
        """Samples per epoch: ``round(oversample_ratio · N)`` (at least 1) with resampling (as the
        fit's ``state`` resolved ``"auto"``)."""
        if state is not None:
            return state.config.epoch_size(n_train)
        if not self.resampling:
            return int(n_train)
        return max(1, int(round(float(self.oversample_ratio) * int(n_train))))

    @property
    def balances_meta_set(self) -> bool:
        """The meta set is built class-balanced (topped up per class, or GBC's picks per class);
        an explicit ``meta_set`` and ``meta_topup="none"`` are used as they are."""
        return self.meta_set is None and (self.meta_selection == "gbc" or self.meta_topup != "none")

    def for_task(self, task: str, balanced_loss: bool = False, majority_share=None,
                 n_sentences=None, sequence_loss=False) -> "HAMRTraining":
        """A copy with the ``"auto"`` parameters set to ``task``'s defaults (``majority_share``: NER,
        the share of the training tokens under the most frequent tag; ``n_sentences``: NER, the
        training sentences; ``sequence_loss``: a tagger's CRF, whose likelihood has no per-tag
        terms to balance, so the meta objective is its mean; ``balanced_loss``: the
        training loss already balances the classes, so over a balanced meta set the meta objective
        need not; over a meta set used as it is, the mean would reward the majority classes and
        undo the loss's balancing; with ``weight_norm="class"`` WNet cannot change the classes'
        balance, and the objective stays balanced)."""
        defaults = {**self.TASK_DEFAULTS[task], "meta_features": "cached" if self.caches_meta_features else "live"}
        if task == "token" and majority_share is not None and majority_share >= self.SPARSE_TAG_SHARE \
                and not sequence_loss:
            defaults["meta_loss"] = "balanced"
        if task == "token" and self._resampling_off_reason(majority_share, n_sentences):
            defaults["resampling"] = False
        defaults["weight_norm"] = "class" if balanced_loss and task == "multiclass" else "batch"
        weight_norm = defaults["weight_norm"] if self.weight_norm == "auto" else self.weight_norm
        if balanced_loss and self.balances_meta_set and weight_norm == "batch":
            defaults["meta_loss"] = "mean"
        params = self.get_params(deep=False)
        params.update({k: v for k, v in defaults.items() if params[k] == "auto"})
        if params["wnet_lr"] == "reference":
            params["wnet_lr"] = self.REFERENCE_WNET_LR[task]
        return type(self)(**params)

    def _resampling_off_reason(self, majority_share, n_sentences) -> str:
        """Why ``resampling="auto"`` is off for a tagger (``""``: it is on)."""
        if n_sentences is not None and n_sentences >= self.RESAMPLING_MAX_SENTENCES:
            return f"from {self.RESAMPLING_MAX_SENTENCES} training sentences ({n_sentences} here)"
        if majority_share is not None and majority_share < self.RESAMPLING_MIN_TAG_SHARE:
            return (f"where the most frequent tag holds under {self.RESAMPLING_MIN_TAG_SHARE:.0%} of the training "
                    f"tokens ({majority_share:.1%} here)")
        return ""

    def ignored_params(self) -> dict:
        ignored = {}
        if self.uses_wnet and self.meta_set is not None:
            ignored.update(dict.fromkeys(self._changed(("meta_selection", "meta_clusters", "meta_topup")),
                                         "an explicit meta_set is used as given"))
        elif self.meta_selection == "gbc":
            ignored.update(dict.fromkeys(self._changed(("meta_topup",)), "meta_selection='gbc'"))
        elif self.meta_selection == "validation":
            ignored.update(dict.fromkeys(self._changed(("meta_clusters",)), "meta_selection='validation'"))
        if self.hardness_update == "reference":
            ignored.update(dict.fromkeys(self._changed(("hardness_momentum",)),
                                         "hardness_update='reference' decays by a fixed 0.99"))
        if not self.caches_meta_features:
            ignored.update(dict.fromkeys(self._changed(("meta_refresh",)), "the meta features are live"))
        if not self.uses_wnet:
            ignored.update(dict.fromkeys(self._changed(self._WNET_PARAMS), "WNet is off (meta_weighting and "
                                                                         "resampling are False)"))
        if not self.resampling:
            ignored.update(dict.fromkeys(self._changed(self._RESAMPLING_PARAMS), "resampling=False"))
        if not self.uses_knn:
            ignored.update(dict.fromkeys(self._changed(self._KNN_PARAMS + ("embedder",)),
                                         "the kNN boost is off (knn=False or resampling=False)"))
        return ignored

    # -- the strategy hooks ---------------------------------------------------------------------
    def plan(self, ctx):
        # HAMR's balanced meta set leaves the training split.
        share = n_sentences = None
        if ctx.task == "token":
            counts = ctx.adapter.class_counts(ctx)
            share, n_sentences = counts.max() / max(counts.sum(), 1), len(ctx.train_idx)
        sequence_loss = ctx.adapter.sequence_loss
        config = self.for_task(ctx.task, ctx.balanced_loss, majority_share=share, n_sentences=n_sentences,
                               sequence_loss=sequence_loss)
        token_loss_off = ("it applies to token classification only" if ctx.task != "token"
                          else "a CRF trains by whole windows' likelihood" if sequence_loss else None)
        if token_loss_off:
            warn_ignored(dict.fromkeys(self._changed(("token_loss",)), token_loss_off), owner="HAMRTraining",
                         prefix="training__")
        if self.resampling == "auto" and not config.resampling:
            reason = (f"resampling='auto' is off for NER {self._resampling_off_reason(share, n_sentences)}; set "
                      "training__resampling=True to resample")
            changed = self._changed(self._RESAMPLING_PARAMS + self._KNN_PARAMS + ("embedder",))
            warn_ignored(dict.fromkeys(changed, reason), owner="HAMRTraining", prefix="training__")
        state = HAMRFit.plan(config, ctx)
        if ctx.finetune.frozen and config.uses_wnet and config.caches_meta_features:
            warn_ignored(dict.fromkeys(self._changed(("meta_refresh",)), "a frozen backbone's meta features never "
                                       "change (finetune='head'), so they are encoded once"),
                         owner="HAMRTraining", prefix="training__")
        ctx.train_idx = state.train_idx
        return state

    def net_kwargs(self, state) -> dict:
        return {"hamr": state, "rdrop_alpha": float(self.rdrop_alpha), "multilabel": state.task == "multilabel"}

    def attach(self, state, ctx):
        if self.rdrop_alpha != 0:
            warn_without_dropout(ctx, "training__rdrop_alpha > 0", "set training__rdrop_alpha=0")
        state.attach(ctx)

    def finish(self, state, cached=None):
        return state.finish(cached)

    def restore(self, fitted) -> dict:
        return {} if fitted is None else hamr_attributes(fitted)
