"""torch modules: a pooled text encoder and a sequence classifier on top of it."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from ._batching import pad_collate, sorted_batches
from ._pooling import backbone_pooler, pool

__all__ = ["TextEncoder", "SequenceClassifier", "autocast", "autocast_precision", "encode_batches", "encode_texts",
           "float32_head",
           "ENCODE_CHUNK"]

#: Texts tokenised and encoded at a time by :func:`encode_texts`: memory stays bounded by the
#: chunk's token ids and activations, whatever the number of texts.
ENCODE_CHUNK = 16384


class TextEncoder(nn.Module):
    """A Hugging Face backbone followed by pooling: ``(input_ids, attention_mask) -> (N, d)``.
    ``token_type_ids``, where given, go to the backbone too (a tagger's ``mark_case``).

    ``pooling=None`` returns the per-token states ``(N, T, d)`` (token classification).
    ``routing`` (set by CALoRA with adapters inside the backbone) runs the encoding in its two
    passes: ``routing.encode(encoder, input_ids, attention_mask)``.
    """

    routing = None  # class default: models pickled before it existed load without it

    def __init__(self, backbone: nn.Module, pooling: str | None = "mean"):
        super().__init__()
        if pooling == "pooler" and backbone_pooler(backbone) is None:
            name = getattr(getattr(backbone, "config", None), "name_or_path", "") or type(backbone).__name__
            raise ValueError(f"pooling='pooler' needs a backbone with its own pooling layer (BERT's pooler); "
                             f"{name!r} has none. Use pooling='mean' or pooling='cls'.")
        self.backbone = backbone
        self.pooling = pooling

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        if self.routing is not None:
            return self.routing.encode(self, input_ids, attention_mask, token_type_ids)
        return self.encode_tokens(input_ids, attention_mask, token_type_ids)

    def encode_tokens(self, input_ids, attention_mask, token_type_ids=None):
        """The backbone and the pooling, whatever ``routing`` is set."""
        # a backbone without token types (DistilBERT) takes no token_type_ids at all
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **types)
        return self.finish(out.last_hidden_state, attention_mask)

    def finish(self, last_hidden_state, attention_mask):
        """The features from the backbone's last hidden state (pooled, unless ``pooling`` is None)."""
        if self.pooling is None:
            return last_hidden_state
        if self.pooling == "pooler":
            return backbone_pooler(self.backbone)(last_hidden_state)
        return pool(self.pooling, last_hidden_state, attention_mask)


class SequenceClassifier(nn.Module):
    """Encoder + dropout + linear head.

    ``forward`` takes either token ids (``input_ids``, ``attention_mask``) or
    precomputed ``features`` (frozen backbone, CALoRA's stage 2), so that the same
    module serves both training modes. With a token-level encoder
    (``TextEncoder(pooling=None)``) the head applies to every sub-token and the logits
    are ``(B, T, C)``. The head runs in float32 even under bf16 autocast: a head on cached
    float32 features and the same head in a full forward pass then compute the same numbers, and
    the heads' own arithmetic (cosine prototypes, kNN scores, tau-normalised weights) keeps its
    precision.
    """

    def __init__(self, encoder: TextEncoder | None, n_outputs: int, *, hidden_size=None,
                 dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = hidden_size if hidden_size is not None else encoder.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_outputs)

    def features(self, input_ids, attention_mask, token_type_ids=None):
        return self.encoder(input_ids, attention_mask, token_type_ids)

    def forward(self, input_ids=None, attention_mask=None, features=None, token_type_ids=None):
        if features is None:
            features = self.features(input_ids, attention_mask, token_type_ids)
        return float32_head(lambda x: self.head(self.dropout(x)), features)


def encode_batches(forward_fn, input_ids, *, batch_size: int, device, pad_token_id: int = 0,
                   progress=None, amp: bool = True) -> torch.Tensor:
    """Run ``forward_fn(input_ids=..., attention_mask=...)`` over length-sorted batches (under bf16
    autocast on CUDA when ``amp``).

    Returns the outputs stacked in the original order, on the CPU, as float32.
    """
    n = len(input_ids)
    if n == 0:
        raise ValueError("nothing to encode")
    out = None
    with torch.inference_mode():
        for idx in sorted_batches([len(ids) for ids in input_ids], batch_size):
            batch, _ = pad_collate([({"input_ids": input_ids[i], "index": 0}, 0) for i in idx],
                                   pad_token_id=pad_token_id)
            dev = torch.device(device)
            with autocast(dev, enabled=amp):
                res = forward_fn(input_ids=batch["input_ids"].to(dev),
                                 attention_mask=batch["attention_mask"].to(dev))
            res = res.float().cpu()
            if out is None:
                out = torch.empty((n,) + tuple(res.shape[1:]), dtype=torch.float32)
            out[torch.as_tensor(idx)] = res
            if progress is not None:
                progress.update(len(idx))
    return out


def encode_texts(forward_fn, tokenizer, texts, *, max_length: int, batch_size: int, device, desc: str = "encoding",
                 verbose=0, chunk_size: int | None = None, amp: bool = True) -> torch.Tensor:
    """Tokenise and run ``forward_fn`` over ``texts`` in chunks of ``chunk_size`` (default
    :data:`ENCODE_CHUNK`), writing each chunk's outputs into one preallocated float32 tensor;
    a progress bar counts the texts when ``verbose``."""
    from ..utils._progress import progress_bar
    from ._batching import tokenize

    n, step = len(texts), int(chunk_size or ENCODE_CHUNK)
    if n == 0:
        raise ValueError("nothing to encode")
    out = None
    with progress_bar(n, desc, verbose) as bar:
        for start in range(0, n, step):
            ids = tokenize(tokenizer, texts[start:start + step], max_length)
            res = encode_batches(forward_fn, ids, batch_size=batch_size, device=device,
                                 pad_token_id=tokenizer.pad_token_id or 0, progress=bar, amp=amp)
            if out is None:
                out = res if len(res) == n else torch.empty((n,) + tuple(res.shape[1:]), dtype=torch.float32)
            if out is not res:
                out[start:start + len(res)] = res
    return out


def float32_head(head, features):
    """``head(features)`` in float32, also under bf16 autocast (half-precision features are cast
    up; float32 and float64 pass as they are): a head on cached float32 features and the same head
    in a full forward pass then compute the same numbers.

    >>> head = nn.Linear(4, 2)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     float32_head(head, torch.ones(1, 4, dtype=torch.bfloat16)).dtype
    torch.float32
    """
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    with torch.autocast(device_type=features.device.type, enabled=False):
        return head(features)


def autocast(device, enabled: bool = True):
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere (the one amp rule of
    training, prediction and encoding; :class:`SequenceClassifier` keeps its head in float32)."""
    if autocast_precision(device, enabled) is not None:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_precision(device, enabled: bool = True) -> str | None:
    """``"bf16"`` where :func:`autocast` computes in bfloat16, else None (float32): features
    encoded under it are other numbers, and the feature cache keys them apart.

    >>> autocast_precision("cuda"), autocast_precision("cuda", enabled=False), autocast_precision("cpu")
    ('bf16', None, None)
    """
    return "bf16" if enabled and torch.device(device).type == "cuda" else None


def as_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
