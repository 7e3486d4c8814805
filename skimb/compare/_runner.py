"""Run methods on one dataset with the same budget and seeds, and collect metrics."""

from __future__ import annotations

import dataclasses
import json
import numbers
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np

from .. import __version__
from ..utils._meta import inner_estimators
from ._registry import TASKS, refuse_repeated_methods

__all__ = ["RunResult", "RunJournal", "run_comparison", "evaluate", "check_seeds"]


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
    #: ``{class: {"precision", "recall", "f1", "support"}}`` on the test split
    per_class: dict = field(default_factory=dict)
    #: multi-class only: ``{"labels": [...], "counts": [[...]]}``, rows = true class, columns = predicted
    confusion: dict | None = None
    #: the learning rates the run's fine-tuning estimators were fitted with (their ``lr_``)
    lrs: list = field(default_factory=list)
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


def _context(data, catch_all=None):
    task = data.task
    ctx = {"task": task, "n_train": len(data.get("y_train", ())),
           "catch_all": catch_all if catch_all is not None else ("O" if task == "token" else None)}
    if task == "multiclass":
        classes, counts = np.unique(np.asarray(data.y_train), return_counts=True)
        ctx["min_class_count"] = int(counts.min())
        ctx["class_counts"] = dict(zip(classes.tolist(), counts.tolist()))
    else:
        ctx["min_class_count"] = 0
    return ctx


def _report_of(task, y_true, y_pred, *, y_score=None, y_train=None, target_names=None):
    """``(report, per-class key, metric keys)`` of the report of record for ``task``."""
    from ..metrics import imbalance_report, multilabel_report, span_report

    _check_task(task)
    if task == "multiclass":
        rep = imbalance_report(y_true, y_pred, train_labels=y_train, digits=None)
        return rep, "per_class", ("macro_f1", "weighted_f1", "micro_f1", "balanced_accuracy", "geometric_mean")
    if task == "multilabel":
        rep = multilabel_report(np.asarray(y_true), np.asarray(y_pred), Y_score=y_score,
                                label_names=target_names, train_Y=y_train)
        return rep, "per_label", ("macro_f1", "micro_f1", "weighted_f1", "macro_roc_auc", "micro_recall")
    rep = span_report(y_true, y_pred, train_tags=y_train)
    return rep, "per_type", ("micro_f1", "macro_f1", "weighted_f1", "micro_precision", "micro_recall")


def _check_task(task) -> None:
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r} (two-class data is 'multiclass'; "
                         "tagging / NER is 'token').")


def score(task, y_true, y_pred, *, y_score=None, y_train=None, target_names=None):
    """``(metrics, per_class, quartile_f1)``, ``per_class`` being ``{class: {"precision",
    "recall", "f1", "support"}}``."""
    rep, per_key, keys = _report_of(task, y_true, y_pred, y_score=y_score, y_train=y_train,
                                    target_names=target_names)
    metrics = {k: float(rep[k]) for k in keys if k in rep}
    per_class = {str(k): {s: (int(v[s]) if s == "support" else float(v[s]))
                          for s in ("precision", "recall", "f1", "support")}
                 for k, v in rep[per_key].items()}
    return metrics, per_class, {k: float(v) for k, v in rep["quartile_f1"].items()}


def evaluate(task, y_true, y_pred, *, y_score=None, y_train=None, target_names=None):
    """The report of record for ``task`` (Henning et al., 2023, §2.3): ``(metrics, per-class F1, quartile F1)``.

    ``task`` is one of ``"multiclass"`` (two classes included), ``"multilabel"`` and ``"token"``
    (IOB2 tag lists, span-level scores); any other value raises ``ValueError``.
    """
    metrics, per_class, quartiles = score(task, y_true, y_pred, y_score=y_score, y_train=y_train,
                                          target_names=target_names)
    return metrics, {k: v["f1"] for k, v in per_class.items()}, quartiles


def _confusion(task, y_true, y_pred, labels):
    """Raw counts (rows = true class), so that seeds can be pooled before normalising."""
    if task != "multiclass":
        return None
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=labels)
    return {"labels": [str(c) for c in labels], "counts": counts.tolist()}


