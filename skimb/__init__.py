"""skimb: scikit-learn-compatible toolkit for class-imbalanced NLP."""

from ._classifier import TransformerClassifier
from ._embedder import TransformerEmbedder

__version__ = "0.1.0.dev0"

__all__ = ["TransformerClassifier", "TransformerEmbedder", "__version__"]
