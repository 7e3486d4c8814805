"""Cross-validation splitters for the targets scikit-learn cannot stratify: multi-label indicator
matrices (:class:`MultilabelStratifiedKFold`) and tagged sentences (:class:`TagStratifiedKFold`).
Pass them as ``cv=`` to ``GridSearchCV``, ``cross_validate`` and friends."""

from ._split import MultilabelStratifiedKFold, TagStratifiedKFold

__all__ = ["MultilabelStratifiedKFold", "TagStratifiedKFold"]