class RunJournal:
    """``runs.jsonl`` in the output folder: one line per finished run, written as soon as it
    exists, so that an interrupted comparison loses nothing and ``--resume`` skips those runs.
    A line counts only for the same data (name, split sizes and content), budget and skimb version,
    and with ``lr="auto"`` for the same rule resolving it."""

    def __init__(self, path, *, data, budget):
        self.path = Path(path)
        self.setting = {"dataset": str(data.name), "n_train": len(data.X_train), "n_test": len(data.X_test),
                        "data": _data_fingerprint(data), "budget": repr(budget), "skimb": __version__}
        if budget.lr == "auto":
            self.setting["lr_rule"] = _auto_lr_rule()

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


def _auto_lr_rule() -> dict:
    """What ``lr="auto"`` resolves by, per fine-tuning mode: runs journaled under another rule
    trained at other rates."""
    from ..backbones import FINETUNES

    return {name: cls.auto_lr_rule() for name, cls in zip(FINETUNES.names(), FINETUNES.classes())}


def _data_fingerprint(data) -> str:
    # the content, so that an edited --data file is not mistaken for the one the journal saw
    return joblib.hash([data.X_train, data.y_train, data.X_test, data.y_test])


# --------------------------------------------------------------------------- one run
@dataclass
class _Run:
    """One (method, seed) to fit: its unfitted estimator, or why it could not be built."""

    method: str
    seed: int
    estimator: object = None
    build_error: str | None = None
    catch_all: object = None  # the catch-all class: scores also get macro-F1 over the real classes

    @property
    def staged(self) -> bool:
        return self.estimator is not None and _has_stage2(self.estimator)


def _fit_and_score(run, data, labels, log) -> RunResult:
    from ..metrics import example_counts, real_class_f1_score

    res = RunResult(run.method, run.seed)
    log(f"[seed {run.seed}] {run.method}: fitting on {len(data.X_train)} examples ...")
    if run.build_error is not None:
        res.error = run.build_error
        log(f"[seed {run.seed}] {run.method}: FAILED {res.error}")
        return res
    try:
        est = run.estimator
        _reset_peak_rss()
        t0 = time.perf_counter()
        est.fit(data.X_train, data.y_train)
        if _interrupted(est):  # Ctrl-C: stop here; the run is not recorded, so --resume runs it again
            raise KeyboardInterrupt(f"{run.method}, seed {run.seed}: training interrupted")
        res.train_s = time.perf_counter() - t0
        cached = _cached_stage1s(est)
        res.train_s += sum(cached)  # stage 1s trained by another method's fit count for this one too
        res.lrs = sorted(set(_fitted_lrs(est)))
        t0 = time.perf_counter()
        y_score = None
        if data.task == "multilabel" and hasattr(est, "predict_proba"):
            y_score = np.asarray(est.predict_proba(data.X_test))
        y_pred = est.predict(data.X_test)
        res.predict_s = time.perf_counter() - t0
        res.peak_mib = _peak_rss_mib()
        res.counts = example_counts(data.task, data.y_test, y_pred, labels=labels)
        res.confusion = _confusion(data.task, data.y_test, y_pred, labels)
        res.metrics, res.per_class, res.quartile_f1 = score(
            data.task, data.y_test, y_pred, y_score=y_score, y_train=data.y_train,
            target_names=list(data.target_names))
        res.per_class_f1 = {k: v["f1"] for k, v in res.per_class.items()}
        if run.catch_all is not None and data.task == "multiclass":
            seen = np.union1d(np.concatenate([np.asarray(data.y_test), np.asarray(y_pred)]), [run.catch_all])
            res.metrics["real_class_macro_f1"] = real_class_f1_score(data.y_test, y_pred, catch_all=run.catch_all,
                                                                     labels=seen)  # the classes macro_f1 averages
        main = "macro_f1" if data.task != "token" else "micro_f1"
        reused = f" ({'stage 1' if len(cached) == 1 else f'{len(cached)} stage 1s'} from the cache)" if cached else ""
        log(f"[seed {run.seed}] {run.method}: {main}={res.metrics[main]:.4f} "
            f"train {res.train_s:.1f}s{reused} predict {res.predict_s:.1f}s")
    except Exception as exc:  # one failing method must not sink the comparison
        res.error = f"{type(exc).__name__}: {exc}"
        log(f"[seed {run.seed}] {run.method}: FAILED {res.error}")
        log(traceback.format_exc(limit=3))
    return res


