"""Tokenising without padding, length-grouped batches and dynamic padding."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils._neighbors import draw_indices
from ..utils._param_validation import Interval, validate_params

__all__ = [
    "tokenize",
    "LengthGroupedBatchSampler",
    "sorted_batches",
    "EncodedTextDataset",
    "pad_collate",
]


def tokenize(tokenizer, texts, max_length: int) -> list[list[int]]:
    """Token ids of each text of the list ``texts``, truncated to ``max_length``, **not** padded.

    A single string is refused (a ``TypeError``): it would be tokenised one character at a time.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"tokenize: texts must be a list of strings, got a single {type(texts).__name__} "
                        f"({texts!r:.40}); wrap it in a list: tokenize(tokenizer, [text], max_length).")
    if not texts:
        return []
    enc = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding=False,
        return_attention_mask=False, return_token_type_ids=False,
    )
    return [list(ids) for ids in enc["input_ids"]]


class LengthGroupedBatchSampler:
    """Shuffled batches of similar lengths, so that padding stays small.

    Indices are shuffled, cut into mega-batches of ``mega_batch_mult * batch_size``,
    sorted by length inside each mega-batch, cut into batches, and the batches are
    shuffled again. Each pass draws from ``seed`` and the pass number, so that a run
    is reproducible and every epoch differs.

    >>> s = LengthGroupedBatchSampler([5, 1, 3, 9, 2, 8], batch_size=2, seed=0)
    >>> sorted(i for b in s for i in b)
    [0, 1, 2, 3, 4, 5]
    """

    def __init__(self, lengths, batch_size: int, *, seed=0, mega_batch_mult: int = 50,
                 shuffle: bool = True, weights=None, n_draws=None):
        validate_params({"batch_size": [Interval(Integral, 1, None)], "mega_batch_mult": [Interval(Integral, 1, None)]},
                        {"batch_size": batch_size, "mega_batch_mult": mega_batch_mult}, type(self).__name__)
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.mega_batch_mult = mega_batch_mult
        self.shuffle = shuffle
        self.epoch = 0
        # Optional per-epoch draws with replacement (used by HAMR's resampling).
        self.weights = weights
        self.n_draws = n_draws
        self.draw_scheme = "multinomial"

    def set_draw_weights(self, weights, n_draws, scheme="multinomial"):
        """Draw ``n_draws`` ids per epoch following ``weights`` (``None``: every id once);
        ``scheme`` as :func:`~skimb.training.hamr.draw_indices`."""
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.n_draws = n_draws
        self.draw_scheme = scheme

    def _order(self, rng) -> np.ndarray:
        n = len(self.lengths)
        if self.weights is not None:
            return draw_indices(self.weights, int(self.n_draws or n), rng, self.draw_scheme)
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        rng = np.random.default_rng([int(self.seed or 0) & 0xFFFFFFFF, self.epoch])
        self.epoch += 1
        order = self._order(rng)
        if not self.shuffle:
            for i in range(0, len(order), self.batch_size):
                yield order[i:i + self.batch_size].tolist()
            return
        mega = self.batch_size * self.mega_batch_mult
        batches = []
        for start in range(0, len(order), mega):
            chunk = order[start:start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for b in rng.permutation(len(batches)):
            yield batches[b].tolist()

    def __len__(self):
        n = int(self.n_draws or len(self.lengths)) if self.weights is not None else len(self.lengths)
        return math.ceil(n / self.batch_size)


def sorted_batches(lengths, batch_size: int) -> list[np.ndarray]:
    """Batches of indices in decreasing length order (for inference)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class EncodedTextDataset(Dataset):
    """Token id lists with targets and optional per-sample weights.

    Items are ``({"input_ids": ids, "index": i, "sample_weight": w}, target)``;
    :func:`pad_collate` turns a list of them into padded tensors. A tagger's windows also carry
    ``sentence_edges``: whether each window holds its sentence's first and its last word (what a
    CRF's start and end scores are learned from), and with a tagger's ``mark_case`` their
    ``token_type_ids`` (one per token id).
    """

    def __init__(self, input_ids, y=None, sample_weight=None, sentence_edges=None, token_type_ids=None):
        self.input_ids = input_ids
        self.y = y
        self.sample_weight = sample_weight
        self.sentence_edges = sentence_edges
        self.token_type_ids = token_type_ids

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, i):
        item = {"input_ids": self.input_ids[i], "index": i}
        if self.sample_weight is not None:
            item["sample_weight"] = self.sample_weight[i]
        if self.sentence_edges is not None:
            item["sentence_edges"] = self.sentence_edges[i]
        if self.token_type_ids is not None:
            item["token_type_ids"] = self.token_type_ids[i]
        return item, (self.y[i] if self.y is not None else 0)


def _stack_targets(targets):
    first = targets[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(targets)
    if isinstance(first, (list, np.ndarray)) and np.ndim(first) == 1:  # multi-label rows, token tags
        arr = np.stack([np.asarray(t) for t in targets])
        return torch.from_numpy(arr)
    return torch.as_tensor(np.asarray(targets))


def pad_collate(batch, pad_token_id: int = 0, label_pad_id=None):
    """Pad a list of dataset items to the longest sequence of the batch.

    Token-level targets (lists) are padded with ``label_pad_id`` (e.g. -100), ``token_type_ids``
    with 0.
    """
    items, targets = zip(*batch)
    lengths = [len(it["input_ids"]) for it in items]
    width = max(lengths)
    input_ids = torch.full((len(items), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(items), width), dtype=torch.long)
    for r, it in enumerate(items):
        n = lengths[r]
        input_ids[r, :n] = torch.as_tensor(it["input_ids"], dtype=torch.long)
        attention_mask[r, :n] = 1
    out = {"input_ids": input_ids, "attention_mask": attention_mask,
           "index": torch.as_tensor([it["index"] for it in items], dtype=torch.long)}
    if "token_type_ids" in items[0]:
        out["token_type_ids"] = torch.zeros((len(items), width), dtype=torch.long)
        for r, it in enumerate(items):
            out["token_type_ids"][r, :lengths[r]] = torch.as_tensor(it["token_type_ids"], dtype=torch.long)
    if "sample_weight" in items[0]:
        out["sample_weight"] = torch.as_tensor([it["sample_weight"] for it in items], dtype=torch.float32)
    if "sentence_edges" in items[0]:
        out["sentence_edges"] = torch.as_tensor(np.array([it["sentence_edges"] for it in items], dtype=bool))
    if label_pad_id is not None:
        y = torch.full((len(items), width), label_pad_id, dtype=torch.long)
        for r, t in enumerate(targets):
            y[r, :len(t)] = torch.as_tensor(t, dtype=torch.long)
        return out, y
    return out, _stack_targets(list(targets))
