"""Tagging schemes for token classification: validation, conversion, repair, decoding.

Supported schemes (names are case-insensitive; aliases in brackets):

* ``"IOB2"`` (``"BIO"``): ``B-X`` begins every entity, ``I-X`` continues it, ``O`` is outside.
* ``"IOB1"`` (``"IOB"``): ``I-X`` begins and continues entities; ``B-X`` only begins an entity
  that directly follows another entity of the same type X.
* ``"IOBES"`` (``"BIOES"``): IOB2 plus ``E-X`` (last token of a multi-token entity) and
  ``S-X`` (single-token entity).
* ``"BILOU"``: as IOBES with ``L-X`` for ``E-X`` and ``U-X`` for ``S-X``.

A tag is ``"O"`` or ``PREFIX-TYPE``: the prefix is split off at the first hyphen, so entity
types may themselves contain hyphens or underscores (``"B-Restaurant_Name"``,
``"I-DATE-TIME"``), but must be non-empty and free of whitespace.

Every function returns new lists and never mutates its input.
"""

from __future__ import annotations

import math

import numpy as np

from ..utils._schemes import check_scheme as _check_scheme

__all__ = [
    "validate_tags",
    "convert_scheme",
    "repair_bio",
    "entity_types",
    "constrained_decode",
    "iob2_transitions",
]

_PREFIXES = {
    "IOB2": ("B", "I"),
    "IOB1": ("B", "I"),
    "IOBES": ("B", "I", "E", "S"),
    "BILOU": ("B", "I", "L", "U"),
}

# role of each prefix in the (lenient) span reading: begin, inside, end, single
_ROLES = {
    "IOB2": {"B": "begin", "I": "inside"},
    "IOB1": {"B": "begin", "I": "inside"},
    "IOBES": {"B": "begin", "I": "inside", "E": "end", "S": "single"},
    "BILOU": {"B": "begin", "I": "inside", "L": "end", "U": "single"},
}


def _split(tag: str):
    """(prefix, type) of a tag; ('O', None) for the outside tag. No validation."""
    if tag == "O":
        return "O", None
    prefix, _, typ = tag.partition("-")
    return prefix, typ


def _tag_problem(tag: str, prefixes) -> str | None:
    """Why ``tag`` is malformed under a scheme with these prefixes, or None if it is fine."""
    if tag == "O":
        return None
    if tag.strip() != tag:
        return "has leading or trailing whitespace"
    prefix, sep, typ = tag.partition("-")
    if not sep:
        return "is neither 'O' nor of the form PREFIX-TYPE"
    if prefix not in prefixes:
        return f"has prefix {prefix!r}, expected one of {', '.join(repr(p) for p in prefixes)}"
    if not typ:
        return "has an empty entity type"
    if any(c.isspace() for c in typ):
        return "has whitespace in its entity type"
    return None


def _as_tag_lists(tag_lists, what: str = "tag_lists") -> list[list[str]]:
    """Copy a list of tag sequences into ``list[list[str]]``; TypeError on anything else."""
    if isinstance(tag_lists, (str, bytes)):
        raise TypeError(
            f"{what} must be a list of tag lists, e.g. [['B-PER', 'I-PER', 'O']], got a single string."
        )
    try:
        items = list(tag_lists)
    except TypeError:
        raise TypeError(f"{what} must be a list of tag lists, got {type(tag_lists).__name__}.") from None
    out = []
    for i, sent in enumerate(items):
        if isinstance(sent, (str, bytes)) or not hasattr(sent, "__iter__"):
            raise TypeError(
                f"{what}[{i}] must be a list of tags, got {type(sent).__name__} ({sent!r:.40}); "
                f"{what} is a list of tag lists, e.g. [['B-PER', 'I-PER', 'O']]."
            )
        row = []
        for j, t in enumerate(sent):
            if not isinstance(t, str):
                raise TypeError(f"{what}[{i}][{j}] must be a string tag, got {type(t).__name__} ({t!r:.40}).")
            row.append(str(t))
        out.append(row)
    return out


