"""Checks shared by the ``load_pretrained`` of the transformer estimators."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["saved_folder", "read_saved_config", "backbone_files", "params_to_json", "params_from_json", "warn_omitted",
           "model_card", "jsonable"]

#: Sub-folder of a saved model holding the backbone's config and tokenizer.
BACKBONE_DIR = "backbone"
#: The settings file of a saved model: it marks a folder as skimb's.
SAVED_CONFIG_NAME = "skimb_config.json"
_BACKBONE_FILES = ("config.json", "tokenizer_config.json")
_CONFIG_KEYS = ("skimb_estimator", "params", "omitted_params", "classes", "classes_dtype", "task",
                "n_iter", "fitted")


def _not_saved(owner: str, directory: Path, problem: str) -> ValueError:
    return ValueError(
        f"{owner}.load_pretrained: {str(directory)!r} is not a model saved by skimb: {problem}. "
        f"Save a fitted estimator with est.save_pretrained(folder) and load that folder "
        f"(a plain Hugging Face model folder is a backbone: pass it as backbone=... and fit)."
    )


def saved_folder(directory, owner: str, *, saving: bool = False) -> Path:
    """``directory``, the folder of a saved model (``saving``: the folder to save one to), as a
    ``Path``; a ``TypeError`` naming ``owner`` for anything that is no path (``None``: ``Path`` would
    raise the ``TypeError`` of ``os.fspath``), and a ``ValueError`` for a blank one.

    >>> saved_folder(None, "TransformerClassifier")
    Traceback (most recent call last):
    ...
    TypeError: TransformerClassifier.load_pretrained: directory must be the path of a folder written by save_pretrained (a str or os.PathLike), got None.
    """
    method, folder = (("save_pretrained", "the folder to write the model to") if saving
                      else ("load_pretrained", "a folder written by save_pretrained"))
    if not isinstance(directory, (str, os.PathLike)):
        got = "None" if directory is None else type(directory).__name__
        raise TypeError(f"{owner}.{method}: directory must be the path of {folder} (a str or os.PathLike), "
                        f"got {got}.")
    if not os.fspath(directory).strip():  # "" would be read as the current directory
        remedy = "the folder to write the model to ('.' for the current one)" if saving else \
            "the folder given to save_pretrained"
        raise ValueError(f"{owner}.{method}: directory={directory!r} names no folder; pass {remedy}.")
    return Path(directory)


def read_saved_config(directory, owner: str, *, config_name: str, weights_name: str) -> dict:
    """Check that ``directory`` holds a model written by ``save_pretrained``; return its settings.

    Raises a ``ValueError`` naming the folder, what is missing or broken, and the remedy, instead
    of the ``FileNotFoundError`` / ``JSONDecodeError`` the loaders would raise half-way.

    Parameters
    ----------
    directory : str or path-like
    owner : str
        Name of the loading class, for the message.
    config_name, weights_name : str
        File names ``save_pretrained`` gives the JSON settings and the weights.
    """
    directory = saved_folder(directory, owner)
    if not directory.exists():
        raise _not_saved(owner, directory, "the folder does not exist")
    if not directory.is_dir():
        raise _not_saved(owner, directory, "it is a file, not a folder")
    config_path = directory / config_name
    if not config_path.is_file():
        found = sorted(p.name for p in directory.iterdir())
        detail = "the folder is empty" if not found else f"it holds {found[:8]}"
        raise _not_saved(owner, directory, f"{config_name} is missing ({detail})")
    try:
        config = read_json(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_saved(owner, directory, f"{config_name} is not valid JSON (truncated or corrupted: {exc})") from exc
    if not isinstance(config, dict):
        raise _not_saved(owner, directory, f"{config_name} does not hold a JSON object")
    missing_keys = [k for k in _CONFIG_KEYS if k not in config]
    if missing_keys:
        raise _not_saved(owner, directory, f"{config_name} lacks the entries {missing_keys}")
    missing = [] if (directory / weights_name).is_file() else [weights_name]
    # the tokenizer's own files too, as saved (a BERT tokenizer without tokenizer.json loads with no vocabulary)
    names = dict.fromkeys([*_BACKBONE_FILES, *_file_names(config.get("backbone_files"))])
    missing += [f"{BACKBONE_DIR}/{name}" for name in names if not (directory / BACKBONE_DIR / name).is_file()]
    if missing:
        raise _not_saved(owner, directory, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    return config


def _file_names(value) -> list:
    """The plain file names in ``value`` (the config's ``backbone_files``; absent, None, from folders
    saved before it)."""
    if not isinstance(value, list):
        return []
    return [name for name in value if isinstance(name, str) and name and Path(name).name == name]


def backbone_files(saved) -> list:
    """The names of the files among ``saved`` (what a tokenizer's ``save_pretrained`` returns, which
    may name a file it did not write) that are there, for the config's ``backbone_files``."""
    return sorted({Path(f).name for f in saved if Path(f).is_file()})


