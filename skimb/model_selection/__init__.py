"""Model selection for imbalanced targets.

* Cross-validation splitters for the targets scikit-learn cannot stratify: multi-label indicator
  matrices (:class:`MultilabelStratifiedKFold`) and tagged sentences (:class:`TagStratifiedKFold`).
  Pass them as ``cv=`` to ``GridSearchCV``, ``cross_validate`` and friends; :func:`check_cv` picks
  the right one for a target.
* :class:`TunedOffsetsClassifier`: any classifier's decision rule tuned for macro-F1 on a split it
  holds out (per-class logit offsets).
"""

from ._offsets import TunedOffsetsClassifier
from ._split import MultilabelStratifiedKFold, TagStratifiedKFold, check_cv

__all__ = ["MultilabelStratifiedKFold", "TagStratifiedKFold", "TunedOffsetsClassifier", "check_cv"]
