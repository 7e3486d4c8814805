"""HAMR training inside the transformer estimators (``training="hamr"``; Rao et al., 2025, §2).

The estimator-independent pieces (WNet, the meta step, the hardness tracker, the FAISS boost,
the balanced meta set) live in the sibling modules; this one puts them into the skorch loop:

:class:`HAMRNet`
    A :class:`~skimb.training.RDropNet` whose ``train_step_single`` runs one
    :func:`~skimb.training.hamr.meta_step` (WNet update from a meta batch) and then the
    weighted real update, reusing the meta step's batch forward (``keep_graph=True``). Every
    other part of the skorch loop is the parent's: callbacks, progress bar, gradient clipping,
    the learning-rate schedule, early stopping, ``KeyboardInterrupt`` handling and the guard
    against non-finite losses.
:class:`HAMRCallback`
    The per-epoch work: sampling probabilities → ``net.batch_sampler_.set_draw_weights`` at
    each epoch start (``round(oversample_ratio · N)`` draws with replacement), the kNN boost at
    epoch ends (every ``knn_build_freq`` epochs), per-epoch summaries of the WNet weights.
:class:`HAMRFit`
    One fit's HAMR state: the meta-set split (:meth:`HAMRFit.plan`, before the training data
    are built), the meta dataset and the embeddings (:meth:`HAMRFit.attach`), the WNet, the
    tracker, the boost and the histories; :meth:`HAMRFit.finish` returns the results as plain
    data and drops what should not be pickled. It talks to the estimator only through the fit
    context (``ctx``) the :class:`~skimb.training.hamr.HAMRTraining` component hands it.

How a step reads (``meta_weighting`` / ``resampling`` on or off)
----------------------------------------------------------------
* WNet (and so the meta set and the meta step) is used when ``meta_weighting`` or
  ``resampling`` is on. ``meta_weighting=False`` with ``resampling=True`` is the paper's
  "w/o AWE" as the reference code implements it (``weighted_loss=false``): WNet is still
  meta-trained and its post-meta weights still drive the hardness, but the real update is
  unweighted.
* ``knn`` only shapes the resampling distribution, so it has no effect without ``resampling``.
* With all three off nothing of HAMR runs: no meta set is carved out, the step is the parent's,
  the sampler is untouched, and training is bit-for-bit ``training="standard"``.
"""

from __future__ import annotations

import copy
import math
import warnings
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch.utils.data import DataLoader

from ...backbones import EncodedTextDataset, sorted_batches
from ...losses._base import per_item_losses
from ...tokens import IGNORE_INDEX, per_sentence_losses, token_sentence_index
from ...utils._split import multilabel_train_test_split, rarest_tag_keys
from ...utils._warnings import warn_caller
from .._net import module_inputs, sentence_edges
from .._rdrop import RDropNet
from ._hardness import HardnessTracker, sampling_probabilities
from ._meta import MetaStepResult, _logits, meta_step, split_losses, weighted_update_loss
from ._meta_set import _median_target, build_balanced_meta_set, build_balanced_meta_set_ner, gbc_meta_set
from ._neighbors import build_index, neighbor_boost
from ._wnet import (WeightNet, batch_weights, class_size_features, label_size_features, loss_weighted_mean,
                    make_wnet_optimizer)

__all__ = [
    "HAMRFit",
    "HAMRNet",
    "HAMRCallback",
    "META_HOLDOUT_FRACTION",
    "hamr_attributes",
    "split_meta_set",
    "META_TOPUPS",
    "build_balanced_meta_set_multilabel",
]

#: Share of the training split held out for the meta set when the estimator has neither a
#: validation split (``validation_fraction``) nor an explicit ``meta_set``.
META_HOLDOUT_FRACTION = 0.1

#: The parameter names of the module of the classifier that ``meta_step="head"`` updates.
HEAD_PARAM_NAMES = ("head",)

# ------------------------------------------------------------------------------------ meta set


def build_balanced_meta_set_multilabel(Y_train, Y_val, *, random_state=None):
    """Top up a validation split per label from the training split (multi-label).

    The multi-label version of :func:`~skimb.training.hamr.build_balanced_meta_set`: the target
    is the median (rounded up) of the validation positives per label; labels are served rarest
    (in validation) first, each getting randomly chosen training rows that carry it until it
    reaches the target or training runs out of it. A moved row counts for all its labels.

    Returns
    -------
    meta_train_idx_from_train, keep_train_idx : ndarray of int64
        Sorted, disjoint positions in ``Y_train`` (moved to the meta set / kept for training).

    Examples
    --------
    >>> import numpy as np
    >>> Y_train = np.array([[1, 0, 0]] * 6 + [[0, 1, 0]] * 4 + [[0, 0, 1]] * 3)
    >>> Y_val = np.array([[1, 0, 0]] * 3 + [[0, 1, 0]] * 2 + [[1, 0, 1]])  # 4, 2, 1: median 2
    >>> moved, keep = build_balanced_meta_set_multilabel(Y_train, Y_val, random_state=0)
    >>> Y_train[moved].sum(0).tolist(), len(keep)
    ([0, 0, 1], 12)
    """
    Yt = np.asarray(Y_train) > 0
    Yv = np.asarray(Y_val) > 0
    if Yt.ndim != 2 or Yv.ndim != 2 or Yt.shape[1] != Yv.shape[1]:
        raise ValueError(f"Y_train and Y_val must be 2-D with the same columns, got {Yt.shape} and {Yv.shape}.")
    rng = check_random_state(random_state)
    counts = Yv.sum(0).astype(np.int64)
    target = _median_target(counts.tolist())
    available = np.ones(Yt.shape[0], dtype=bool)
    moved = []
    for label in np.argsort(counts, kind="stable"):
        need = int(target - counts[label])
        if need <= 0:
            continue
        pool = np.flatnonzero(available & Yt[:, label])
        take = rng.permutation(pool)[:need]
        if take.size:
            available[take] = False
            counts += Yt[take].sum(0)
            moved.append(take)
    moved_idx = np.sort(np.concatenate(moved)).astype(np.int64) if moved else np.zeros(0, np.int64)
    return moved_idx, np.flatnonzero(available).astype(np.int64)


