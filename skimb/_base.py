"""Runtime helpers shared by the transformer estimators: devices, seeding, the skorch
callbacks, and the tags of text estimators."""

from __future__ import annotations

import contextlib
import functools
import numbers
import time

import torch
from sklearn.utils import check_random_state
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, LRScheduler, ProgressBar

from .utils._param_validation import Interval, Satisfies, validate_params
from .utils._tags import apply_text_tags  # re-exported: the estimators import it from here

__all__ = ["resolve_device", "seed_from", "seeded", "torch_threads", "with_threads", "Throughput", "make_callbacks",
           "apply_text_tags"]


def resolve_device(device) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here; use device='cpu' or 'auto'.")
    return device


#: ``n_threads``: ``None`` (the process's setting) or a positive number of threads.
N_THREADS_CONSTRAINT = [None, Interval(numbers.Integral, 1, None)]


def _is_device(value) -> bool:
    """``"auto"``, a ``torch.device`` or a string naming one (an int is refused: it means a CUDA device
    on some machines only)."""
    if value == "auto" or isinstance(value, torch.device):
        return True
    if not isinstance(value, str):
        return False
    try:
        torch.device(value)
    except (RuntimeError, TypeError):
        return False
    return True


#: ``device``: ``"auto"``, a ``torch.device`` or its name.
DEVICE_CONSTRAINT = [Satisfies(_is_device, "'auto', 'cpu', 'cuda' or 'cuda:N'", bad=[3, "tpu"])]
#: ``backbone``: ``None`` (the bundled MiniLM), a model name or a local directory.
BACKBONE_CONSTRAINT = [None, Satisfies(lambda v: isinstance(v, str) or hasattr(v, "__fspath__"),
                                       "a model name or a local directory", bad=[3])]


@contextlib.contextmanager
def torch_threads(n_threads):
    """torch's intra-op threads set to ``n_threads`` for the block (``None``: left as they are),
    restored afterwards."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def with_threads(method):
    """Run an estimator method under :func:`torch_threads` of its ``n_threads`` parameter
    (validated first, so that a bad value fails with the estimator's own message)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        n_threads = getattr(self, "n_threads", None)
        validate_params({"n_threads": N_THREADS_CONSTRAINT}, {"n_threads": n_threads}, type(self).__name__)
        with torch_threads(n_threads):
            return method(self, *args, **kwargs)

    return wrapper


def seed_from(random_state) -> int:
    """An int seed from ``random_state`` (None draws one, as scikit-learn does)."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state) & 0x7FFFFFFF
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch for the block and restore the caller's CPU RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            state = torch.cuda.get_rng_state_all()
            torch.cuda.manual_seed_all(seed)
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state)


class Throughput(Callback):
    """Records training samples per second of each epoch in the history."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self._t0 = time.perf_counter()
        self._n = 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self._n += len(batch[1])

    def on_epoch_end(self, net, **kwargs):
        dt = time.perf_counter() - self._t0
        net.history.record("train_samples_per_s", self._n / dt if dt > 0 else float("nan"))


class LossEpochSchedule(Callback):
    """Tells the loss which epoch starts (deferred re-weighting and the like)."""

    def on_epoch_begin(self, net, **kwargs):
        set_epoch = getattr(net.criterion_, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(len(net.history) - 1, net.max_epochs)


def make_callbacks(*, verbose, n_steps, warmup_ratio, max_grad_norm, early_stopping, patience,
                   user_callbacks, lr_cycles=1, ema_decay=None):
    callbacks = [("throughput", Throughput()), ("loss_epoch", LossEpochSchedule())]
    if n_steps > 0:
        from torch.optim.lr_scheduler import LambdaLR

        from .training import WarmupLinearSchedule

        cycle = -(-n_steps // max(1, int(lr_cycles)))  # the schedule restarts every cycle (a training stage)
        schedule = WarmupLinearSchedule(cycle, round(warmup_ratio * cycle), restart_every=cycle if lr_cycles > 1 else None)
        callbacks.append(("lr_schedule", LRScheduler(policy=LambdaLR, lr_lambda=schedule, step_every="batch")))
    if max_grad_norm:
        callbacks.append(("grad_clip", GradientNormClipping(gradient_clip_value=max_grad_norm)))
    if ema_decay is not None:  # before model selection and early stopping, which then read the average
        from .training import WeightAveraging

        callbacks.append(("weight_averaging", WeightAveraging(ema_decay)))
    if early_stopping == "f1_macro":  # model selection on the metric imbalanced tasks care about
        from .training import ValidationMacroF1

        callbacks.append(("valid_f1_macro", ValidationMacroF1()))
        callbacks.append(("early_stopping", EarlyStopping(monitor="valid_f1_macro", lower_is_better=False,
                                                          patience=patience, load_best=True)))
    elif early_stopping:
        callbacks.append(("early_stopping", EarlyStopping(monitor="valid_loss", patience=patience,
                                                          load_best=True)))
    if verbose:
        callbacks.append(("progress", ProgressBar(postfix_keys=["train_loss"])))
    for i, cb in enumerate(user_callbacks or []):
        callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}_{type(cb).__name__}", cb))
    return callbacks
