"""Readers for the file formats of common class-imbalanced NLP data sets.

Every reader takes a path to a file the user owns, returns new plain Python
lists and never modifies the file.  Files ending in ``.gz`` are decompressed
transparently.  Problems are reported as ``FileNotFoundError`` (missing file)
or ``ValueError`` naming the file and the 1-based line (or record) at fault.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from pathlib import Path

__all__ = [
    "read_humaid_json",
    "read_goemotions_tsv",
    "read_conll",
    "read_jsonl_ner",
    "read_sms_spam",
]

_IDS_RE = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No such file: '{p}'.")
    if p.is_dir():
        raise IsADirectoryError(f"'{p}' is a directory; expected a file.")
    return p


def _read_text(path) -> tuple[Path, str]:
    """Read a whole (optionally gzip-compressed) UTF-8 text file."""
    p = _check_path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8", newline="") as fh:
                text = fh.read()
        else:
            with open(p, encoding="utf-8", newline="") as fh:
                text = fh.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not valid UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{p}: cannot be read ({exc}).") from None
    if text.startswith("\ufeff"):  # byte-order mark
        text = text[1:]
    return p, text


def _lines(text: str) -> list[str]:
    """Split on the file's line ends (\\n or \\r\\n; \\r alone where the file has no \\n, as old
    Mac files) without touching other characters (a stray \\r inside a line of a \\n file stays).

    >>> _lines("a\\r\\nb\\n"), _lines("a\\rb\\r"), _lines("a\\rb\\nc")
    (['a', 'b', ''], ['a', 'b', ''], ['a\\rb', 'c'])
    """
    if "\n" not in text and "\r" in text:
        return text.split("\r")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def read_humaid_json(path) -> tuple[list[str], list[str]]:
    """Read a HumAID-style JSON array of ``{"text", "label", "label_text"}`` records.

    This is the format of the HumAID crisis tweets and of SST-5 in the
    ``trust-nlp/ImbalanceLearning`` repository.

    Parameters
    ----------
    path : str or path-like
        A ``.json`` file (or ``.json.gz``) holding one JSON array of objects.

    Returns
    -------
    texts : list of str
        The ``text`` field of each record.
    labels : list of str
        The ``label_text`` field of each record (the ``label`` field, as a
        string, for records without ``label_text`` or with a blank one).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not valid JSON (the line and column are given) or a
        record lacks a text or a label (a NaN or infinite label is none).

    Examples
    --------
    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.json")
    >>> records = [{"text": "Flooding in Beira", "label": 3, "label_text": "infrastructure"},
    ...            {"text": "Stay safe", "label": 0, "label_text": "caution_and_advice"}]
    >>> with open(path, "w") as fh:
    ...     json.dump(records, fh)
    >>> read_humaid_json(path)
    (['Flooding in Beira', 'Stay safe'], ['infrastructure', 'caution_and_advice'])
    """
    p, raw = _read_text(path)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{p}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
            "Expected one JSON array of {\"text\", \"label\", \"label_text\"} objects (for one JSON object per "
            "line: JSON lines of {\"tokens\", \"ner_tags\"}: read_jsonl_ner; JSON lines of texts and labels: "
            "skimb compare --data FILE.jsonl, or one json.loads per line)."
        ) from None
    if not isinstance(data, list):
        raise ValueError(
            f"{p}: expected a JSON array of records, got a JSON {type(data).__name__}."
        )
    texts, labels = [], []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(f"{p}: record {i} is a {type(rec).__name__}, expected an object.")
        if "text" not in rec:
            raise ValueError(f"{p}: record {i} has no 'text' field (fields: {sorted(rec)}).")
        text = rec["text"]
        if not isinstance(text, str):
            raise ValueError(f"{p}: record {i} has a non-string 'text' ({type(text).__name__}).")
        label_text = rec.get("label_text")
        if label_text is not None and not (isinstance(label_text, str) and not label_text.strip()):
            label = label_text
        elif rec.get("label") is not None:  # a blank label_text names no class: the label does
            label = rec["label"]
        else:
            raise ValueError(f"{p}: record {i} has neither 'label_text' nor 'label'"
                             + (f" (its 'label_text' is {label_text!r})." if label_text is not None else "."))
        if isinstance(label, (dict, list, bool)):
            raise ValueError(f"{p}: record {i} has an invalid label {label!r:.40}.")
        if isinstance(label, float) and not math.isfinite(label):  # JSON's NaN/Infinity: no class name
            raise ValueError(f"{p}: record {i} has the label {label}, which is no class; give the record its "
                             "label (or drop it).")
        texts.append(text)
        labels.append(str(label))
    return texts, labels


def _read_label_names(labels_path) -> list[str]:
    p, raw = _read_text(labels_path)
    names = [ln.strip() for ln in _lines(raw)]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise ValueError(f"{p}: line {i} is empty; expected one label name per line.")
    if not names:
        raise ValueError(f"{p}: no label names found.")
    return names


def read_goemotions_tsv(path, labels_path=None) -> tuple[list[str], list[list]]:
    """Read a GoEmotions TSV file: ``text<TAB>comma-separated label ids[<TAB>id]``.

    Parameters
    ----------
    path : str or path-like
        The ``.tsv`` file (e.g. ``train.tsv``); no header line.
    labels_path : str or path-like, default=None
        A ``labels.txt`` file with one label name per line; label id ``k`` is
        the name on line ``k + 1``.  When ``None`` the label ids are returned
        as ints.

    Returns
    -------
    texts : list of str
    label_lists : list of list
        For each text the list of its labels (names when ``labels_path`` is
        given, else ints), in file order.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a line does not have a text and a label-id column, or an id is not
        a line of ``labels.txt`` (the line is named).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "train.tsv"), "w") as fh:
    ...     _ = fh.write("So happy for you!\\t3\\teeabc\\nWhat? Really?\\t4,6\\teeabd\\n")
    >>> with open(os.path.join(d, "labels.txt"), "w") as fh:
    ...     _ = fh.write("anger\\ndisgust\\nfear\\njoy\\nneutral\\nsadness\\nsurprise\\n")
    >>> read_goemotions_tsv(os.path.join(d, "train.tsv"))
    (['So happy for you!', 'What? Really?'], [[3], [4, 6]])
    >>> read_goemotions_tsv(os.path.join(d, "train.tsv"), os.path.join(d, "labels.txt"))[1]
    [['joy'], ['neutral', 'surprise']]
    """
    names = _read_label_names(labels_path) if labels_path is not None else None
    p, raw = _read_text(path)
    texts, label_lists = [], []
    for lineno, line in enumerate(_lines(raw), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3 and _IDS_RE.match(parts[-2]):
            text, ids_field = "\t".join(parts[:-2]), parts[-2]
        elif len(parts) >= 2 and _IDS_RE.match(parts[-1]):
            text, ids_field = "\t".join(parts[:-1]), parts[-1]
        else:
            raise ValueError(
                f"{p}: line {lineno} is malformed ({line!r:.60}); expected "
                "'text<TAB>comma-separated label ids[<TAB>id]', e.g. 'Great!\\t3,17\\teeabc'."
            )
        ids = [int(tok) for tok in ids_field.split(",")]
        if names is not None:
            bad = [k for k in ids if k >= len(names)]
            if bad:
                raise ValueError(
                    f"{p}: line {lineno} has label id {bad[0]}, but {labels_path} lists only "
                    f"{len(names)} labels (ids 0..{len(names) - 1})."
                )
            labels = [names[k] for k in ids]
        else:
            labels = ids
        texts.append(text)
        label_lists.append(labels)
    return texts, label_lists


def read_conll(path) -> tuple[list[list[str]], list[list[str]]]:
    """Read a CoNLL-style column file: one ``token … TAG`` line per token.

    The first column is the token and the last column the tag; sentences are
    separated by blank lines and ``-DOCSTART-`` lines are skipped.

    Parameters
    ----------
    path : str or path-like
        E.g. CoNLL-2003 ``train.txt`` (columns separated by spaces or tabs).

    Returns
    -------
    token_lists : list of list of str
        One list of tokens per sentence.
    tag_lists : list of list of str
        The matching tags (same lengths as ``token_lists``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a non-blank line has fewer than two columns (the line is named).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.txt")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("-DOCSTART- O\\n\\nEU B-ORG\\nrejects O\\n\\nPeter B-PER\\nBlackburn I-PER\\n")
    >>> read_conll(path)
    ([['EU', 'rejects'], ['Peter', 'Blackburn']], [['B-ORG', 'O'], ['B-PER', 'I-PER']])
    """
    p, raw = _read_text(path)
    token_lists, tag_lists = [], []
    tokens, tags = [], []
    for lineno, line in enumerate(_lines(raw), start=1):
        cols = line.split()
        if not cols:
            if tokens:
                token_lists.append(tokens)
                tag_lists.append(tags)
                tokens, tags = [], []
            continue
        if cols[0] == "-DOCSTART-":
            if tokens:
                token_lists.append(tokens)
                tag_lists.append(tags)
                tokens, tags = [], []
            continue
        if len(cols) < 2:
            raise ValueError(
                f"{p}: line {lineno} has a single column ({line.strip()!r:.60}); expected "
                "'token TAG' (token first, tag in the last column) or a blank line between sentences."
            )
        tokens.append(cols[0])
        tags.append(cols[-1])
    if tokens:
        token_lists.append(tokens)
        tag_lists.append(tags)
    return token_lists, tag_lists


def read_jsonl_ner(path, tag_names=None) -> tuple[list[list[str]], list[list]]:
    """Read token-tagging data stored as JSON lines ``{"tokens": [...], "ner_tags": [...]}``.

    Parameters
    ----------
    path : str or path-like
        A JSONL file (one JSON object per non-blank line), whatever its
        extension (MIT-Restaurant ships them as ``*.json``).
    tag_names : sequence of str, default=None
        Names of integer tags: tag ``k`` becomes ``tag_names[k]``.  String tags
        are kept as they are.  Without ``tag_names`` integer tags stay ints.

    Returns
    -------
    token_lists : list of list of str
    tag_lists : list of list
        One tag per token.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a line is not a JSON object with ``tokens`` and ``ner_tags`` (or
        ``tags``) lists of the same length, or an integer tag has no name in
        ``tag_names`` (the line is named).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.json")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write('{"tokens": ["cheap", "pizza"], "ner_tags": ["B-Price", "B-Dish"]}\\n'
    ...                  '{"tokens": ["open", "now"], "ner_tags": [1, 2]}\\n')
    >>> read_jsonl_ner(path, tag_names=["O", "B-Hours", "I-Hours"])
    ([['cheap', 'pizza'], ['open', 'now']], [['B-Price', 'B-Dish'], ['B-Hours', 'I-Hours']])
    """
    if tag_names is not None:
        if isinstance(tag_names, (str, bytes)):
            raise TypeError("tag_names must be a sequence of tag names, not a single string.")
        tag_names = [str(t) for t in tag_names]
    p, raw = _read_text(path)
    token_lists, tag_lists = [], []
    for lineno, line in enumerate(_lines(raw), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{p}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "expected one {\"tokens\": [...], \"ner_tags\": [...]} object per line."
            ) from None
        if not isinstance(rec, dict):
            raise ValueError(f"{p}: line {lineno} is a JSON {type(rec).__name__}, expected an object.")
        if "tokens" not in rec or not ("ner_tags" in rec or "tags" in rec):
            raise ValueError(
                f"{p}: line {lineno} lacks 'tokens' or 'ner_tags' (fields: {sorted(rec)})."
            )
        tokens = rec["tokens"]
        tags = rec["ner_tags"] if "ner_tags" in rec else rec["tags"]
        if not isinstance(tokens, list) or not isinstance(tags, list):
            raise ValueError(f"{p}: line {lineno}: 'tokens' and 'ner_tags' must be JSON lists.")
        if len(tokens) != len(tags):
            raise ValueError(
                f"{p}: line {lineno} has {len(tokens)} tokens but {len(tags)} tags; "
                "every token needs exactly one tag."
            )
        for j, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise ValueError(f"{p}: line {lineno}: token {j} is not a string ({tok!r:.40}).")
        out_tags = []
        for j, tag in enumerate(tags):
            if isinstance(tag, bool) or not isinstance(tag, (str, int)):
                raise ValueError(f"{p}: line {lineno}: tag {j} must be a string or an int, got {tag!r:.40}.")
            if isinstance(tag, int) and tag_names is not None:
                if not 0 <= tag < len(tag_names):
                    raise ValueError(
                        f"{p}: line {lineno}: tag id {tag} has no name in tag_names "
                        f"({len(tag_names)} names, ids 0..{len(tag_names) - 1})."
                    )
                tag = tag_names[tag]
            out_tags.append(tag)
        token_lists.append(list(tokens))
        tag_lists.append(out_tags)
    return token_lists, tag_lists


_SMS_LABELS = ("ham", "spam")


def read_sms_spam(path) -> tuple[list[str], list[str]]:
    """Read the SMS Spam Collection TSV: ``label<TAB>text`` lines, with or without a header line.

    Parameters
    ----------
    path : str or path-like
        E.g. ``SMSSpamCollection`` (the UCI file, no header) or
        ``SMSSpamCollection.tsv`` (with a ``Label<TAB>SMS`` header).  The
        text is everything after the first tab.  The first line is a header,
        and skipped, when it has no tab or when its label field is neither
        ``ham``/``spam`` nor the label of any other line (a column name such
        as ``Label``); otherwise it is the first message.

    Returns
    -------
    texts : list of str
    labels : list of str
        ``'ham'`` or ``'spam'`` for the original file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a line has no tab or an empty label (the line is named).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "sms.tsv")
    >>> with open(path, "w") as fh:
    ...     _ = fh.write("Label\\tSMS\\nham\\tSee you at 6\\nspam\\tWIN a prize! Call now\\n")
    >>> read_sms_spam(path)
    (['See you at 6', 'WIN a prize! Call now'], ['ham', 'spam'])
    >>> with open(path, "w") as fh:  # no header: the first line is a message
    ...     _ = fh.write("ham\\tSee you at 6\\nspam\\tWIN a prize! Call now\\n")
    >>> read_sms_spam(path)[1]
    ['ham', 'spam']
    """
    p, raw = _read_text(path)
    lines = _lines(raw)
    texts, labels = [], []
    start = 1 if _is_label_header(lines) else 0
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        label = label.strip()
        if not sep or not label:
            raise ValueError(
                f"{p}: line {lineno} is malformed ({line!r:.60}); expected 'label<TAB>text'."
            )
        texts.append(text)
        labels.append(label)
    return texts, labels


def _is_label_header(lines) -> bool:
    """Whether the first of the ``label<TAB>text`` ``lines`` is a header: it has no tab, or its
    label field is neither an SMS label (ham, spam) nor the label of another line (a class name
    recurs; a column name does not)."""
    label, sep, _ = lines[0].partition("\t") if lines else ("", "", "")
    label = label.strip()
    if not sep or not label:
        return True
    if label in _SMS_LABELS:
        return False
    return all(line.partition("\t")[0].strip() != label for line in lines[1:])
