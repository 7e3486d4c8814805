"""Cross-validation splitters for the targets scikit-learn cannot stratify: multi-label indicator
matrices (:class:`MultilabelStratifiedKFold`) and tagged sentences (:class:`TagStratifiedKFold`).
Pass them as ``cv=`` to ``GridSearchCV``, ``cross_validate`` and friends; :func:`check_cv` picks
the right one for a target."""

from ._split import MultilabelStratifiedKFold, TagStratifiedKFold, check_cv

__all__ = ["MultilabelStratifiedKFold", "TagStratifiedKFold", "check_cv"]
