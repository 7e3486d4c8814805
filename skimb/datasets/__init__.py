"""Class-imbalanced NLP data: file readers, embedded data sets, data-folder loaders
and controlled imbalance (step / long-tail).

Two small data sets ship with skimb under CC BY 4.0 (see ``data/ATTRIBUTION.md``):
:func:`load_goemotions_ekman` and :func:`load_sms_spam`.  The others are read
from a data folder (``$SKIMB_DATA_DIR``, see :func:`get_data_home`) with
:func:`load_dataset`.
"""

from ._base import get_data_home
from ._embedded import load_goemotions_ekman, load_sms_spam
from ._imbalance import make_imbalance
from ._loaders import list_datasets, load_dataset
from ._readers import (
    read_conll,
    read_goemotions_tsv,
    read_humaid_json,
    read_jsonl_ner,
    read_sms_spam,
)

__all__ = [
    "get_data_home",
    "list_datasets",
    "load_dataset",
    "load_goemotions_ekman",
    "load_sms_spam",
    "make_imbalance",
    "read_conll",
    "read_goemotions_tsv",
    "read_humaid_json",
    "read_jsonl_ner",
    "read_sms_spam",
]