def _strict_problem(tags: list[str], j: int, scheme: str) -> str | None:
    """Why the transition into/out of position j is invalid under the strict reading."""
    roles = _ROLES[scheme]
    prefix, typ = _split(tags[j])
    prev_p, prev_t = _split(tags[j - 1]) if j > 0 else ("O", None)
    prev_role = roles.get(prev_p) if prev_p != "O" else None
    if scheme == "IOB1":
        if prefix == "B" and not (prev_p != "O" and prev_t == typ):
            return f"'B-{typ}' does not follow an entity of type {typ!r} (IOB1 uses B- only between two adjacent {typ} entities)"
        return None
    role = roles.get(prefix) if prefix != "O" else None
    if role in ("inside", "end") and not (prev_role in ("begin", "inside") and prev_t == typ):
        return f"{tags[j]!r} does not continue an entity of type {typ!r} (previous tag: {tags[j - 1] if j else 'start of sentence'!r})"
    if scheme in ("IOBES", "BILOU") and role in ("begin", "inside"):
        nxt_p, nxt_t = _split(tags[j + 1]) if j + 1 < len(tags) else ("O", None)
        nxt_role = roles.get(nxt_p) if nxt_p != "O" else None
        if not (nxt_role in ("inside", "end") and nxt_t == typ):
            return f"{tags[j]!r} is not followed by an inside or end tag of type {typ!r}"
    return None


def validate_tags(tag_lists, scheme: str = "IOB2", *, strict: bool = False) -> list[list[str]]:
    """Check that every tag is well formed under ``scheme`` and return a copy.

    Parameters
    ----------
    tag_lists : sequence of sequences of str
        One list of tags per sentence.
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"
        Tagging scheme (aliases ``"BIO"``, ``"IOB"``, ``"BIOES"``; case-insensitive). IOB2 and
        IOB1 allow ``O``, ``B-X``, ``I-X``; IOBES adds ``E-X`` and ``S-X``; BILOU adds ``L-X``
        and ``U-X``.
    strict : bool, default=False
        Also check transitions: in IOB2 an ``I-X`` must follow ``B-X`` or ``I-X``; in IOB1 a
        ``B-X`` must follow an entity of type X; in IOBES/BILOU inside and end tags must continue
        an entity of their type and begin/inside tags must be followed by an inside or end tag
        of their type. Off by default because gold data often contains lenient sequences, which
        :func:`convert_scheme` and :func:`repair_bio` read the conlleval way.

    Returns
    -------
    list of list of str
        A new list of new lists (the input is not modified).

    Raises
    ------
    ValueError
        For a malformed tag (or, with ``strict=True``, an invalid transition), naming the
        sentence and position.
    TypeError
        If ``tag_lists`` is not a list of lists of strings.

    Examples
    --------
    >>> validate_tags([["B-PER", "I-PER", "O"], ["O"]])
    [['B-PER', 'I-PER', 'O'], ['O']]
    >>> validate_tags([["O", "S-LOC"]])
    Traceback (most recent call last):
    ...
    ValueError: tag_lists[0][1] = 'S-LOC' is not a valid IOB2 tag: it has prefix 'S', expected one of 'B', 'I'.
    >>> validate_tags([["O", "S-LOC"]], scheme="IOBES")
    [['O', 'S-LOC']]
    >>> validate_tags([["O", "I-LOC"]], strict=True)
    Traceback (most recent call last):
    ...
    ValueError: tag_lists[0][1] = 'I-LOC' is not a valid IOB2 sequence: 'I-LOC' does not continue an entity of type 'LOC' (previous tag: 'O').
    """
    scheme = _check_scheme(scheme)
    out = _as_tag_lists(tag_lists)
    prefixes = _PREFIXES[scheme]
    for i, tags in enumerate(out):
        for j, t in enumerate(tags):
            why = _tag_problem(t, prefixes)
            if why is not None:
                raise ValueError(f"tag_lists[{i}][{j}] = {t!r} is not a valid {scheme} tag: it {why}.")
        if strict:
            for j, t in enumerate(tags):
                why = _strict_problem(tags, j, scheme)
                if why is not None:
                    raise ValueError(f"tag_lists[{i}][{j}] = {t!r} is not a valid {scheme} sequence: {why}.")
    return out