def params_to_json(params: dict, slots: dict):
    """``(json_params, omitted)``: an estimator's ``get_params(deep=False)`` as JSON, a component
    instance stored as ``{"component": class name, "params": {...}}`` (no pickle). Numpy arrays,
    tuples and dicts keyed by numbers (``class_weight={0: 1.0, 1: 3.0}``) are tagged so that
    :func:`params_from_json` restores them as they were (a numpy scalar comes back as the Python
    number); values that JSON cannot hold (a fitted object, a callable, bytes) are listed in
    ``omitted``."""
    out, omitted = {}, []
    for key, value in params.items():
        if key in slots and hasattr(value, "to_json"):
            value = value.to_json()
        try:
            out[key] = _tagged(value)
        except TypeError:
            omitted.append(key)
    return out, omitted


#: The key marking a value that JSON holds only in a tagged form (see :func:`_tagged`).
_TAG = "__skimb_type__"


def _tagged(value):
    """``value`` as JSON holds it, with what JSON would change tagged: an array keeps its dtype and
    shape, a tuple stays a tuple, a dict whose keys are not all strings keeps its keys' types.

    >>> import numpy as np
    >>> _untagged(_tagged({0: np.array([1.5, 2.0], dtype=np.float32), "k": (1, "a")}))
    {0: array([1.5, 2. ], dtype=float32), 'k': (1, 'a')}
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO":
            raise TypeError(f"an array of dtype {value.dtype} is not JSON")
        # flat: the cells of an object array may be lists or tuples, which a nested list would merge
        return {_TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "data": _tagged(value.ravel().tolist())}
    if isinstance(value, np.generic):
        return _tagged(value.item())
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {k: _tagged(v) for k, v in value.items()}
        return {_TAG: "dict", "items": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _object_cells(data):
    """``data`` as a 1-D object array of its cells as they are (a list cell is not unpacked)."""
    cells = np.empty(len(data), dtype=object)
    for i, cell in enumerate(data):
        cells[i] = cell
    return cells


def _untagged(value):
    """The inverse of :func:`_tagged` (plain JSON, as saved before the tags, comes back as it is)."""
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_TAG)
    if kind == "ndarray":
        data, dtype = _untagged(value["data"]), np.dtype(value["dtype"])
        array = np.empty(len(data), dtype=dtype)
        array[:] = data if dtype != object else _object_cells(data)
        return array.reshape(value["shape"])
    if kind == "tuple":
        return tuple(_untagged(v) for v in value["items"])
    if kind == "dict":
        return {_untagged(k): _untagged(v) for k, v in value["items"]}
    return {k: _untagged(v) for k, v in value.items()}


#: The key of a non-finite float in a saved config: JSON itself has no NaN or infinity.
_NON_FINITE = "__non_finite__"


def strict_json(value):
    """``value`` with each non-finite float as ``{"__non_finite__": "nan"}`` (or ``"inf"``, ``"-inf"``), so
    that the saved config is JSON any parser reads (Python writes bare ``NaN``, which others refuse);
    :func:`read_json` turns them back.

    >>> strict_json({"roc_auc": [float("nan"), 0.5], "gap": float("-inf")})
    {'roc_auc': [{'__non_finite__': 'nan'}, 0.5], 'gap': {'__non_finite__': '-inf'}}
    """
    if isinstance(value, float) and not np.isfinite(value):
        return {_NON_FINITE: repr(value)}
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def read_json(text: str):
    """JSON written with :func:`strict_json` (or, in folders saved before it, with bare ``NaN``)."""
    def restore(obj):
        return float(obj[_NON_FINITE]) if len(obj) == 1 and _NON_FINITE in obj else obj
    return json.loads(text, object_hook=restore)


def jsonable(value):
    """``value`` as JSON holds it: numpy scalars and arrays as numbers and lists, dict keys as
    strings; a ``TypeError`` for anything else JSON cannot hold (a tensor, an object).

    >>> import numpy as np
    >>> jsonable({"f1": np.float32(0.5), "curve": [np.arange(2)], 7: None})
    {'f1': 0.5, 'curve': [[0, 1]], '7': None}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return jsonable(value.tolist())  # a complex array is no JSON either
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def params_from_json(params: dict, slots: dict) -> dict:
    """The inverse of :func:`params_to_json`: tagged values restored, components rebuilt from their
    registries."""
    out = {key: _untagged(value) for key, value in params.items()}
    for slot, registry in slots.items():
        value = out.get(slot)
        if isinstance(value, dict) and "component" in value:
            out[slot] = registry.by_class_name(value["component"])(**value["params"])
    return out


