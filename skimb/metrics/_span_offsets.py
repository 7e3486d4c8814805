"""Post-hoc decision rule for IOB2 taggers: per-entity-type logit offsets tuned for span macro-F1."""

from __future__ import annotations

import numpy as np

from skimb.metrics._decision import check_n_bootstrap, check_search_grid, coordinate_search, f1_from_counts

__all__ = ["tune_span_offsets", "span_macro_f1_from_logits"]


class _SpanScorer:
    """Span macro-F1 (seqeval strict IOB2 of the tags ``repair_bio`` makes of the argmax) of word
    logits, vectorised over the words of many sentences stacked in one array."""

    def __init__(self, classes, lengths, true_tag_ids):
        classes = [str(c) for c in classes]
        bad = [c for c in classes if c != "O" and c[:2] not in ("B-", "I-")]
        if bad:
            raise ValueError(f"classes must be IOB2 tags (O, B-X, I-X), got {bad[:3]}.")
        self.types = sorted({c[2:] for c in classes if c != "O"})
        type_id = {t: i for i, t in enumerate(self.types)}
        self.tag_type = np.array([type_id[c[2:]] if c != "O" else -1 for c in classes], dtype=np.int64)
        self.tag_inside = np.array([c.startswith("I-") for c in classes])
        lengths = np.asarray(lengths, dtype=np.int64)
        n = int(lengths.sum())
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        self.first = np.zeros(n, dtype=bool)
        self.first[starts[starts < n]] = True
        self.true = self._spans(np.asarray(true_tag_ids, dtype=np.int64))
        self.true_n = np.bincount(self.true % max(len(self.types), 1), minlength=len(self.types))

    def _spans(self, tag_ids):
        """One integer per span, ``(start * n_words + end) * n_types + type``."""
        n, n_types = len(tag_ids), max(len(self.types), 1)
        typ = self.tag_type[tag_ids]
        prev = np.r_[-1, typ[:-1]]
        prev[self.first] = -1
        # an I-X continues a span only after a word of type X in its sentence (repair_bio's reading)
        continues = (typ >= 0) & self.tag_inside[tag_ids] & (prev == typ)
        starts = np.flatnonzero((typ >= 0) & ~continues)
        breaks = np.flatnonzero(~continues)
        ends = np.r_[breaks, n][np.searchsorted(breaks, starts, side="right")] - 1
        return (starts * n + ends) * n_types + typ[starts]

    def tag_offsets(self, type_offsets):
        """Per-tag offsets (the columns of the logits) from per-type ones: ``O`` gets 0."""
        return np.where(self.tag_type >= 0, np.asarray(type_offsets, dtype=np.float64)[self.tag_type], 0.0)

    def macro_f1(self, logits, type_offsets=None, *, true_types_only=False):
        """Span macro-F1 over the types with a true or a predicted span (NaN: none at all), or
        over those with a true span only."""
        if not self.types:
            return float("nan")
        shifted = logits if type_offsets is None else logits + self.tag_offsets(type_offsets)
        pred = self._spans(shifted.argmax(1))
        k = len(self.types)
        pred_n = np.bincount(pred % k, minlength=k)
        tp = np.bincount(np.intersect1d(pred, self.true) % k, minlength=k)
        present = self.true_n > 0 if true_types_only else (pred_n + self.true_n) > 0
        if not present.any():
            return float("nan")  # no entity anywhere, as seqeval
        return float(f1_from_counts(tp, self.true_n, pred_n)[present].mean())


def _stack(y_true, logits, classes):
    """Stacked word logits, sentence lengths and true tag ids; the errors name the sentence."""
    classes = [str(c) for c in classes]
    index = {c: k for k, c in enumerate(classes)}
    if len(y_true) != len(logits):
        raise ValueError(f"y_true has {len(y_true)} sentences but logits {len(logits)}.")
    ids, rows = [], []
    for i, (tags, lg) in enumerate(zip(y_true, logits)):
        lg = np.asarray(lg, dtype=np.float64)
        if lg.size == 0:
            lg = lg.reshape(0, len(classes))
        if lg.shape != (len(tags), len(classes)):
            raise ValueError(f"sentence {i}: {len(tags)} tags and {len(classes)} classes need logits of shape "
                             f"{(len(tags), len(classes))}, got {lg.shape}.")
        unknown = [t for t in tags if t not in index]
        if unknown:
            raise ValueError(f"sentence {i}: tag {unknown[0]!r} is not in classes {classes}.")
        ids.append([index[t] for t in tags])
        rows.append(lg)
    lengths = np.array([len(t) for t in ids], dtype=np.int64)
    stacked = np.concatenate(rows) if rows else np.zeros((0, len(classes)))
    if np.isnan(stacked).any():
        raise ValueError("logits contain NaN: the model diverged (train with a lower learning rate).")
    return stacked, lengths, np.array([k for t in ids for k in t], dtype=np.int64)


