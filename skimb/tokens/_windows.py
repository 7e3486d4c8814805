"""Overlapping windows for sentences longer than the encoder's ``max_length``.

A sentence is split at word boundaries into windows of at most ``max_length`` sub-tokens
(special tokens included) that overlap by at most ``stride`` sub-tokens. Each word of the
sentence is assigned to exactly one window that is *responsible* for it: the window in which
the word is farthest from a cut window edge. :func:`merge_windows` takes every word's score row
from its responsible window, so each word of the input gets exactly one prediction row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

__all__ = ["Window", "make_windows", "merge_windows"]


@dataclass(frozen=True)
class Window:
    """One encoder input cut from a sentence.

    Attributes
    ----------
    sentence : int
        Index of the sentence this window comes from.
    input_ids : tuple of int
        Sub-token ids including the tokenizer's special tokens (no padding); length at most
        ``max_length``.
    word_ids : tuple of (int or None)
        For each entry of ``input_ids``, the index of its word in the *sentence* (not in the
        window); ``None`` for special tokens.
    word_start, word_end : int
        The window holds words ``word_start .. word_end - 1`` of the sentence, whole except
        for ``truncated_words``.
    responsible : tuple of int
        Sentence word indices whose prediction this window provides (see :func:`make_windows`).
        Across the windows of one sentence every word appears here exactly once.
    n_words : int
        Number of words in the sentence.
    truncated_words : tuple of int
        Words longer than a whole window, kept as their first sub-tokens only (the first
        sub-token, which carries the label, is always kept). Usually empty.

    Examples
    --------
    >>> (w,) = make_windows([7, 8, 9], [0, 0, 1], max_length=8, prefix_ids=[101], suffix_ids=[102])
    >>> w.input_ids, w.word_ids, w.responsible, len(w)
    ((101, 7, 8, 9, 102), (None, 0, 0, 1, None), (0, 1), 5)
    """

    sentence: int
    input_ids: tuple
    word_ids: tuple
    word_start: int
    word_end: int
    responsible: tuple
    n_words: int
    truncated_words: tuple = ()

    def __len__(self) -> int:
        return len(self.input_ids)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r:.40}).")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return int(value)


def _word_lengths(word_ids, n_words) -> list[int]:
    """Sub-token count of each word, checking that word ids run 0, 0, 1, 2, 2, ... contiguously."""
    lengths: list[int] = []
    for p, w in enumerate(word_ids):
        if w is None:
            raise ValueError(
                f"word_ids[{p}] is None: make_windows expects the sentence's sub-tokens without "
                "special tokens (pass those as prefix_ids / suffix_ids)."
            )
        if isinstance(w, bool) or not isinstance(w, Integral):
            raise TypeError(f"word_ids[{p}] must be an int, got {type(w).__name__}.")
        last = len(lengths) - 1
        if w == last:
            lengths[-1] += 1
        elif w == last + 1:
            lengths.append(1)
        else:
            raise ValueError(
                f"word_ids[{p}] = {w} after word {last}: word ids must start at 0 and increase by "
                "at most 1 per sub-token, so that every word has at least one sub-token (a word "
                "with none would get no prediction; tokenize_words substitutes the unk token for it)."
            )
    if n_words is not None:
        n_words = _check_int(n_words, "n_words", 0)
        if n_words != len(lengths):
            raise ValueError(
                f"n_words = {n_words} but the sub-tokens cover {len(lengths)} word(s): words "
                f"{len(lengths)}..{n_words - 1} have no sub-token."
            )
    return lengths


def _spans(lengths: list[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Word ranges [start, end) of the windows; ``lengths`` are already capped at ``budget``."""
    n = len(lengths)
    if n == 0:
        return [(0, 0)]
    spans = []
    start = 0
    while True:
        end, total = start, 0
        while end < n and total + lengths[end] <= budget:
            total += lengths[end]
            end += 1
        spans.append((start, end))
        if end == n:
            return spans
        # overlap: the longest run of whole words ending at `end` with at most `stride`
        # sub-tokens that still leaves room for word `end`; always move forward
        nxt, acc = end, 0
        while (
            nxt - 1 > start
            and acc + lengths[nxt - 1] <= stride
            and acc + lengths[nxt - 1] + lengths[end] <= budget
        ):
            nxt -= 1
            acc += lengths[nxt]
        start = nxt


