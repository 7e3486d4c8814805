"""Helpers shared by the benchmark scripts.

Not part of the package: the scripts import it as a sibling module (``python benchmarks/x.py``
puts ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import argparse
import functools
import glob
import json
import math
import re
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skimb.compare._report import machine_description
from skimb.compare._runner import _peak_rss_mib, _reset_peak_rss

__all__ = ["load_subsampled", "load_protocol_data", "sparse_entities", "ints", "key_values", "command_line",
           "mean_std", "fmt", "markdown_table", "write_json", "write_outputs", "source_commit", "measure",
           "machine_description", "publish", "saved_fit_key", "QUARTILES"]

QUARTILES = ("Q1", "Q2", "Q3", "Q4")


def load_subsampled(name, *, train_size=0, test_size=0, seed=0, eval_split="test", task=None, long_tail=None,
                    **kwargs):
    """``load_dataset(name)`` with stratified subsamples of the train and ``eval_split`` splits
    (a size of 0 keeps the split whole), drawn with ``seed``; exits unless its task is ``task``.

    ``long_tail=(ratio, head)`` redraws the training split with a long-tail profile instead of a
    stratified subsample: class sizes decaying exponentially from at most ``head`` texts to ``ratio``
    times fewer (``skimb.datasets.make_imbalance``); the evaluation split keeps its own distribution."""
    from skimb.datasets import load_dataset, make_imbalance

    if long_tail and train_size:
        raise SystemExit("--long-tail sets the training split's size; drop --train-size.")
    subsample = {split: n for split, n in (("train", train_size), (eval_split, test_size)) if n}
    data = load_dataset(name, subsample=subsample or None, random_state=seed, **kwargs)
    if task is not None and data.task != task:
        raise SystemExit(f"{name} is a {data.task} data set; this benchmark needs a {task} one.")
    if long_tail:
        ratio, head = long_tail
        data.X_train, data.y_train = make_imbalance(data.X_train, data.y_train, profile="longtail", ratio=ratio,
                                                    max_per_class=head, random_state=seed)
    return data


def sparse_entities(data, share, *, train_size=0, test_size=0, seed=0):
    """NER splits redrawn so that ``share`` of the sentences carry no entity (tweet NER: most tweets
    have none), ``train_size`` / ``test_size`` sentences each (0 = as many as the split allows at
    that share), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    share = float(share)
    for split, size in (("train", train_size), ("test", test_size)):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        free = np.flatnonzero([all(t == "O" for t in tags) for tags in y])
        with_entities = np.setdiff1d(np.arange(len(y)), free)
        n = size or int(min(len(free) / max(share, 1e-9), len(with_entities) / max(1 - share, 1e-9)))
        n_free = int(round(share * n))
        idx = np.sort(np.concatenate([rng.choice(free, n_free, replace=False),
                                      rng.choice(with_entities, n - n_free, replace=False)]))
        setattr(data, f"X_{split}", [X[i] for i in idx])
        setattr(data, f"y_{split}", [y[i] for i in idx])
    return data


def add_protocol_arguments(parser):
    """The fine-tuning protocol every quality benchmark shares: seeds, subsample sizes, epochs,
    batch size, length and learning rate (the defaults of issue #13's protocol)."""
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-size", type=int, default=0)
    parser.add_argument("--test-size", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--long-tail", default=None, type=_long_tail, metavar="RATIO,HEAD",
                        help="redraw the training split long-tailed: at most HEAD texts in the largest class, "
                             "RATIO times fewer in the smallest (in place of --train-size)")
    return parser


def _long_tail(text):
    try:
        ratio, head = text.split(",")
        ratio, head = float(ratio), int(head)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--long-tail takes RATIO,HEAD (e.g. 1000,2000), got {text!r}") from None
    if ratio < 1 or head < 1:
        raise argparse.ArgumentTypeError(f"--long-tail needs RATIO >= 1 and HEAD >= 1, got {text!r}")
    return ratio, head


def load_protocol_data(args, task=None):
    """The data of ``add_protocol_arguments``' options: ``args.dataset`` with its subsample sizes or
    ``--long-tail``, drawn with seed 0 whatever the model seeds."""
    return load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size, seed=0,
                           task=task, long_tail=args.long_tail)


def ints(text):
    """``"0,1,2"`` -> ``[0, 1, 2]``."""
    return [int(v) for v in str(text).split(",") if v.strip()]


