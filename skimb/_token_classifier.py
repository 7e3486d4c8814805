"""TransformerTokenClassifier: scikit-learn token classification (NER, BIO tags) on a
Hugging Face backbone; a sibling of :class:`~skimb.TransformerClassifier` (same base and
components, the token task adapter :mod:`skimb._token_task`)."""

from __future__ import annotations

from numbers import Integral

from sklearn.utils.validation import check_is_fitted

from ._base import apply_text_tags, with_threads
from ._estimator import TransformerEstimator
from ._params import SHARED_CONSTRAINTS, SHARED_PARAMS, estimator_init
from ._token_task import TokenTask
from ._validation import check_token_lists
from .tokens import decode_tags, per_sentence_losses, token_sentence_index, validate_tags
from .utils._param_validation import Boolean, Interval, Options, Satisfies

__all__ = ["TransformerTokenClassifier"]


def _known_scheme(value) -> bool:
    try:
        validate_tags([], value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


class TransformerTokenClassifier(TransformerEstimator):
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
    backbone, finetune, batch_size, max_epochs, lr, head_lr_multiplier, weight_decay, warmup_ratio, \
max_grad_norm, ema_decay, dropout, loss, early_stopping, patience, device, amp, random_state, verbose, callbacks, \
quantize, n_threads
        As in :class:`~skimb.TransformerClassifier` (losses are computed per labelled token;
        ``batch_size`` counts windows, except with ``finetune="head"``, where it counts words).
    max_length : int, default=128
        Window length in sub-tokens (special tokens included); at most what the backbone takes
        (an error at fit otherwise).
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
    decoding : {"repair", "constrained", "crf"}, default="repair"
        How per-word scores become a valid IOB2 sequence: "repair" takes the argmax tag of
        each word and turns an ``I-X`` that continues no ``X`` entity into ``B-X``
        (``skimb.tokens.repair_bio``); "constrained" is Viterbi decoding over valid
        sequences only (``skimb.tokens.constrained_decode``). "crf" also *trains* differently:
        a linear-chain CRF (``skimb.tokens.LinearChainCRF``: a learned score for every pair of
        consecutive tags, for the first and for the last) on the linear head, trained with the
        model by each window's sequence likelihood in place of ``loss`` and ``class_weight``
        (a warning says so where they are set), at 100 times the model's learning rate;
        prediction is Viterbi over valid sequences with the learned scores, and
        ``predict_proba`` gives each word's marginals under the CRF. It needs ``finetune="full"``
        or ``"lora"`` and a training that reads whole-window losses: ``"standard"``, ``"rdrop"``,
        ``"sam"`` (``training__classes="all"``), ``"sequential"`` or ``"hamr"`` (not with
        ``training__meta_loss="balanced"``). A model fitted with "crf" can predict with the other
        two (from its emissions alone).
    threshold : None or "tuned", default=None
        The decision rule. None: the decoding of the word logits as they are. "tuned": per-entity-
        type offsets added to each word's ``B-X`` and ``I-X`` logits before decoding, tuned for span
        macro-F1 on the validation split (:func:`skimb.metrics.tune_span_offsets`, bagged over 30
        resamples of its sentences; needs ``validation_fraction``; the search reads the argmax
        as "repair" does). It corrects a tagger that under-predicts entities: +5.3 points of span
        macro-F1 for cross-entropy on CoNLL-2003 with 70% entity-free sentences (tweet-like), but
        ``loss="focal"`` alone does better there (+11.2) and the offsets cost 1.2 on top of it; on
        MIT-Restaurant they cost 0.1-0.9 (``docs/benchmarks.md``, round 18). Not part of the
        stage-1 cache key. A CRF tagger (``decoding="crf"``) refuses "tuned" before training: the
        offsets are tuned for the repaired argmax, not for the CRF's Viterbi decoding.
    mark_case : bool, default=False
        Feed each word's case to the backbone: the sub-tokens of a word holding an uppercase letter
        get token type 1, the others 0 (:func:`skimb.tokens.case_type_ids`), through the token-type
        (segment) embedding of a BERT-style backbone (an error at fit for one without two token
        types, such as RoBERTa or DistilBERT). An uncased backbone (MiniLM, ``bert-base-uncased``)
        lowercases every word and so cannot tell "Apple" from "apple" without it; a cased one reads
        case from its tokens already. The type embedding trains with the model (with the adapters
        under ``finetune="lora"``; under ``"head"`` it stays as pretrained). Not with
        ``quantize="onnx-int8"``; prediction refuses a ``mark_case`` changed since the fit.
    head : {"linear", "calora", "cosine", "crt", "tau_norm", "knn", "prototype"} or Head, default="linear"
        As in :class:`~skimb.TransformerClassifier`, CALoRA routed **per token**: stage 2
        trains the class adapters on the stage-1 hidden state of every training word, and at
        inference each token's adapters are chosen from its own stage-1 tag ranking.
    training : {"standard", "hamr", "sequential", "sam", "rdrop"} or TrainingStrategy, default="standard"
        As in :class:`~skimb.TransformerClassifier`; HAMR for NER (Rao et al., 2025): the examples
        are the windows; the loss that ranks them for WNet and the hardness is a window's **largest
        token loss** over its labelled words (``skimb.tokens.per_sentence_losses``), and the update
        trains every labelled token weighted by its window's weight (``training__token_loss="mean"``;
        ``"max"`` trains only the largest, as the reference does); the balanced
        meta set reduces the per-entity-type span deficit to the median
        (:func:`skimb.training.hamr.build_balanced_meta_set_ner`). Needs ``finetune="full"``
        or ``"lora"``; ``training__knn_lambda`` and ``training__wnet_lr`` default to the
        reference's NER values (0.1, 3e-4), and ``training__meta_loss`` to the mean cross-entropy,
        or the tag-balanced one where one tag (``O``) holds at least 90% of the training tokens
        (fitted ``meta_objective_`` says which); ``training__resampling`` is off from 750 training
        sentences, counted after the validation split, and where ``O`` holds under 75% of the
        training tokens (fitted ``resampling_`` says which).
    **kwargs
        Routed component parameters: ``loss__*``, ``head__*``, ``training__*``, ``finetune__*``.

    Notes
    -----
    * Malformed tags (not ``O`` or ``PREFIX-TYPE`` with a prefix of ``scheme``) and
      sentences whose numbers of words and tags differ raise a ``ValueError`` naming the
      sentence and position. Invalid *transitions* in gold tags are read leniently.
    * Empty sentences are allowed: they are skipped in training and predicted as ``[]``
      (``predict_proba`` gives a ``(0, n_tags)`` array).
    * ``finetune="head"``: the frozen backbone's hidden states of every word are computed
      once per ``fit`` and the head is trained on them, one row per word.
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
    mark_case_ : bool
        Whether the model was fitted with ``mark_case``; prediction refuses a ``mark_case`` changed since.
    class_weight_ : ndarray of shape (n_tags,)
        Per-tag loss weights (ones without ``class_weight``).
    net_, history_, n_iter_, training_interrupted_, loss_, finetune_, head_, training_, validation_indices_
        As in :class:`~skimb.TransformerClassifier` (``validation_indices_``: sentences).
    logit_offsets_ : ndarray of shape (n_tags,)
        With ``threshold="tuned"``: the offsets ``predict`` adds to every word's logits (``O``: 0;
        ``B-X`` and ``I-X``: type X's).
    hardness_, neighbor_boost_, hamr_train_indices_, meta_set_size_, meta_set_indices_, \
