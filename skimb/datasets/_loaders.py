"""``load_dataset``: one entry point for the embedded data and the data folders."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ._base import _apply_subsample, _make_bunch, _missing_data_error, get_data_home
from ._embedded import load_goemotions_ekman, load_sms_spam
from ._readers import (
    _IDS_RE,
    _check_path,
    _read_label_names,
    read_conll,
    read_goemotions_tsv,
    read_humaid_json,
    read_jsonl_ner,
    read_sms_spam,
)

__all__ = ["load_dataset", "list_datasets"]

# name -> (sub-folder of the data home, description); None = embedded in the package
_DATASETS = {
    "goemotions_ekman": (None, "embedded"),
    "sms_spam": (None, "embedded"),
    "cyclone_idai_2019": (
        "cyclone_idai_2019",
        "HumAID crisis tweets about Cyclone Idai (2019), 10 humanitarian categories. "
        "Source: trust-nlp/ImbalanceLearning Datasets/; HumAID (Alam et al., ICWSM 2021), "
        "CC BY-NC-SA 4.0 upstream (not redistributed by skimb).",
    ),
    "sst5": (
        "sst5",
        "Stanford Sentiment Treebank, 5 sentiment levels (Socher et al., EMNLP 2013). "
        "Source: trust-nlp/ImbalanceLearning Datasets/; research use.",
    ),
    "goemotions": (
        os.path.join("goemotions", "original"),
        "GoEmotions Reddit comments with the original 27 emotions + neutral, multi-label "
        "(Demszky et al., ACL 2020). Source: monologg/GoEmotions-pytorch data/; CC BY 4.0.",
    ),
    "goemotions_single": (
        os.path.join("goemotions", "original"),
        "GoEmotions Reddit comments that carry exactly one of the original 28 labels, as a "
        "multi-class task (Demszky et al., ACL 2020): imbalance ratio 329 in train (neutral "
        "12,823, grief 39). Source: monologg/GoEmotions-pytorch data/; CC BY 4.0.",
    ),
    "conll2003": (
        "conll2003",
        "CoNLL-2003 English named entities (PER, LOC, ORG, MISC), IOB2 tags "
        "(Tjong Kim Sang and De Meulder, 2003). Reuters text, research use only "
        "(not redistributed by skimb).",
    ),
    "mit_restaurant": (
        "mit_restaurant",
        "MIT Restaurant queries with 8 slot types, BIO tags (Liu et al., 2013). "
        "Source: trust-nlp/ImbalanceLearning Datasets/.",
    ),
}

_SPLIT_STEMS = {"train": ("train",), "dev": ("dev", "valid", "validation", "val"), "test": ("test",)}
_DATA_SUFFIXES = (".json", ".jsonl", ".txt", ".conll", ".tsv")
_IGNORED_FILES = {"labels.txt", "readme.md", "readme.txt", "readme", "license", "licence"}


def list_datasets():
    """Names accepted by :func:`load_dataset`.

    ``"goemotions_ekman"`` and ``"sms_spam"`` ship with skimb; the others are
    read from the data folder (see :func:`get_data_home`).

    Returns
    -------
    names : list of str
        Sorted data-set names.

    Examples
    --------
    >>> list_datasets()
    ['conll2003', 'cyclone_idai_2019', 'goemotions', 'goemotions_ekman', 'goemotions_single', 'mit_restaurant', 'sms_spam', 'sst5']
    """
    return sorted(_DATASETS)


# --------------------------------------------------------------------------- format sniffing
def _peek(path: Path, n_chars: int = 4096) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read(n_chars)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc}).") from None


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _sniff(path: Path) -> str:
    """Return the format of a data file: 'humaid', 'jsonl_ner', 'conll', 'goemotions' or 'label_tsv'."""
    suffix = _base_suffix(path)
    head = _peek(path)
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    if suffix in (".json", ".jsonl"):
        stripped = head.lstrip("\ufeff \t\r\n")
        if stripped.startswith("["):
            return "humaid"
        if stripped.startswith("{"):
            if '"tokens"' in first:
                return "jsonl_ner"
            raise ValueError(
                f"{path}: JSON lines without a 'tokens' field; supported JSON formats are a JSON "
                "array of {text, label, label_text} records and JSONL {tokens, ner_tags} lines."
            )
        raise ValueError(f"{path}: does not look like JSON (starts with {stripped[:20]!r}).")
    if suffix in (".txt", ".conll"):
        return "conll"
    if suffix == ".tsv":
        parts = first.split("\t")
        if (len(parts) >= 3 and _IDS_RE.match(parts[-2])) or (
            len(parts) == 2 and _IDS_RE.match(parts[-1])
        ):
            return "goemotions"
        if len(parts) >= 2:
            return "label_tsv"
        raise ValueError(f"{path}: the first line has no tab; expected a TSV file.")
    raise ValueError(
        f"{path}: unknown file type {suffix!r}; expected one of {list(_DATA_SUFFIXES)} "
        "(optionally .gz): .json (HumAID JSON array or JSONL NER), .jsonl (NER), "
        ".txt/.conll (CoNLL columns), .tsv (GoEmotions or label<TAB>text with a header)."
    )


def _read_split(path: Path, fmt: str):
    """Read one split; returns ``(X, labels)`` in the reader's raw form. A file of no examples is
    refused: it would load as a data set of no classes."""
    X, labels = _read_split_file(path, fmt)
    if not len(X):
        raise ValueError(f"{path} holds no examples (an empty list, or a header only); give a file with at "
                         "least one example per split.")
    return X, labels


def _read_split_file(path: Path, fmt: str):
    if fmt == "humaid":
        return read_humaid_json(path)
    if fmt == "jsonl_ner":
        return read_jsonl_ner(path)
    if fmt == "conll":
        return read_conll(path)
    if fmt == "goemotions":
        labels_txt = path.parent / "labels.txt"
        return read_goemotions_tsv(path, labels_txt if labels_txt.is_file() else None)
    if fmt == "label_tsv":
        return read_sms_spam(path)
    raise AssertionError(fmt)  # pragma: no cover


_TASKS = {
    "humaid": "multiclass",
    "label_tsv": "multiclass",
    "goemotions": "multilabel",
    "conll": "token",
    "jsonl_ner": "token",
}


def _finalise(raw: dict, fmt: str, label_names=None):
    """Turn raw reader outputs into bunch splits; returns ``(splits, target_names)``."""
    task = _TASKS[fmt]
    splits = {}
    if task == "multiclass":
        all_labels = sorted({lab for _, y in raw.values() for lab in y})
        for split, (X, y) in raw.items():
            splits[f"X_{split}"], splits[f"y_{split}"] = X, np.array(y, dtype=str)
        return splits, all_labels
    if task == "token":
        all_tags = sorted({t for _, y in raw.values() for tags in y for t in tags}, key=str)
        for split, (X, y) in raw.items():
            splits[f"X_{split}"], splits[f"y_{split}"] = X, y
        return splits, all_tags
    # multi-label: indicator matrix
    if label_names is None:
        n_labels = 1 + max((k for _, y in raw.values() for labs in y for k in labs), default=-1)
        label_names = [str(k) for k in range(n_labels)]
        col = {k: k for k in range(n_labels)}
    else:
        col = {name: j for j, name in enumerate(label_names)}
    for split, (X, y) in raw.items():
        Y = np.zeros((len(y), len(label_names)), dtype=np.int64)
        for i, labs in enumerate(y):
            Y[i, [col[lab] for lab in labs]] = 1
        splits[f"X_{split}"], splits[f"y_{split}"] = X, Y
    return splits, list(label_names)


def _label_names_for(path: Path, fmt: str):
    if fmt != "goemotions":
        return None
    labels_txt = path.parent / "labels.txt"
    return _read_label_names(labels_txt) if labels_txt.is_file() else None  # as the reader reads it (a BOM)


def _find_split_file(folder: Path, split: str):
    for stem in _SPLIT_STEMS[split]:
        for suffix in _DATA_SUFFIXES:
            for name in (stem + suffix, stem + suffix + ".gz"):
                if (folder / name).is_file():
                    return folder / name
    return None


def _single_label(splits: dict, target_names) -> tuple[dict, list]:
    """Multi-label splits -> the rows with exactly one label, as class-name targets."""
    names = np.asarray(target_names, dtype=str)
    out = {}
    for key in [k for k in splits if k.startswith("X_")]:
        split = key[2:]
        X, Y = splits[key], splits[f"y_{split}"]
        if X is None:
            out[key], out[f"y_{split}"] = None, None
            continue
        keep = np.flatnonzero(np.asarray(Y).sum(axis=1) == 1)
        out[key] = [X[i] for i in keep]
        out[f"y_{split}"] = names[np.asarray(Y)[keep].argmax(axis=1)]
    present = sorted({lab for k, y in out.items() if k.startswith("y_") and y is not None for lab in y})
    return out, present


def _load_folder(folder: Path, *, name, description, subsample, random_state, single_label=False):
    train = _find_split_file(folder, "train")
    if train is None:
        data_files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and p.name.lower() not in _IGNORED_FILES and not p.name.startswith(".")
        )
        if len(data_files) == 1:  # a folder holding one unsplit file
            return _load_file(data_files[0], name=name, description=description,
                              subsample=subsample, random_state=random_state)
        raise ValueError(
            f"{folder}: no train file found (expected train.json, train.jsonl, train.txt or "
            f"train.tsv, or a single data file); the folder holds "
            f"{sorted(p.name for p in folder.iterdir())}."
        )
    fmt = _sniff(train)
    raw = {"train": _read_split(train, fmt)}
    for split in ("dev", "test"):
        path = _find_split_file(folder, split)
        if path is not None:
            raw[split] = _read_split(path, fmt)
    splits, target_names = _finalise(raw, fmt, _label_names_for(train, fmt))
    task = _TASKS[fmt]
    if single_label:
        splits, target_names = _single_label(splits, target_names)
        task = "multiclass"
    splits = _apply_subsample(splits, task, subsample, random_state)
    return _make_bunch(
        name=name or folder.name,
        task=task,
        splits=splits,
        target_names=target_names,
        description=description or f"Read from the folder {folder} ({fmt} format).",
    )


def _load_file(path: Path, *, name, description, subsample, random_state):
    fmt = _sniff(path)
    raw = {"train": _read_split(path, fmt)}
    splits, target_names = _finalise(raw, fmt, _label_names_for(path, fmt))
    task = _TASKS[fmt]
    splits = _apply_subsample(splits, task, subsample, random_state)
    return _make_bunch(
        name=name or path.name.split(".")[0],
        task=task,
        splits=splits,
        target_names=target_names,
        description=description
        or f"Read from the file {path} ({fmt} format); no split: every example is in train.",
    )


def load_dataset(name_or_path, *, data_home=None, subsample=None, random_state=0):
    """Load a class-imbalanced NLP data set by name, or from a folder or file.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :func:`list_datasets`:

        * ``"goemotions_ekman"``, ``"sms_spam"``: embedded in skimb (see
          :func:`load_goemotions_ekman`, :func:`load_sms_spam`);
        * ``"cyclone_idai_2019"``, ``"sst5"``: multi-class, HumAID-style JSON
          folders with ``train/dev/test.json``;
        * ``"goemotions"``: multi-label, the original 28 labels; ``y`` is a
          2-D 0/1 int indicator matrix whose columns follow ``target_names``
          (the order of ``labels.txt``);
        * ``"goemotions_single"``: the GoEmotions rows with exactly one
          label, multi-class over the 28 labels (imbalance ratio 329);
        * ``"conll2003"``, ``"mit_restaurant"``: token tagging (task
          ``"token"``); ``X`` are token lists and ``y`` tag lists.

        Or a path.  A folder is recognised by its ``train`` file:
        ``train.json`` holding a JSON array (HumAID-style) or JSON lines with
        ``tokens`` (NER), ``train.jsonl`` (NER), ``train.txt`` (CoNLL columns)
        or ``train.tsv`` (GoEmotions, with ``labels.txt`` beside it when
        present); ``dev``/``valid`` and ``test`` files of the same kind are
        read too.  A single file (or a folder holding a single data file) is
        read the same way, a ``.tsv`` that is not GoEmotions being read as
        ``label<TAB>text`` lines (a header line is skipped, see
        :func:`read_sms_spam`); everything goes into train and the dev/test
        entries are ``None``.  An empty string is refused (it is not the
        current folder).
    data_home : str or path-like, default=None
        Folder holding the named data sets; default :func:`get_data_home`.
        Not used for the embedded data sets and for paths.
    subsample : int, float, dict or None, default=None
        Stratified subsample that keeps the imbalance (every class, label or
        tag keeps at least ``min(5, its count)`` examples, so a very small
        subsample can hold a few more than asked): an int (number of
        examples) or a float in (0, 1] (fraction) applies to every split, a
        dict such as ``{"train": 2000, "test": 500}`` to the splits it names.
        Multi-label rows and token-tagged sentences are stratified by their
        rarest label (tag other than ``"O"``).
    random_state : int, RandomState instance or None, default=0
        Seed of the subsample.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train, y_train, X_dev, y_dev, X_test, y_test`` (``None`` for a
        missing split), ``target_names``, ``task`` (``"multiclass"``,
        ``"multilabel"`` or ``"token"``), ``name`` and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If the data folder of a named data set (or a path) does not exist;
        the message explains how to set ``SKIMB_DATA_DIR``.
    ValueError
        If the name is unknown or empty, or a file has an unrecognised format.

    Examples
    --------
    >>> data = load_dataset("sms_spam")
    >>> data.task, data.target_names
    ('multiclass', ['ham', 'spam'])
    >>> conll = load_dataset("conll2003", subsample={"train": 500})  # doctest: +SKIP
    >>> conll.task, conll.X_train[0][:3], conll.y_train[0][:3]  # doctest: +SKIP
    ('token', ['EU', 'rejects', 'German'], ['B-ORG', 'O', 'B-MISC'])
    """
    if isinstance(name_or_path, str) and name_or_path in _DATASETS:
        name = name_or_path
        subdir, description = _DATASETS[name]
        if subdir is None:
            if name == "goemotions_ekman":
                return load_goemotions_ekman(subsample=subsample, random_state=random_state)
            return load_sms_spam(random_state=random_state, subsample=subsample)
        home = Path(data_home).expanduser() if data_home is not None else get_data_home()
        if home is None or not (home / subdir).is_dir():
            raise _missing_data_error(
                f"'{name}'", home / subdir if home is not None else None
            )
        return _load_folder(home / subdir, name=name, description=description,
                            subsample=subsample, random_state=random_state,
                            single_label=name == "goemotions_single")

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path must be a data-set name or a path, got {type(name_or_path).__name__}."
        )
    if isinstance(name_or_path, str) and not name_or_path.strip():
        raise ValueError(
            f"name_or_path is empty ({name_or_path!r}); give a data-set name (one of {list_datasets()}) "
            "or the path of a data folder or file ('.' for the current folder)."
        )
    path = Path(name_or_path).expanduser()
    if not path.exists():
        if isinstance(name_or_path, str) and os.sep not in name_or_path and not path.suffix:
            raise ValueError(
                f"Unknown data set {name_or_path!r}; known names are {list_datasets()}, "
                "or pass the path of a data folder or file."
            )
        _check_path(path)  # raises FileNotFoundError naming the path
    if path.is_dir():
        return _load_folder(path, name=None, description=None,
                            subsample=subsample, random_state=random_state)
    return _load_file(path, name=None, description=None,
                      subsample=subsample, random_state=random_state)