def _run_task(task, data, labels, *, log, on_result, n_threads=None):
    """Fit the runs of ``task`` one after the other, in this process (a worker's when
    ``n_threads`` is given: it then uses that many torch threads)."""
    if n_threads is not None:
        import torch

        torch.set_num_threads(n_threads)
    from ..training import stage1_cache

    results = []
    repeated = _repeated_signatures(task)  # stage 1s that two fits of the task share (a vote's members)
    with stage1_cache.sharing(share=lambda est: _stage1_signature(est) in repeated):
        for run in task:
            res = _fit_and_score(run, data, labels, log)
            on_result(res)
            results.append(res)
    return results


def _run_task_in_worker(task, data, labels, n_threads, channel):
    # logs and results go back through ``channel`` as they happen, not when the task ends
    return _run_task(task, data, labels, n_threads=n_threads,
                     log=lambda text: channel.put(("log", text)),
                     on_result=lambda res: channel.put(("result", res)))


# --------------------------------------------------------------------------- the plan
def _build_runs(methods, budget, seed, context, done):
    runs = []
    for method in methods:
        if (method.name, int(seed)) in done:
            continue
        run = _Run(method.name, int(seed), catch_all=context.get("catch_all"))
        try:
            run.estimator = method.build(budget, int(seed), context)
        except Exception as exc:  # reported with the method's run
            run.build_error = f"{type(exc).__name__}: {exc}"
        runs.append(run)
    # staged heads first: the plain methods after them load the stage 1 they cached
    return sorted(runs, key=lambda run: not run.staged)


def _plan(runs_by_seed, *, split_seeds):
    """Tasks (lists of runs fitted in order in one process). One task per seed; with
    ``split_seeds``, each seed's runs are split into independent tasks, runs that may share a stage
    1 staying together in the seed's order (the stage-1 cache is per process): a staged method with
    the plain methods that reuse it, and an ensemble (a vote) with the methods its members repeat."""
    tasks = []
    for runs in runs_by_seed:
        tasks.extend(_sharing_groups(runs) if split_seeds else [runs])
    return [task for task in tasks if task]


