"""Loaders for the small data sets shipped inside the package (CC BY 4.0)."""

from __future__ import annotations

import functools
import numbers
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ._base import _apply_subsample, _make_bunch
from ._readers import read_sms_spam

__all__ = ["load_goemotions_ekman", "load_sms_spam"]

DATA_DIR = Path(__file__).resolve().parent / "data"


@functools.lru_cache(maxsize=None)
def _read_embedded(filename: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Parse one embedded ``label<TAB>text`` file once; immutable tuples are cached."""
    path = DATA_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"Embedded data file {path} is missing: the skimb installation is incomplete "
            "(package data 'skimb.datasets/data/*' was not installed). Reinstall skimb or run "
            "skimb/datasets/_build_embedded.py from a checkout."
        )
    texts, labels = read_sms_spam(path)  # same 'label<TAB>text' + header layout
    return tuple(texts), tuple(labels)


def _split(filename):
    texts, labels = _read_embedded(filename)
    return list(texts), np.array(labels, dtype=str)


def load_goemotions_ekman(*, subsample=None, random_state=0):
    """Load the single-label part of GoEmotions grouped into Ekman's 6 emotions + neutral.

    Reddit comments labelled with one of ``anger, disgust, fear, joy, neutral,
    sadness, surprise``; only the comments with exactly one label are kept, so
    the task is ordinary multi-class classification.  The original train / dev
    / test split is kept (39,555 / 4,946 / 4,968 comments).  The train
    imbalance ratio is 30.6 (joy 15,216 ... disgust 498).  The data ships with
    skimb (CC BY 4.0, see ``DESCR`` for the attribution).

    Parameters
    ----------
    subsample : int, float, dict or None, default=None
        Reduce the splits to a stratified random subsample that keeps the
        class proportions (and so the imbalance); every class keeps at least
        ``min(5, its count)`` examples (so a very small subsample can hold a
        few more examples than asked).  An int (number of examples) or a
        float in (0, 1] (fraction) applies to every split; a dict such as
        ``{"train": 2000, "test": 500}`` names the splits to reduce (the
        others are kept whole).  ``None`` keeps everything.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsample.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train, X_dev, X_test`` (lists of str), ``y_train, y_dev, y_test``
        (1-D arrays of str labels), ``target_names`` (sorted label names),
        ``task`` (``"multiclass"``), ``name`` and ``DESCR``.

    Examples
    --------
    >>> data = load_goemotions_ekman()
    >>> len(data.X_train), len(data.X_dev), len(data.X_test)
    (39555, 4946, 4968)
    >>> data.target_names
    ['anger', 'disgust', 'fear', 'joy', 'neutral', 'sadness', 'surprise']
    >>> small = load_goemotions_ekman(subsample={"train": 1000}, random_state=0)
    >>> len(small.X_train), len(small.X_test)
    (1000, 4968)
    """
    splits = {}
    for split in ("train", "dev", "test"):
        splits[f"X_{split}"], splits[f"y_{split}"] = _split(f"goemotions_ekman_{split}.tsv.gz")
    splits = _apply_subsample(splits, "multiclass", subsample, random_state)
    return _make_bunch(
        name="goemotions_ekman",
        task="multiclass",
        splits=splits,
        target_names=sorted(set(_read_embedded("goemotions_ekman_train.tsv.gz")[1])),
        description=(
            "GoEmotions (Demszky et al., ACL 2020) Reddit comments, grouped into Ekman's six basic "
            "emotions plus neutral; only the single-label comments (about 91% of all) are kept."
        ),
        source=_ATTRIBUTION_GOEMOTIONS,
    )


def load_sms_spam(*, test_size=0.2, random_state=0, subsample=None):
    """Load the SMS Spam Collection (5,574 messages: 4,827 ham, 747 spam).

    The collection has no official split; a stratified train/test split is
    drawn with ``test_size`` and ``random_state``.  There is no dev split
    (``X_dev`` and ``y_dev`` are ``None``).  The data ships with skimb
    (CC BY 4.0, see ``DESCR`` for the attribution).

    Parameters
    ----------
    test_size : float or int, default=0.2
        Fraction (float in (0, 1)) or number (int) of messages held out for
        test, stratified by label; both splits must keep at least one
        message of each class (an int from 2 to 5,572).
    random_state : int, RandomState instance or None, default=0
        Seed of the split (and of ``subsample``).
    subsample : int, float, dict or None, default=None
        Stratified subsample of the splits after splitting, as in
        :func:`load_goemotions_ekman`.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train, X_test`` (lists of str), ``y_train, y_test`` (1-D arrays of
        ``'ham'``/``'spam'``), ``X_dev = y_dev = None``, ``target_names``
        (``['ham', 'spam']``), ``task`` (``"multiclass"``), ``name``, ``DESCR``.

    Examples
    --------
    >>> data = load_sms_spam()
    >>> len(data.X_train), len(data.X_test), data.X_dev
    (4459, 1115, None)
    >>> int((data.y_test == "spam").sum())
    149
    """
    texts, labels = _read_embedded("sms_spam.tsv.gz")
    y = np.array(labels, dtype=str)
    _check_test_size(test_size, len(y), len(set(labels)), "load_sms_spam")
    idx_train, idx_test = train_test_split(
        np.arange(len(texts)), test_size=test_size, stratify=y, random_state=random_state
    )
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    splits = {
        "X_train": [texts[i] for i in idx_train],
        "y_train": y[idx_train],
        "X_test": [texts[i] for i in idx_test],
        "y_test": y[idx_test],
    }
    splits = _apply_subsample(splits, "multiclass", subsample, random_state)
    return _make_bunch(
        name="sms_spam",
        task="multiclass",
        splits=splits,
        target_names=sorted(set(labels)),
        description=(
            "SMS Spam Collection v.1 (Almeida et al., DocEng 2011): English SMS messages labelled "
            f"ham or spam; stratified train/test split with test_size={test_size}, "
            f"random_state={random_state!r}."
        ),
        source=_ATTRIBUTION_SMS,
    )


def _check_test_size(test_size, n_samples, n_classes, loader) -> None:
    """Refuse a ``test_size`` that leaves a split without a message of every class, naming ``loader``."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"{loader}: test_size must be a float in (0, 1) or an int, got {test_size!r}.")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0 < test_size < 1:
        n_test = int(np.ceil(test_size * n_samples))  # as train_test_split rounds it
    else:
        raise ValueError(f"{loader}: test_size as a fraction must be in (0, 1) (exclusive), got {test_size!r}; "
                         f"e.g. 0.2, or an int number of examples.")
    if not n_classes <= n_test <= n_samples - n_classes:
        raise ValueError(f"{loader}: test_size={test_size!r} holds out {n_test} of {n_samples} examples; both "
                         f"splits need one per class ({n_classes} classes), so hold out {n_classes} to "
                         f"{n_samples - n_classes} (a fraction from {n_classes / n_samples:.4f} to "
                         f"{1 - n_classes / n_samples:.4f}).")


_ATTRIBUTION_GOEMOTIONS = (
    "Source: GoEmotions, Google Research (https://github.com/google-research/google-research/tree/"
    "master/goemotions), Ekman split of monologg/GoEmotions-pytorch. Demszky et al., 'GoEmotions: "
    "A Dataset of Fine-Grained Emotions', ACL 2020. Licence: CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Changes: single-label rows only, label ids "
    "replaced by names, comment ids dropped."
)
_ATTRIBUTION_SMS = (
    "Source: SMS Spam Collection v.1, UCI Machine Learning Repository "
    "(https://archive.ics.uci.edu/dataset/228/sms+spam+collection). Almeida, Gomez Hidalgo and "
    "Yamakami, 'Contributions to the Study of SMS Spam Filtering: New Collection and Results', "
    "DocEng 2011. Licence: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
)
