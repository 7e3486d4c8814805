"""Training strategies: how stage 1 trains (``training="standard"``, ``"hamr"``, ...).

A strategy plans the fit (it may carve data out of the training split, as HAMR's meta set),
chooses the skorch net class, attaches its per-fit state once the datasets exist and hands back
its fitted attributes. The estimators call these hooks with their fit context (a
:class:`skimb._context.FitContext`); a new strategy subclasses :class:`TrainingStrategy` and
registers with :func:`register_training` (docs/adding_a_method.md).
"""

from __future__ import annotations

from ..utils._components import Component, Registry
from ._net import TransformerNet

__all__ = ["TrainingStrategy", "StandardTraining", "TRAININGS", "register_training"]


class TrainingStrategy(Component):
    """Base of the training strategies; the defaults are plain fine-tuning."""

    _abstract = True  # a base: the check suite skips it

    #: The skorch net class stage 1 trains with.
    net_class = TransformerNet
    #: Whether a fit launched in several processes (torchrun) may train data-parallel.
    supports_data_parallel = True
    #: Whether training reads the validation split (HAMR's meta set), which then no longer scores
    #: the model independently.
    reads_validation_split = False

    def sequence_loss_refusal(self):
        """Why this strategy cannot train on one loss per sequence (a tagger's CRF) in place of one
        per token, or None where it can."""
        return None

    def plan(self, ctx):
        """Before the datasets are built: return this fit's state (or None); may narrow
        ``ctx.train_idx``."""
        return None

    def epoch_size(self, n_train: int, state=None) -> int:
        """Training items drawn per epoch (for the learning-rate schedule); ``state``: what
        :meth:`plan` returned."""
        return int(n_train)

    def n_epochs(self, max_epochs: int) -> int:
        """Epochs the net runs for the estimator's ``max_epochs``."""
        return int(max_epochs)

    def lr_cycles(self) -> int:
        """How many times the learning-rate schedule (warm-up, linear decay) runs over training."""
        return 1

    def net_kwargs(self, state) -> dict:
        """Extra keyword arguments of :attr:`net_class`."""
        return {}

    def attach(self, state, ctx) -> None:
        """Once the model and the training dataset exist (``ctx.module``, ``ctx.train_ds``)."""

    def finish(self, state, cached=None):
        """After stage 1: the fitted attributes as plain data (arrays, numbers, state dicts), so
        that a cached stage 1 can restore them; ``cached`` is that data on a stage-1 cache hit."""
        return cached

    def restore(self, fitted) -> dict:
        """The estimator attributes for :meth:`finish`'s data (fresh copies)."""
        return {}


TRAININGS = Registry("training", TrainingStrategy)
register_training = TRAININGS.register


@register_training("standard")
class StandardTraining(TrainingStrategy):
    """Plain fine-tuning: mini-batches over the training split, the loss weighted by
    ``class_weight`` and ``sample_weight``.

    Examples
    --------
    >>> StandardTraining().epoch_size(100)
    100
    """