def _sharing_groups(runs) -> list:
    """``runs`` split into groups that share no stage-1 signature with each other (a run's
    signatures: those of every fine-tuning estimator in it, :func:`_fine_tuned_in`), each group
    in the order of ``runs``, the groups in the order of their first runs."""
    parent = list(range(len(runs)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    first_with = {}  # signature -> the first run that holds it
    for i, run in enumerate(runs):
        for est in _fine_tuned_in(run.estimator):
            signature = _stage1_signature(est)
            if signature is not None:
                parent[root(i)] = root(first_with.setdefault(signature, i))
    groups = {}
    for i, run in enumerate(runs):
        groups.setdefault(root(i), []).append(run)
    return list(groups.values())


def run_comparison(data, methods, *, budget, seeds, log=print, done=None, on_result=None, n_jobs=1, catch_all=None):
    """Fit every method on ``data.X_train`` for every seed and score it on ``data.X_test``.

    Within a seed, methods with a second-stage head are fitted first, so that a plain method
    sharing their stage 1 (``ce`` and ``calora_topk``) gets it from the stage-1 cache. ``done``
    (``{(method, seed): RunResult}``) are kept without fitting; ``on_result(result)`` is called
    after each new run. ``n_jobs > 1`` fits independent runs in that many worker processes
    (joblib's loky), each with ``cpu_count // n_jobs`` torch threads; runs that may share a stage 1
    (a staged method and the plain methods that reuse it, a vote and the methods its members repeat)
    stay in one worker, one after the other. ``catch_all``
    names the catch-all class for the methods that use one (token data: ``"O"`` by default).

    ``seeds`` must be distinct non-negative integers, ``methods`` distinct registered methods
    (:class:`Method`) and ``data`` must have a test split; otherwise ``ValueError`` (``TypeError``
    for a wrong type) before any fit."""
    seeds, methods = check_seeds(seeds), _check_methods(methods)
    _check_test_split(data)
    done = {} if done is None else done
    on_result = on_result if on_result is not None else (lambda res: None)
    context = _context(data, catch_all)
    labels = None  # fixed columns, so that every run's counts line up for the bootstrap
    if data.task == "multiclass":
        labels = np.unique(np.concatenate([np.asarray(data.y_train), np.asarray(data.y_test)]))
    elif data.task == "token":
        labels = sorted({t.split("-", 1)[1] for s in (*data.y_train, *data.y_test) for t in s if "-" in t})
    runs_by_seed = []
    for seed in seeds:
        for m in methods:
            if (m.name, int(seed)) in done:
                log(f"[seed {seed}] {m.name}: kept from the earlier run (--resume)")
        runs_by_seed.append(_build_runs(methods, budget, seed, context, done))
    tasks = _plan(runs_by_seed, split_seeds=n_jobs > 1)
    n_workers = min(int(n_jobs), len(tasks))
    if n_workers > 1:
        new = _run_parallel(tasks, data, labels, n_workers=n_workers, log=log, on_result=on_result)
    else:
        new = [res for task in tasks for res in _run_task(task, data, labels, log=log, on_result=on_result)]
    by_key = dict(done)
    by_key.update({(res.method, res.seed): res for res in new})
    return [by_key[m.name, int(seed)] for seed in seeds for m in methods]


def check_seeds(seeds, *, name="seeds") -> list:
    """``seeds`` as a list, refused unless distinct non-negative integers (not bools); ``name`` is
    what the messages call them (``--seeds`` for the command line)."""
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"{name} must be a list of non-negative integers, e.g. [0, 1, 2], got {seeds!r}.")
    seeds = list(seeds)
    if not seeds:
        raise ValueError(f"{name} is empty; give at least one seed, e.g. [0].")
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"{name}[{i}] is {seed!r} ({type(seed).__name__}); every seed must be an integer, "
                            "e.g. 1, not 1.5, '1' or True.")
        if seed < 0:
            raise ValueError(f"{name}[{i}] is {seed}; seeds must be non-negative integers.")
    repeated = sorted({int(s) for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"{name} repeats a seed ({', '.join(map(str, repeated))}): a repeated seed reruns the "
                         "same fits; give each seed once.")
    return seeds


def _check_methods(methods) -> list:
    """``methods`` as a list, refused if empty, holding a non-Method or naming a method twice."""
    if isinstance(methods, (str, bytes)) or not hasattr(methods, "__iter__"):
        raise TypeError(f"methods must be a list of registered methods, e.g. [skimb.compare.METHODS['ce']], "
                        f"got {methods!r:.60}.")
    methods = list(methods)
    if not methods:
        raise ValueError("methods is empty; give at least one Method (skimb.compare.METHODS[name]).")
    for i, method in enumerate(methods):
        if not (hasattr(method, "name") and callable(getattr(method, "build", None))):
            raise TypeError(f"methods[{i}] is {method!r:.60}, not a Method; pass registered methods, "
                            "e.g. skimb.compare.METHODS['ce'].")
    refuse_repeated_methods(m.name for m in methods)
    return methods


def _check_test_split(data) -> None:
    """Every run is scored on ``data.X_test``: refuse data without one."""
    if data.get("X_test") is None or data.get("y_test") is None:
        raise ValueError(f"data {data.get('name', '')!r} has no test split (X_test / y_test is None): every "
                         "method is scored on it. Load a data set with a test file, or split the training data "
                         "(e.g. sklearn.model_selection.train_test_split) and set X_test and y_test.")


def _run_parallel(tasks, data, labels, *, n_workers, log, on_result):
    """The tasks on ``n_workers`` loky processes; ``log`` and ``on_result`` are called here, in
    this process, as each worker reports (a queue drained by a thread), so the journal and the
    progress bar follow every run, not every task."""
    import multiprocessing

    from joblib import Parallel, delayed, parallel_config

    n_threads = max(1, joblib.cpu_count() // n_workers)
    results, failures = [], []

    def drain(channel):
        while (item := channel.get()) is not None:
            kind, payload = item
            try:
                if kind == "log":
                    log(payload)
                else:
                    results.append(payload)
                    on_result(payload)
            except Exception as exc:  # noqa: BLE001 - raised in the main thread, after the workers
                failures.append(exc)

    with multiprocessing.Manager() as manager:
        channel = manager.Queue()
        reader = threading.Thread(target=drain, args=(channel,), daemon=True)
        reader.start()
        try:
            with parallel_config(backend="loky", inner_max_num_threads=n_threads):
                Parallel(n_jobs=n_workers)(delayed(_run_task_in_worker)(task, data, labels, n_threads, channel)
                                           for task in tasks)
        finally:
            channel.put(None)
            reader.join()
    if failures:
        raise failures[0]
    return results


def _stage1_signature(est):
    """Equal for two fine-tuning estimators that differ only in their head or in a parameter
    their stage-1 key leaves out (``skimb._estimator._NOT_STAGE1``); None for others. Parameters
    only, not data: a false match costs nothing but a kept stage 1, never a wrong result (the
    cache key itself holds the data)."""
    if est is None or not hasattr(est, "head") or not hasattr(est, "get_params"):
        return None
    from .._estimator import _NOT_STAGE1  # lazily: importing torch only for fine-tuning runs

    params = {k: v for k, v in est.get_params(deep=False).items()
              if k not in _NOT_STAGE1 and k.split("__", 1)[0] != "head"}
    return joblib.hash((type(est).__name__, params))


def _fine_tuned_in(est):
    """The fine-tuning estimators in ``est``: itself, a meta-estimator's ``estimator``, an
    ensemble's ``estimators`` and a pipeline's ``steps`` (unfitted: their parameters)."""
    if _stage1_signature(est) is not None:
        yield est
    for _, inner in inner_estimators(est, fitted=False):
        yield from _fine_tuned_in(inner)


def _repeated_signatures(task) -> set:
    """Stage-1 signatures of fine-tuning estimators that occur more than once among ``task``'s
    runs: the only plain fits worth keeping for the rest of the task."""
    counts = Counter(_stage1_signature(est) for run in task for est in _fine_tuned_in(run.estimator))
    return {signature for signature, n in counts.items() if n > 1}


def _interrupted(est) -> bool:
    """Whether a Ctrl-C ended the training of ``est`` or of an estimator inside it (the fit
    returned a usable model, but not the one the run asked for)."""
    if getattr(est, "training_interrupted_", False):
        return True
    return any(_interrupted(inner) for _, inner in inner_estimators(est, fitted=True))


def _cached_stage1s(est) -> list:
    """Training seconds of the stage 1s that ``est`` (or each member of a fitted ensemble, e.g. a
    ``VotingClassifier``, or the estimator a meta-estimator wraps) loaded from the stage-1 cache."""
    if getattr(est, "stage1_cached_", False):
        return [float(est.stage1_train_time_s_)]
    return [t for _, inner in inner_estimators(est, fitted=True) for t in _cached_stage1s(inner)]


def _fitted_lrs(est) -> list:
    """The ``lr_`` of ``est`` and of every estimator fitted inside it (what ``lr="auto"`` resolved to)."""
    own = [float(est.lr_)] if isinstance(getattr(est, "lr_", None), (int, float)) else []
    return own + [lr for _, inner in inner_estimators(est, fitted=True) for lr in _fitted_lrs(inner)]


def _has_stage2(est):
    """A staged head (CALoRA, cRT, ...): fitted first, it caches the stage 1 that a plain fit
    with the same parameters then reuses instead of training it again."""
    from ..heads import HEADS

    head = getattr(est, "head", None)
    if head in HEADS:  # a registered name
        head = dict(zip(HEADS.names(), HEADS.classes()))[head]
    return bool(getattr(head, "has_stage2", False))
