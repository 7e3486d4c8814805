"""``skimb compare``: run imbalance methods side by side on one dataset.

Every method gets the same budget (backbone, epochs, batch size, max length,
learning rate) and the same seeds; the report gives macro/weighted/micro F1, mean
F1 per label-frequency quartile, per-class F1, the rarest classes' precision/recall/F1 and
the confusion matrices of the best method and the baseline, train and predict time and
peak memory, as Markdown, a self-contained HTML page, CSV, JSON and PNG plots. The data is
a built-in data set, a data folder, or the user's CSV/JSONL file (``--data``); ``--jobs``
fits the runs in parallel worker processes.

Nothing in skimb imports this package; it imports the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from . import _methods  # noqa: F401  (registers the built-in methods)
from ._data import load_table
from ._registry import METHODS, Budget, Method, get_methods, register_method
from ._report import write_report
from ._runner import RunJournal, check_seeds, evaluate, run_comparison

__all__ = ["main", "Budget", "Method", "METHODS", "register_method", "run_comparison", "evaluate", "DEFAULTS"]

#: The default run: the bundled GoEmotions-Ekman (single-label rows) subsampled so
#: that the default methods finish in about 10 minutes on 2 CPU cores.
DEFAULTS = {"dataset": "goemotions_ekman", "train_size": 1200, "test_size": 600, "seeds": "0"}


def _parse_seeds(text):
    """``--seeds``: distinct non-negative integers, comma-separated."""
    parts = [s for s in re.split(r"[,\s]+", str(text)) if s != ""]
    if not parts or not all(s.isdigit() for s in parts):
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated non-negative integers, got {text!r}")
    try:  # the checks of run_comparison's seeds
        return check_seeds([int(s) for s in parts], name="--seeds")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(option):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{option} takes a positive integer, got {text!r}")
        return value
    return parse


def _subsample_size(option):
    """A count (an integer > 1), a fraction (0 < f <= 1) or 0 (the whole split)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (math.isfinite(value) and value >= 0 and (value <= 1 or value.is_integer())):
            raise argparse.ArgumentTypeError(f"{option} takes a count (a whole number), a fraction <= 1 or 0, "
                                             f"got {text!r}")
        return value
    return parse


def _learning_rate(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr takes 'auto' or a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"--lr must be a positive finite number, got {text!r}")
    return value


