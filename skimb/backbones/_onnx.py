"""Prediction through ONNX Runtime with dynamic int8 weights (``quantize="onnx-int8"``).

The fitted encoder is exported to ONNX once per fitted model, its weights quantised to int8 by ONNX
Runtime's ``quantize_dynamic`` (activations quantised per batch), and run by an ONNX Runtime session
on the CPU; the head stays a float32 torch module, so second-stage heads work unchanged.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..utils._optional import import_optional
from ._quantize import inference_copy

__all__ = ["onnx_int8_module", "OnnxEncoder"]

# fitted module -> its ONNX copy; weak, so a refit or a deleted estimator frees it
_ONNX = weakref.WeakKeyDictionary()


class OnnxEncoder(nn.Module):
    """An exported encoder run by ONNX Runtime: ``(input_ids, attention_mask) -> features`` as a
    float32 CPU tensor, like the :class:`~skimb.backbones.TextEncoder` it replaces (the export takes no
    ``token_type_ids``: a tagger's ``mark_case`` refuses it)."""

    routing = None  # an exported encoder has no class adapters inside

    def __init__(self, session, pooling):
        super().__init__()
        self.session = session
        self.pooling = pooling

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        if token_type_ids is not None:
            raise ValueError("an ONNX export takes token ids and attention masks only, not token_type_ids.")
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        return torch.from_numpy(self.session.run(None, feeds)[0])

    def __getstate__(self):
        raise TypeError("an ONNX Runtime copy is built for prediction and not pickled; pickle the estimator, "
                        "which rebuilds it on the first prediction.")


def _export(encoder: nn.Module, path: Path) -> None:
    ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 3, 0, 0, 0]])  # any ids: the graph does not depend on them
    mask = (ids != 0).long()
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "features": {0: "batch"} if encoder.pooling is not None else {0: "batch", 1: "tokens"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings
        torch.onnx.export(encoder, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["features"], dynamic_axes=axes, opset_version=17, dynamo=False)


@contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantiser warns through the root logger (``logging.warning``), which also gives
    the root logger a stderr handler where it has none (``basicConfig``): the caller's own
    ``logging.basicConfig`` would then do nothing. A handler meanwhile keeps it from adding one, and
    a filter drops ONNX Runtime's records (those of other code logging to the root logger pass)."""
    root = logging.getLogger()
    guard = logging.NullHandler()

    def not_onnxruntime(record):
        return "onnxruntime" not in record.pathname

    root.addHandler(guard)
    root.addFilter(not_onnxruntime)
    try:
        yield
    finally:
        root.removeFilter(not_onnxruntime)
        root.removeHandler(guard)


def onnx_int8_module(module: nn.Module, n_threads: int | None = None) -> nn.Module:
    """A copy of ``module`` whose encoder runs in ONNX Runtime with int8 weights (one scale per
    output channel), built once per fitted module and reused. ``n_threads``: ONNX Runtime's
    intra-op threads (default: torch's current thread count)."""
    cached = _ONNX.get(module)
    if cached is not None:
        return cached
    ort = import_optional("onnxruntime")
    quantization = import_optional("onnxruntime.quantization")
    if getattr(module.encoder, "routing", None) is not None:
        raise ValueError("quantize='onnx-int8' cannot export class adapters inside the backbone (CALoRA's "
                         "head__layers); use quantize='int8' or None for this model.")
    cached = inference_copy(module)
    with tempfile.TemporaryDirectory(prefix="skimb-onnx-") as tmp:
        fp32, int8 = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder.int8.onnx"
        _export(cached.encoder, fp32)
        with warnings.catch_warnings(), _quiet_root_logger():
            warnings.simplefilter("ignore")
            quantization.quantize_dynamic(str(fp32), str(int8), weight_type=quantization.QuantType.QInt8,
                                          per_channel=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(n_threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(int8.read_bytes(), options, providers=["CPUExecutionProvider"])
    cached.encoder = OnnxEncoder(session, cached.encoder.pooling)
    _ONNX[module] = cached
    return cached