def _spans(tags: list[str], scheme: str) -> list[tuple[str, int, int]]:
    """Entity spans (type, start, end-exclusive) under the lenient (conlleval) reading.

    A begin tag always starts an entity; an inside tag continues the current entity if it has
    the same type and is still open, otherwise it starts one; an end tag closes the current
    entity of its type (or is a one-token entity); a single tag is a one-token entity.
    """
    roles = _ROLES[scheme]
    spans: list[list] = []
    open_type = None  # type of the entity that the next token may continue
    for j, t in enumerate(tags):
        prefix, typ = _split(t)
        if prefix == "O":
            open_type = None
            continue
        role = roles[prefix]
        if role == "begin":
            spans.append([typ, j, j + 1])
            open_type = typ
        elif role == "single":
            spans.append([typ, j, j + 1])
            open_type = None
        else:  # inside or end
            if open_type == typ:
                spans[-1][2] = j + 1
            else:
                spans.append([typ, j, j + 1])
            open_type = typ if role == "inside" else None
    return [tuple(s) for s in spans]


def _encode(spans, n: int, scheme: str) -> list[str]:
    out = ["O"] * n
    prev_end, prev_type = -1, None
    for typ, start, end in spans:
        if scheme == "IOB2":
            out[start] = f"B-{typ}"
            for k in range(start + 1, end):
                out[k] = f"I-{typ}"
        elif scheme == "IOB1":
            first = "B" if (start == prev_end and typ == prev_type) else "I"
            out[start] = f"{first}-{typ}"
            for k in range(start + 1, end):
                out[k] = f"I-{typ}"
        else:
            single, last = ("S", "E") if scheme == "IOBES" else ("U", "L")
            if end - start == 1:
                out[start] = f"{single}-{typ}"
            else:
                out[start] = f"B-{typ}"
                for k in range(start + 1, end - 1):
                    out[k] = f"I-{typ}"
                out[end - 1] = f"{last}-{typ}"
        prev_end, prev_type = end, typ
    return out


def convert_scheme(tag_lists, from_scheme: str, to_scheme: str = "IOB2") -> list[list[str]]:
    """Convert tag sequences from one tagging scheme to another.

    The input is validated with :func:`validate_tags` (``strict=False``) under ``from_scheme``,
    read into entity spans, and the spans are written out in ``to_scheme``. The reading is the
    lenient one of conlleval / seqeval's default mode: a begin tag (``B-``) always starts an
    entity; an inside tag (``I-``) continues the preceding entity if that entity has the same
    type and is still open, and otherwise starts a new entity; an end tag (``E-``/``L-``)
    closes the open entity of its type, or is a one-token entity; ``S-``/``U-`` are one-token
    entities. Hence IOB1 to IOB2 turns an ``I-X`` that starts an entity into ``B-X``, and
    IOB2 to IOB2 is :func:`repair_bio`.

    Parameters
    ----------
    tag_lists : sequence of sequences of str
        One list of tags per sentence.
    from_scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}
        Scheme of ``tag_lists``.
    to_scheme : {"IOB2", "IOB1", "IOBES", "BILOU"}, default="IOB2"
        Scheme of the result.

    Returns
    -------
    list of list of str
        New lists, same lengths as the input.

    Examples
    --------
    >>> convert_scheme([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]], "IOB1")
    [['B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC']]
    >>> convert_scheme([["B-PER", "E-PER", "S-LOC", "O"]], "IOBES")
    [['B-PER', 'I-PER', 'B-LOC', 'O']]
    >>> convert_scheme([["B-PER", "I-PER", "I-PER", "B-LOC"]], "IOB2", "BILOU")
    [['B-PER', 'I-PER', 'L-PER', 'U-LOC']]
    """
    src = _check_scheme(from_scheme, "from_scheme")
    dst = _check_scheme(to_scheme, "to_scheme")
    checked = validate_tags(tag_lists, src)
    return [_encode(_spans(tags, src), len(tags), dst) for tags in checked]