@contextlib.contextmanager
def _library_messages(verbose):
    """The 'skimb' logger's INFO messages on stderr while ``verbose``, written above the bar."""
    if not verbose:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    logger = logging.getLogger("skimb")
    level, propagate = logger.level, logger.propagate
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def build_parser():
    from ..datasets import list_datasets

    p = argparse.ArgumentParser(
        prog="skimb compare",
        description="Compare class-imbalance methods on one dataset with the same budget and seeds.")
    p.add_argument("--dataset", default=None,
                   help=f"a built-in name ({', '.join(list_datasets())}) or a path to a data folder or file; a .csv "
                        f"file is read as with --data (default: {DEFAULTS['dataset']})")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="your own data: a .csv (with a header line) or .jsonl file, one row per text, with a text and "
                        "a label column; a column named 'split' (train/test/dev) gives the split, else --test-size "
                        "of the rows is held out, stratified")
    p.add_argument("--text-column", default="text", help="the column of --data holding the texts (default: %(default)s)")
    p.add_argument("--label-column", default="label",
                   help="the column of --data holding the class labels (default: %(default)s)")
    p.add_argument("--methods", default="default",
                   help="comma-separated method names, 'default' or 'all' (see --list-methods)")
    p.add_argument("--seeds", type=_parse_seeds, default=DEFAULTS["seeds"],
                   help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--out", default="skimb-report",
                   help="output folder: report.md and report.html (one self-contained page) with the summary, the "
                        "gaps to the baseline, the rarest classes and the confusion matrices of the best method "
                        "and the baseline; CSV, JSON, PNG figures and the runs.jsonl journal (default: %(default)s)")
    p.add_argument("--train-size", type=_subsample_size("--train-size"), default=None,
                   help="stratified subsample of the training split (count, or fraction <= 1); "
                        f"the default dataset uses {DEFAULTS['train_size']}; 0 = the whole split")
    p.add_argument("--test-size", type=_subsample_size("--test-size"), default=None,
                   help=f"stratified subsample of the test split (default dataset: {DEFAULTS['test_size']}; 0 = all); "
                        "for --data without a 'split' column: the share (fraction < 1) or number of rows held out "
                        "as the test split (default 0.2)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=Budget.max_epochs)
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=Budget.batch_size)
    p.add_argument("--max-length", type=_positive_int("--max-length"), default=Budget.max_length)
    p.add_argument("--lr", type=_learning_rate, default=Budget.lr,
                   help="learning rate of the fine-tuning methods ('auto': the estimators' own, 1e-4 for texts and 2e-4 "
                        "for tagging with the bundled MiniLM, up to twice that on fits of under 600 optimiser steps; "
                        "the report says what it resolved to)")
    p.add_argument("--backbone", default=None, help="model directory or cached name (default: bundled MiniLM)")
    p.add_argument("--device", default="auto")
    p.add_argument("--baseline", default="auto",
                   help="method the gaps (paired bootstrap intervals) are measured against; 'auto' is the "
                        "better (mean macro-F1) of weighted_ce and ce that ran, on multi-label data of weighted_bce and ce, "
                        "on token data of focal, ce and weighted_ce (default: %(default)s)")
    p.add_argument("--catch-all", default=None, metavar="LABEL",
                   help="the heterogeneous 'everything else' class (e.g. other_relevant_information), for the "
                        "catch-all methods ranking, wce_catch_all and ce_prototype_catch_all; token data: 'O' "
                        "unless given")
    p.add_argument("--jobs", type=_positive_int("--jobs"), default=1, metavar="N",
                   help="fit N (method, seed) runs at a time in N worker processes, the CPU threads split between "
                        "them; a staged method and the plain methods reusing its stage 1 share a worker; results "
                        "are the same as with 1 (default: %(default)s, one run after the other)")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already finished in --out (runs.jsonl, written after every run) for the "
                        "same data (name, sizes, content) and budget, and fit only the others")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (runs done, elapsed and remaining time) on stderr")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="show the library's messages (the 'skimb' logger: each fit's size, stage-1 cache hits, "
                        "times); with --jobs > 1 only those of the main process")
    p.add_argument("--list-methods", action="store_true", help="list the registered methods and exit")
    p.add_argument("--version", action="version", version=f"skimb {__version__}")
    return p


def _size(value, default):
    if value is None:
        return default
    if value == 0:
        return None
    return int(value) if value > 1 else float(value)


def _check_budget(args):
    """What every fine-tuned run would fail on, refused before any run: the device, a backbone
    whose config does not load, a ``--max-length`` beyond its positions."""
    from .._base import _is_device, resolve_device
    from ..backbones import backbone_config
    from ..backbones._loading import backbone_max_length

    if not _is_device(args.device):
        raise ValueError(f"--device {args.device!r} names no torch device; use auto, cpu, cuda or cuda:N.")
    try:
        resolve_device(args.device)
    except ValueError:
        raise ValueError(f"--device {args.device}: CUDA is not available here; use --device cpu or auto.") from None
    try:
        config = backbone_config(args.backbone)
    except ValueError as exc:
        raise ValueError(f"--backbone {args.backbone}: {exc}") from None
    limit = backbone_max_length(config)
    if limit is not None and args.max_length > limit:
        raise ValueError(f"--max-length {args.max_length} is more tokens than the backbone takes ({limit} "
                         f"positions); give --max-length {limit} or less.")


def _check_out(out) -> None:
    """Refuse an ``--out`` that cannot be the report's folder (a file, or a folder under one)."""
    for path in (Path(out), *Path(out).parents):
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out {out}: {path} is a file, not a folder; give a folder for the report "
                             "(it is made if missing).")


def _table_path(args):
    """The file to read with the --data reader: --data, or a .csv given to --dataset."""
    if args.data is not None:
        if args.dataset is not None:
            raise ValueError("give either --dataset or --data, not both.")
        return args.data
    if args.dataset is not None and Path(args.dataset).suffix.lower() == ".csv":
        return args.dataset
    return None


