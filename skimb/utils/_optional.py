"""Optional dependencies: import them with an error that names the extra to install."""

from __future__ import annotations

import importlib
import importlib.util

__all__ = ["import_optional", "has_optional", "EXTRAS"]

#: module -> (the extra that installs it, what skimb uses it for)
EXTRAS = {
    "faiss": ("hamr", "HAMR's neighbourhood search and the hardness sampler"),
    "matplotlib": ("plots", "plots and the figures of the skimb compare report"),
    "setfit": ("setfit", "the SetFit baseline (skimb.baselines.SetFitClassifier)"),
    "datasets": ("setfit", "the SetFit baseline (skimb.baselines.SetFitClassifier)"),
    "onnxruntime": ("onnx", "prediction through ONNX Runtime (quantize='onnx-int8')"),
    "onnx": ("onnx", "prediction through ONNX Runtime (quantize='onnx-int8')"),
}


def import_optional(name: str):
    """``importlib.import_module(name)``, or an ImportError naming the extra that provides it.

    >>> import_optional("json").__name__
    'json'
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra, purpose = EXTRAS.get(name.split(".")[0], (None, None))
        if extra is None:
            raise
        raise ImportError(f"{name.split('.')[0]} is needed for {purpose} and is not installed: "
                          f"pip install 'skimb[{extra}]' (or 'skimb[all]').") from exc


def has_optional(name: str) -> bool:
    """Whether ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None