def span_macro_f1_from_logits(y_true, logits, classes, offsets=None) -> float:
    """Span macro-F1 (seqeval strict IOB2, over the types in ``y_true`` or the predictions) of the
    tags that ``skimb.tokens.repair_bio`` makes of ``argmax(logits + offsets)`` per word.

    Parameters
    ----------
    y_true : list of list of str
        True IOB2 tags, one list per sentence, read as ``repair_bio`` reads them (an ``I-X`` that
        continues no ``X`` starts an entity), as ``TransformerTokenClassifier`` converts its tags;
        for valid IOB2 this is seqeval's strict reading.
    logits : list of array-like of shape (n_words, n_tags)
        Word logits per sentence, e.g. ``TransformerTokenClassifier.decision_function(X)``.
    classes : sequence of str
        The IOB2 tag of each logit column (the estimator's ``classes_``).
    offsets : array-like of shape (n_tags,), default=None
        Added to every word's logits.

    Returns
    -------
    float
        NaN when neither the truth nor the predictions hold an entity (as seqeval).

    Examples
    --------
    >>> import numpy as np
    >>> classes = ["B-LOC", "I-LOC", "O"]
    >>> logits = [np.array([[2.0, 0.0, 1.0], [0.0, 0.5, 1.0]])]
    >>> span_macro_f1_from_logits([["B-LOC", "I-LOC"]], logits, classes)
    0.0
    >>> span_macro_f1_from_logits([["B-LOC", "I-LOC"]], logits, classes, offsets=[1.0, 1.0, 0.0])
    1.0
    """
    stacked, lengths, true_ids = _stack(y_true, logits, classes)
    if offsets is not None:
        offsets = np.asarray(offsets, dtype=np.float64)
        if offsets.shape != (len(classes),):
            raise ValueError(f"offsets must have one value per tag ({len(classes)}), got shape {offsets.shape}.")
        stacked = stacked + offsets
    return _SpanScorer(classes, lengths, true_ids).macro_f1(stacked)


def tune_span_offsets(y_true, logits, classes, *, steps=None, n_rounds=2, n_bootstrap=0, random_state=0):
    """Per-entity-type logit offsets that maximise span macro-F1 of a tagger's repaired argmax.

    The IOB2 counterpart of :func:`tune_logit_offsets`, fitted on a validation split: type X's
    offset is added to the ``B-X`` and ``I-X`` logits of every word (``O`` keeps 0), which trades
    X's recall for its precision where the tagger's training balance put the boundary elsewhere.
    A coordinate search moves one type's offset at a time by ``steps`` and keeps a move only when
    it raises span macro-F1 over the types with a true span (``n_rounds`` passes over them); ties
    keep the smaller change. A type without a true span keeps 0 and does not count: predicting it
    less, or another type in its place, is all that would raise its F1.

    Parameters
    ----------
    y_true, logits, classes
        As in :func:`span_macro_f1_from_logits`: the true IOB2 tags and the word logits of each
        sentence, and the tag of each logit column.
    steps : array-like of float, default=None
        Offset moves (default -2, -1.75, ..., 2).
    n_rounds : int, default=2
        Passes of the search over the types.
    n_bootstrap : int, default=0
        With ``B > 0``, each type's offset is the mean of those tuned on the ``B`` bootstrap
        resamples of the sentences that hold one of its spans (bagging, as in
        :func:`tune_logit_offsets`).
    random_state : int, default=0
        Seeds the bootstrap resamples.

    Returns
    -------
    offsets : ndarray of shape (n_tags,)
        To add to every word's logits before the argmax.

    Examples
    --------
    >>> import numpy as np
    >>> classes = ["B-LOC", "I-LOC", "O"]
    >>> y = [["B-LOC", "I-LOC", "O"], ["O", "B-LOC"]]
    >>> logits = [np.array([[0.8, 0.0, 1.0], [0.0, 0.9, 1.0], [0.0, 0.0, 2.0]]), np.array([[0.0, 0.0, 2.0], [0.9, 0.0, 1.0]])]
    >>> tune_span_offsets(y, logits, classes)
    array([0.25, 0.25, 0.  ])
    """
    check_n_bootstrap(n_bootstrap)
    _, steps = check_search_grid(steps=steps, n_rounds=n_rounds)
    stacked, lengths, true_ids = _stack(y_true, logits, classes)
    scorer = _SpanScorer(classes, lengths, true_ids)
    if not scorer.types:  # only "O": no entity type to move
        return np.zeros(len(classes))
    full, present = _search(scorer, stacked, steps, n_rounds)
    if not n_bootstrap:
        return scorer.tag_offsets(full)
    rng = np.random.default_rng(random_state)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    total, count = np.zeros_like(full), np.zeros_like(full)
    for _ in range(int(n_bootstrap)):
        pick = rng.integers(0, len(lengths), len(lengths))
        # the rows of the picked sentences, in order: each sentence's start repeated over its words
        before = np.cumsum(lengths[pick]) - lengths[pick]
        rows = np.repeat(starts[pick] - before, lengths[pick]) + np.arange(int(lengths[pick].sum()))
        offsets, found = _search(_SpanScorer(classes, lengths[pick], true_ids[rows]), stacked[rows], steps, n_rounds)
        total[found] += offsets[found]
        count[found] += 1
    # a type that no resample holds keeps the full split's offset (0 when the split lacks it too)
    return scorer.tag_offsets(np.where(count > 0, total / np.maximum(count, 1), full))


def _search(scorer, logits, steps, n_rounds):
    """``(per-type offsets, mask of the types with a true span)``. Only those move, and the
    search scores macro-F1 over them alone (as :func:`tune_logit_offsets` does): the F1 of a type
    absent from the truth rises only by predicting it less, down to never."""
    present = scorer.true_n > 0
    offsets = coordinate_search(lambda o: scorer.macro_f1(logits, o, true_types_only=True),
                                np.zeros(len(scorer.types)), np.flatnonzero(present), steps, n_rounds)
    return offsets, present