def repair_bio(tags):
    """Make predicted IOB2 tags a valid IOB2 sequence.

    Rule: an ``I-X`` that does not continue an entity of type X -- at the start of the
    sequence, after ``O``, or after a tag of another type -- becomes ``B-X``. Every other tag
    is kept. This is the conlleval reading, which seqeval uses in its default (non-strict)
    mode, so the repaired sequence has exactly the entity spans that seqeval's default mode
    reads from the unrepaired one, and seqeval's strict IOB2 mode then agrees with it. (The
    alternative, decoding only valid sequences from the scores, is
    :func:`constrained_decode`.)

    Parameters
    ----------
    tags : sequence of str, or sequence of sequences of str
        One IOB2 tag sequence, or a list of them (one per sentence).

    Returns
    -------
    list of str, or list of list of str
        A new list (or list of lists) of the same shape.

    Examples
    --------
    >>> repair_bio(["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-ORG', 'B-LOC']
    >>> repair_bio([["O", "I-MISC"], ["B-PER", "I-PER"]])
    [['O', 'B-MISC'], ['B-PER', 'I-PER']]
    """
    if isinstance(tags, (str, bytes)):
        raise TypeError("tags must be a sequence of tags (or of tag lists), got a single string.")
    items = list(tags)
    _refuse_non_string_tag(items)
    if all(isinstance(t, str) for t in items):
        checked = validate_tags([items], "IOB2")
        return _encode(_spans(checked[0], "IOB2"), len(items), "IOB2")
    return convert_scheme(items, "IOB2", "IOB2")


def _refuse_non_string_tag(items) -> None:
    """In one tag sequence (it holds a string; a list of tag lists holds none), name the first tag
    that is not a string, rather than reading the sequence as a list of tag lists.

    >>> _refuse_non_string_tag(["O", None])
    Traceback (most recent call last):
    ...
    TypeError: tags[1] must be a string tag, got NoneType (None); tags is one tag sequence, e.g. ['B-PER', 'I-PER', 'O'].
    """
    if not any(isinstance(t, str) for t in items):
        return
    j = next((j for j, t in enumerate(items) if not isinstance(t, str)), None)
    if j is not None:
        t = items[j]
        raise TypeError(f"tags[{j}] must be a string tag, got {type(t).__name__} ({t!r:.40}); tags is one tag "
                        "sequence, e.g. ['B-PER', 'I-PER', 'O'].")


def entity_types(tag_lists, scheme: str | None = None) -> list[str]:
    """Sorted entity types that occur in ``tag_lists`` (``O`` excluded).

    Parameters
    ----------
    tag_lists : sequence of sequences of str
        One list of tags per sentence.
    scheme : {"IOB2", "IOB1", "IOBES", "BILOU"} or None, default=None
        If given, the tags are first validated under this scheme; if None, any of the
        prefixes ``B I E S L U`` is accepted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> entity_types([["B-PER", "I-PER", "O"], ["B-LOC", "S-MISC"]])
    ['LOC', 'MISC', 'PER']
    """
    if scheme is not None:
        checked = validate_tags(tag_lists, scheme)
    else:
        checked = _as_tag_lists(tag_lists)
        for i, tags in enumerate(checked):
            for j, t in enumerate(tags):
                why = _tag_problem(t, ("B", "I", "E", "S", "L", "U"))
                if why is not None:
                    raise ValueError(f"tag_lists[{i}][{j}] = {t!r} is not a valid tag: it {why}.")
    return sorted({_split(t)[1] for tags in checked for t in tags if t != "O"})


def iob2_transitions(labels):
    """``(allowed, inside)`` for the IOB2 tags ``labels``: ``allowed[i, j]`` says whether tag j may
    follow tag i (an ``I-X`` only after ``B-X`` or ``I-X``), ``inside[j]`` whether tag j is an
    ``I-`` tag (none may start a sentence). No validation.

    Examples
    --------
    >>> allowed, inside = iob2_transitions(["O", "B-PER", "I-PER"])
    >>> allowed.astype(int), inside
    (array([[1, 1, 0],
           [1, 1, 1],
           [1, 1, 1]]), array([False, False,  True]))
    """
    parsed = [_split(t) for t in labels]
    allowed = np.ones((len(parsed), len(parsed)), dtype=bool)
    for j, (p, typ) in enumerate(parsed):
        if p == "I":
            allowed[:, j] = [(pp in ("B", "I") and tt == typ) for pp, tt in parsed]
    return allowed, np.array([p == "I" for p, _ in parsed], dtype=bool)


def _learned_scores(n_labels: int, **scores):
    """``(transitions, start, end)`` as finite float64 arrays of the right shapes, or None when none
    is given (a missing one is zeros)."""
    if all(v is None for v in scores.values()):
        return None
    shapes = {"transitions": (n_labels, n_labels), "start": (n_labels,), "end": (n_labels,)}
    out = []
    for name, shape in shapes.items():
        value = np.zeros(shape) if scores[name] is None else np.asarray(scores[name], dtype=np.float64)
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape} for {n_labels} labels, got {value.shape}.")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must be finite.")
        out.append(value)
    return tuple(out)


