"""Dynamic int8 quantisation of a fitted model for CPU prediction (``quantize="int8"``)."""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import nn

__all__ = ["int8_module", "inference_copy"]

# fitted module -> its int8 copy; weak, so a refit or a deleted estimator frees the copy
_INT8 = weakref.WeakKeyDictionary()


def inference_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``module`` in eval mode, with LoRA adapters folded into the backbone's
    weights: what the int8 paths quantise (``module`` is untouched)."""
    cached = copy.deepcopy(module).cpu().eval()
    backbone = getattr(cached.encoder, "backbone", None)
    if hasattr(backbone, "merge_and_unload"):
        cached.encoder.backbone = backbone.merge_and_unload()
    return cached


def int8_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose encoder's ``nn.Linear`` layers run in dynamic int8 (weights
    quantised once with one scale per output channel, activations per batch; torch's
    ``quantize_dynamic``; LoRA adapters are merged into the weights first). The head stays float32,
    so second-stage heads (CALoRA, kNN) work unchanged. Built once per fitted module and reused.

    >>> class M(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.encoder, self.head = nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 2)
    >>> m = M()
    >>> type(int8_module(m).encoder[0]).__name__, type(int8_module(m).head).__name__
    ('Linear', 'Linear')
    >>> "quantized.dynamic" in type(int8_module(m).encoder[0]).__module__
    True
    >>> int8_module(m) is int8_module(m), type(m.encoder[0]).__module__  # the original is untouched
    (True, 'torch.nn.modules.linear')
    """
    cached = _INT8.get(module)
    if cached is None:
        cached = inference_copy(module)
        with warnings.catch_warnings():  # torch marks its eager quantisation API for a move to torchao
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            # one scale per output channel: on Cyclone-Idai 96% of predictions unchanged against 92%
            # with one scale per weight matrix (docs/benchmarks.md, round 7)
            spec = {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            # in place on the copy: layers that share an object with the head (CALoRA's routing) keep sharing it
            torch.ao.quantization.quantize_dynamic(cached.encoder, spec, dtype=torch.qint8, inplace=True)
        _INT8[module] = cached
    return cached