def make_windows(
    token_ids,
    word_ids,
    *,
    max_length: int,
    stride: int = 0,
    prefix_ids=(),
    suffix_ids=(),
    sentence: int = 0,
    n_words: int | None = None,
) -> list[Window]:
    """Split one tokenized sentence into overlapping windows of whole words.

    Windows are filled greedily with whole words, left to right, up to ``max_length``
    sub-tokens including ``prefix_ids`` and ``suffix_ids``. The next window starts with the
    longest run of whole words at the end of the previous window that has at most ``stride``
    sub-tokens (and still leaves room for the next new word); it always advances by at least
    one word. A word is never split across windows; a single word with more sub-tokens than
    fit in a window is truncated to its first sub-tokens (listed in ``truncated_words``),
    which is harmless because only a word's first sub-token carries its label.

    Responsibility (which window predicts a word that appears in several windows): the window
    where the word is farthest, in sub-tokens, from a *cut* window edge, i.e. a window edge
    that is not the start or end of the sentence. For a word at content positions
    ``[a, b)`` of a window with ``n`` content sub-tokens, the distance is
    ``min(a if the window's left edge is cut else inf, n - b if its right edge is cut else inf)``.
    Ties go to the earlier window. An empty sentence gives one window holding only the
    special tokens.

    Parameters
    ----------
    token_ids : sequence of int
        The sentence's sub-token ids, without special tokens.
    word_ids : sequence of int
        Word index of each sub-token: 0, 0, 1, 2, 2, ... (every word must have a sub-token).
    max_length : int
        Maximum window length in sub-tokens, special tokens included.
    stride : int, default=0
        Maximum overlap between consecutive windows in sub-tokens; ``0 <= stride <
        max_length - len(prefix_ids) - len(suffix_ids)``.
    prefix_ids, suffix_ids : sequence of int, default=()
        Special tokens to put around every window (e.g. ``[CLS]`` and ``[SEP]``).
    sentence : int, default=0
        Sentence index recorded in each window.
    n_words : int, optional
        Number of words in the sentence; if given, checked against ``word_ids`` (so a trailing
        word without sub-tokens is caught).

    Returns
    -------
    list of Window

    Examples
    --------
    >>> ws = make_windows([10, 11, 12, 13, 14, 15], [0, 0, 1, 2, 3, 4], max_length=5,
    ...                   stride=1, prefix_ids=[1], suffix_ids=[2])
    >>> [w.input_ids for w in ws]
    [(1, 10, 11, 12, 2), (1, 12, 13, 14, 2), (1, 14, 15, 2)]
    >>> [w.responsible for w in ws]
    [(0, 1), (2, 3), (4,)]
    >>> ws[1].word_ids
    (None, 1, 2, 3, None)
    """
    max_length = _check_int(max_length, "max_length", 1)
    stride = _check_int(stride, "stride", 0)
    sentence = _check_int(sentence, "sentence", 0)
    token_ids = [int(t) for t in token_ids]
    word_ids = list(word_ids)
    prefix_ids = tuple(int(t) for t in prefix_ids)
    suffix_ids = tuple(int(t) for t in suffix_ids)
    if len(token_ids) != len(word_ids):
        raise ValueError(
            f"token_ids and word_ids have different lengths: {len(token_ids)} != {len(word_ids)}."
        )
    budget = max_length - len(prefix_ids) - len(suffix_ids)
    if budget < 1:
        raise ValueError(
            f"max_length = {max_length} leaves no room for words after {len(prefix_ids) + len(suffix_ids)} "
            "special tokens."
        )
    if stride >= budget:
        raise ValueError(
            f"stride = {stride} must be smaller than the {budget} sub-tokens a window holds "
            f"(max_length {max_length} minus {len(prefix_ids) + len(suffix_ids)} special tokens); lower stride "
            "or raise max_length."
        )
    lengths = _word_lengths(word_ids, n_words)
    n = len(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int).tolist()
    capped = [min(k, budget) for k in lengths]
    truncated = {w for w, k in enumerate(lengths) if k > budget}
    spans = _spans(capped, budget, stride)

    # distance of each word from a cut edge, per window; the max wins (ties: earlier window)
    best: dict[int, tuple[float, int]] = {}
    layouts = []
    for k, (s, e) in enumerate(spans):
        ids: list[int] = []
        wids: list[int] = []
        pos = {}
        for w in range(s, e):
            pos[w] = len(ids)
            ids.extend(token_ids[offsets[w] : offsets[w] + capped[w]])
            wids.extend([w] * capped[w])
        n_content = len(ids)
        left_cut, right_cut = s > 0, e < n
        for w in range(s, e):
            a, b = pos[w], pos[w] + capped[w]
            dist = min(a if left_cut else math.inf, n_content - b if right_cut else math.inf)
            if w not in best or dist > best[w][0]:
                best[w] = (dist, k)
        layouts.append((s, e, ids, wids))

    windows = []
    for k, (s, e, ids, wids) in enumerate(layouts):
        windows.append(
            Window(
                sentence=sentence,
                input_ids=prefix_ids + tuple(ids) + suffix_ids,
                word_ids=(None,) * len(prefix_ids) + tuple(wids) + (None,) * len(suffix_ids),
                word_start=s,
                word_end=e,
                responsible=tuple(w for w in range(s, e) if best[w][1] == k),
                n_words=n,
                truncated_words=tuple(sorted(w for w in truncated if s <= w < e)),
            )
        )
    return windows


