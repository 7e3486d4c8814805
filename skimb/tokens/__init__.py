"""Estimator-independent pieces for token classification (NER with BIO tags).

* Tagging schemes: :func:`validate_tags`, :func:`convert_scheme`, :func:`repair_bio`,
  :func:`entity_types`, :func:`constrained_decode`, :func:`iob2_transitions`,
  :func:`decode_tags` (per-word scores to tag lists).
* A linear-chain CRF over IOB2 tags: :class:`LinearChainCRF` (``decoding="crf"`` of the tagger).
* Word <-> sub-token alignment: :func:`tokenize_words`, :func:`align_word_labels`,
  :func:`word_predictions`, :func:`case_type_ids` (words' case as token types).
* Long sentences: :class:`Window`, :func:`make_windows`, :func:`merge_windows`.
* Per-sentence losses (HAMR's NER loss): :func:`token_sentence_index`,
  :func:`per_sentence_losses` (``IGNORE_INDEX``: the label of tokens without a loss).

Typical use by a token classifier::

    windows = tokenize_words(tokenizer, X, max_length, stride)
    # fit: one training example per window
    labels = [align_word_labels(w.word_ids, y_ids[w.sentence], label_words=w.responsible)
              for w in windows]
    # predict: run the model on every window, then one row per word of each sentence
    word_scores = merge_windows(windows, logits_per_window)
    tags = decode_tags(word_scores, id2tag, "constrained")   # or "repair": argmax, then repair_bio
"""

from ._alignment import align_word_labels, case_type_ids, tokenize_words, word_predictions
from ._bio import (constrained_decode, convert_scheme, decode_tags, entity_types, iob2_transitions, repair_bio,
                   validate_tags)
from ._crf import LinearChainCRF
from ._losses import IGNORE_INDEX, per_sentence_losses, token_sentence_index
from ._windows import Window, make_windows, merge_windows

__all__ = [
    "validate_tags",
    "convert_scheme",
    "repair_bio",
    "entity_types",
    "constrained_decode",
    "decode_tags",
    "iob2_transitions",
    "LinearChainCRF",
    "align_word_labels",
    "word_predictions",
    "tokenize_words",
    "case_type_ids",
    "Window",
    "make_windows",
    "merge_windows",
    "token_sentence_index",
    "per_sentence_losses",
]
