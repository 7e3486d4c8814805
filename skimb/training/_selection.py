"""Model selection on a metric: the validation macro-F1 after every epoch."""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ..metrics._decision import f1_from_counts
from ..tokens import IGNORE_INDEX

__all__ = ["ValidationMacroF1", "macro_f1_of_batches"]


def macro_f1_of_batches(batches) -> float:
    """Macro-F1 over ``(logits, targets)`` batches: argmax of ``(N, C)`` logits against class
    indices; ``(N, C)`` float targets are multi-label (logit > 0 is a prediction, macro over the
    labels); ``(N, T, C)`` logits with ``(N, T)`` targets are token tags (tokens at
    ``IGNORE_INDEX`` left out). Classes seen neither in the truth nor in the predictions do not
    count, as in scikit-learn.

    >>> import torch
    >>> round(macro_f1_of_batches([(torch.tensor([[2., 0.], [0., 1.], [3., 0.]]), torch.tensor([0, 1, 1]))]), 4)
    0.6667
    """
    tp = pred = true = None
    for logits, y in batches:
        logits, y = logits.float().cpu(), y.cpu()
        if y.ndim == logits.ndim:  # multi-label indicator targets
            p, t = (logits > 0).long(), y.round().long()
        else:
            keep = y != IGNORE_INDEX
            n = logits.shape[-1]
            p = torch.nn.functional.one_hot(logits.argmax(-1)[keep], n)
            t = torch.nn.functional.one_hot(y[keep].long(), n)
        counts = [(p * t).sum(0), p.sum(0), t.sum(0)]
        tp, pred, true = counts if tp is None else (tp + counts[0], pred + counts[1], true + counts[2])
    tp, pred, true = tp.double().numpy(), pred.double().numpy(), true.double().numpy()
    seen = (pred + true) > 0
    return float(f1_from_counts(tp, true, pred)[seen].mean()) if seen.any() else 0.0


class ValidationMacroF1(Callback):
    """Records ``valid_f1_macro`` in the history at the end of every epoch (for
    ``EarlyStopping(monitor="valid_f1_macro", lower_is_better=False)``)."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None:
            return
        was_training = net.module_.training
        net.module_.eval()
        batches = []
        crf = getattr(net.module_, "crf", None)
        with torch.inference_mode():
            for batch in net.get_iterator(dataset_valid, training=False):
                X, y = unpack_data(batch)
                logits, y = net.infer(X), torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
                if crf is not None and y.ndim == 2:  # a CRF tagger predicts its Viterbi path, not the argmax
                    y = y.to(logits.device)
                    path = crf.viterbi(logits, y != IGNORE_INDEX, edges=X.get("sentence_edges"))
                    logits = torch.nn.functional.one_hot(path.clamp(min=0), logits.shape[-1])
                batches.append((logits, y))
        net.module_.train(was_training)
        net.history.record("valid_f1_macro", macro_f1_of_batches(batches))