def _load_data(args):
    from ..datasets import load_dataset

    table = _table_path(args)
    if table is not None:
        return load_table(table, text_column=args.text_column, label_column=args.label_column,
                          train_size=_size(args.train_size, None), test_size=_size(args.test_size, None),
                          random_state=0)
    dataset = args.dataset or DEFAULTS["dataset"]
    is_default = dataset == DEFAULTS["dataset"]
    subsample = {}
    train = _size(args.train_size, DEFAULTS["train_size"] if is_default else None)
    test = _size(args.test_size, DEFAULTS["test_size"] if is_default else None)
    if train is not None:
        subsample["train"] = train
    if test is not None:
        subsample["test"] = test
    try:
        return load_dataset(dataset, subsample=subsample or None, random_state=0)
    except ValueError as exc:
        if Path(dataset).suffix.lower() == ".jsonl":  # a JSONL of texts is read by --data, not as NER
            raise ValueError(f"{exc} For a JSONL file of texts and labels, use --data {dataset}.") from None
        raise


def main(argv=None) -> int:
    """Entry point of ``skimb compare`` (and ``python -m skimb``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.list_methods:
        for m in METHODS.values():
            tasks = ",".join(sorted(m.tasks))
            default = "default" if m.default == m.tasks else (f"default ({','.join(sorted(m.default))})" if m.default else "")
            print(f"{m.name:24s} {default:17s} [{tasks}] {m.description}")
        return 0
    try:
        _check_budget(args)
        _check_out(args.out)
        data = _load_data(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"skimb compare: {exc}", file=sys.stderr)
        return 2
    if data.X_test is None:
        # --data splits single-label rows only: for other data it is no remedy
        alternative = {"multiclass": ", or pass a .csv/.jsonl file with --data (its rows are then split)",
                       "multilabel": " (test.tsv beside train.tsv)"}.get(data.task, "")
        print(f"skimb compare: the dataset has no test split; point --dataset at a folder with train and test "
              f"files{alternative}.", file=sys.stderr)
        return 2
    if args.catch_all is not None and data.task == "multiclass" and \
            args.catch_all not in {str(label) for label in np.asarray(data.y_train)}:
        print(f"skimb compare: --catch-all {args.catch_all!r} is not a label of the training data.", file=sys.stderr)
        return 2
    names = args.methods if args.methods in ("default", "all") else [m for m in args.methods.split(",") if m]
    try:
        if not names:
            raise ValueError("--methods names no method; give comma-separated names (--list-methods), "
                             "'default' or 'all'.")
        methods = get_methods(names, data.task)
    except ValueError as exc:
        print(f"skimb compare: {exc}", file=sys.stderr)
        return 2
    if args.baseline != "auto" and args.baseline not in {m.name for m in methods}:
        print(f"skimb compare: --baseline {args.baseline!r} is not among the methods run "
              f"({', '.join(m.name for m in methods)}); name one of them, or 'auto'.", file=sys.stderr)
        return 2
    budget = Budget(backbone=args.backbone, max_epochs=args.epochs, batch_size=args.batch_size,
                    max_length=args.max_length, lr=args.lr, device=args.device)
    seeds = args.seeds
    print(f"skimb compare: {data.name} ({data.task}), {len(data.X_train)} train / {len(data.X_test)} test, "
          f"methods {[m.name for m in methods]}, seeds {seeds}", flush=True)
    t0 = time.perf_counter()
    from ..utils._optional import has_optional

    if not has_optional("matplotlib"):
        print("matplotlib is not installed: the report will have no figures (pip install 'skimb[plots]').",
              flush=True)
    journal = RunJournal(Path(args.out) / "runs.jsonl", data=data, budget=budget)
    done = journal.load() if args.resume else {}
    journal.start(resume=args.resume)
    todo = sum((m.name, s) not in done for s in seeds for m in methods)
    with tqdm(total=todo, desc="skimb compare", unit="run", file=sys.stderr, disable=args.no_progress) as bar, \
            _library_messages(args.verbose):
        def finished(res):
            journal.append(res)
            bar.set_postfix_str(f"{res.method}, seed {res.seed}", refresh=False)
            bar.update(1)

        results = run_comparison(data, methods, budget=budget, seeds=seeds, done=done, on_result=finished,
                                 log=lambda s: bar.write(s) if not args.no_progress else print(s, flush=True),
                                 n_jobs=args.jobs, catch_all=args.catch_all)
    path = write_report(args.out, data=data, methods=methods, budget=budget, seeds=seeds, results=results,
                        wall_s=time.perf_counter() - t0, baseline=args.baseline, jobs=args.jobs)
    print(f"report written to {path}")
    print(path.read_text(encoding="utf-8").split("\n## ")[0])
    return 1 if all(r.error for r in results) else 0