def _holdout(y_enc, task, train_idx, seed):
    """Split ``train_idx`` into (rest, held-out share) for the meta set, stratified."""
    y = y_enc[train_idx]
    if task == "multilabel":
        tr, te = multilabel_train_test_split(y, test_size=META_HOLDOUT_FRACTION, random_state=seed)
        return train_idx[tr], train_idx[te]
    if task == "token":  # by sentence, stratified by the rarest tag where the strata allow it
        y = rarest_tag_keys(y)
    n = len(train_idx)
    counts = np.bincount(y)
    n_classes = int(np.sum(counts > 0))
    n_test = max(1, int(round(META_HOLDOUT_FRACTION * n)))
    stratify = y if counts[counts > 0].min() >= 2 else None
    if stratify is not None and n_test < n_classes:  # a stratified split needs a row per class
        n_test = n_classes
        if n - n_test < n_classes:
            stratify, n_test = None, max(1, int(round(META_HOLDOUT_FRACTION * n)))
    if n_test >= n:
        raise ValueError(f"too few training examples ({n}) to hold out a meta set; pass meta_set=(X, y) "
                         "or validation_fraction.")
    tr, te = train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=stratify)
    return train_idx[np.sort(tr)], train_idx[np.sort(te)]


META_TOPUPS = ("move", "share", "none")


def split_meta_set(y_enc, task, train_idx, valid_idx, *, seed, classes=None, topup="move"):
    """HAMR's balanced meta set, as positions in the estimator's data.

    The base of the meta set is the validation split (``valid_idx``) when there is one, else a
    stratified :data:`META_HOLDOUT_FRACTION` share held out of ``train_idx``; it is then topped up
    per class (multi-label: per label) with examples moved from the training split until every
    class reaches the median base count (the rule of HAMR's reference code). Moved and held-out examples leave the
    training split. Token classification (``task="token"``, ``y_enc`` an object array of tag
    index arrays, ``classes`` the tag names): sentences are moved to reduce the per-entity-type
    span deficit (:func:`build_balanced_meta_set_ner`).

    ``topup`` says what happens to the topped-up examples: ``"move"`` (the paper's balanced
    split) takes them out of training, which can leave a very rare class with no training
    example at all; ``"share"`` puts copies in the meta set and keeps them in training;
    ``"none"`` uses the base as it is, imbalanced (the reference code as shipped).

    Returns
    -------
    train_idx : ndarray of int64
        Sorted positions HAMR trains on.
    meta_idx : ndarray of int64
        Sorted positions of the meta set (the validation split included).
    """
    if topup not in META_TOPUPS:
        raise ValueError(f"topup must be one of {META_TOPUPS}, got {topup!r}.")
    train_idx = np.asarray(train_idx, dtype=np.int64)
    if valid_idx is not None:
        pool, base = train_idx, np.asarray(valid_idx, dtype=np.int64)
    else:
        pool, base = _holdout(y_enc, task, train_idx, seed)
    if topup == "none":
        return np.sort(pool).astype(np.int64), np.sort(base).astype(np.int64)
    if task == "multilabel":
        moved, keep = build_balanced_meta_set_multilabel(y_enc[pool], y_enc[base], random_state=seed)
    elif task == "token":
        names = np.asarray(classes)
        moved, keep = build_balanced_meta_set_ner([names[y_enc[i]].tolist() for i in pool],
                                                  [names[y_enc[i]].tolist() for i in base], random_state=seed)
    else:
        moved, keep = build_balanced_meta_set(y_enc[pool], y_enc[base], random_state=seed)
    meta_idx = np.sort(np.concatenate([base, pool[moved]])).astype(np.int64)
    kept = pool if topup == "share" else pool[keep]
    return np.sort(kept).astype(np.int64), meta_idx


# ------------------------------------------------------------------------------------ embeddings


def balanced_meta_weights(y_meta, task, n_classes) -> np.ndarray:
    """Class weights that make the meta loss a class-balanced one (``meta_loss="balanced"``).

    Multi-class and token classification: ``n / (K · n_c)`` for each class (tag) present in the
    meta set, so that every class contributes equally to the meta loss whatever its count (``K``
    counts the classes present; an absent class gets 1, never used). Multi-label: each label's
    positive weight ``n_neg / n_pos``, so that a label's positives count as much as its negatives.

    >>> balanced_meta_weights(np.array([0, 0, 0, 1]), "multiclass", 3).tolist()
    [0.6666666666666666, 2.0, 1.0]
    >>> balanced_meta_weights(np.array([[1, 0], [0, 0], [0, 1], [0, 1]]), "multilabel", 2).tolist()
    [3.0, 1.0]
    """
    if task == "multilabel":
        Y = np.asarray(y_meta, dtype=np.float64)
        pos = Y.sum(axis=0)
        return np.where(pos > 0, (len(Y) - pos) / np.maximum(pos, 1), 1.0)
    labels = (np.concatenate([np.asarray(t).ravel() for t in y_meta]) if task == "token"
              else np.asarray(y_meta).ravel()).astype(np.int64)
    labels = labels[labels >= 0]  # padding / ignored positions
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    return np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 1.0)


def _warn_classes_left_out(y, train_idx, kept, classes) -> None:
    """Warn where HAMR's meta set took every training example of a class (held out for it without a
    validation split, or moved with ``meta_topup="move"``): the model would never train on it."""
    lost = np.setdiff1d(np.unique(y[train_idx]), np.unique(y[kept]))
    if len(lost):
        names = ", ".join(repr(str(classes[c])) for c in lost[:5]) + (", ..." if len(lost) > 5 else "")
        warn_caller(f"HAMR's meta set took every training example of {len(lost)} class(es) ({names}): the model "
                    "never trains on them. Give a validation split (validation_fraction) or training__meta_set, "
                    "keep training__meta_topup='share' (topped-up examples stay in training), or give more data.")


