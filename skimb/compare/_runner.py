"""Run methods on one dataset with the same budget and seeds, and collect metrics."""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__

__all__ = ["RunResult", "RunJournal", "run_comparison", "evaluate"]


@dataclass
class RunResult:
    method: str
    seed: int
    metrics: dict = field(default_factory=dict)
    per_class_f1: dict = field(default_factory=dict)
    quartile_f1: dict = field(default_factory=dict)
    train_s: float = float("nan")
    predict_s: float = float("nan")
    peak_mib: float = float("nan")
    error: str | None = None
    # per-example counts on the test split, for the paired bootstrap (not written to JSON)
    counts: object = field(default=None, repr=False, compare=False)


def _reset_peak_rss():
    try:  # Linux: writing 5 resets the peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _context(data):
    task = data.task
    ctx = {"task": task}
    if task == "multiclass":
        _, counts = np.unique(np.asarray(data.y_train), return_counts=True)
        ctx["min_class_count"] = int(counts.min())
    else:
        ctx["min_class_count"] = 0
    return ctx


def evaluate(task, y_true, y_pred, *, y_score=None, y_train=None, target_names=None):
    """The report of record for ``task`` (see METHODS.md §5)."""
    from ..metrics import imbalance_report, multilabel_report, span_report

    if task == "multiclass":
        rep = imbalance_report(y_true, y_pred, train_labels=y_train, digits=None)
        per_class = {str(k): v["f1"] for k, v in rep["per_class"].items()}
        keys = ("macro_f1", "weighted_f1", "micro_f1", "balanced_accuracy", "geometric_mean")
    elif task == "multilabel":
        rep = multilabel_report(np.asarray(y_true), np.asarray(y_pred), Y_score=y_score,
                                label_names=target_names, train_Y=y_train)
        per_class = {str(k): v["f1"] for k, v in rep["per_label"].items()}
        keys = ("macro_f1", "micro_f1", "weighted_f1", "macro_roc_auc", "micro_recall")
    else:
        rep = span_report(y_true, y_pred, train_tags=y_train)
        per_class = {str(k): v["f1"] for k, v in rep["per_type"].items()}
        keys = ("micro_f1", "macro_f1", "weighted_f1", "micro_precision", "micro_recall")
    metrics = {k: float(rep[k]) for k in keys if k in rep}
    return metrics, per_class, {k: float(v) for k, v in rep["quartile_f1"].items()}


class RunJournal:
    """``runs.jsonl`` in the output folder: one line per finished run, written as soon as it
    exists, so that an interrupted comparison loses nothing and ``--resume`` skips those runs.
    A line counts only for the same data set, split sizes, budget and skimb version."""

    def __init__(self, path, *, data, budget):
        self.path = Path(path)
        self.setting = {"dataset": str(data.name), "n_train": len(data.X_train), "n_test": len(data.X_test),
                        "budget": repr(budget), "skimb": __version__}

    def load(self) -> dict:
        """``{(method, seed): RunResult}`` of the finished runs of this setting (errors excluded)."""
        done = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by the interruption
                continue
            if not isinstance(record, dict) or record.get("setting") != self.setting:
                continue
            fields = dict(record.get("result") or {})
            if not fields or fields.get("error"):
                continue
            counts = fields.pop("counts", None)
            try:
                res = RunResult(**fields)
            except TypeError:  # written by another version of RunResult
                continue
            res.counts = None if counts is None else np.asarray(counts)
            done[(res.method, res.seed)] = res
        return done

    def start(self, *, resume: bool):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.path.write_text("")

    def append(self, res: RunResult):
        fields = dataclasses.asdict(res)
        fields["counts"] = None if res.counts is None else np.asarray(res.counts).tolist()
        with self.path.open("a") as f:
            f.write(json.dumps({"setting": self.setting, "result": fields}, default=float) + "\n")


def run_comparison(data, methods, *, budget, seeds, log=print, done=None, on_result=None):
    """Fit every method on ``data.X_train`` for every seed and score it on ``data.X_test``.

    Within a seed, methods with a second-stage head are fitted first, so that a plain method
    sharing their stage 1 (``ce`` and ``calora_topk``) gets it from the stage-1 cache. ``done``
    (``{(method, seed): RunResult}``) are kept without fitting; ``on_result(result)`` is called
    after each new run."""
    done = {} if done is None else done
    from ..metrics import example_counts

    results = []
    context = _context(data)
    labels = None  # fixed columns, so that every run's counts line up for the bootstrap
    if data.task == "multiclass":
        labels = np.unique(np.concatenate([np.asarray(data.y_train), np.asarray(data.y_test)]))
    elif data.task == "token":
        labels = sorted({t.split("-", 1)[1] for s in (*data.y_train, *data.y_test) for t in s if "-" in t})
    for seed in seeds:
        built = {}
        for method in methods:
            if (method.name, int(seed)) in done:
                continue
            try:
                built[method.name] = method.build(budget, int(seed), context)
            except Exception as exc:  # reported with the method's run below
                built[method.name] = exc
        seed_results = {m.name: done[(m.name, int(seed))] for m in methods if (m.name, int(seed)) in done}
        for name in seed_results:
            log(f"[seed {seed}] {name}: kept from the earlier run (--resume)")
        by_order = sorted([m for m in methods if m.name in built], key=lambda m: not _has_stage2(built[m.name]))
        for method in by_order:
            res = seed_results[method.name] = RunResult(method.name, int(seed))
            log(f"[seed {seed}] {method.name}: fitting on {len(data.X_train)} examples ...")
            try:
                est = built[method.name]
                if isinstance(est, Exception):
                    raise est
                _reset_peak_rss()
                t0 = time.perf_counter()
                est.fit(data.X_train, data.y_train)
                res.train_s = time.perf_counter() - t0
                if getattr(est, "stage1_cached_", False):  # its stage 1 was trained by another method's fit
                    res.train_s += est.stage1_train_time_s_
                t0 = time.perf_counter()
                y_score = None
                if data.task == "multilabel" and hasattr(est, "predict_proba"):
                    y_score = np.asarray(est.predict_proba(data.X_test))
                y_pred = est.predict(data.X_test)
                res.predict_s = time.perf_counter() - t0
                res.peak_mib = _peak_rss_mib()
                res.counts = example_counts(data.task, data.y_test, y_pred, labels=labels)
                res.metrics, res.per_class_f1, res.quartile_f1 = evaluate(
                    data.task, data.y_test, y_pred, y_score=y_score, y_train=data.y_train,
                    target_names=list(data.target_names))
                main = "macro_f1" if data.task != "token" else "micro_f1"
                log(f"[seed {seed}] {method.name}: {main}={res.metrics[main]:.4f} "
                    f"train {res.train_s:.1f}s predict {res.predict_s:.1f}s")
            except Exception as exc:  # one failing method must not sink the comparison
                res.error = f"{type(exc).__name__}: {exc}"
                log(f"[seed {seed}] {method.name}: FAILED {res.error}")
                log(traceback.format_exc(limit=3))
            if on_result is not None:
                on_result(res)
        results.extend(seed_results[m.name] for m in methods)
    return results


def _has_stage2(est):
    """A staged head (CALoRA, cRT, ...): fitted first, it caches the stage 1 that a plain fit
    with the same parameters then reuses instead of training it again."""
    from ..heads import HEADS

    head = getattr(est, "head", None)
    if head in HEADS:  # a registered name
        head = dict(zip(HEADS.names(), HEADS.classes()))[head]
    return bool(getattr(head, "has_stage2", False))
