"""Utilities: splitting, and the estimator check suite (``skimb.utils.estimator_checks``)."""

from ._split import multilabel_train_test_split

__all__ = ["multilabel_train_test_split"]
