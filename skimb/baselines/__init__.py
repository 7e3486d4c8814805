"""Baselines from other libraries, behind the same fit/predict interface as skimb's estimators."""

from ._setfit import SetFitClassifier

__all__ = ["SetFitClassifier"]
