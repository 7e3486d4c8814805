"""SetFit (Tunstall et al. 2022) as a scikit-learn classifier, with class-balanced pair sampling."""

from __future__ import annotations

import contextlib
import io
import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import (BACKBONE_CONSTRAINT, DEVICE_CONSTRAINT, N_THREADS_CONSTRAINT, apply_text_tags, resolve_device,
                     with_threads)
from .._validation import check_consistent_length, check_labels, check_texts
from ..backbones import resolve_backbone
from ..utils._optional import import_optional
from ..utils._param_validation import Boolean, Interval, Options, RandomState, validate_params

__all__ = ["SetFitClassifier"]


def class_balanced_anchors(y, rng) -> np.ndarray:
    """Indices of ``len(y)`` anchors (rounded up to a multiple of the class count) in which every
    class occurs equally often, drawn with replacement inside each class.

    >>> idx = class_balanced_anchors(np.array([0, 0, 0, 0, 0, 1]), np.random.default_rng(0))
    >>> np.bincount(np.array([0, 0, 0, 0, 0, 1])[idx]).tolist()
    [3, 3]
    """
    classes = np.unique(y)
    per_class = math.ceil(len(y) / len(classes))
    return np.concatenate([rng.choice(np.flatnonzero(y == c), size=per_class, replace=True) for c in classes])


@contextlib.contextmanager
def _quiet(datasets):
    """SetFit's training log (stdout), progress bars (stderr, ``datasets``' ``Map``) and info logs off."""
    import logging

    loggers = [logging.getLogger(name) for name in ("setfit", "sentence_transformers", "transformers", "datasets")]
    levels = [logger.level for logger in loggers]
    bars = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if bars:
            datasets.utils.logging.enable_progress_bar()


class SetFitClassifier(ClassifierMixin, BaseEstimator):
    """SetFit: contrastive fine-tuning of a sentence encoder on text pairs, then a logistic
    regression on its embeddings (Tunstall et al. 2022), for comparison with skimb's methods.

    SetFit draws its pairs from the training texts as they come, so a class with 1% of the texts
    anchors 1% of the pairs. ``pair_sampling="class"`` first resamples the texts so that every
    class anchors equally many pairs (with replacement inside a class), and the head weights the
    classes by inverse frequency. Needs the ``setfit`` extra: ``pip install 'skimb[setfit]'``.

    Parameters
    ----------
    backbone : str or None, default=None
        Local sentence-transformers or Hugging Face model directory; ``None`` is the offline
        all-MiniLM-L6-v2 (a plain BERT directory gets mean pooling).
    max_length : int, default=64
    batch_size : int, default=16
        Pairs per step.
    num_iterations : int, default=1
        SetFit's pair budget: each iteration draws a positive and a negative pair per anchor text.
        SetFit's own default is 20, written for few-shot training sets.
    max_steps : int or None, default=None
        Stop the body's training after this many steps (``None``: one pass over the pairs).
    body_lr : float, default=2e-5
        The body's learning rate (SetFit's default).
    pair_sampling : {"class", "setfit"}, default="class"
        ``"class"``: every class anchors equally many pairs; ``"setfit"``: the texts as given.
    class_weight : {"balanced"} or None, default="balanced"
        Class weights of the logistic-regression head.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        1 shows SetFit's progress bars and logs; 0 shows none of them (its warnings stay).
    n_threads : int or None, default=None
        torch's CPU threads during fit and predict (``None``: left as they are).

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``.
    model_ : setfit.SetFitModel
        The trained body and head.

    Examples
    --------
    >>> from skimb.baselines import SetFitClassifier
    >>> SetFitClassifier(num_iterations=2).get_params()["pair_sampling"]
    'class'
    """

    _parameter_constraints = {
        "max_length": [Interval(Integral, 1, None)], "batch_size": [Interval(Integral, 1, None)],
        "num_iterations": [Interval(Integral, 1, None)], "max_steps": [None, Interval(Integral, 1, None)],
        "body_lr": [Interval(Real, 0, None, closed="neither")], "pair_sampling": [Options("class", "setfit")],
        "class_weight": [None, Options("balanced")], "random_state": [RandomState()],
        "verbose": [Interval(Integral, 0, None), Boolean()], "n_threads": N_THREADS_CONSTRAINT,
        "backbone": BACKBONE_CONSTRAINT, "device": DEVICE_CONSTRAINT,
    }

    def __init__(self, backbone=None, *, max_length=64, batch_size=16, num_iterations=1, max_steps=None,
                 body_lr=2e-5, pair_sampling="class", class_weight="balanced", device="auto", random_state=None,
                 verbose=0, n_threads=None):
        self.backbone = backbone
        self.max_length = max_length
        self.batch_size = batch_size
        self.num_iterations = num_iterations
        self.max_steps = max_steps
        self.body_lr = body_lr
        self.pair_sampling = pair_sampling
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        return apply_text_tags(super().__sklearn_tags__())

    @with_threads
    def fit(self, X, y):
        """Train the body on pairs of ``X``, then the head on its embeddings."""
        validate_params(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        texts = check_texts(X)
        labels = check_labels(y, owner=type(self).__name__)
        check_consistent_length(texts, labels)
        setfit = import_optional("setfit")
        datasets = import_optional("datasets")
        for name in ("classes_", "model_"):  # nothing of an earlier fit survives a failed one
            self.__dict__.pop(name, None)
        classes, y_enc = np.unique(labels, return_inverse=True)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        anchors = (class_balanced_anchors(y_enc, np.random.default_rng(seed)) if self.pair_sampling == "class"
                   else np.arange(len(texts)))
        train = datasets.Dataset.from_dict({"text": [texts[i] for i in anchors], "label": y_enc[anchors].tolist()})
        args = setfit.TrainingArguments(
            batch_size=self.batch_size, num_epochs=1, num_iterations=self.num_iterations,
            max_steps=-1 if self.max_steps is None else self.max_steps, body_learning_rate=self.body_lr,
            max_length=self.max_length, seed=seed, report_to="none", show_progress_bar=bool(self.verbose),
            save_strategy="no", logging_strategy="no")
        with contextlib.nullcontext() if self.verbose else _quiet(datasets):
            model = setfit.SetFitModel.from_pretrained(
                resolve_backbone(self.backbone), device=resolve_device(self.device),
                head_params={"class_weight": self.class_weight, "max_iter": 1000, "random_state": seed})
            setfit.Trainer(model=model, args=args, train_dataset=train).train()
        self.classes_, self.model_ = classes, model
        return self

    @with_threads
    def predict_proba(self, X):
        """Class probabilities of the texts ``X``, columns in the order of ``classes_``."""
        check_is_fitted(self)
        texts = check_texts(X)
        return np.asarray(self.model_.predict_proba(texts, batch_size=64, as_numpy=True), dtype=np.float64)

    def predict(self, X):
        """The most probable label of each text."""
        proba = self.predict_proba(X)  # checks the fit first
        return self.classes_[proba.argmax(axis=1)]
