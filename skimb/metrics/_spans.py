"""Span-level (entity) metrics for token classification, seqeval strict semantics.

A predicted entity counts as correct only when its type, start and end all
match a true entity exactly. ``O`` is not an entity type. For IOB2 the numbers
equal ``seqeval.metrics.classification_report(y_true, y_pred, mode="strict",
scheme=IOB2, output_dict=True)`` (with ``zero_division=0``), without needing
seqeval at run time.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from skimb.metrics._quartiles import _assign_quartiles, _quartile_means
from skimb.utils._schemes import check_scheme as _check_scheme  # the aliases of skimb.tokens too

__all__ = ["get_entities", "span_report", "span_f1_score"]

# allowed prefixes per scheme; BILOU's L/U are read as IOBES's E/S
_SCHEMES = {
    "IOB2": ("B", "I"),
    "IOB1": ("B", "I"),
    "IOBES": ("B", "I", "E", "S"),
    "BILOU": ("B", "I", "L", "U"),
}
_BILOU_TO_IOBES = {"L": "E", "U": "S"}


def _where(sent, pos):
    return f"position {pos}" if sent is None else f"sentence {sent}, position {pos}"


def _parse(tags, scheme, sent=None):
    """Tags -> list of (prefix, type); ``("O", None)`` for outside. Raises on malformed tags."""
    allowed = _SCHEMES[scheme]
    parsed = []
    for pos, tag in enumerate(tags):
        if isinstance(tag, np.str_):
            tag = str(tag)
        if not isinstance(tag, str):
            raise ValueError(
                f"{_where(sent, pos)}: tag {tag!r} is a {type(tag).__name__}, not a string; "
                "tags are strings such as 'O', 'B-PER', 'I-PER' (map -100 / label ids back to tags first)."
            )
        if tag == "O":
            parsed.append(("O", None))
            continue
        prefix, sep, typ = tag.partition("-")
        if not sep or prefix not in allowed or not typ:
            expected = ", ".join(f"'{p}-<type>'" for p in allowed)
            raise ValueError(
                f"{_where(sent, pos)}: malformed tag {tag!r} for scheme {scheme}; "
                f"expected 'O' or {expected}."
            )
        if scheme == "BILOU":
            prefix = _BILOU_TO_IOBES.get(prefix, prefix)
        parsed.append((prefix, typ))
    return parsed


def _decode(parsed, scheme):
    """(prefix, type) pairs -> [(type, start, end)], end exclusive."""
    n = len(parsed)
    entities = []
    i = 0
    while i < n:
        prefix, typ = parsed[i]
        if scheme == "IOB2":
            # strict: an entity is B-x followed by I-x*; a stray I-x is ignored
            if prefix == "B":
                j = i + 1
                while j < n and parsed[j] == ("I", typ):
                    j += 1
                entities.append((typ, i, j))
                i = j
                continue
        elif scheme == "IOB1":
            # B-x or I-x starts an entity unless it continues one; I-x of the same type continues
            if prefix != "O":
                j = i + 1
                while j < n and parsed[j] == ("I", typ):
                    j += 1
                entities.append((typ, i, j))
                i = j
                continue
        else:  # IOBES / BILOU (as IOBES)
            if prefix == "S":
                entities.append((typ, i, i + 1))
            elif prefix == "B":
                j = i + 1
                while j < n and parsed[j] == ("I", typ):
                    j += 1
                if j < n and parsed[j] == ("E", typ):
                    entities.append((typ, i, j + 1))
                    i = j + 1
                else:  # unterminated: no entity; resume at the token that broke it
                    i = j
                continue
        i += 1
    return entities


def _as_tag_list(tags, what):
    if isinstance(tags, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of tags, got a single string {tags!r:.40}.")
    try:
        return list(tags)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of tags, got {type(tags).__name__}.") from None


def get_entities(tags, scheme="IOB2"):
    """Entity spans of one tag sequence.

    Parameters
    ----------
    tags : sequence of str
        One sentence's tags, e.g. ``["B-PER", "I-PER", "O"]``.
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"
        - ``IOB2`` (strict, as seqeval ``mode="strict"``): an entity is ``B-x``
          followed by any number of ``I-x``. An ``I-x`` that does not continue a
          ``B-x``/``I-x`` of the same type (after ``O``, at the start, or after
          another type) belongs to no entity.
        - ``IOB1`` (CoNLL-2003 convention): ``I-x`` starts an entity unless it
          continues one of type ``x``; ``B-x`` always starts a new entity. This
          differs from seqeval's ``IOB1`` scheme class, which ignores a ``B-x``
          after ``O``.
        - ``IOBES`` (strict): ``S-x``, or ``B-x I-x* E-x``; an entity that is not
          closed by ``E-x`` is dropped. ``BILOU`` is the same with ``L``/``U`` in
          place of ``E``/``S``.

    Returns
    -------
    entities : list of (str, int, int)
        ``(type, start, end)`` with ``end`` exclusive (``tags[start:end]`` is the
        entity), in order of ``start``. Note that seqeval's default-mode
        ``get_entities`` uses an inclusive end.

    Raises
    ------
    ValueError
        For a tag that is not ``O`` or ``<prefix>-<type>`` with a prefix allowed
        by ``scheme``; the message names the position.

    Examples
    --------
    >>> get_entities(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5)]
    >>> get_entities(["I-PER", "I-PER", "O", "B-LOC", "I-LOC"])
    [('LOC', 3, 5)]
    >>> get_entities(["I-PER", "I-PER", "O", "B-LOC", "I-LOC"], scheme="IOB1")
    [('PER', 0, 2), ('LOC', 3, 5)]
    >>> get_entities(["S-PER", "B-LOC", "E-LOC", "B-ORG", "O"], scheme="IOBES")
    [('PER', 0, 1), ('LOC', 1, 3)]
    >>> get_entities(["B-PER", "X-PER"])
    Traceback (most recent call last):
    ...
    ValueError: position 1: malformed tag 'X-PER' for scheme IOB2; expected 'O' or 'B-<type>', 'I-<type>'.
    """
    scheme = _check_scheme(scheme)
    tags = _as_tag_list(tags, "tags")
    if tags and not isinstance(tags[0], (str, np.str_)) and hasattr(tags[0], "__iter__"):
        raise TypeError(
            "get_entities takes the tags of one sentence; for a list of sentences call it per "
            "sentence or use span_report."
        )
    return _decode(_parse(tags, scheme), scheme)


def _check_tag_sequences(y_true, y_pred):
    y_true = _as_tag_list(y_true, "y_true")
    y_pred = _as_tag_list(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true has {len(y_true)} sentences but y_pred has {len(y_pred)}."
        )
    out_true, out_pred = [], []
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if isinstance(t, (str, bytes)) or isinstance(p, (str, bytes)):
            raise TypeError(
                f"sentence {i}: expected a list of tags, got a string; y_true and y_pred are "
                "lists of tag lists, e.g. [['B-PER', 'O']]."
            )
        t, p = _as_tag_list(t, f"y_true[{i}]"), _as_tag_list(p, f"y_pred[{i}]")
        if len(t) != len(p):
            raise ValueError(
                f"sentence {i}: y_true has {len(t)} tags but y_pred has {len(p)}; "
                "every predicted sentence must have one tag per word."
            )
        out_true.append(t)
        out_pred.append(p)
    return out_true, out_pred


def _entity_sets(sequences, scheme):
    spans = set()
    for i, tags in enumerate(sequences):
        for typ, start, end in _decode(_parse(tags, scheme, sent=i), scheme):
            spans.add((i, typ, start, end))
    return spans


def _safe_div(num, den):
    return num / den if den > 0 else 0.0


def _f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def span_report(y_true, y_pred, *, scheme="IOB2", train_tags=None):
    """Span-level precision, recall and F1 per entity type, seqeval strict semantics.

    Parameters
    ----------
    y_true : list of list of str
        True tags, one list per sentence.
    y_pred : list of list of str
        Predicted tags, same number of sentences and the same length for each.
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"
        Tagging scheme, see :func:`get_entities`.
    train_tags : list of list of str, default=None
        Training tags; when given, the quartiles use the number of training
        spans per type instead of the supports in ``y_true``.

    Returns
    -------
    report : dict
        - ``per_type``: ``{type: {"precision", "recall", "f1", "support"}}``
          for every type found in ``y_true`` or ``y_pred``, sorted by name.
        - ``micro_precision``, ``micro_recall``, ``micro_f1``: over all spans.
        - ``macro_precision``, ``macro_recall``, ``macro_f1``: unweighted
          means over the types (NaN when there is no entity at all, as seqeval).
        - ``weighted_precision``, ``weighted_recall``, ``weighted_f1``:
          weighted by support (0 when ``y_true`` has no entity).
        - ``quartile_f1``, ``quartile_labels``, ``frequencies``,
          ``frequency_source``: as in :func:`skimb.metrics.imbalance_report`,
          over the types with support > 0, by span count.
        - ``support``: number of true spans, ``n_predicted``: number of
          predicted spans, ``n_sentences``.

    Raises
    ------
    ValueError
        If the numbers of sentences differ, a sentence's lengths differ (the
        message names the sentence index), or a tag is malformed (the message
        names the sentence and the position).

    Examples
    --------
    >>> y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    >>> y_pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    >>> rep = span_report(y_true, y_pred)
    >>> rep["per_type"]["PER"]
    {'precision': 1.0, 'recall': 1.0, 'f1': 1.0, 'support': 1}
    >>> round(rep["micro_f1"], 4), round(rep["macro_f1"], 4)
    (0.6667, 0.6667)
    """
    scheme = _check_scheme(scheme)
    y_true, y_pred = _check_tag_sequences(y_true, y_pred)
    true_spans = _entity_sets(y_true, scheme)
    pred_spans = _entity_sets(y_pred, scheme)
    hits = true_spans & pred_spans

    true_n = Counter(s[1] for s in true_spans)
    pred_n = Counter(s[1] for s in pred_spans)
    tp_n = Counter(s[1] for s in hits)
    types = sorted(set(true_n) | set(pred_n))

    per_type = {}
    for typ in types:
        p = _safe_div(tp_n[typ], pred_n[typ])
        r = _safe_div(tp_n[typ], true_n[typ])
        per_type[typ] = {"precision": p, "recall": r, "f1": _f1(p, r), "support": true_n[typ]}

    micro_p = _safe_div(len(hits), len(pred_spans))
    micro_r = _safe_div(len(hits), len(true_spans))
    if types:
        macro = {k: float(np.mean([v[k] for v in per_type.values()])) for k in ("precision", "recall", "f1")}
    else:
        macro = dict.fromkeys(("precision", "recall", "f1"), math.nan)
    total = sum(true_n.values())
    if total > 0:
        weighted = {
            k: float(sum(v[k] * v["support"] for v in per_type.values()) / total)
            for k in ("precision", "recall", "f1")
        }
    else:
        weighted = dict.fromkeys(("precision", "recall", "f1"), 0.0)

    if train_tags is not None:
        train = _as_tag_list(train_tags, "train_tags")
        flat = next((i for i, tags in enumerate(train) if isinstance(tags, (str, bytes))), None)
        if flat is not None:  # its letters would be read as tags
            raise TypeError(f"train_tags[{flat}] is a string ({train[flat]!r:.40}); train_tags are lists of tag "
                            "lists, one per training sentence, e.g. [['B-PER', 'O']].")
        frequencies = Counter(s[1] for s in _entity_sets(train, scheme))
    else:
        frequencies = true_n
    population = [t for t in types if true_n[t] > 0]
    groups = _assign_quartiles(population, frequencies)
    means = _quartile_means(groups, {t: v["f1"] for t, v in per_type.items()})

    return {
        "per_type": per_type,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _f1(micro_p, micro_r),
        "macro_precision": macro["precision"],
        "macro_recall": macro["recall"],
        "macro_f1": macro["f1"],
        "weighted_precision": weighted["precision"],
        "weighted_recall": weighted["recall"],
        "weighted_f1": weighted["f1"],
        "quartile_f1": means,
        "quartile_labels": groups,
        "frequencies": {t: int(frequencies.get(t, 0)) for t in population},
        "frequency_source": "train" if train_tags is not None else "test",
        "support": int(total),
        "n_predicted": len(pred_spans),
        "n_sentences": len(y_true),
    }


def span_f1_score(y_true, y_pred, average="micro", *, scheme="IOB2"):
    """Span-level F1, as ``seqeval.metrics.f1_score(..., mode="strict")``.

    Parameters
    ----------
    y_true, y_pred : list of list of str
        True and predicted tags, one list per sentence.
    average : {"micro", "macro", "weighted"} or None, default="micro"
        ``None`` returns ``{type: f1}``.
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"

    Returns
    -------
    f1 : float or dict

    Examples
    --------
    >>> y_true = [["B-PER", "I-PER", "O", "B-LOC"]]
    >>> y_pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    >>> span_f1_score(y_true, y_pred)
    0.5
    >>> span_f1_score(y_true, y_pred, average=None)
    {'LOC': 0.0, 'ORG': 0.0, 'PER': 1.0}
    """
    if average not in ("micro", "macro", "weighted", None):
        raise ValueError(f"average must be 'micro', 'macro', 'weighted' or None, got {average!r}.")
    rep = span_report(y_true, y_pred, scheme=scheme)
    if average is None:
        return {t: v["f1"] for t, v in rep["per_type"].items()}
    return rep[f"{average}_f1"]