def constrained_decode(log_probs, labels, *, transitions=None, start=None, end=None,
                       return_indices: bool = False):
    """Best valid IOB2 tag sequence under per-token scores (Viterbi).

    Maximises the sum over tokens of ``log_probs[t, label_t]`` over all sequences in which
    every ``I-X`` follows ``B-X`` or ``I-X`` (so no sequence starts with ``I-X``). Without
    ``transitions``, ``start`` and ``end``, all other transitions are free and equally weighted;
    since each candidate sequence picks exactly one score per token, row-wise constant shifts do
    not change the result: logits and log-probabilities give the same answer, and if the row-wise
    argmax is already valid it is returned as is (including its tie-breaking), so the decoder only
    ever changes invalid predictions. With them (a CRF's learned scores,
    :class:`skimb.tokens.LinearChainCRF`), a sequence also scores ``transitions[label_{t-1},
    label_t]`` for each step, ``start[label_0]`` and ``end[label_{T-1}]``. ``-inf`` scores are
    allowed (a sequence avoiding them is preferred whenever one exists); NaN and ``+inf`` are not.

    Parameters
    ----------
    log_probs : array-like of shape (T, L)
        Per-token scores (log-probabilities or logits) for T tokens (words) and L labels.
        A torch tensor is detached and moved to the CPU.
    labels : sequence of str of length L
        The IOB2 tag of each column (``O``, ``B-X``, ``I-X``). It must contain ``O`` or at
        least one ``B-`` tag so that a valid sequence exists.
    transitions : array-like of shape (L, L), optional
        ``transitions[i, j]``: the score of label j after label i (finite; forbidden IOB2
        transitions stay forbidden whatever their score).
    start, end : array-like of shape (L,), optional
        The score of each label as the first and as the last of the sequence.
    return_indices : bool, default=False
        Return column indices instead of tags.

    Returns
    -------
    list of str, or list of int
        T tags (or column indices) forming a valid IOB2 sequence.

    Examples
    --------
    >>> import numpy as np
    >>> labels = ["O", "B-PER", "I-PER"]
    >>> scores = np.log([[0.5, 0.4, 0.1],    # argmax O
    ...                  [0.1, 0.2, 0.7]])   # argmax I-PER: invalid after O
    >>> constrained_decode(scores, labels)
    ['B-PER', 'I-PER']
    >>> constrained_decode(scores[:1], labels, return_indices=True)
    [0]
    """
    if hasattr(log_probs, "detach"):
        log_probs = log_probs.detach().cpu().numpy()
    scores = np.array(log_probs, dtype=np.float64)  # a copy
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a sequence of tags, got a single string.")
    labels = [str(t) if isinstance(t, str) else t for t in labels]
    validate_tags([labels], "IOB2")
    if scores.ndim != 2:
        raise ValueError(f"log_probs must be 2-D (T tokens, L labels), got shape {scores.shape}.")
    T, L = scores.shape
    if L != len(labels):
        raise ValueError(f"log_probs has {L} columns but labels has {len(labels)} entries.")
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError("log_probs must not contain NaN or +inf.")
    allowed, is_inside = iob2_transitions(labels)
    if is_inside.all():
        raise ValueError("labels must contain 'O' or a 'B-' tag: with only I- tags no valid IOB2 sequence exists.")
    learned = _learned_scores(L, transitions=transitions, start=start, end=end)
    if T == 0:
        return []
    best = scores.argmax(axis=1)
    if learned is None and not is_inside[best[0]] and all(allowed[best[t - 1], best[t]] for t in range(1, T)):
        path = best.tolist()
        return path if return_indices else [labels[k] for k in path]
    # make -inf emissions finite but worse than any path without them
    finite = np.isfinite(scores)
    if not finite.any():
        scores = np.zeros_like(scores)
    learned_trans, learned_start, learned_end = learned if learned is not None else (0.0, 0.0, 0.0)
    if not finite.all() and finite.any():
        # below any path without them, whatever the learned scores add along a path
        lo, hi = scores[finite].min(), scores[finite].max()
        spread = T * np.ptp(learned_trans) + np.ptp(learned_start) + np.ptp(learned_end)
        scores[~finite] = lo - (T * (hi - lo) + spread + 1.0)
    trans = np.where(allowed, learned_trans, -math.inf)
    delta = np.where(is_inside, -math.inf, scores[0] + learned_start)
    back = np.zeros((T, L), dtype=np.int64)
    for t in range(1, T):
        cand = delta[:, None] + trans  # (prev, next)
        back[t] = cand.argmax(axis=0)
        delta = cand[back[t], np.arange(L)] + scores[t]
    path = [int((delta + learned_end).argmax())]
    for t in range(T - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path.reverse()
    return path if return_indices else [labels[k] for k in path]


def decode_tags(word_scores, labels, decoding: str = "repair", *, transitions=None, start=None,
                end=None) -> list[list[str]]:
    """IOB2 tag lists from per-word scores, one ``(n_words, n_labels)`` array per sentence.

    Parameters
    ----------
    word_scores : sequence of array-like of shape (n_words, L)
        Per-word log-probabilities, or logits (the same tags, up to floating-point ties).
    labels : sequence of str of length L
        The IOB2 tag of each column.
    decoding : {"repair", "constrained"}, default="repair"
        "repair": each word's argmax tag, then :func:`repair_bio`; "constrained": the best valid
        sequence (:func:`constrained_decode`).
    transitions, start, end : array-like, optional
        A CRF's learned scores for "constrained" (:func:`constrained_decode`'s).

    Returns
    -------
    list of list of str
        One tag list per sentence (``[]`` for a sentence of no words).

    Examples
    --------
    >>> import numpy as np
    >>> scores = [np.log([[0.2, 0.1, 0.7], [0.5, 0.4, 0.1]]), np.zeros((0, 3))]
    >>> decode_tags(scores, ["O", "B-PER", "I-PER"])  # the argmax I-PER read as B-PER
    [['B-PER', 'O'], []]
    >>> decode_tags(scores, ["O", "B-PER", "I-PER"], decoding="constrained")  # 0.2 x 0.5 beats 0.1 x 0.5
    [['O', 'O'], []]
    """
    labels = [str(t) for t in labels]
    try:  # a malformed name would decode to tags no metric or repair reads right
        validate_tags([labels], "IOB2")
    except ValueError as error:
        raise ValueError(f"labels: {str(error).replace('tag_lists[0]', 'labels')}") from None
    learned = {k: v for k, v in (("transitions", transitions), ("start", start), ("end", end)) if v is not None}
    if decoding not in ("repair", "constrained"):
        raise ValueError(f"decoding must be 'repair' or 'constrained' (a CRF's Viterbi: 'constrained' with its "
                         f"transitions, start and end), got {decoding!r}.")
    if learned and decoding != "constrained":
        raise ValueError(f"{sorted(learned)} score sequences: give them with decoding='constrained'.")
    out = []
    for i, s in enumerate(word_scores):
        s = _sentence_scores(s, i, len(labels), constrained=decoding == "constrained")
        if not len(s):  # a sentence of no words
            out.append([])
        elif decoding == "constrained":
            out.append(constrained_decode(s, labels, **learned))
        else:
            out.append([labels[k] for k in s.argmax(axis=1)])
    return out if decoding == "constrained" else repair_bio(out)


def _sentence_scores(scores, i: int, n_labels: int, *, constrained: bool) -> np.ndarray:
    """Sentence ``i``'s scores as a float64 ``(n_words, n_labels)`` array (or an empty one), or a
    ``ValueError`` naming the sentence: a wrong shape, NaN (a diverged model), and for Viterbi
    (``constrained``) also ``+inf``, which no path score can rank."""
    if hasattr(scores, "detach"):  # a torch tensor
        scores = scores.detach().cpu().numpy()
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim and not len(s):  # a sentence of no words
        return s
    if s.ndim != 2 or s.shape[1] != n_labels:
        raise ValueError(f"sentence {i}: scores of shape {s.shape}; expected (n_words, {n_labels}), a "
                         "column per label.")
    if np.isnan(s).any():
        raise ValueError(f"sentence {i}: scores contain NaN (the model diverged): refit it, with a lower lr say.")
    if constrained and np.isposinf(s).any():
        raise ValueError(f"sentence {i}: scores contain +inf; decoding='constrained' needs finite scores "
                         "(-inf rules a tag out): clip them.")
    return s