def meta_loss_function(task, weight=None, crf=None):
    """The meta loss: mean cross-entropy (binary for multi-label), class-weighted by ``weight``
    (:func:`balanced_meta_weights`) when given; token classification averages over labelled tokens,
    a tagger with a CRF (``crf``) its negative log-likelihood (which has no per-tag weights)."""
    if crf is not None:
        if weight is not None:
            raise ValueError("a CRF's meta loss is its sequence likelihood, which has no per-tag weights.")

        # The meta step's virtual update moves the emissions; the CRF's scores enter as they are.
        def crf_meta_loss(logits, t, edges=None):
            mask = t != IGNORE_INDEX
            return crf.nll(logits.float(), t, mask, edges=edges).sum() / mask.sum().clamp(min=1)

        return crf_meta_loss
    if task == "multilabel":
        return lambda logits, t: F.binary_cross_entropy_with_logits(logits.float(), t.float(), pos_weight=weight)
    if task == "token":
        return lambda logits, t: F.cross_entropy(logits.float().flatten(0, 1), t.long().flatten(), weight=weight,
                                                 ignore_index=IGNORE_INDEX)
    return lambda logits, t: F.cross_entropy(logits.float(), t.long(), weight=weight)


def _embed_with(embedder, texts) -> np.ndarray:
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    fitted = True
    if callable(getattr(embedder, "fit", None)):
        try:
            check_is_fitted(embedder)
        except NotFittedError:
            fitted = False
    if not fitted:  # never fit the user's object in place (scikit-learn convention)
        embedder = clone(embedder).fit(texts)
    emb = embedder.transform(texts)
    emb = emb.toarray() if hasattr(emb, "toarray") else np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"embedder.transform returned shape {emb.shape} for {len(texts)} texts; "
                         "expected one row per text.")
    return emb.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------ the fit state


def _sample_ids(index) -> np.ndarray:
    """A batch's ``index`` entry (tensor or array) as a numpy array."""
    return index.detach().cpu().numpy() if hasattr(index, "detach") else np.asarray(index)


def _check_finite(emb):
    if not np.all(np.isfinite(emb)):
        raise ValueError("the embeddings for HAMR's neighbourhoods contain NaN or infinite values.")


def _quantiles(w: np.ndarray) -> dict:
    if w.size == 0:
        return {"n": 0}
    q = np.quantile(w, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"n": int(w.size), "mean": float(w.mean()), "min": float(q[0]), "q25": float(q[1]),
            "median": float(q[2]), "q75": float(q[3]), "max": float(q[4])}


def _label_key(c):
    return c.item() if hasattr(c, "item") else c


