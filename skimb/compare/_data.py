"""``--data``: the user's own texts and labels from a CSV or JSONL file.

One row per text; the text and label columns are named on the command line. A column named
``split`` (train / test / dev) gives the split; without it a stratified share of the rows is
held out as the test split. Every problem is a ValueError naming the file, the line and the
column, with the remedy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["load_table", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = (".csv", ".jsonl")
SPLIT_COLUMN = "split"
_SPLIT_NAMES = {"train": "train", "test": "test", "dev": "dev", "valid": "dev", "validation": "dev", "val": "dev"}
DEFAULT_TEST_FRACTION = 0.2
#: Where multi-label data go instead: the GoEmotions folder format, which --dataset reads.
MULTILABEL_REMEDY = (" For multi-label data write a folder with train.tsv and test.tsv in GoEmotions' format (a "
                     "text, a tab, its label ids separated by commas) and labels.txt (one label name per line, id 0 "
                     "first), and pass the folder with --dataset.")


def load_table(path, *, text_column="text", label_column="label", test_size=None, train_size=None,
               random_state=0):
    """A multi-class data bunch (``X_train``, ``y_train``, ``X_test``, ``y_test``, ...) from a
    ``.csv`` or ``.jsonl`` file.

    ``test_size`` (fraction < 1 or count) is the held-out test split when the file has no
    ``split`` column (default 0.2), and a stratified subsample of its test rows when it has one;
    ``train_size`` subsamples the training rows (as ``load_dataset``'s ``subsample``).
    """
    path = _check_file(path)
    rows = _read_rows(path)
    texts, labels, splits = _columns(rows, path, text_column, label_column)
    _check_classes(labels, path, label_column)
    if splits is None:
        parts = _stratified_split(texts, labels, test_size, path, random_state)
        subsample = {"train": train_size} if train_size is not None else None
    else:
        parts = _named_splits(texts, labels, splits, path)
        subsample = {k: v for k, v in (("train", train_size), ("test", test_size)) if v is not None} or None
    return _bunch(path, parts, subsample, random_state, text_column, label_column)


# --------------------------------------------------------------------------- reading
def _check_file(path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (--data takes a .csv or .jsonl file).")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; --data reads {list(TABLE_SUFFIXES)} files "
                         "(one row per text, with a text and a label column).")
    return path


def _read_rows(path: Path) -> list:
    """``[(line number, {column: value})]``, one entry per row."""
    try:
        if path.suffix.lower() == ".csv":
            return _read_csv(path)
        return _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8.") from None


def _read_csv(path: Path) -> list:
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig: spreadsheets write a byte-order mark
        reader = csv.DictReader(f)
        try:
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as exc:
            raise ValueError(f"{path} line {reader.line_num}: not valid CSV ({exc}).") from None
        columns = reader.fieldnames
    if columns is None:
        raise ValueError(f"{path}: the file is empty; expected a header line naming the columns, then one row per text.")
    if not rows:
        raise ValueError(f"{path}: the header names the columns {columns} but no row follows.")
    return rows


def _read_jsonl(path: Path) -> list:
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                 "a .jsonl file holds one JSON object per line.") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path} line {number}: a JSON {type(record).__name__}, expected an object such as "
                                 '{"text": "...", "label": "..."}.')
            rows.append((number, record))
    if not rows:
        raise ValueError(f"{path}: the file is empty; expected one JSON object per line.")
    return rows


# --------------------------------------------------------------------------- checking
def _columns(rows, path, text_column, label_column):
    """``(texts, labels, splits or None)`` after checking every row."""
    has_split = any(SPLIT_COLUMN in row for _, row in rows)
    texts, labels, splits = [], [], []
    for line, row in rows:
        for column, option in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column not in row or (row[column] is None and path.suffix.lower() == ".csv"):
                raise ValueError(_missing_column(path, line, column, option, row))
        texts.append(_text(row[text_column], path, line, text_column))
        labels.append(_label(row[label_column], path, line, label_column))
        if has_split:
            splits.append(_split(row.get(SPLIT_COLUMN), path, line))
    return texts, np.asarray(labels, dtype=str), (splits if has_split else None)


def _missing_column(path, line, column, option, row) -> str:
    present = [c for c in row if c is not None]
    if column in row:  # a CSV row with fewer fields than the header
        return (f"{path} line {line}: no value in the column {column!r} (the row has fewer fields than the "
                "header); fill it or remove the row.")
    hint = ""
    if len(present) == 1 and any(sep in present[0] for sep in (";", "\t")):
        hint = " The header looks separated by ';' or tabs: --data reads comma-separated files."
    return (f"{path} line {line}: no column {column!r}; the columns present are {present}. "
            f"Name the right one with {option}.{hint}")


def _null(value, path, line, column, what):
    if value is None:  # JSON null
        raise ValueError(f"{path} line {line}: the column {column!r} is null; every row needs {what}.")


def _text(value, path, line, column) -> str:
    _null(value, path, line, column, "a text")
    if not isinstance(value, str):
        raise ValueError(f"{path} line {line}: the column {column!r} holds {value!r} ({type(value).__name__}); "
                         "every text must be a string.")
    if not value.strip():
        raise ValueError(f"{path} line {line}: the column {column!r} is empty; every row needs a text "
                         "(remove the row or fill it in).")
    return value


def _label(value, path, line, column) -> str:
    _null(value, path, line, column, "a label")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{path} line {line}: the column {column!r} holds {value!r} ({type(value).__name__}); "
                         "a label must be one class name (string or integer): multi-label rows are not supported."
                         f"{MULTILABEL_REMEDY if isinstance(value, list) else ''}")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{path} line {line}: the column {column!r} is empty; every row needs a label.")
    return str(value).strip()


def _split(value, path, line) -> str:
    if value is None or value == "":
        raise ValueError(f"{path} line {line}: no value in the column {SPLIT_COLUMN!r}, which other rows have; give "
                         "every row a split (train, test or dev), or remove the column to split the rows at random.")
    name = _SPLIT_NAMES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if name is None:
        raise ValueError(f"{path} line {line}: the column {SPLIT_COLUMN!r} holds {value!r}; expected one of "
                         f"{sorted(_SPLIT_NAMES)} (or remove the column to split the rows at random).")
    return name


def _check_classes(labels, path, label_column):
    classes = np.unique(labels).tolist()  # plain str, for the message
    if len(classes) < 2:
        raise ValueError(f"{path}: the column {label_column!r} holds a single class ({classes[0]!r}) in all "
                         f"{len(labels)} rows; a comparison needs at least two classes (is --label-column right?).")


# --------------------------------------------------------------------------- splitting
def _test_count(size, n_rows, n_classes, path) -> int:
    count = int(round(size * n_rows)) if isinstance(size, float) else int(size)
    if not n_classes <= count <= n_rows - n_classes:
        raise ValueError(f"{path}: --test-size {size} holds out {count} of {n_rows} rows, but a stratified split "
                         f"of {n_classes} classes needs between {n_classes} and {n_rows - n_classes} test rows; "
                         "change --test-size, or add a 'split' column.")
    return count


def _stratified_split(texts, labels, test_size, path, random_state) -> dict:
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(labels, return_counts=True)
    single = classes[counts < 2].tolist()
    if single:
        raise ValueError(f"{path}: the class(es) {single} have a single row; a stratified test split needs at least "
                         "two rows per class. Add rows, drop those classes, or give the file a 'split' column.")
    size = DEFAULT_TEST_FRACTION if test_size is None else test_size
    n_test = _test_count(size, len(labels), len(classes), path)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=n_test, stratify=labels,
                                           random_state=random_state)
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    for part, idx in (("test", idx_test), ("training", idx_train)):  # a share can round a small class to 0
        missing = sorted(set(classes.tolist()) - set(labels[idx].tolist()))
        if missing:
            raise ValueError(f"{path}: --test-size {size} ({n_test} of {len(labels)} rows) leaves the class(es) "
                             f"{missing} without a {part} row; {'raise' if part == 'test' else 'lower'} --test-size, "
                             "or give the file a 'split' column.")
    return {"train": ([texts[i] for i in idx_train], labels[idx_train]),
            "test": ([texts[i] for i in idx_test], labels[idx_test])}


def _named_splits(texts, labels, splits, path) -> dict:
    splits = np.asarray(splits)
    parts = {}
    for name in ("train", "dev", "test"):
        idx = np.flatnonzero(splits == name)
        if len(idx):
            parts[name] = ([texts[i] for i in idx], labels[idx])
    for name in ("train", "test"):
        if name not in parts:
            raise ValueError(f"{path}: the column {SPLIT_COLUMN!r} has no {name!r} row; label some rows "
                             f"{name!r}, or remove the column to split the rows at random (--test-size).")
    if len(np.unique(parts["train"][1])) < 2:
        raise ValueError(f"{path}: the 'train' rows hold a single class; training needs at least two.")
    return parts


def _bunch(path, parts, subsample, random_state, text_column, label_column):
    from ..datasets._base import _apply_subsample, _make_bunch

    splits = {}
    for name, (X, y) in parts.items():
        splits[f"X_{name}"], splits[f"y_{name}"] = X, y
    splits = _apply_subsample(splits, "multiclass", subsample, random_state)
    target_names = sorted({str(c) for X_y in parts.values() for c in X_y[1]})
    return _make_bunch(name=path.name, task="multiclass", splits=splits, target_names=target_names,
                       description=f"Read from {path} (text column {text_column!r}, label column {label_column!r}).")