sample_weights_history_, meta_loss_history_, meta_objective_, resampling_, weight_norm_, weight_unit_, wnet_
        HAMR, as in :class:`~skimb.TransformerClassifier`, with one entry per training
        *window*: ``hamr_train_indices_[j]`` is the sentence (position in ``X``) of window j.

    Examples
    --------
    >>> from skimb import TransformerTokenClassifier
    >>> ner = TransformerTokenClassifier(max_length=64, decoding="constrained", head="calora", head__k=1)
    >>> ner.get_params()["scheme"], ner.get_params()["head__k"]
    ('IOB2', 1)
    """

    _task = TokenTask
    _parameter_constraints = {
        **SHARED_CONSTRAINTS, "decoding": [Options("repair", "constrained", "crf")], "stride": [None, Interval(Integral, 0, None)],
        "threshold": [None, Options("tuned")], "mark_case": [Boolean()],
        "scheme": [Satisfies(_known_scheme, "a tagging scheme: 'IOB2', 'IOB1', 'IOBES' or 'BILOU' (aliases 'BIO', "
                             "'IOB', 'BIOES')", bad=["__unknown_option__", 3])]}
    __init__ = estimator_init({**SHARED_PARAMS, "scheme": "IOB2", "stride": None, "decoding": "repair",
                               "threshold": None, "mark_case": False})

    def __sklearn_tags__(self):
        tags = apply_text_tags(super().__sklearn_tags__(), multi_label=False)
        # Not a scikit-learn "classifier" (as sklearn-crfsuite's CRF): ``y`` is a list of tag
        # lists, which StratifiedKFold cannot stratify, so cv=<int> must mean KFold.
        tags.estimator_type = None
        tags.classifier_tags = None
        return tags

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
        return super().fit(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """IOB2 tags: one list of ``len(X[i])`` tags per sentence (``[]`` for an empty one); with
        ``threshold="tuned"``, decoded from the logits plus ``logit_offsets_``."""
        import torch

        logits = self.decision_function(X)
        offsets = getattr(self, "logit_offsets_", None)
        if offsets is not None:
            logits = [lg + offsets.astype(lg.dtype) for lg in logits]
        if self.decoding == "crf":
            return decode_tags(logits, self.classes_, "constrained", **self._adapter().fitted_crf().decoding_scores())
        if self.decoding == "constrained":
            logits = [torch.log_softmax(torch.from_numpy(lg), dim=-1).numpy() if len(lg) else lg for lg in logits]
        return decode_tags(logits, self.classes_, self.decoding)

    def score(self, X, y, sample_weight=None):
        """Span-level micro-F1 of ``predict(X)`` against ``y`` (in ``scheme``), seqeval strict IOB2."""
        from .metrics import span_f1_score

        if sample_weight is not None:
            raise ValueError("score does not take sample_weight: span F1 counts entities.")
        X = check_token_lists(X)
        adapter = self._adapter()
        truth = adapter.to_iob2(y)
        adapter.check_lengths([len(s) for s in X], truth)
        return float(span_f1_score(truth, self.predict(X), scheme="IOB2"))

    @with_threads
    def token_features(self, X) -> list:
        """Hidden states of the fitted encoder at each word's first sub-token (the head's
        input): one ``(n_words, d)`` array per sentence."""
        check_is_fitted(self)
        return self._adapter().token_features(check_token_lists(X))

    def embed(self, X):
        """Sentence embeddings, the mean of :meth:`token_features` over words, ``(n, d)``
        (zeros for an empty sentence)."""
        import numpy as np

        feats = self.token_features(X)
        # the features' width (a kNN or prototype head has no in_features)
        d = next((f.shape[1] for f in feats if len(f)), None) or self.net_.module_.encoder.hidden_size
        return np.stack([f.mean(0) if len(f) else np.zeros(d, dtype=np.float32) for f in feats])

    def __setstate__(self, state):
        # a tagger pickled before mark_case existed was fitted without it (also among its fit's parameters)
        state = {"mark_case": False, **state}
        at_fit = state.get("_params_at_fit_")
        if at_fit is not None and "mark_case" not in at_fit[0]:
            state["_params_at_fit_"] = ({**at_fit[0], "mark_case": False}, at_fit[1])
        super().__setstate__(state)

    # The HAMR helpers, also reachable from the estimator.
    per_sentence_losses = staticmethod(per_sentence_losses)
    token_sentence_index = staticmethod(token_sentence_index)