class HAMRFit:
    """One fit's HAMR state (built by the estimator, used by :class:`HAMRNet`).

    Use :meth:`plan` (before the datasets are built; it decides the meta-set split), then
    :meth:`attach` (once the module exists; builds the meta dataset and the embeddings), pass the
    object as ``hamr=`` to :class:`HAMRNet`, fit, and call :meth:`finish`. Both read the fit
    context ``ctx`` (its data, split, seed, and its task adapter ``ctx.adapter``, which validates
    and encodes an explicit meta set, builds datasets and pretrained embeddings); nothing here
    touches the estimator.

    Attributes
    ----------
    config : HAMRTraining
        The validated component, task defaults resolved.
    train_idx : ndarray of int64
        Positions (in the estimator's data) of the samples trained on; the ``index`` of a
        training item is its position in this array.
    meta_idx : ndarray of int64 or None
        Positions of the meta set in the data (None: explicit ``meta_set``, or WNet unused).
    tracker : HardnessTracker or None
    wnet : WeightNet or None
    boost : ndarray of shape (N,)
    meta_losses : list of float
        One meta loss per meta step (every ``meta_interval`` training steps).
    weight_history : list of dict
        Per-epoch summaries of the post-meta WNet weights (overall and per class).
    """

    def __init__(self, config, *, task, seed, classes, train_idx, meta_idx=None,
                 meta_data=None):
        self.config = config
        self.task = task
        self.seed = int(seed)
        self.classes = np.asarray(classes)
        self.train_idx = np.asarray(train_idx, dtype=np.int64)
        self.meta_idx = meta_idx
        self._meta_data = meta_data  # explicit (texts, encoded labels)
        self.ready = False
        self.meta_set_size = 0 if meta_data is None and meta_idx is None else (
            len(meta_idx) if meta_idx is not None else len(meta_data[0]))
        self.tracker = None
        self.wnet = None
        self.wnet_optimizer = None
        self.boost = np.zeros(len(self.train_idx), dtype=np.float64)
        self.meta_losses: list[float] = []
        self.weight_history: list[dict] = []
        self.n_knn_updates = 0
        self._collect = self._capturing = False  # embeddings from the first epoch (attach)
        self._hook = None
        self._release()

    def __repr__(self):
        return (f"HAMRFit(n_train={len(self.train_idx)}, meta_set_size={self.meta_set_size}, "
                f"meta_step={self.config.meta_step!r})")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def plan(cls, config, ctx):
        """Decide the meta set and the training split (no model needed)."""
        task, classes, seed = ctx.task, ctx.classes, ctx.seed
        if task not in ("multiclass", "multilabel", "token"):
            raise ValueError(f"training='hamr' does not support task {task!r}.")
        if task == "token" and ctx.finetune.frozen:
            raise ValueError("training='hamr' for token classification needs finetune='full' or 'lora': "
                             "with finetune='head' the training rows are single words, not sentences.")
        if config.uses_wnet and config.weighs_label_terms and task != "multilabel":
            raise ValueError(f"training__weight_unit='label' supports multi-label classification only, not {task!r}: a "
                             "single-label sample or a sentence has one loss term per sample; use "
                             "training__weight_unit='sample'.")
        if config.uses_wnet and config.weighs_label_terms:
            with warnings.catch_warnings():  # the loss's own warnings come when training builds it
                warnings.simplefilter("ignore")
                loss = ctx.adapter.make_loss(ctx)
            if not getattr(loss, "has_per_label", bool)():
                raise TypeError(f"training__weight_unit='label' needs a loss with per-label terms (a skimb "
                                f"multi-label loss); {type(loss).__name__} has none: use "
                                "training__weight_unit='sample'.")
        if config.uses_wnet and config.class_aware and task != "multiclass" and not config.weighs_label_terms:
            raise ValueError(f"training__class_aware=True supports single-label classification (or multi-label "
                             f"with training__weight_unit='label') only, not {task!r}: a sample of several labels or "
                             "tags has no one class size; use training__class_aware=False"
                             + (", or training__weight_unit='label'." if task == "multilabel" else "."))
        if config.uses_wnet and config.weight_norm == "class" and task != "multiclass":
            raise ValueError(f"training__weight_norm='class' supports single-label classification only, not "
                             f"{task!r}: a sample of several labels or tags has no one class; use "
                             "training__weight_norm='batch'.")
        if config.uses_wnet and config.meta_features == "cached" and config.meta_step != "head":
            raise ValueError(f"training__meta_features='cached' needs training__meta_step='head', got "
                             f"{config.meta_step!r}: that step moves the backbone, so features cached before it "
                             "would be stale; use training__meta_features='live' (or 'auto').")
        train_idx = np.asarray(ctx.train_idx, dtype=np.int64)
        meta_idx = meta_data = None
        if config.uses_wnet:
            if config.meta_set is not None:
                X_meta, y_meta = config.meta_set
                texts = ctx.adapter.validate_X(X_meta, what="training__meta_set X")
                meta_data = (texts, ctx.adapter.encode_known_targets(y_meta, texts, classes, task,
                                                                     "training__meta_set y"))
            elif config.meta_selection == "gbc":  # picked in attach, once the backbone can embed
                if task != "multiclass":
                    raise ValueError(f"training__meta_selection='gbc' supports multi-class classification only, "
                                     f"not {task!r}; use training__meta_selection='validation' or an explicit "
                                     "training__meta_set.")
            else:
                kept, meta_idx = split_meta_set(ctx.y, task, train_idx, ctx.valid_idx, seed=seed,
                                                classes=classes, topup=config.meta_topup)
                if task == "multiclass":
                    _warn_classes_left_out(ctx.y, train_idx, kept, classes)
                train_idx = kept
            if (meta_idx is not None and len(meta_idx) == 0) or (meta_data is not None and len(meta_data[0]) == 0):
                raise ValueError("HAMR's meta set is empty; pass training__meta_set=(X, y) or more data.")
            if len(train_idx) == 0:
                raise ValueError("HAMR's meta set took every training example; pass training__meta_set=(X, y) "
                                 "or more data.")
        return cls(config, task=task, seed=seed, classes=classes, train_idx=train_idx,
                   meta_idx=meta_idx, meta_data=meta_data)

    def attach(self, ctx):
        """Build the meta dataset and the embeddings; called after the training dataset exists.

        Token classification: the training items are the windows of ``train_ds``
        (``train_ds.sentence_index`` gives each one's sentence), so from here on ``train_idx``
        holds one sentence position per window, and a window's labels for the per-tag summaries
        are the tags its sentence contains.
        """
        cfg = self.config
        data, y_enc, module, device = ctx.X, ctx.y, ctx.module, ctx.device
        if self.task == "token":
            self.train_idx = np.asarray(ctx.train_ds.sentence_index, dtype=np.int64)
            present = np.zeros((len(self.train_idx), len(self.classes)), dtype=bool)
            for row, i in enumerate(self.train_idx):
                present[row, y_enc[i]] = True
            self.train_labels = present
        else:
            self.train_labels = y_enc[self.train_idx]
        self.n_train = len(self.train_idx)
        if cfg.uses_knn and cfg.knn_k >= self.n_train:  # as KNNHead warns of its k
            warn_caller(f"HAMR: training__knn_k={cfg.knn_k} is at least the {self.n_train} training rows: every hard "
                        "row's neighbours are all the rows, so the kNN boost raises every row alike and changes no "
                        f"draw; give training__knn_k < {self.n_train}.")
        if cfg.uses_wnet:
            if self._meta_data is not None:
                texts, y_meta = self._meta_data
            else:
                if self.meta_idx is None:  # meta_selection="gbc"
                    self.meta_idx = self._gbc_meta_idx(ctx)
                    self.meta_set_size = len(self.meta_idx)
                texts, y_meta = [data[i] for i in self.meta_idx], y_enc[self.meta_idx]
            self._meta_ds = ctx.adapter.datasets(texts, y_meta, None, np.arange(len(texts)), None,
                                                 module, device)[0]
            self._meta_weight = (balanced_meta_weights(y_meta, self.task, len(self.classes))
                                 if cfg.meta_loss == "balanced" else None)
        # The first epoch's own forwards give the embeddings (texts; a token model's head sees
        # tokens, not sentences, so NER keeps the separate pass).
        self._collect = bool(cfg.uses_knn and cfg.embedder == "first_epoch" and self.task != "token"
                             and isinstance(getattr(module, "dropout", None), torch.nn.Module))
        if cfg.uses_knn and not self._collect:
            rows = self.train_idx
            if self.task == "token":  # one embedding per sentence, shared by its windows
                sentences, rows = np.unique(self.train_idx, return_inverse=True)
                train_texts = [" ".join(data[i]) for i in sentences]
            else:
                train_texts = [data[i] for i in rows]
            emb = (ctx.adapter.pretrained_embeddings(train_texts, module, device) if isinstance(cfg.embedder, str)
                   else _embed_with(cfg.embedder, train_texts))
            if self.task == "token":
                emb = emb[rows]
            _check_finite(emb)
            self._embeddings = emb
        self._meta_data = None
        self.ready = True
        return self

    def _gbc_meta_idx(self, ctx) -> np.ndarray:
        rows = self.train_idx
        features = ctx.adapter.pretrained_embeddings([ctx.X[i] for i in rows], ctx.module, ctx.device)
        picked = gbc_meta_set(features, ctx.y[rows], n_clusters=self.config.meta_clusters, random_state=self.seed)
        return rows[picked]

    # -- used by the net and the callback -----------------------------------------------------
    def begin(self, net):
        """Fresh WNet, tracker, meta loader and index (on_train_begin)."""
        cfg = self.config
        self.tracker = HardnessTracker(self.n_train, rule=cfg.hardness_update, momentum=cfg.hardness_momentum)
        self.boost = np.zeros(self.n_train, dtype=np.float64)
        self.meta_losses, self.weight_history, self.n_knn_updates = [], [], 0
        self._epoch_idx, self._epoch_w = [], []
        self.n_steps = 0
        if not cfg.uses_wnet:
            return
        # WNet's initialisation draws from its own generator: the task model's random stream
        # (dropout, batch order) is the same as without HAMR.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 1)
            self.wnet = WeightNet(n_features=self._n_features).to(net.device)
        self._class_feature = None
        if cfg.class_aware:
            sizes = (label_size_features(self.train_labels) if self.config.weighs_label_terms
                     else class_size_features(self.train_labels, len(self.classes)))
            self._class_feature = torch.as_tensor(sizes, device=net.device)
        self.wnet_optimizer = make_wnet_optimizer(self.wnet, cfg.wnet_lr)
        self.meta_update_lr = float(cfg.meta_update_lr if cfg.meta_update_lr is not None else net.lr)
        bs = net.batch_size if net.batch_size != -1 else len(self._meta_ds)
        gen = torch.Generator().manual_seed(self.seed + 2)
        if isinstance(self._meta_ds, EncodedTextDataset):
            collate = net.pad_collate_fn()
            self._meta_loader = DataLoader(self._meta_ds, batch_size=bs, shuffle=True, generator=gen,
                                           collate_fn=collate)
        else:
            self._meta_loader = DataLoader(self._meta_ds, batch_size=bs, shuffle=True, generator=gen)
        self._meta_iter = iter(self._meta_loader)
        self._meta_cache, self._meta_cache_step = None, 0
        train_bs = net.batch_size if net.batch_size != -1 else self.n_train
        self._meta_refresh_steps = max(1, math.ceil(cfg.epoch_size(self.n_train) / train_bs) // cfg.meta_refresh)
        weight = None if self._meta_weight is None else torch.as_tensor(self._meta_weight, dtype=torch.float32,
                                                                               device=net.device)
        crf = getattr(net.module_, "crf", None) if self.task == "token" else None
        self.meta_loss_fn, self._meta_crf = meta_loss_function(self.task, weight, crf), crf is not None
        self._capturing, self._pending, self._seen = self._collect, None, None
        if self._collect:
            self._embeddings = None
        elif cfg.uses_knn:
            self._index = build_index(self._embeddings, cfg.knn_index, random_state=self.seed)

    @property
    def _n_features(self) -> int:
        """WNet's inputs besides the loss: a class size, and per label whether the term is a positive."""
        return (2 if self.config.weighs_label_terms else 1) if self.config.class_aware else 0

    def wnet_features(self, target):
        """WNet's inputs besides the losses for a batch of encoded targets (None: the loss alone);
        per label, one row per (sample, label) term: ``[±1 positive or negative, label size]``."""
        if self._class_feature is None:
            return None
        if self.config.weighs_label_terms:
            sizes = self._class_feature
            sign = 2.0 * (target > 0.5).to(sizes.dtype) - 1.0
            return torch.stack([sign, sizes.expand_as(sign)], dim=-1).reshape(-1, 2)
        return self._class_feature[target.long()].unsqueeze(-1)

    def weight_groups(self, target):
        """The groups within which a batch's weights are normalised (None: the whole batch)."""
        return target if self.config.weight_norm == "class" else None

    # -- embeddings from the first epoch ------------------------------------------------------
    def expect_features(self, index):
        """The next batch forward's pooled features belong to the samples ``index``."""
        if self._capturing:
            self._pending = _sample_ids(index)

    def _capture(self, module, args):
        if self._pending is None:  # the meta batch, validation: not training samples
            return
        feats = args[0].detach().float().cpu().numpy()
        if self._embeddings is None:
            self._embeddings = np.zeros((self.n_train, feats.shape[1]), dtype=np.float32)
            self._seen = np.zeros(self.n_train, dtype=bool)
        self._embeddings[self._pending] = feats
        self._seen[self._pending] = True
        self._pending = None

    def _start_capture(self, net, sampler):
        sampler.set_draw_weights(None, None)  # every sample once: each gets its embedding
        self._hook = net.module_.dropout.register_forward_pre_hook(self._capture)

    def _end_capture(self):
        self._remove_hook()
        self._capturing = False
        if self._seen is None or not self._seen.all():
            missing = self.n_train if self._seen is None else int((~self._seen).sum())
            raise RuntimeError(f"HAMR's first epoch did not embed {missing} training samples; "
                               "use training__embedder='pretrained'.")
        _check_finite(self._embeddings)
        self._seen = None
        self._index = build_index(self._embeddings, self.config.knn_index, random_state=self.seed)

    def _remove_hook(self):
        hook = getattr(self, "_hook", None)
        if hook is not None:
            hook.remove()
        self._hook = None

    @property
    def meta_fixed_params(self):
        """What the meta step's virtual update leaves at θ: a CRF, whose scores the meta loss reads
        from the live module."""
        return ("crf",) if self._meta_crf else None

    def meta_loss_for(self, edges):
        """The meta loss of a meta batch whose windows have ``sentence_edges`` ``edges`` (which only
        a CRF's likelihood reads)."""
        return partial(self.meta_loss_fn, edges=edges) if self._meta_crf and edges is not None else self.meta_loss_fn

    def next_meta_batch(self, net):
        """The meta step's meta inputs, targets and (a tagger's) windows' ``sentence_edges`` or None:
        the next batch of the meta set (cycled, reshuffled every pass), or with
        ``meta_features="cached"`` the whole meta set's cached features, re-encoded every
        ``_meta_refresh_steps`` steps."""
        if self.config.meta_features == "cached":
            stale = self.n_steps - self._meta_cache_step >= self._meta_refresh_steps
            frozen = not isinstance(self._meta_ds, EncodedTextDataset)  # features that never change
            if self._meta_cache is None or (stale and not frozen):
                self._meta_cache, self._meta_cache_step = self._encode_meta_set(net), self.n_steps
            return self._meta_cache
        try:
            batch = next(self._meta_iter)
        except StopIteration:
            self._meta_iter = iter(self._meta_loader)
            batch = next(self._meta_iter)
        X, y = unpack_data(batch)
        return module_inputs(X, net.device), to_tensor(y, device=net.device), sentence_edges(X, net.device)

    def _encode_meta_set(self, net):
        """``({"features": F}, targets, edges)`` of the whole meta set at the current parameters
        (eval mode, no graph; no random number is drawn). Token classification: its labelled
        tokens, as one sequence; under a CRF, whose likelihood chains a window's words, its windows
        as rows (padded, with their ``sentence_edges``)."""
        module, ds = net.module_, self._meta_ds
        if isinstance(ds, EncodedTextDataset):
            collate = net.pad_collate_fn()
            batches = sorted_batches([len(ids) for ids in ds.input_ids], self._meta_loader.batch_size)
            loader = DataLoader(ds, batch_sampler=batches, collate_fn=collate)
        else:  # a frozen backbone's features
            loader = DataLoader(ds, batch_size=len(ds))
        windows = self.task == "token" and getattr(module, "crf", None) is not None
        features, targets, edges, was_training = [], [], [], module.training
        module.eval()
        try:
            with torch.no_grad():
                for batch in loader:
                    X, y = unpack_data(batch)
                    edges.append(sentence_edges(X, net.device))
                    X = module_inputs(X, net.device)
                    y = to_tensor(y, device=net.device)
                    f = X["features"] if "features" in X else module.features(**X)
                    if self.task == "token" and not windows:
                        keep = y != IGNORE_INDEX
                        f, y = f[keep], y[keep]
                    features.append(f.float())
                    targets.append(y)
        finally:
            module.train(was_training)
        if windows:
            return ({"features": _pad_cat(features, 0.0)}, _pad_cat(targets, IGNORE_INDEX),
                    None if edges[0] is None else torch.cat(edges))
        features, targets = torch.cat(features), torch.cat(targets)
        if self.task == "token":  # one "sentence" of every labelled token: the meta loss's shape
            features, targets = features.unsqueeze(0), targets.unsqueeze(0)
        return {"features": features}, targets, None

    def meta_due(self) -> bool:
        """Whether this training step runs the meta step (every ``meta_interval`` steps,
        starting with the first)."""
        return self.n_steps % self.config.meta_interval == 0

    def record_step(self, index, result):
        idx = _sample_ids(index)
        weights = result.weights.detach()
        if self.config.weighs_label_terms:  # (sample, label) terms: a sample's weight is that of its whole loss
            weights = weights.reshape(len(idx), -1)
            self.tracker.update(idx, loss_weighted_mean(weights, result.losses.detach().reshape(weights.shape)))
        else:
            self.tracker.update(idx, weights)
        self._epoch_idx.append(idx.astype(np.int64))
        self._epoch_w.append(weights.float().cpu().numpy())
        if result.meta_loss is not None:
            self.meta_losses.append(float(result.meta_loss))
        self.n_steps += 1

    def epoch_begin(self, net):
        cfg = self.config
        self._epoch_idx, self._epoch_w = [], []
        self._epoch_first_step = len(self.meta_losses)
        if not cfg.resampling:
            return
        sampler = getattr(net, "batch_sampler_", None)
        if sampler is None or not hasattr(sampler, "set_draw_weights"):
            raise RuntimeError("HAMR's resampling needs the net's batch sampler (batch_sampler_).")
        if not cfg.group_by_length:  # one batch per "mega-batch": random batches, as the reference
            sampler.mega_batch_mult = 1
        if self._capturing:
            self._start_capture(net, sampler)
            return
        p = sampling_probabilities(self.tracker.m, self.boost if cfg.uses_knn else None,
                                   hardness_alpha=cfg.hardness_alpha, knn_lambda=cfg.knn_lambda,
                                   temperature=cfg.temperature)
        sampler.set_draw_weights(p, cfg.epoch_size(self.n_train), cfg.draw_scheme)

    def epoch_end(self, net):
        cfg = self.config
        if not cfg.uses_wnet:
            return
        epoch = len(net.history)
        steps = self.meta_losses[self._epoch_first_step:]  # the epoch's meta steps
        if steps:
            net.history.record("meta_loss", float(np.mean(steps)))
        self.weight_history.append(self._summarise(epoch))
        self._epoch_idx, self._epoch_w = [], []
        if self._capturing:
            self._end_capture()
        if cfg.uses_knn and epoch % cfg.knn_build_freq == 0:
            hard = self.tracker.hard_set(cfg.knn_ratio)
            self.boost = neighbor_boost(self._index, self._embeddings, hard, cfg.knn_k)
            self.n_knn_updates += 1

    def _summarise(self, epoch) -> dict:
        idx = np.concatenate(self._epoch_idx) if self._epoch_idx else np.zeros(0, np.int64)
        empty = np.zeros((0, len(self.classes)) if self.config.weighs_label_terms else 0)
        w = np.concatenate(self._epoch_w) if self._epoch_w else empty
        out = {"epoch": int(epoch), **_quantiles(w.reshape(-1)), "per_class": {}}
        labels = self.train_labels[idx] if idx.size else None
        for c, name in enumerate(self.classes.tolist()):
            if labels is None:
                mask = np.zeros(0, dtype=bool)
            elif labels.ndim == 2:  # multi-label, or the tags a token example contains
                mask = labels[:, c] > 0
            else:
                mask = labels == c
            w_c = w[:, c] if self.config.weighs_label_terms else w  # per label: the label's positive terms
            out["per_class"][_label_key(name)] = _quantiles(w_c[mask] if mask.size else w_c[:0])
        return out

    def end(self, net=None):
        self._release()

    def _release(self):
        """Drop what is only needed while training (data, loaders, the FAISS index, the hook)."""
        self._remove_hook()
        for name in ("_meta_ds", "_meta_loader", "_meta_iter", "_meta_cache", "_meta_weight", "_class_feature", "_embeddings", "_index",
                     "meta_loss_fn",
                     "_epoch_idx", "_epoch_w", "_seen", "_pending"):
            setattr(self, name, None)

    def finish(self, cached=None):
        """The HAMR results (``hardness_`` and friends) as plain data (arrays, numbers, the WNet
        state), so that a cached stage 1 can restore them; ``cached`` is that data when stage 1
        came from the cache (nothing ran here). Drops the training-time state."""
        self._release()
        self.train_labels = None
        return cached if cached is not None else self._fitted_attributes()

    def _fitted_attributes(self):
        if not self.ready:
            return None
        n = len(self.train_idx)
        wnet_state = None
        if self.wnet is not None:
            wnet_state = {k: v.detach().cpu().clone() for k, v in self.wnet.state_dict().items()}
        self.wnet_optimizer = None
        return {
            "hardness_": self.tracker.hardness_ if self.tracker is not None else np.full(n, 1.0 / n),
            "hamr_train_indices_": self.train_idx.copy(),
            "meta_set_indices_": None if self.meta_idx is None else self.meta_idx.copy(),
            "meta_set_size_": int(self.meta_set_size),
            "neighbor_boost_": np.asarray(self.boost, dtype=np.float64).copy(),
            "sample_weights_history_": list(self.weight_history),
            "meta_loss_history_": np.asarray(self.meta_losses, dtype=np.float64),
            "meta_objective_": self.config.meta_loss if self.config.uses_wnet else None,
            "resampling_": bool(self.config.resampling),
            "weight_norm_": self.config.weight_norm if self.config.uses_wnet else None,
            "weight_unit_": self.config.weight_unit if self.config.uses_wnet else None,
            "wnet_": wnet_state,
        }


def hamr_attributes(fitted: dict) -> dict:
    """HAMR's fitted attributes from :meth:`HAMRFit.finish`'s plain data (copies, so that
    estimators sharing a cached stage 1 share no mutable object)."""
    out = {}
    for name, value in fitted.items():
        if name == "wnet_":
            if value is not None:  # on the CPU, so that a pickled model loads anywhere
                with torch.random.fork_rng(devices=[]):  # its initial draws, overwritten, leave the caller's RNG
                    wnet = WeightNet(n_features=value["linear1.weight"].shape[1] - 1)
                wnet.load_state_dict(value)
                value = wnet.eval()
        else:
            value = copy.deepcopy(value)
        out[name] = value
    return out


def _pad_cat(rows, value):
    """Batches of rows ``(B, T, ...)`` of several widths T, padded with ``value`` and stacked."""
    width = max(r.shape[1] for r in rows)
    return torch.cat([torch.nn.functional.pad(r, (0, 0) * (r.dim() - 2) + (0, width - r.shape[1]), value=value)
                      for r in rows])


def unit_losses(logits, y, criterion, *, pad=None, sample_weight=None, crf=None, edges=None, per_label=False,
                token_loss="mean"):
    """One forward's losses per unit WNet weighs, and each unit's term of the weighted update loss.

    Returns ``(losses, terms)``: ``losses`` are WNet's inputs and the hardness's units (a sample,
    a (sample, label) term, a tagger's window), times ``sample_weight`` where given. The loss that
    trains the model at the units' weights ``w`` is ``mean(w · losses)`` where ``terms`` is None, else
    ``sum(w · terms)``; the meta step's virtual update is that same loss, so WNet learns what its
    weights do to the real update. A tagger's window loss is its largest token loss, or with
    ``crf`` its negative log-likelihood per labelled token (so that windows of any length share
    one scale); its term is every labelled token's loss (``token_loss="mean"``; a CRF's
    whole-window likelihood) over the batch's labelled tokens: with weights of 1, the net's own
    loss. ``edges``: the windows' ``sentence_edges`` (:meth:`~skimb.tokens.LinearChainCRF.nll`'s).
    """
    sw = sample_weight

    def weighted(loss):
        return loss if sw is None else loss * sw

    if per_label:  # one loss per (sample, label) term, each weighted by WNet
        loss = criterion.per_label(logits.float(), y)
        return (loss if sw is None else loss * sw.unsqueeze(-1)), None
    if pad is None:
        return weighted(per_item_losses(criterion(logits.float(), y), len(y), criterion)), None
    mask = y != pad
    n_labelled = mask.sum().clamp(min=1)
    if crf is not None:
        nll = crf.nll(logits.float(), y, mask, edges=edges)
        return weighted(nll / mask.sum(1).clamp(min=1)), weighted(nll) / n_labelled
    token_losses = per_item_losses(criterion(logits.float()[mask], y[mask]), int(mask.sum()), criterion)
    window = token_sentence_index(y, pad)
    loss = weighted(per_sentence_losses(token_losses, window, len(y), reduce="max"))
    if token_loss != "mean":
        return loss, None
    # every labelled token learns at its window's weight (the max token loss only ranks the windows)
    return loss, weighted(per_sentence_losses(token_losses, window, len(y), reduce="sum")) / n_labelled


def _weights_only_step(model, wnet, per_sample, inputs, target, features=None, groups=None) -> MetaStepResult:
    """A step between meta steps (``meta_interval > 1``): the batch forward and WNet's current
    weights of its losses, WNet unchanged (the cost of a plain step)."""
    losses, terms = split_losses(per_sample(_logits(model(**inputs)), target))
    with torch.no_grad():
        weights = batch_weights(wnet, losses.detach(), features=features, groups=groups)
    return MetaStepResult(weights=weights, pre_weights=weights, losses=losses, meta_loss=None,
                          wnet_grad_norm=0.0, terms=terms)


class HAMRCallback(Callback):
    """HAMR's per-epoch work (added by :class:`HAMRNet` to its default callbacks)."""

    def __init__(self, hamr: HAMRFit):
        self.hamr = hamr

    def _active(self):
        return self.hamr is not None and self.hamr.ready

    def on_train_begin(self, net, **kwargs):
        if self._active():
            self.hamr.begin(net)

    def on_epoch_begin(self, net, **kwargs):
        if self._active():
            self.hamr.epoch_begin(net)

    def on_epoch_end(self, net, **kwargs):
        if self._active():
            self.hamr.epoch_end(net)

    def on_train_end(self, net, **kwargs):
        if self._active():
            self.hamr.end(net)


class HAMRNet(RDropNet):
    """:class:`~skimb.training.TransformerNet` with HAMR's bi-level step and resampling, and R-Drop's
    consistency term on its update where ``rdrop_alpha`` > 0.

    Parameters
    ----------
    hamr : HAMRFit or None
        The fit's HAMR state (after :meth:`HAMRFit.attach`). ``None`` or a state that is not
        attached gives the parent's behaviour (used when the net is rebuilt for prediction).
    *args, **kwargs
        As for :class:`~skimb.training.RDropNet` (``rdrop_alpha``, ``multilabel``) and
        :class:`~skimb.training.TransformerNet`.

    Notes
    -----
    A step (WNet in use): the meta step (:func:`~skimb.training.hamr.meta_step`,
    ``keep_graph=True``) computes the per-sample losses ``l_i`` (the net's criterion, times the
    sample's ``sample_weight`` when there is one), updates WNet from the meta examples (one meta
    batch, or the whole meta set's cached features) and returns the
    post-meta weights ``w``; the real loss is ``mean(w · l)`` (``mean(l)`` with
    ``meta_weighting=False``), back-propagated through the same forward. A tagger's real loss
    weighs each window's labelled tokens (or a CRF's window likelihood) by the window's ``w``,
    over the batch's labelled tokens (``unit_losses``' terms), and the virtual step descends
    that same loss. The hardness tracker
    records ``w``. With ``rdrop_alpha`` > 0 (R-Drop) a second forward of the batch, with its own
    dropout, is weighted by the same ``w``; the loss is the mean of the two passes' losses plus
    ``rdrop_alpha`` times their symmetric KL divergence. Without WNet (``meta_weighting`` and
    ``resampling`` off) a step is :class:`~skimb.training.RDropNet`'s.
    """

    def __init__(self, *args, hamr: HAMRFit | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.hamr = hamr

    def _hamr_active(self) -> bool:
        return self.hamr is not None and self.hamr.ready

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        if self.hamr is not None:
            callbacks.append(("hamr", HAMRCallback(self.hamr)))
        return callbacks

    def _draws_epochs(self) -> bool:
        return self._hamr_active() and self.hamr.config.resampling

    def train_step_single(self, batch, **fit_params):
        hamr = self.hamr
        if not self._hamr_active() or not hamr.config.uses_wnet:
            return super().train_step_single(batch, **fit_params)
        if fit_params:
            raise TypeError(f"HAMR training takes no forward parameters, got {sorted(fit_params)}.")
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        inputs = module_inputs(Xi, self.device)
        target = to_tensor(yi, device=self.device)
        sw = Xi.get("sample_weight") if isinstance(Xi, dict) else None
        sw = None if sw is None else to_tensor(sw, device=self.device).float()
        criterion = self.criterion_
        forward = []

        pad = self.label_pad_id
        crf = getattr(self.module_, "crf", None) if pad is not None else None

        edges = sentence_edges(Xi, self.device)

        def pass_losses(logits, y):
            return unit_losses(logits, y, criterion, pad=pad, sample_weight=sw, crf=crf, edges=edges,
                               per_label=hamr.config.weighs_label_terms, token_loss=hamr.config.token_loss)

        def per_sample(logits, y):
            if not forward:  # the batch forward at θ: the step's y_pred
                forward.append(logits)
            return pass_losses(logits, y)

        hamr.expect_features(Xi["index"])
        wnet_features, wnet_groups = hamr.wnet_features(target), hamr.weight_groups(target)
        with self.autocast():
            if hamr.meta_due():
                mode = hamr.config.meta_step
                meta_inputs, meta_target, meta_edges = hamr.next_meta_batch(self)
                try:
                    result = meta_step(
                        self.module_, hamr.wnet, hamr.wnet_optimizer, per_sample, inputs, target,
                        meta_inputs, meta_target, hamr.meta_loss_for(meta_edges), meta_update_lr=hamr.meta_update_lr,
                        mode=mode, head_param_names=HEAD_PARAM_NAMES if mode == "head" else None,
                        detach_mean=hamr.config.detach_mean, keep_graph=True, wnet_features=wnet_features,
                        wnet_groups=wnet_groups, fixed_param_names=hamr.meta_fixed_params)
                except FloatingPointError as exc:  # the step's losses or the meta loss: the epoch, as plain steps say
                    raise FloatingPointError(f"HAMR's meta step in epoch {len(self.history)}: {exc} The model keeps "
                                             "the parameters of the last finite step.") from exc
            else:
                result = _weights_only_step(self.module_, hamr.wnet, per_sample, inputs, target, wnet_features,
                                            wnet_groups)
        losses = result.losses
        weights = result.weights.to(losses.dtype) if hamr.config.meta_weighting else torch.ones_like(losses)
        loss = weighted_update_loss(weights, losses, result.terms)
        if float(self.rdrop_alpha) > 0:  # R-Drop: a second dropout pass, with the first pass's weights
            with self.autocast():
                second = _logits(self.module_(**inputs))
            loss = (loss + weighted_update_loss(weights, *split_losses(pass_losses(second, target)))) / 2 \
                + self.consistency(forward[0], second, target)
        self.finite_loss(loss).backward()
        hamr.record_step(Xi["index"], result)
        return {"loss": loss.detach(), "y_pred": forward[0].detach()}