def _to_numpy(scores, what: str) -> np.ndarray:
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    arr = np.asarray(scores)
    if arr.ndim < 1:
        raise ValueError(f"{what} must have a first axis over sub-tokens, got a scalar.")
    return arr


def merge_windows(windows, window_scores) -> list[np.ndarray]:
    """Merge per-window sub-token scores into one score row per word of each sentence.

    Each word's row is the score of its first sub-token in the window responsible for it
    (see :func:`make_windows`: the window where the word is farthest from a cut edge).

    Parameters
    ----------
    windows : sequence of Window
        All windows of sentences ``0 .. n_sentences - 1`` (e.g. from
        :func:`~skimb.tokens.tokenize_words`), in any order.
    window_scores : sequence of array-like
        ``window_scores[i]`` has shape ``(T_i, ...)`` with ``T_i >= len(windows[i])``; rows past
        the window's length (right padding) are ignored. A padded 3-D batch
        ``(n_windows, T, L)`` works too, as do torch tensors (detached, moved to the CPU).

    Returns
    -------
    list of ndarray
        One array of shape ``(n_words, ...)`` per sentence, in sentence order. Every word has
        exactly one row; a ``ValueError`` is raised otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> ws = make_windows([10, 11, 12, 13, 14, 15], [0, 0, 1, 2, 3, 4], max_length=5,
    ...                   stride=1, prefix_ids=[1], suffix_ids=[2])
    >>> scores = [np.array(w.input_ids, dtype=float)[:, None] for w in ws]  # score = token id
    >>> merge_windows(ws, scores)[0].ravel()
    array([10., 12., 13., 14., 15.])
    """
    windows = list(windows)
    if len(window_scores) != len(windows):
        raise ValueError(
            f"windows and window_scores have different lengths: {len(windows)} != {len(window_scores)}."
        )
    if not windows:
        return []
    n_sentences = max(w.sentence for w in windows) + 1
    out: list = [None] * n_sentences
    filled: list = [None] * n_sentences
    for i, (win, raw) in enumerate(zip(windows, window_scores)):
        if not isinstance(win, Window):
            raise TypeError(f"windows[{i}] must be a Window, got {type(win).__name__}.")
        scores = _to_numpy(raw, f"window_scores[{i}]")
        if scores.shape[0] < len(win.word_ids):
            raise ValueError(
                f"window_scores[{i}] has {scores.shape[0]} rows but window {i} has "
                f"{len(win.word_ids)} sub-tokens."
            )
        s = win.sentence
        if out[s] is None:
            out[s] = np.zeros((win.n_words,) + scores.shape[1:], dtype=scores.dtype)
            filled[s] = np.zeros(win.n_words, dtype=bool)
        elif out[s].shape[1:] != scores.shape[1:]:
            raise ValueError(
                f"window_scores[{i}] has row shape {scores.shape[1:]}, other windows of sentence "
                f"{s} have {out[s].shape[1:]}."
            )
        responsible = set(win.responsible)
        prev = None
        for p, w in enumerate(win.word_ids):
            if w is not None and w != prev and w in responsible:
                if filled[s][w]:
                    raise ValueError(f"word {w} of sentence {s} is predicted by more than one window.")
                out[s][w] = scores[p]
                filled[s][w] = True
            prev = w
    for s in range(n_sentences):
        if out[s] is None:
            raise ValueError(f"sentence {s} has no window: pass the windows of every sentence.")
        missing = np.flatnonzero(~filled[s])
        if missing.size:
            raise ValueError(
                f"word {missing[0]} of sentence {s} has no prediction ({missing.size} word(s) missing): "
                "pass every window of the sentence."
            )
    return out
