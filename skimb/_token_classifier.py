"""TransformerTokenClassifier: scikit-learn token classification (NER, BIO tags) on a
Hugging Face backbone.

It is a :class:`~skimb.TransformerClassifier` whose fit hooks work on sentences
(lists of words) and tag lists instead of texts and labels; everything else
(losses, LoRA, the skorch net, seeding, early stopping, pickling, ``save_pretrained``)
is the parent's.

Hooks for the imbalance methods
-------------------------------
* The torch module (``net_.module_``) is a :class:`~skimb.backbones.SequenceClassifier` over a
  token-level encoder (``TextEncoder(pooling=None)``):
  ``features(input_ids, attention_mask)`` gives per-sub-token hidden states
  ``(B, T, d)`` and ``head`` is the ``nn.Linear(d, n_tags)`` applied to every
  token (CALoRA wraps it; its stage 2 can run on :meth:`TransformerTokenClassifier.token_features`,
  one row per word).
* The training examples of the net are *windows* (a sentence longer than
  ``max_length`` gives several); the train dataset's ``sentence_index`` says which
  sentence each window comes from. In a batch the net flattens logits ``(B, T, C)``
  and targets ``(B, T)`` to the labelled tokens (``target != -100``), in row-major
  order; :func:`token_sentence_index` gives the row of each of those tokens and
  :func:`per_sentence_losses` reduces per-token losses to one loss per row (HAMR's
  "max token loss of the sentence").
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import re
from collections import defaultdict

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import apply_text_tags, check_sample_weight
from ._classifier import TransformerClassifier, _FeatureDataset
from ._validation import check_token_lists
from .utils._split import rarest_tag_keys
from .backbones import EncodedTextDataset, SequenceClassifier, TextEncoder, pad_collate, sorted_batches
from .tokens import (IGNORE_INDEX, align_word_labels, constrained_decode, convert_scheme, merge_windows,
                     per_sentence_losses, repair_bio, token_sentence_index, tokenize_words, validate_tags)

__all__ = ["TransformerTokenClassifier", "per_sentence_losses", "token_sentence_index"]

_DECODINGS = ("repair", "constrained")
_TAG_POS = re.compile(r"tag_lists\[(\d+)\]\[(\d+)\]")


class TagWeightedLoss(nn.Module):
    """Multiplies a per-token loss by the weight of the token's true tag (``class_weight``).

    Targets below 0 (ignored tokens) get weight 0. ``fitted_attributes`` and ``set_epoch``
    are passed through to the wrapped loss.
    """

    def __init__(self, loss: nn.Module, tag_weight):
        super().__init__()
        self.loss = loss
        self.register_buffer("tag_weight", torch.as_tensor(np.asarray(tag_weight), dtype=torch.float32))

    def forward(self, logits, target):
        w = self.tag_weight.to(logits.device)[target.clamp(min=0)]
        return self.loss(logits, target) * torch.where(target >= 0, w, torch.zeros_like(w))

    def fitted_attributes(self):
        fitted = getattr(self.loss, "fitted_attributes", None)
        return fitted() if callable(fitted) else {}

    def set_epoch(self, epoch, max_epochs=None):
        set_epoch = getattr(self.loss, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch, max_epochs)


# ----------------------------------------------------------------- helpers for HAMR & co.
def _tag_indices(tags, classes) -> np.ndarray:
    """IOB2 tag lists -> an object array of per-sentence index arrays into ``classes``."""
    index = {c: k for k, c in enumerate(np.asarray(classes).tolist())}
    return _as_object_array([np.array([index[t] for t in sent], dtype=np.int64) for sent in tags])


def _as_object_array(rows) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def _flat(y_enc) -> np.ndarray:
    rows = list(y_enc)
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------ estimator
class TransformerTokenClassifier(TransformerClassifier):
    """Token classifier (NER with BIO tags) that fine-tunes a transformer, with imbalance methods.

    ``X`` is a list of sentences, each a list of words (strings); ``y`` a list of tag
    lists of the same lengths (the sklearn-crfsuite convention), e.g.
    ``X = [["John", "lives", "in", "New", "York"]]``,
    ``y = [["B-PER", "O", "O", "B-LOC", "I-LOC"]]``.

    Each word is split into sub-tokens; only the first sub-token of a word carries its tag
    (the others, and the special tokens, are ignored by the loss) and a word's prediction is
    read from its first sub-token. Sentences longer than ``max_length`` sub-tokens are cut
    into overlapping windows of whole words (``stride``); every window is a training example
    in which only the words it is *responsible* for are labelled, and at prediction time each
    word takes its scores from its responsible window (the one where it is farthest from a
    cut edge), so every word gets exactly one prediction and nothing is truncated.

    Parameters
    ----------
    backbone, finetune, max_length, batch_size, max_epochs, lr, weight_decay, warmup_ratio,
    max_grad_norm, dropout, lora_rank, lora_alpha, lora_dropout, lora_target_modules, loss,
    gamma, alpha, beta, tau, max_gamma, early_stopping, patience, device, amp, random_state,
    verbose, callbacks
        As in :class:`~skimb.TransformerClassifier`, with these differences:
        ``max_length`` is the window length in sub-tokens (special tokens included);
        losses are computed per labelled token; ``batch_size`` counts windows, except with
        ``finetune="head"``, where it counts tokens (see below).
    class_weight : None, "balanced" or dict, default=None
        Per-**tag** weights (keys are tags such as ``"B-PER"``, in the IOB2 scheme),
        multiplying each token's loss; "balanced" is scikit-learn's ``n / (C n_c)`` over
        the training tokens. Weights are scaled to mean 1 over the training tokens.
        ``sample_weight`` in ``fit`` weights whole sentences.
    validation_fraction : float or None, default=None
        Share of the *sentences* held out for the validation loss and early stopping
        (stratified by the sentence's rarest entity type when possible).
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"
        Tagging scheme of ``y`` in ``fit`` and ``score`` (aliases "BIO", "IOB", "BIOES").
        Tags are converted to IOB2 when fitting (the lenient conlleval reading: an ``I-X``
        that starts an entity becomes ``B-X``); **predictions are always IOB2** and
        ``classes_`` are IOB2 tags.
    stride : int or None, default=None
        Maximum overlap, in sub-tokens, between consecutive windows of a long sentence;
        ``None`` is a quarter of a window's content (``(max_length - n_special) // 4``).
    decoding : {"repair", "constrained"}, default="repair"
        How per-word scores become a valid IOB2 sequence: "repair" takes the argmax tag of
        each word and turns an ``I-X`` that continues no ``X`` entity into ``B-X``
        (:func:`skimb.tokens.repair_bio`); "constrained" is Viterbi decoding over valid
        sequences only (:func:`skimb.tokens.constrained_decode`).
    head, routing, k, rank, calora_alpha, calora_epochs, calora_lr, memory
        CALoRA as in :class:`~skimb.TransformerClassifier`, routed **per token**: stage 2
        trains the class adapters on the stage-1 hidden state of every training word, and at
        inference each token's adapters are chosen from its own stage-1 tag ranking.
    training : {"standard", "hamr"}, default="standard"
        ``"hamr"``: HAMR as in :class:`~skimb.TransformerClassifier`, for NER (METHODS.md §3):
        a training example's loss is the **largest token loss** over its labelled words
        (:func:`skimb.tokens.per_sentence_losses`); WNet weights it, and the real update is
        the mean of the weighted per-example losses, as in the reference code. The examples
        are the windows (one per sentence unless a sentence is longer than ``max_length``).
        The balanced meta set tops up the validation split (or a 10% held-out share) with
        training sentences that reduce the per-entity-type span deficit to the median
        (:func:`skimb.training.hamr.build_balanced_meta_set_ner`). Needs ``finetune="full"``
        or ``"lora"``.
    meta_weighting, resampling, knn, hardness_alpha, hardness_momentum, hardness_update, \
knn_k, knn_ratio, knn_index, knn_build_freq, oversample_ratio, temperature, meta_update_lr, meta_step
        As in :class:`~skimb.TransformerClassifier`.
    knn_lambda : float, default=0.1
        Neighbourhood boost of the sampling (the reference's NER default, 0.7 for texts).
    wnet_lr : float, default=3e-4
        Adam learning rate of WNet (the reference's NER default, 1e-4 for texts).
    meta_set : None or (X_meta, y_meta), default=None
        An explicit meta set: sentences (lists of words) and their tags in ``scheme``.
    embedder : None or transformer, default=None
        Sentence embeddings for the kNN boost, computed on each sentence's words joined by
        spaces. ``None``: the backbone's own mean-pooled pretrained features.

    Notes
    -----
    * Malformed tags (not ``O`` or ``PREFIX-TYPE`` with a prefix of ``scheme``) and
      sentences whose numbers of words and tags differ raise a ``ValueError`` naming the
      sentence and position. Invalid *transitions* in gold tags are read leniently.
    * Empty sentences are allowed: they are skipped in training and predicted as ``[]``
      (``predict_proba`` gives a ``(0, n_tags)`` array).
    * ``finetune="head"``: the frozen backbone's hidden states of every word are computed
      once per ``fit`` (not cached across fits) and the head is trained on them, one row per
      word; ``batch_size`` then counts words.
    * ``score`` is the span-level micro-F1 with seqeval's strict IOB2 semantics
      (:func:`skimb.metrics.span_f1_score`).
    * Words that tokenize to nothing (``""``, zero-width characters) are read as the
      tokenizer's unknown token, so they still get a prediction.

    Attributes
    ----------
    classes_ : ndarray of str
        The tags: ``"O"`` then ``"B-X"``, ``"I-X"`` for every entity type X seen in ``y``
        (sorted).
    entity_types_ : list of str
        Entity types, sorted.
    class_weight_ : ndarray of shape (n_tags,)
        Per-tag loss weights (ones without ``class_weight``).
    net_, history_, n_iter_, loss_
        As in :class:`~skimb.TransformerClassifier`.
    hardness_, neighbor_boost_, hamr_train_indices_, meta_set_size_, meta_set_indices_, \
sample_weights_history_, meta_loss_history_, wnet_
        HAMR (``training="hamr"``), as in :class:`~skimb.TransformerClassifier`, with one
        entry per training *window*: ``hamr_train_indices_[j]`` is the sentence (position in
        ``X``) of window j. ``sample_weights_history_``'s per-tag summaries group the windows
        by the tags their sentence contains.

    Examples
    --------
    >>> from skimb import TransformerTokenClassifier
    >>> ner = TransformerTokenClassifier(max_length=64, decoding="constrained")
    >>> ner.get_params()["scheme"]
    'IOB2'
    """

    def __init__(
        self,
        backbone=None,
        *,
        finetune="full",
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
        scheme="IOB2",
        stride=None,
        decoding="repair",
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
        knn_lambda=0.1,
        knn_ratio=0.1,
        knn_index="flat",
        knn_build_freq=1,
        oversample_ratio=1.2,
        temperature=1.0,
        wnet_lr=3e-4,
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
        self.scheme = scheme
        self.stride = stride
        self.decoding = decoding
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
        tags = apply_text_tags(super().__sklearn_tags__(), multi_label=False)
        # Not a scikit-learn "classifier" (as sklearn-crfsuite's CRF): ``y`` is a list of tag
        # lists, which StratifiedKFold cannot stratify, so cv=<int> must mean KFold.
        tags.estimator_type = None
        tags.classifier_tags = None
        return tags

    # ------------------------------------------------------------ validation
    def _check_params(self):
        lr = super()._check_params()
        validate_tags([], self.scheme)  # raises a clear error for an unknown scheme
        if self.decoding not in _DECODINGS:
            raise ValueError(f"decoding must be one of {_DECODINGS}, got {self.decoding!r}.")
        s = self.stride
        if s is not None and (isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0):
            raise ValueError(f"stride must be None or a non-negative integer, got {s!r}.")
        return lr

    def _validate_X(self, X):
        data = check_token_lists(X)
        self._fit_word_counts = [len(s) for s in data]  # for _encode_targets; removed after fit
        return data

    def _to_iob2(self, y, what="y"):
        """Validate tag lists in ``self.scheme`` and convert them to IOB2."""
        try:
            return convert_scheme(y, self.scheme, "IOB2")
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            m = _TAG_POS.search(msg)
            where = f"sentence {m.group(1)}, position {m.group(2)}: " if m else ""
            raise type(exc)(f"{what}: {where}{msg.replace('tag_lists', what)} "
                            f"(scheme={self.scheme!r})") from None

    def _check_lengths(self, counts, tags, what="y"):
        if len(counts) != len(tags):
            raise ValueError(f"X and {what} have different lengths: {len(counts)} sentences != {len(tags)}.")
        for i, (n, t) in enumerate(zip(counts, tags)):
            if n != len(t):
                raise ValueError(f"sentence {i}: X[{i}] has {n} tokens but {what}[{i}] has {len(t)} tags; "
                                 "every token needs exactly one tag.")

    def _encode_targets(self, y, n):
        tags = self._to_iob2(y)
        counts = getattr(self, "_fit_word_counts", None)  # set by _validate_X during fit
        if counts is None and len(tags) != n:
            raise ValueError(f"X and y have different lengths: {n} sentences != {len(tags)}.")
        if counts is not None:
            self._check_lengths(counts, tags)
        types = sorted({t[2:] for sent in tags for t in sent if t != "O"})
        if not types:
            raise ValueError("y holds no entity tag (only 'O'): nothing to learn.")
        classes = np.array(["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")])
        return classes, _tag_indices(tags, classes), "token"

    def _encode_known_targets(self, y, X, classes, task, what):
        tags = self._to_iob2(y, what=what)
        self._check_lengths([len(s) for s in X], tags, what=what)
        known = set(classes.tolist())
        unknown = sorted({t for sent in tags for t in sent if t not in known})
        if unknown:
            raise ValueError(f"{what.split()[0]} has tags not seen in y: {unknown}.")
        return _tag_indices(tags, classes)

    def _sample_weights(self, classes, y_enc, task, sample_weight, train_idx):
        """Per-sentence weights (``sample_weight``, mean 1) and per-tag ``class_weight`` (from the
        training split's tags)."""
        sw = check_sample_weight(sample_weight, len(y_enc))
        class_weight = self._class_weights(classes, _flat(y_enc[train_idx]), "multiclass")
        self._fit_tag_weight = class_weight if self.class_weight is not None else None
        weights = None if sw is None else (sw / sw.mean()).astype(np.float32)
        return class_weight, weights

    def _split(self, y_enc, task, seed):
        """Split by sentence, stratified by each sentence's rarest entity tag when possible."""
        n = len(y_enc)
        idx = np.arange(n)
        if self.validation_fraction is None:
            return idx, None
        keys = rarest_tag_keys(y_enc)
        try:
            tr, va = train_test_split(idx, test_size=self.validation_fraction, random_state=seed, stratify=keys)
        except ValueError:  # a stratum too small for the split
            tr, va = train_test_split(idx, test_size=self.validation_fraction, random_state=seed)
        return np.sort(tr), np.sort(va)

    # -------------------------------------------------------------- building
    def _build_module(self, backbone_model, n_outputs):
        # _build_encoder applies LoRA (peft) or freezes the backbone; keep only the backbone.
        backbone = self._build_encoder(backbone_model).backbone
        return SequenceClassifier(TextEncoder(backbone, pooling=None), n_outputs, dropout=self.dropout)

    def _make_loss(self, task, y_enc, n_classes):
        flat = _flat(y_enc)
        loss = super()._make_loss("multiclass", flat, n_classes)
        tag_weight = getattr(self, "_fit_tag_weight", None)
        if tag_weight is None:
            return loss
        counts = np.bincount(flat, minlength=n_classes)
        mean = float(counts @ tag_weight) / max(int(counts.sum()), 1)
        return TagWeightedLoss(loss, tag_weight / (mean if mean > 0 else 1.0))

    def _make_net(self, module, criterion, lr, device, seed, valid_ds, n_steps):
        net = super()._make_net(module, criterion, lr, device, seed, valid_ds, n_steps)
        # token targets (B, T) padded with -100; head mode trains on flattened word rows
        net.label_pad_id = None if self.finetune == "head" else IGNORE_INDEX
        return net

    def _windows(self, sentences):
        return tokenize_words(self.tokenizer_, sentences, self.max_length, self.stride)

    def _make_datasets(self, sentences, y_enc, weights, train_idx, valid_idx, module, device):
        windows = self._windows(sentences)
        if self.finetune == "head":
            module.to(device)
            feats = self._word_outputs(windows, module.features, device, module=module)

            def dataset(idx):
                counts = np.array([len(y_enc[i]) for i in idx])
                if counts.sum() == 0:
                    return None
                X = torch.from_numpy(np.concatenate([feats[i] for i in idx if len(feats[i])]))
                y = _flat(y_enc[idx])
                w = None if weights is None else np.repeat(weights[idx], counts).astype(np.float32)
                ds = _FeatureDataset(X, y, w)
                ds.sentence_index = np.repeat(idx, counts)
                return ds
        else:
            by_sentence = defaultdict(list)
            for win in windows:
                if win.responsible:  # empty sentences have nothing to learn
                    by_sentence[win.sentence].append(win)

            def dataset(idx):
                ids, labels, sent = [], [], []
                for i in idx:
                    tags = y_enc[i].tolist()
                    for win in by_sentence.get(int(i), ()):
                        ids.append(list(win.input_ids))
                        labels.append(align_word_labels(win.word_ids, tags, IGNORE_INDEX,
                                                        label_words=win.responsible))
                        sent.append(int(i))
                if not ids:
                    return None
                sent = np.asarray(sent, dtype=np.int64)
                w = None if weights is None else weights[sent]
                ds = EncodedTextDataset(ids, labels, w)
                ds.sentence_index = sent
                return ds

        train_ds = dataset(train_idx)
        if train_ds is None:
            raise ValueError("every training sentence is empty: nothing to learn.")
        valid_ds = dataset(valid_idx) if valid_idx is not None else None
        if valid_idx is not None and valid_ds is None:
            raise ValueError("every validation sentence is empty; lower validation_fraction or drop "
                             "the empty sentences.")
        return train_ds, valid_ds

    def _set_fitted(self, net, classes, task, class_weight, criterion, lr, device, seconds):
        super()._set_fitted(net, classes, task, class_weight, criterion, lr, device, seconds)
        self.entity_types_ = sorted({c[2:] for c in classes.tolist() if c != "O"})
        for name in ("_fit_word_counts", "_fit_tag_weight"):
            self.__dict__.pop(name, None)

    def fit(self, X, y, sample_weight=None):
        """Fit on sentences ``X`` (lists of words) and tags ``y`` (lists of tags, same lengths).

        Parameters
        ----------
        X : list of list of str
        y : list of list of str
            Tags in ``scheme``.
        sample_weight : array-like of shape (n_sentences,), optional
            Weight of each sentence (applied to each of its tokens).

        Returns
        -------
        self
        """
        try:
            return super().fit(X, y, sample_weight=sample_weight)
        finally:
            for name in ("_fit_word_counts", "_fit_tag_weight"):
                self.__dict__.pop(name, None)

    # --------------------------------------------------------------- predict
    def _autocast(self, device):
        if self.amp and torch.device(device).type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _word_outputs(self, windows, fn, device, *, module=None) -> list[np.ndarray]:
        """Run ``fn(input_ids=..., attention_mask=...) -> (B, T, k)`` over the windows and
        merge them into one ``(n_words, k)`` float32 array per sentence."""
        module = module if module is not None else self.net_.module_
        was_training = module.training
        module.eval()
        pad = self.tokenizer_.pad_token_id or 0
        lengths = [len(w) for w in windows]
        outs = [None] * len(windows)
        dev = torch.device(device)
        try:
            with torch.inference_mode():
                for idx in sorted_batches(lengths, max(int(self.batch_size), 32)):
                    batch, _ = pad_collate([({"input_ids": windows[i].input_ids, "index": 0}, 0) for i in idx],
                                           pad_token_id=pad)
                    with self._autocast(dev):
                        res = fn(input_ids=batch["input_ids"].to(dev),
                                 attention_mask=batch["attention_mask"].to(dev))
                    res = res.float().cpu().numpy()
                    for r, i in enumerate(idx):
                        outs[i] = res[r, :lengths[i]]
        finally:
            module.train(was_training)
        return merge_windows(windows, outs)

    def _logits(self, sentences) -> list[np.ndarray]:
        module = self.net_.module_
        return self._word_outputs(self._windows(sentences), module, self.net_.device)

    def _scores(self, sentences) -> list[np.ndarray]:
        out = []
        for logits in self._logits(sentences):
            t = torch.from_numpy(logits)
            out.append(torch.softmax(t, dim=-1).numpy() if len(t) else logits)
        return out

    def decision_function(self, X):
        """Per-word logits: a list with one ``(n_words, n_tags)`` array per sentence."""
        check_is_fitted(self)
        return self._logits(check_token_lists(X))

    def predict_proba(self, X):
        """Per-word tag probabilities: one ``(n_words, n_tags)`` array per sentence
        (columns follow ``classes_``; an empty sentence gives a ``(0, n_tags)`` array)."""
        check_is_fitted(self)
        return self._scores(check_token_lists(X))

    def predict(self, X):
        """IOB2 tags: one list of ``len(X[i])`` tags per sentence (``[]`` for an empty one)."""
        check_is_fitted(self)
        logits = self._logits(check_token_lists(X))
        classes = self.classes_.tolist()
        if self.decoding == "constrained":
            out = []
            for lg in logits:
                logp = torch.log_softmax(torch.from_numpy(lg), dim=-1).numpy() if len(lg) else lg
                out.append(constrained_decode(logp, classes))
            return out
        return repair_bio([[classes[k] for k in lg.argmax(axis=1)] if len(lg) else [] for lg in logits])

    def score(self, X, y, sample_weight=None):
        """Span-level micro-F1 of ``predict(X)`` against ``y`` (in ``scheme``), seqeval strict IOB2."""
        from .metrics import span_f1_score

        if sample_weight is not None:
            raise ValueError("score does not take sample_weight: span F1 counts entities.")
        X = check_token_lists(X)
        truth = self._to_iob2(y)
        self._check_lengths([len(s) for s in X], truth)
        return float(span_f1_score(truth, self.predict(X), scheme="IOB2"))

    def token_features(self, X) -> list[np.ndarray]:
        """Hidden states of the fitted encoder at each word's first sub-token (the head's
        input): one ``(n_words, d)`` array per sentence."""
        check_is_fitted(self)
        module = self.net_.module_
        return self._word_outputs(self._windows(check_token_lists(X)), module.features, self.net_.device)

    def _stage2_inputs(self, sentences, y_enc, weights, train_idx):
        # CALoRA routes per token: one stage-2 row per word of the training sentences.
        feats = self.token_features([sentences[i] for i in train_idx])
        counts = np.array([len(f) for f in feats])
        X = torch.from_numpy(np.concatenate([f for f in feats if len(f)]))
        w = None if weights is None else torch.from_numpy(np.repeat(weights[train_idx], counts).astype(np.float32))
        return X, torch.from_numpy(_flat(y_enc[train_idx])), w

    def embed(self, X) -> np.ndarray:
        """Sentence embeddings, the mean of :meth:`token_features` over words, ``(n, d)``
        (zeros for an empty sentence)."""
        feats = self.token_features(X)
        d = self.net_.module_.head.in_features
        return np.stack([f.mean(0) if len(f) else np.zeros(d, dtype=np.float32) for f in feats])

    # The HAMR helpers, also reachable from the estimator.
    per_sentence_losses = staticmethod(per_sentence_losses)
    token_sentence_index = staticmethod(token_sentence_index)


def _fix_unexposed_parameters(cls, parent):
    """Parameters of ``parent`` that ``cls`` does not take (``pooling``, ``threshold``, the
    CALoRA ``head`` options, ...) are fixed at their defaults as class attributes, so that
    the parent's code can read them while they stay out of ``get_params``."""
    own = set(inspect.signature(cls.__init__).parameters)
    for name, p in inspect.signature(parent.__init__).parameters.items():
        if name not in own and p.default is not inspect.Parameter.empty:
            setattr(cls, name, p.default)


_fix_unexposed_parameters(TransformerTokenClassifier, TransformerClassifier)
