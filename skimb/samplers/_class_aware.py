"""Class-aware (class-balanced) sampling with a temperature."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from numbers import Integral, Real

from ..utils._param_validation import Interval, Options
from ._base import BaseTextSampler, _cycle_draw, sampler_constraints

__all__ = ["ClassAwareSampler"]


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` closest to ``shares * total`` (Hamilton's method)."""
    exact = shares * total
    counts = np.floor(exact).astype(np.int64)
    left = total - int(counts.sum())
    if left > 0:
        order = np.lexsort((np.arange(shares.size), -(exact - counts)))
        counts[order[:left]] += 1
    return counts


class ClassAwareSampler(BaseTextSampler):
    """Class-aware sampling (CAS, Shen et al. 2016) interpolated by a temperature.

    Each output text is obtained by first choosing a class, then a text of that class. Class
    ``c``, holding ``n_c`` input texts, is chosen with probability

    .. math:: \\pi_c = n_c^{1/T} / \\sum_k n_k^{1/T}

    (Arivazhagan et al. 2019): ``T = 1`` keeps the natural class distribution, ``T -> inf``
    (the default, ``temperature=float("inf")``) gives the balanced distribution of plain CAS
    (``pi_c = 1 / C``), and values in between interpolate; ``T < 1`` sharpens the imbalance.
    Within a class, texts are drawn by cycling through fresh random permutations of the class
    (as CAS cycles through shuffled per-class lists), so every text of the class is used
    ``floor(q_c / n_c)`` or ``ceil(q_c / n_c)`` times. The output is shuffled.

    Multi-label ``y`` (2-D 0/1): classes are labels. A label is chosen with the probability
    above computed from its positive count, then a text carrying it. Rows with no positive
    label form one more group (key ``()``) so that they are not lost. With ``T = 1`` label
    occurrences, not texts, follow the natural distribution: a text with several labels can be
    drawn through each of them.

    Parameters
    ----------
    temperature : float, default=inf
        ``T > 0``; ``float("inf")`` = balanced.
    n_samples : int or None, default=None
        Output size; ``None`` = the input size.
    class_draw : {"quota", "random"}, default="quota"
        ``"quota"``: the class counts are the integer counts closest to ``pi * n_samples``
        (largest remainder), a low-variance version of drawing the class of each output text;
        ``"random"``: the class of each output text is drawn independently from ``pi`` (counts
        are multinomial).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        ``{class: number of output texts drawn through that class}`` (multi-label:
        ``{label column index: count, (): count of the no-label group}``).
    class_probabilities_ : OrderedDict
        ``{class: pi_c}``.
    sample_indices_ : ndarray of shape (n_samples,)
        Input index of every output text.

    Notes
    -----
    There is no ``sampling_strategy`` parameter: the target distribution is set by
    ``temperature`` and the size by ``n_samples``.

    Examples
    --------
    >>> from skimb.samplers import ClassAwareSampler
    >>> X = ["a", "b", "c", "d", "e", "f"]
    >>> y = [0, 0, 0, 0, 0, 1]
    >>> X_res, y_res = ClassAwareSampler(random_state=0).fit_resample(X, y)
    >>> sorted(y_res)
    [0, 0, 0, 1, 1, 1]
    >>> _, y_nat = ClassAwareSampler(temperature=1.0, random_state=0).fit_resample(X, y)
    >>> sorted(y_nat)
    [0, 0, 0, 0, 0, 1]
    """

    _sampling_type = "bypass"
    _parameter_constraints = {
        **sampler_constraints(),
        "temperature": [Interval(Real, 0, None, closed="neither", allow_inf=True)],
        "n_samples": [None, Interval(Integral, 1, None)],
        "class_draw": [Options("quota", "random")],
    }

    def __init__(self, *, temperature=float("inf"), n_samples=None, class_draw="quota",
                 random_state=None):
        self.temperature = temperature
        self.n_samples = n_samples
        self.class_draw = class_draw
        self.random_state = random_state

    def _groups(self, data):
        if data.multilabel:
            keys, groups = [], []
            for j in range(data.Y.shape[1]):
                members = np.flatnonzero(data.Y[:, j])
                if members.size:
                    keys.append(j)
                    groups.append(members)
            empty = np.flatnonzero(data.Y.sum(axis=1) == 0)
            if empty.size:
                keys.append(())
                groups.append(empty)
            return keys, groups
        groups = [np.flatnonzero(data.codes == c) for c in range(len(data.classes))]
        return list(data.classes), groups

    def _probabilities(self, groups):
        counts = np.array([g.size for g in groups], dtype=np.float64)
        inv_t = 0.0 if np.isinf(self.temperature) else 1.0 / float(self.temperature)
        # in log space: n ** (1 / T) overflows for small T
        logits = inv_t * np.log(counts)
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def _resolve_strategy(self, data):
        keys, groups = self._groups(data)
        pi = self._probabilities(groups)
        total = data.n_samples if self.n_samples is None else int(self.n_samples)
        quota = _largest_remainder(pi, total)
        self.class_probabilities_ = OrderedDict(zip(keys, pi.tolist()))
        self.sampling_strategy_ = OrderedDict(zip(keys, quota.tolist()))
        return keys, groups, pi, total

    def _fit_resample(self, data, strategy, rng):
        keys, groups, pi, total = strategy
        if self.class_draw == "random":
            counts = rng.multinomial(total, pi)
            self.sampling_strategy_ = OrderedDict(zip(keys, counts.tolist()))
        else:
            counts = np.array(list(self.sampling_strategy_.values()), dtype=np.int64)
        drawn = [_cycle_draw(g, int(q), rng) for g, q in zip(groups, counts)]
        return rng.permutation(np.concatenate(drawn)), None

