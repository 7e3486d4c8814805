"""Resamplers with imbalanced-learn's contract, for texts and for embeddings.

Every sampler has ``fit_resample(X, y)`` (and ``fit_resample(X, y, sample_weight=w)``, which
returns ``(X_res, y_res, w_res)``), ``random_state``, and can be a step of
:class:`imblearn.pipeline.Pipeline`.

On texts (put them before the vectoriser / embedder):

* :class:`RandomTextOverSampler`, :class:`RandomTextUnderSampler` -- ROS / RUS;
* :class:`ClassAwareSampler` -- class-aware sampling with a temperature between the natural
  (``T = 1``) and the balanced (``T = inf``) class distribution;
* :class:`EDAOverSampler` -- EDA text augmentation of minority classes.

On embeddings (2-D numeric X, after an embedder):

* :class:`TextCutOverSampler`, :class:`GE3OverSampler`, :class:`REPRINTOverSampler` --
  hidden-space augmentation;
* :class:`LabelNoiseRebalancer` -- flips a few majority labels near the decision boundary;
* :class:`HardnessNeighborhoodSampler` -- HAMR's hardness and neighbourhood resampling.

In an :class:`imblearn.pipeline.Pipeline`, imbalanced-learn hands a sampler no fit parameter
unless metadata routing is enabled, and expects two outputs from ``fit_resample``: do not route
``sample_weight`` to a sampler inside such a pipeline (resampled weights cannot reach the later
steps); call ``fit_resample(X, y, sample_weight=w)`` directly instead.
"""

from ._base import BaseEmbeddingSampler, BaseTextSampler
from ._class_aware import ClassAwareSampler
from ._eda import EDAOverSampler
from ._hidden_space import GE3OverSampler, REPRINTOverSampler, TextCutOverSampler
from ._label_noise import LabelNoiseRebalancer
from ._random import RandomTextOverSampler, RandomTextUnderSampler

from ._hardness_neighborhood import HardnessNeighborhoodSampler

__all__ = [
    "BaseTextSampler",
    "BaseEmbeddingSampler",
    "RandomTextOverSampler",
    "RandomTextUnderSampler",
    "ClassAwareSampler",
    "EDAOverSampler",
    "TextCutOverSampler",
    "GE3OverSampler",
    "REPRINTOverSampler",
    "LabelNoiseRebalancer",
    "HardnessNeighborhoodSampler",
]
