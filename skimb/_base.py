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

from .utils._param_validation import Interval, InvalidParameterError, Satisfies, validate_params
from .utils._tags import apply_text_tags  # re-exported: the estimators import it from here

__all__ = ["resolve_device", "seed_from", "seeded", "torch_threads", "with_threads", "Throughput", "make_callbacks",
           "apply_text_tags"]


def resolve_device(device) -> str:
    """The device string of ``device`` (``None`` or ``"auto"``: CUDA where there is one, else the CPU).

    Raises a ``TypeError`` for anything that does not name a torch device skimb can run on (not
    :data:`REFUSED_DEVICES`),
    and a ``ValueError`` for CUDA or MPS where this machine has none.
    """
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, torch.device):
        device = str(device)
    if not _is_device(device):
        raise TypeError(f"device must be {DEVICE_DESCRIPTION}, got {device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here; use device='cpu' or 'auto'.")
    if device.startswith("mps") and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was asked for, but MPS is not available here; use device='cpu' or 'auto'.")
    return device


#: ``n_threads``: ``None`` (the process's setting) or a positive number of threads.
N_THREADS_CONSTRAINT = [None, Interval(numbers.Integral, 1, None)]


#: The torch device types refused: ``"meta"`` holds no weights (a model moved there is emptied).
#: Others torch knows (``"xpu"``, ``"hpu"``, ...) are passed on as they are, untested.
REFUSED_DEVICES = ("meta",)
DEVICE_DESCRIPTION = "'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or another torch device (not 'meta')"


def _is_device(value) -> bool:
    """``"auto"``, or a ``torch.device`` or a string naming one, but for :data:`REFUSED_DEVICES` (an
    int is refused: it means a CUDA device on some machines only).

    >>> [_is_device(v) for v in ("auto", "cpu", "cuda:1", torch.device("mps"), "xpu", "meta", "tpu", 0)]
    [True, True, True, True, True, False, False, False]
    """
    if isinstance(value, str) and value == "auto":
        return True
    if isinstance(value, str):
        try:
            value = torch.device(value)
        except (RuntimeError, TypeError):
            return False
    return isinstance(value, torch.device) and value.type not in REFUSED_DEVICES


class _DeviceConstraint(Satisfies):
    """:func:`_is_device`, with a remedy for a torch device skimb does not run on."""

    def __init__(self):
        super().__init__(_is_device, DEVICE_DESCRIPTION, bad=[3, "tpu", "meta"])

    def hint(self, value):
        kind = getattr(value, "type", None) if isinstance(value, torch.device) else None
        if isinstance(value, str):
            try:
                kind = torch.device(value).type
            except (RuntimeError, TypeError):
                return None
        if kind == "meta":
            return "The meta device holds no weights (a model moved there is emptied): use 'cpu', 'cuda' or 'auto'."
        return None


class _BackboneConstraint(Satisfies):
    """``backbone``: a non-blank model name or a local directory (a string or an ``os.PathLike``).

    A loaded model (or tokenizer) itself is refused *here*, with an ``InvalidParameterError`` that
    names its type and the remedy (save it, pass the folder): the generic message would print the
    whole module's repr. A blank string is refused with a remedy too: it would load the current
    directory.
    """

    def __init__(self):
        super().__init__(_is_backbone_name, "a model name or a local directory", bad=[3, "", "  "])

    def is_satisfied_by(self, value) -> bool:
        if _is_model_object(value):
            from .backbones._loading import model_object_error

            raise model_object_error(value, InvalidParameterError)
        return super().is_satisfied_by(value)

    def hint(self, value):
        if isinstance(value, str) and not value.strip():
            return BLANK_BACKBONE_REMEDY
        return None


def _is_backbone_name(value) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or hasattr(value, "__fspath__")


def _is_model_object(value) -> bool:
    """A loaded model or tokenizer: something with ``save_pretrained``, or a torch module."""
    return not isinstance(value, str) and (isinstance(value, torch.nn.Module)
                                           or callable(getattr(value, "save_pretrained", None)))


#: The remedy for a blank ``backbone`` string.
BLANK_BACKBONE_REMEDY = ("A blank string names no backbone (it would load the current directory): pass None "
                         "for the bundled all-MiniLM-L6-v2, a hub name or a model folder.")
#: ``device``: ``"auto"``, a ``torch.device`` or its name, not of a type in :data:`REFUSED_DEVICES`.
DEVICE_CONSTRAINT = [_DeviceConstraint()]
#: ``backbone``: ``None`` (the bundled MiniLM), a model name or a local directory.
BACKBONE_CONSTRAINT = [None, _BackboneConstraint()]


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
    """An int seed from ``random_state`` (None draws one, as scikit-learn does); every valid int,
    [0, 2**32), is its own seed."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state) % 2**32
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