def setting_value(text):
    """A ``key=value`` setting's value: JSON (numbers, true/false/null, quoted strings), else the
    text itself (``"balanced"``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(items, where, prefix=""):
    """``["key=value", ...]`` -> ``{prefix + key: value}`` (values read by ``setting_value``); exits
    naming ``where`` when an item has no ``=``."""
    items = [item for item in items if item]
    bad = [item for item in items if "=" not in item]
    if bad:
        raise SystemExit(f"{where}: settings are key=value pairs, got {bad}")
    return {prefix + k: setting_value(v) for k, v in (item.split("=", 1) for item in items)}


def saved_fit_key(path):
    """``(configuration, seed)`` of a ``.npz`` that ``quality.py`` saved: ``<folder>/<config>`` with the
    folder's ``_s<n>`` dropped (one row for a configuration's seeds run apart), and the seed."""
    p = Path(path)
    fit = re.fullmatch(r"(.+)_seed(\d+)", p.stem)
    if fit is None:
        raise SystemExit(f"{path}: not a quality.py file (<config>_seed<n>.npz)")
    return re.sub(r"_s\d+$", "", p.parent.name) + "/" + fit.group(1), int(fit.group(2))


def command_line(script, argv):
    """The command as typed, for the JSON (``argv=None``: this process's arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", script, *(shlex.quote(a) for a in args)])


def _finite(values):
    return [float(v) for v in values
            if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean_std(values):
    """Mean and population std over the finite values (NaN, NaN when there are none)."""
    vals = _finite(values)
    if not vals:
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals))


def fmt(values, digits=4, std=True):
    """``"0.4123 ± 0.0101"`` over ``values``; ``"n/a"`` when nothing is finite."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if std and len(_finite(values)) > 1 else f"{m:.{digits}f}"


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@contextmanager
def measure(record):
    """Wall-clock seconds and peak RSS (VmHWM, reset on entry) into ``record["wall_s"/"peak_mib"]``."""
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    try:
        yield record
    finally:
        record["wall_s"] = time.perf_counter() - t0
        # Without the reset (non-Linux) VmHWM is the process's peak so far: say so.
        record["peak_mib"] = _peak_rss_mib()
        record["peak_mib_reset"] = reset


@functools.cache
def source_commit():
    """The commit of the checkout whose ``skimb`` this process imported (``"<sha>+dirty"`` when its
    ``skimb/`` or ``benchmarks/`` hold changes or untracked files outside ``benchmarks/results``), None
    outside a git checkout. Read once, when this module is imported, so that a run that outlives a
    commit records the code it started with."""
    import skimb

    root = Path(skimb.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "skimb", "benchmarks",
                                ":!benchmarks/results"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")


source_commit()  # now, before the run: see its docstring


def write_json(out, summary):
    """Write ``summary`` to the JSON ``out``, with the ``commit`` it ran from when it is a dict that
    does not name one; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(summary, dict) and "commit" not in summary:
        summary = {"commit": source_commit(), **summary}
    out.write_text(json.dumps(summary, indent=2, default=_json_default))
    return out


def write_outputs(out, summary, markdown):
    """Write ``summary`` to the JSON ``out`` (:func:`write_json`) and ``markdown`` to the ``.md``
    next to it."""
    out = write_json(out, summary)
    md = out.with_suffix(".md")
    md.write_text(markdown + "\n")
    return out, md


def publish(script, argv, out, title, body, runs, machine=None):
    """Write ``runs`` (JSON, with the command and the machine: this one unless ``machine`` names the
    one the runs were measured on) and a Markdown page (the title, the command, the machine, then
    ``body``) to ``out``, and print the page; with ``out=None`` only print ``body``."""
    if out is None:
        print(body)
        return
    cmd, machine = command_line(script, argv), machine or machine_description()
    md = f"# {title}\n\n`{cmd}`\n\n{machine}\n\n{body}"
    write_outputs(out, {"command": cmd, "machine": machine, "runs": runs}, md)
    print(md)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def class_logits(est, X):
    """The model's own logits of ``X``, ``(n, n_classes)``: ``est.decision_function(X)`` without the
    tuned ``logit_offsets_`` it carries since round 42 (the rows of this module apply offsets
    themselves), a binary margin ``m`` as ``[0, m]`` (the same softmax, argmax and offsets)."""
    scores = np.asarray(est.decision_function(X))
    scores = np.column_stack([np.zeros_like(scores), scores]) if scores.ndim == 1 else scores
    offsets = getattr(est, "logit_offsets_", None)
    if offsets is None:
        return scores
    offsets = np.asarray(offsets, dtype=scores.dtype)
    # a binary margin carries offsets[1] - offsets[0]: its [0, m] form gets them back at column 1
    return scores - (np.array([0.0, offsets[1] - offsets[0]], dtype=scores.dtype) if len(offsets) == 2 else offsets)


def gap_text(gap, low, high) -> str:
    """A macro-F1 gap and its interval in points: ``"+1.2 [-0.3, +2.6]"``."""
    return f"{100 * gap:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def saved_fit_files(patterns) -> list:
    """The saved fits (``.npz``) the globs ``patterns`` match, pattern by pattern, each pattern's
    sorted; exits naming the patterns when none matches."""
    paths = [path for pattern in patterns for path in sorted(glob.glob(pattern))]
    if not paths:
        raise SystemExit(f"no .npz file matches {patterns}")
    return paths


def seeded_files(pattern) -> dict:
    """``{seed: path}`` of the saved fits matching ``pattern`` (``<fit>_seed<n>.npz``); exits
    naming the pattern when none does."""
    found = {int(re.search(r"_seed(\d+)\.npz$", path).group(1)): path for path in glob.glob(pattern)}
    if not found:
        raise SystemExit(f"no saved logits match {pattern!r}")
    return found