def label_keyed(mapping, classes):
    """A dict of labels as saved before the tags (JSON made an integer or boolean label key a string)
    keyed by the labels again; anything else as it is.

    >>> label_keyed({"0": 1.0, "1": 3.0}, np.array([0, 1])), label_keyed({"true": 2.0}, np.array([False, True]))
    ({0: 1.0, 1: 3.0}, {True: 2.0})
    """
    if not isinstance(mapping, dict) or np.asarray(classes).dtype.kind in "UO" \
            or not all(isinstance(key, str) for key in mapping):
        return mapping
    labels = {json.dumps(label): label for label in np.asarray(classes).tolist()}  # the key JSON wrote: "0", "true"
    return {labels.get(key, key): value for key, value in mapping.items()}


def warn_omitted(omitted) -> None:
    if omitted:
        warnings.warn(f"parameters {omitted} hold objects that a saved model cannot (a fitted estimator, a "
                      "callable) and were not saved; they take their default values.", UserWarning, stacklevel=3)


def model_card(est, params=None) -> str:
    """The ``README.md`` that :meth:`save_pretrained` writes next to the weights: task, labels with
    their training counts, the parameters that differ from the defaults (``params``, those saved;
    default ``est.get_params()``), the validation split's report, training time and the skimb
    version (as SetFit's model cards)."""
    from . import __version__
    from ._params import FITTED_THRESHOLDS
    from .metrics._tables import markdown_cell  # a label's "|" or line break would break its row

    counts = getattr(est, "class_counts_", None)
    weights = getattr(est, "class_weight_", None)
    lines = [f"# {type(est).__name__}", "",
             f"Saved by skimb {__version__}. Load it with `{type(est).__name__}.load_pretrained(path)`.", "",
             f"- task: {est.task_}",
             f"- backbone: {Path(str(est.backbone_path_)).name}",
             f"- epochs run: {int(est.n_iter_)}; fit time: {float(getattr(est, 'fit_time_s_', float('nan'))):.1f} s",
             "", "## Labels", "",
             "| label | training examples | class weight |", "|---|---|---|"]
    for i, label in enumerate(est.classes_.tolist()):
        n = "" if counts is None else int(counts[i])
        w = "" if weights is None or len(np.atleast_1d(weights)) <= i else f"{float(np.atleast_1d(weights)[i]):.3g}"
        lines.append(f"| {markdown_cell(label)} | {n} | {w} |")
    defaults = type(est)().get_params(deep=False)
    params = est.get_params(deep=False) if params is None else params
    changed = {k: v for k, v in params.items() if repr(defaults.get(k)) != repr(v)}
    lines += ["", "## Parameters (those not at their defaults)", ""]
    lines += [f"- `{k}={v!r}`" for k, v in sorted(changed.items())] or ["- all defaults"]
    report = getattr(est, "validation_report_", None)
    lines += ["", "## Validation split", ""]
    if params.get("validation_fraction") is None:
        lines.append("No validation split was held out (`validation_fraction=None`).")
    elif report is None:
        lines.append("A validation split was held out; this model type writes no report for it.")
    else:
        if params.get("threshold") in FITTED_THRESHOLDS or getattr(getattr(est, "training_", None),
                                                                    "reads_validation_split", False):
            lines += ["The decision rule or the training method used this split too (`threshold='tuned'` or "
                      "`'calibrated'`, HAMR's meta set), so these figures are optimistic.", ""]
        keys = [k for k in ("macro_f1", "weighted_f1", "micro_f1", "balanced_accuracy", "macro_roc_auc")
                if isinstance(report.get(k), (int, float))]
        lines += [f"- {k}: {float(report[k]):.4f}" for k in keys]
        per = report.get("per_class") or report.get("per_label") or {}
        if per:
            lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
            lines += [f"| {markdown_cell(k)} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {int(v['support'])} |"
                      for k, v in per.items()]
    return "\n".join(lines) + "\n"
