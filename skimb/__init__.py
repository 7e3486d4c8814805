"""skimb: scikit-learn-compatible toolkit for class-imbalanced NLP.

The estimators are imported lazily, so that ``import skimb.datasets`` or
``skimb.metrics`` does not pay for torch and transformers.
"""

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "TransformerClassifier": "._classifier",
    "TransformerEmbedder": "._embedder",
    "TransformerTokenClassifier": "._token_classifier",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skimb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
