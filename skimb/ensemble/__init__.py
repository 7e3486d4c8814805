"""Ensembles of skimb estimators that scikit-learn's own cannot build.

* :class:`VotingTagger`: the soft vote of token classifiers (NER), whose ``y`` (lists of tag
  lists) scikit-learn's ``VotingClassifier`` cannot take. For text classifiers use
  ``sklearn.ensemble.VotingClassifier(voting="soft")``.
"""

from ._voting import VotingTagger

__all__ = ["VotingTagger"]
