"""Token losses reduced per sentence (window): HAMR's per-example loss for NER."""

from __future__ import annotations

import torch

__all__ = ["token_sentence_index", "per_sentence_losses"]

#: Label of the sub-tokens and padding that carry no loss (PyTorch's ``ignore_index``).
IGNORE_INDEX = -100


def token_sentence_index(target: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Row (sentence/window) of each labelled token of a ``(B, T)`` target batch.

    The order is the one in which :class:`skimb.training.TransformerNet` flattens a batch
    (``logits[target != ignore_index]``, row-major), so ``per_sentence_losses(token_losses,
    token_sentence_index(target), len(target))`` gives one loss per row.

    Examples
    --------
    >>> import torch
    >>> token_sentence_index(torch.tensor([[-100, 2, 0], [-100, -100, 1]]))
    tensor([0, 0, 1])
    """
    return (target != ignore_index).nonzero(as_tuple=True)[0]


def per_sentence_losses(token_losses: torch.Tensor, sentence_index: torch.Tensor, n_sentences=None,
                        *, reduce: str = "max") -> torch.Tensor:
    """Reduce per-token losses to one loss per sentence (differentiable).

    Parameters
    ----------
    token_losses : tensor of shape (n_tokens,)
        Losses of the labelled tokens (e.g. a ``reduction="none"`` loss on the flattened
        labelled tokens of a batch).
    sentence_index : tensor of shape (n_tokens,), int
        The sentence (batch row) of each token, e.g. :func:`token_sentence_index`.
    n_sentences : int, optional
        Number of sentences; default ``sentence_index.max() + 1``.
    reduce : {"max", "mean", "sum"}, default="max"
        HAMR uses the max token loss of each sentence.

    Returns
    -------
    tensor of shape (n_sentences,)
        A sentence without labelled tokens gets 0.

    Examples
    --------
    >>> import torch
    >>> per_sentence_losses(torch.tensor([0.1, 0.7, 0.3]), torch.tensor([0, 0, 2]))
    tensor([0.7000, 0.0000, 0.3000])
    """
    ops = {"max": "amax", "mean": "mean", "sum": "sum"}
    if reduce not in ops:
        raise ValueError(f"reduce must be 'max', 'mean' or 'sum', got {reduce!r}.")
    sentence_index = torch.as_tensor(sentence_index, device=token_losses.device).long()
    if n_sentences is None:
        n_sentences = int(sentence_index.max()) + 1 if sentence_index.numel() else 0
    out = token_losses.new_zeros(int(n_sentences))
    return out.scatter_reduce(0, sentence_index, token_losses, reduce=ops[reduce], include_self=False)
