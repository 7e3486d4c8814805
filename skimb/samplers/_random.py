"""Random over- and under-sampling of texts."""

from __future__ import annotations

import numpy as np

from ..utils._param_validation import Boolean
from ._base import BaseTextSampler, sampler_constraints

__all__ = ["RandomTextOverSampler", "RandomTextUnderSampler"]


class RandomTextOverSampler(BaseTextSampler):
    """Random over-sampling (ROS) of texts: duplicate randomly drawn minority-class texts.

    The text counterpart of :class:`imblearn.over_sampling.RandomOverSampler`, which rejects a
    1-D sequence of strings. The output holds every input text in input order, followed, class
    by class (in sorted class order), by the drawn duplicates; each duplicate is drawn
    uniformly with replacement within its class.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How many texts each class should end with, with imbalanced-learn's over-sampling
        semantics: ``"auto"`` (= ``"not majority"``), ``"minority"``, ``"not minority"``,
        ``"all"``; a float (binary only): desired ``n_minority / n_majority`` after resampling;
        a dict ``{class: n_samples}`` of the desired counts; or a callable ``y -> dict``.
        With a multi-label ``y`` every distinct label set is a class and a dict key is a sorted
        tuple of column indices, e.g. ``{(0, 2): 50}``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        ``{class: number of texts added}``.
    sample_indices_ : ndarray of shape (n_samples_resampled,)
        Input index of every output text.

    Examples
    --------
    >>> from skimb.samplers import RandomTextOverSampler
    >>> X = ["good", "fine", "great", "bad"]
    >>> y = ["pos", "pos", "pos", "neg"]
    >>> X_res, y_res = RandomTextOverSampler(random_state=0).fit_resample(X, y)
    >>> X_res
    ['good', 'fine', 'great', 'bad', 'bad', 'bad']
    >>> y_res
    ['pos', 'pos', 'pos', 'neg', 'neg', 'neg']
    """

    _sampling_type = "over-sampling"
    _parameter_constraints = sampler_constraints("over-sampling")

    def __init__(self, *, sampling_strategy="auto", random_state=None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    def _fit_resample(self, data, strategy, rng):
        parts = [np.arange(data.n_samples, dtype=np.int64)]
        for code, n_new in strategy.items():
            members = np.flatnonzero(data.codes == code)
            if n_new > 0:
                parts.append(members[rng.randint(low=0, high=members.size, size=n_new)])
        return np.concatenate(parts), None


class RandomTextUnderSampler(BaseTextSampler):
    """Random under-sampling (RUS) of texts: keep a random subset of the larger classes.

    The text counterpart of :class:`imblearn.under_sampling.RandomUnderSampler`. Classes are
    output one after the other in sorted class order; a targeted class keeps a random subset
    of its texts, an untargeted class keeps all of its texts (in input order).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        imbalanced-learn's under-sampling semantics: ``"auto"`` (= ``"not minority"``),
        ``"majority"``, ``"not majority"``, ``"all"``; a float (binary only): desired
        ``n_minority / n_majority`` after resampling; a dict ``{class: n_samples}`` of the
        desired counts; or a callable. Multi-label ``y``: as in
        :class:`RandomTextOverSampler`.
    random_state : int, RandomState instance or None, default=None
    replacement : bool, default=False
        Whether the kept texts are drawn with replacement.

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        ``{class: number of texts kept}`` for the targeted classes.
    sample_indices_ : ndarray of shape (n_samples_resampled,)
        Input index of every output text.

    Examples
    --------
    >>> import numpy as np
    >>> from skimb.samplers import RandomTextUnderSampler
    >>> X = np.array(["good", "fine", "great", "bad"])
    >>> y = np.array([1, 1, 1, 0])
    >>> X_res, y_res = RandomTextUnderSampler(random_state=0).fit_resample(X, y)
    >>> X_res.shape, sorted(y_res.tolist())
    ((2,), [0, 1])
    """

    _sampling_type = "under-sampling"
    _parameter_constraints = {**sampler_constraints("under-sampling"), "replacement": [Boolean()]}

    def __init__(self, *, sampling_strategy="auto", random_state=None, replacement=False):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.replacement = replacement

    def _fit_resample(self, data, strategy, rng):
        parts = []
        for code in range(len(data.classes)):
            members = np.flatnonzero(data.codes == code)
            if code in strategy:
                chosen = rng.choice(members.size, size=strategy[code], replace=self.replacement)
                parts.append(members[chosen])
            else:
                parts.append(members)
        return np.concatenate(parts), None
