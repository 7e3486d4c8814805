"""Weight averaging: an exponential moving average (EMA) of the parameters over the optimiser steps."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from skorch.callbacks import Callback

__all__ = ["WeightAveraging", "ema_step_weight"]


def ema_step_weight(decay: float, step: int) -> float:
    """How far the average moves towards the weights after optimiser step ``step`` (1 for the
    first): ``(1 - decay) / (1 - decay ** step)``, the bias-corrected EMA (as Adam corrects its
    moments), so that the average after ``t`` steps is ``sum_k decay**(t-k) w_k / sum_k decay**(t-k)``
    over the steps' weights ``w_k``: the starting weights (a pretrained backbone, a random head)
    count for nothing, and the first step's weights are the first average.

    >>> [round(ema_step_weight(0.9, s), 4) for s in (1, 2, 10, 100)]
    [1.0, 0.5263, 0.1535, 0.1]
    """
    return (1.0 - decay) / (1.0 - decay ** step)


class WeightAveraging(Callback):
    """Keeps an EMA of the module's trainable parameters, updated after every training step; validation
    (the validation loss, ``valid_f1_macro``, early stopping's snapshots) scores the average, and
    at the end of training, interrupted or not, the module holds it. Training itself continues from
    the raw weights, which are put back at the start of every epoch.

    It must come before the callbacks that read the module at the end of an epoch (model
    selection, early stopping): ``make_callbacks`` puts it there.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> layer = torch.nn.Linear(1, 1, bias=False)
    >>> net = SimpleNamespace(module_=layer, get_all_learnable_params=layer.named_parameters)
    >>> torch.nn.init.zeros_(layer.weight)  # doctest: +ELLIPSIS
    Parameter containing:...
    >>> ema = WeightAveraging(0.5).initialize()
    >>> ema.on_train_begin(net)
    >>> for value in (1.0, 3.0):
    ...     with torch.no_grad():
    ...         _ = net.module_.weight.fill_(value)
    ...     ema.on_batch_end(net, training=True)
    >>> ema.on_train_end(net)
    >>> round(net.module_.weight.item(), 4)  # (0.5 * 1 + 3) / (0.5 + 1)
    2.3333
    """

    def __init__(self, decay: float):
        self.decay = decay

    def initialize(self):
        self.params_, self.average_, self.raw_, self.steps_ = [], [], None, 0
        return self

    def on_train_begin(self, net, **kwargs):
        # The optimiser's parameters: frozen ones (a LoRA or head-only fit's backbone) never
        # change, so averaging them would only cost a copy and a lerp per step.
        self.params_ = [p for _, p in net.get_all_learnable_params()]
        self.average_ = [p.detach().clone() for p in self.params_]
        self.raw_, self.steps_ = None, 0

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:  # validation scores the average
            self._swap_in()

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.steps_ += 1
        weight = ema_step_weight(self.decay, self.steps_)
        with torch.no_grad():
            for average, param in zip(self.average_, self.params_):
                average.lerp_(param, weight)

    def on_epoch_begin(self, net, **kwargs):
        self._swap_out()

    def on_epoch_end(self, net, **kwargs):
        self._swap_in()

    def on_train_end(self, net, **kwargs):
        self._swap_in()
        self.params_, self.average_, self.raw_ = [], [], None  # the module now holds the average

    @contextmanager
    def raw_weights(self):
        """Within this block the module holds the weights training moves (not the average)."""
        swapped = self.raw_ is not None
        self._swap_out()
        try:
            yield
        finally:
            if swapped:
                self._swap_in()

    def _swap_in(self):
        if self.raw_ is not None or not self.average_:
            return
        with torch.no_grad():
            self.raw_ = [p.detach().clone() for p in self.params_]
            for param, average in zip(self.params_, self.average_):
                param.copy_(average)

    def _swap_out(self):
        if self.raw_ is None:
            return
        with torch.no_grad():
            for param, raw in zip(self.params_, self.raw_):
                param.copy_(raw)
        self.raw_ = None


@contextmanager
def holding_raw_weights(net):
    """Within this block ``net``'s module holds the weights training moves, whether or not a
    :class:`WeightAveraging` callback has swapped its average in (for validation, at an epoch's end):
    what an epoch-end callback that shapes training itself (EWC's anchor) must read."""
    averaging = [cb for _, cb in getattr(net, "callbacks_", ()) if isinstance(cb, WeightAveraging)]
    if not averaging:
        yield
        return
    with averaging[0].raw_weights():
        yield
