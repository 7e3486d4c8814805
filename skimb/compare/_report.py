"""Markdown, HTML, CSV, JSON and PNG output of a comparison."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ._document import Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from ._per_class import mean_per_class, normalise_by_true_class, plot_confusion, pooled_confusion, rarest_classes

__all__ = ["write_report", "machine_description", "summarise"]

QUARTILES = ["Q1", "Q2", "Q3", "Q4"]


def machine_description() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    return (f"{cpu}, {os.cpu_count()} CPU cores visible, torch {torch.__version__} with {threads} threads, {gpu}, "
            f"Python {platform.python_version()}, {platform.system()}")


def _mean_std(values):
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals))


def summarise(results):
    """Per method: mean and std over seeds of every metric, time and memory."""
    by_method = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    summary = {}
    for name, runs in by_method.items():
        ok = [r for r in runs if r.error is None]
        entry = {"n_seeds": len(ok), "errors": [r.error for r in runs if r.error]}
        if ok:
            for key in ok[0].metrics:
                entry[key] = _mean_std([r.metrics.get(key) for r in ok])
            for key in ("train_s", "predict_s", "peak_mib"):
                entry[key] = _mean_std([getattr(r, key) for r in ok])
            entry["quartile_f1"] = {q: _mean_std([r.quartile_f1.get(q) for r in ok])[0] for q in ok[0].quartile_f1}
            entry["per_class_f1"] = {c: _mean_std([r.per_class_f1.get(c) for r in ok])[0] for c in ok[0].per_class_f1}
        summary[name] = entry
    return summary


def _fmt(ms, digits=4):
    mean, std = ms
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


#: The plain baselines ``--baseline auto`` chooses from, by task: the better of them is the bar. On
#: token data class weighting hurts span F1 and focal loss is the better baseline where data are few
#: or entities sparse (docs/benchmarks.md, round 18). Multi-label data have no ``weighted_ce``: their
#: class weighting is ``weighted_bce`` (+4.2 points over BCE on GoEmotions, round 26).
AUTO_BASELINES = {"multiclass": ("weighted_ce", "ce"), "multilabel": ("weighted_bce", "ce"),
                  "token": ("focal", "ce", "weighted_ce")}


def choose_baseline(summary, baseline="auto", task="multiclass"):
    """The method gaps are measured against, from :func:`summarise`'s ``summary``: ``baseline`` if it
    ran; ``"auto"``: of the plain baselines of ``task`` that ran (:data:`AUTO_BASELINES`), the one
    with the highest mean macro-F1 over its seeds (the first listed on a tie), so that no method is
    held up against a weaker bar than the best plain loss; None when none ran."""
    ran = [name for name, entry in summary.items() if entry["n_seeds"]]
    if baseline != "auto":
        return baseline if baseline in ran else None

    def mean_macro_f1(method):
        mean = summary[method].get("macro_f1", (math.nan,))[0]
        return -math.inf if math.isnan(mean) else mean

    candidates = [m for m in AUTO_BASELINES.get(task, AUTO_BASELINES["multiclass"]) if m in ran]
    return max(candidates, key=mean_macro_f1) if candidates else None


def gaps_to_baseline(results, baseline, *, n_boot=2000, task=None):
    """``{method: (gap, low, high)}``: macro-F1 minus the baseline's, paired bootstrap over
    test examples pooled over the seeds both ran (multi-label: over every label, as the summary's
    macro-F1)."""
    from ..metrics import paired_bootstrap_gap

    counts = {(r.method, r.seed): r.counts for r in results if r.error is None and r.counts is not None}
    every_column = task == "multilabel"
    gaps = {}
    for method in dict.fromkeys(r.method for r in results):
        if method == baseline:
            continue
        seeds = [s for (m, s) in counts if m == method and (baseline, s) in counts]
        if seeds:
            gaps[method] = paired_bootstrap_gap([counts[method, s] for s in seeds],
                                                [counts[baseline, s] for s in seeds], n_boot=n_boot,
                                                every_column=every_column)
    return gaps


def recommend(gaps, baseline) -> str:
    """One line: the method to use, judged by the gap intervals."""
    if not gaps:
        return f"Only {baseline} ran: nothing to compare."
    better = {m: g for m, g in gaps.items() if g[1] > 0}
    if better:
        best = max(better, key=lambda m: better[m][0])
        gap, low, high = better[best]
        return (f"Use `{best}`: {100 * gap:+.1f} points of macro-F1 over `{baseline}` "
                f"(95% interval {100 * low:+.1f} to {100 * high:+.1f}).")
    best = max(gaps, key=lambda m: gaps[m][0])
    gap, low, high = gaps[best]
    return (f"No method is reliably better than `{baseline}`: the best mean, `{best}`, is "
            f"{100 * gap:+.1f} points (95% interval {100 * low:+.1f} to {100 * high:+.1f}, which includes 0 "
            f"or lies below it). Keep `{baseline}`, or run more seeds or a larger test split.")


def write_report(out, *, data, methods, budget, seeds, results, wall_s, baseline="auto", jobs=1) -> Path:
    """Write the report folder; returns the path of ``report.md`` (``report.html`` is beside it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    baseline = choose_baseline(summary, baseline, data.task)
    gaps, recommendation = {}, "No baseline ran."
    if baseline is not None:
        try:
            gaps = gaps_to_baseline(results, baseline, task=data.task)
            recommendation = recommend(gaps, baseline)
        except Exception as exc:  # noqa: BLE001 - the intervals must never cost the report
            recommendation = f"The gap intervals could not be computed ({type(exc).__name__}: {exc})."
    main_keys = list(next((s for s in summary.values() if s["n_seeds"]), {}).keys())
    metric_keys = [k for k in main_keys if k not in ("n_seeds", "errors", "train_s", "predict_s", "peak_mib",
                                                     "quartile_f1", "per_class_f1")]
    best = best_method(summary, baseline, main_metric(data.task))
    _write_tables(out, results, summary, metric_keys)
    (out / "results.json").write_text(json.dumps({
        "dataset": data.name, "task": data.task, "seeds": list(seeds), "budget": vars(budget) if hasattr(budget, "__dict__") else str(budget),
        "machine": machine_description(), "wall_s": wall_s, "jobs": jobs,
        "results": [{k: v for k, v in vars(r).items() if k != "counts"} for r in results], "summary": summary,
        "baseline": baseline, "best": best, "gaps": {m: dict(zip(("gap", "low", "high"), g)) for m, g in gaps.items()},
        "recommendation": recommendation}, indent=2, default=str))
    figures = _draw_figures(out, data, summary, gaps, baseline, results, _pair(best, baseline))
    blocks = _blocks(data=data, methods=methods, budget=budget, seeds=seeds, results=results, wall_s=wall_s,
                     jobs=jobs, summary=summary, metric_keys=metric_keys, baseline=baseline, best=best, gaps=gaps,
                     recommendation=recommendation, figures=figures)
    path = out / "report.md"
    path.write_text(to_markdown(blocks), encoding="utf-8")  # "±" and the class names, whatever the locale
    (out / "report.html").write_text(to_html(blocks, folder=out, title=f"skimb compare: {data.name}"),
                                     encoding="utf-8")
    return path


def main_metric(task) -> str:
    return "micro_f1" if task == "token" else "macro_f1"


def best_method(summary, baseline, metric):
    """The method with the highest mean ``metric`` other than the baseline (the one to hold up
    against it), or the best of all when no baseline ran; None when nothing ran."""
    ran = {n: s[metric][0] for n, s in summary.items() if s["n_seeds"] and metric in s and not math.isnan(s[metric][0])}
    others = {n: v for n, v in ran.items() if n != baseline} or ran
    return max(others, key=others.get) if others else None


def _pair(best, baseline) -> list:
    """The methods the per-class views show: the best one, then the baseline."""
    return [m for m in dict.fromkeys([best, baseline]) if m is not None]


def _write_tables(out, results, summary, metric_keys):
    quartiles = QUARTILES
    # CSV: one row per method and seed
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", *metric_keys, *[f"{q}_f1" for q in quartiles], "train_s", "predict_s",
                    "peak_mib", "error"])
        for r in results:
            w.writerow([r.method, r.seed, *[r.metrics.get(k, "") for k in metric_keys],
                        *[r.quartile_f1.get(q, "") for q in quartiles], f"{r.train_s:.2f}",
                        f"{r.predict_s:.2f}", f"{r.peak_mib:.0f}", r.error or ""])
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "n_seeds", *[f"{k}_mean" for k in metric_keys], *[f"{k}_std" for k in metric_keys],
                    *[f"{q}_f1" for q in quartiles], "train_s_mean", "predict_s_mean", "peak_mib_mean"])
        for name, s in summary.items():
            if not s["n_seeds"]:
                continue
            w.writerow([name, s["n_seeds"], *[s[k][0] for k in metric_keys], *[s[k][1] for k in metric_keys],
                        *[s["quartile_f1"].get(q, "") for q in quartiles], s["train_s"][0], s["predict_s"][0],
                        s["peak_mib"][0]])


def _draw_figures(out, data, summary, gaps, baseline, results, pair) -> dict:
    """``{figure: file name}`` of the PNGs drawn; none without matplotlib (the optional "plots"
    extra), and then the report simply has no figures."""
    from ..metrics import plot_gaps, plot_per_class_f1, plot_quartile_f1
    from ..utils._optional import has_optional

    if not has_optional("matplotlib"):
        return {}
    figures = {}
    if gaps:
        plot_gaps(gaps, out / "gaps.png", baseline=baseline, title=f"Macro-F1 gap to {baseline} on {data.name}")
        figures["gaps"] = "gaps.png"
    ok = {n: s for n, s in summary.items() if s["n_seeds"]}
    if ok:
        plot_per_class_f1({n: s["per_class_f1"] for n, s in ok.items()}, out / "per_class_f1.png",
                          title=f"Per-class F1 on {data.name} (mean over seeds)", class_counts=_train_counts(data))
        plot_quartile_f1({n: s["quartile_f1"] for n, s in ok.items()}, out / "quartile_f1.png",
                         title=f"Mean F1 per label-frequency quartile on {data.name}")
        figures["per_class_f1"], figures["quartile_f1"] = "per_class_f1.png", "quartile_f1.png"
    for method in pair:
        pooled = pooled_confusion(results, method)
        if pooled is not None:
            labels, counts = pooled
            name = _figure_name("confusion", method, taken=figures.values())
            plot_confusion(normalise_by_true_class(counts), labels, out / name,
                           title=f"{method} on {data.name}: share of each true class (rows sum to 1)")
            figures[f"confusion:{method}"] = name
    return figures


def _figure_name(kind, method, *, taken=()) -> str:
    """``<kind>_<method>.png``, a plain file name in the report folder whatever ``method`` holds
    (characters other than letters, digits, '_', '-' and '.' become '_'; a name already in
    ``taken`` gets a number)."""
    stem = f"{kind}_{re.sub(r'[^A-Za-z0-9_.-]', '_', str(method))}"
    taken, name, n = set(taken), f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}.png"
    return name


def _lr_text(budget, results) -> str:
    """The budget's rate and, for ``auto``, what the fine-tuning runs resolved it to."""
    if budget.lr != "auto":
        return str(budget.lr)
    resolved = sorted({lr for r in results if not r.error for lr in r.lrs})
    return f"auto ({', '.join(f'{lr:g}' for lr in resolved)})" if resolved else "auto"


def _header_blocks(data, budget, seeds, wall_s, jobs, results=()) -> list:
    items = [f"task: {data.task}; train {len(data.X_train)} / test {len(data.X_test)} examples",
             f"budget: backbone={budget.backbone or 'all-MiniLM-L6-v2 (bundled)'}, epochs={budget.max_epochs}, "
             f"batch={budget.batch_size}, max_length={budget.max_length}, lr={_lr_text(budget, results)}, "
             f"device={budget.device}",
             f"seeds: {', '.join(map(str, seeds))}",
             f"machine: {machine_description()}",
             f"wall time: {wall_s:.0f} s"]
    if jobs > 1:  # train times of runs sharing the cores are not those of a run alone
        items.append(f"parallel: {jobs} worker processes (--jobs), the CPU threads split between them; "
                     "train and predict times are those of a run sharing the machine")
    return [Heading(1, f"skimb compare: {data.name}"), Bullets(items)]


def _summary_blocks(summary, metric_keys) -> list:
    quartiles = QUARTILES
    header = ["method", *metric_keys, *[f"{q} F1" for q in quartiles], "train s", "predict s", "peak MiB"]
    rows = []
    for name, s in summary.items():
        if not s["n_seeds"]:
            rows.append([name, f"failed: {s['errors'][0][:120]}"])
            continue
        rows.append([name, *[_fmt(s[k]) for k in metric_keys],
                     *[("n/a" if math.isnan(s["quartile_f1"].get(q, float("nan"))) else f"{s['quartile_f1'][q]:.4f}")
                       for q in quartiles],
                     f"{s['train_s'][0]:.1f}", f"{s['predict_s'][0]:.1f}", f"{s['peak_mib'][0]:.0f}"])
    return [Table(header, rows),
            Paragraph("Mean ± standard deviation over seeds. Q1 holds the rarest labels, Q4 the most frequent.\n"
                      "Peak MiB is the process's peak resident memory during the method's fit and predict.")]


def _gap_blocks(gaps, baseline, recommendation, figures) -> list:
    if not gaps:
        return []
    rows = []
    for name, (gap, low, high) in sorted(gaps.items(), key=lambda kv: -kv[1][0]):
        verdict = "better" if low > 0 else ("worse" if high < 0 else "no clear difference")
        rows.append([name, f"{100 * gap:+.1f}", f"{100 * low:+.1f} to {100 * high:+.1f}", verdict])
    blocks = [Heading(2, f"Which differences are real: macro-F1 gap to `{baseline}`"),
              Paragraph(f"**Recommendation.** {recommendation}"),
              Table(["method", "gap (points)", "95% interval", "verdict"], rows),
              Paragraph("Paired bootstrap over the test examples (2000 draws), each draw applied to every seed "
                        "of both methods; the gap is the mean over seeds.")]
    if "gaps" in figures:
        blocks.append(Figure(figures["gaps"], "gaps"))
    return blocks


def rare_class_rows(results, pair, train_counts) -> tuple:
    """``(header, rows)`` of precision / recall / F1 (mean over seeds) of the rarest classes for
    the methods of ``pair``; ``(None, [])`` when no run has per-class scores."""
    scores = {m: mean_per_class(results, m) for m in pair}
    scores = {m: s for m, s in scores.items() if s}
    if not scores:
        return None, []
    classes = list(dict.fromkeys(c for s in scores.values() for c in s))
    rare = rarest_classes(train_counts or {}, classes)
    header = ["class", "train", "test"] + [f"{m} {k}" for m in scores for k in ("precision", "recall", "F1")]
    rows = []
    for cls in rare:
        support = next((s[cls]["support"] for s in scores.values() if cls in s), float("nan"))
        row = [cls, str((train_counts or {}).get(cls, 0)), "n/a" if math.isnan(support) else f"{support:.0f}"]
        for s in scores.values():
            v = s.get(cls)
            row += [f"{v[k]:.3f}" if v else "n/a" for k in ("precision", "recall", "f1")]
        rows.append(row)
    return header, rows


def _which_classes(n_shown, n_classes) -> str:
    if n_shown == n_classes:
        return f"of all {n_classes} classes, rarest in training first"
    return (f"of the {n_shown} rarest of the {n_classes} classes by training count (the rarest quarter, "
            "at least 3)")


def _classes_of(results, pair) -> set:
    return {c for r in results if r.method in pair and r.error is None for c in r.per_class}


def _per_class_view_blocks(data, results, pair, baseline, figures) -> list:
    header, rows = rare_class_rows(results, pair, _train_counts(data))
    blocks = []
    if rows:
        who = " and ".join(f"`{m}`" + (" (baseline)" if m == baseline else " (best)") for m in pair)
        blocks += [Heading(2, "The rarest classes"),
                   Paragraph(f"Precision, recall and F1 {_which_classes(len(rows), len(_classes_of(results, pair)))}, "
                             f"mean over seeds, for {who}; 'train' and 'test' count the "
                             f"{'entity spans' if data.task == 'token' else 'examples'} of the class."),
                   Table(header, rows)]
    confusions = [(m, figures[f"confusion:{m}"]) for m in pair if f"confusion:{m}" in figures]
    if confusions:
        blocks += [Heading(2, "Confusion matrices"),
                   Paragraph("Each row is a true class and shows where its test examples went: the share "
                             "predicted as each class (rows sum to 1; the diagonal is the recall), pooled over "
                             "the seeds. Off-diagonal cells name the classes a method mistakes for one another.")]
        blocks += [Figure(name, f"confusion matrix of {m}" + (" (baseline)" if m == baseline else " (best)"))
                   for m, name in confusions]
    return blocks


def _per_class_f1_blocks(summary) -> list:
    ok = {n: s for n, s in summary.items() if s["n_seeds"]}
    classes = list(next(iter(ok.values()))["per_class_f1"]) if ok else []
    if not classes:
        return []
    rows = [[name, *[f"{s['per_class_f1'].get(c, float('nan')):.3f}" for c in classes]] for name, s in ok.items()]
    return [Heading(2, "Per-class F1 (mean over seeds)"), Table(["method", *classes], rows)]


def _blocks(*, data, methods, budget, seeds, results, wall_s, jobs, summary, metric_keys, baseline, best, gaps,
            recommendation, figures) -> list:
    """The report, in the order a reader wants it: the summary, whether the differences are real,
    the rare classes and the confusions, then the details."""
    blocks = _header_blocks(data, budget, seeds, wall_s, jobs, results)
    blocks += _summary_blocks(summary, metric_keys)
    blocks += _gap_blocks(gaps, baseline, recommendation, figures)
    blocks += _per_class_view_blocks(data, results, _pair(best, baseline), baseline, figures)
    blocks += _per_class_f1_blocks(summary)
    blocks += [Heading(2, "Methods"), Bullets([f"`{m.name}`: {m.description}" for m in methods])]
    if figures:
        blocks += [Figure(figures[k], alt) for k, alt in (("per_class_f1", "per-class F1"),
                                                          ("quartile_f1", "quartile F1")) if k in figures]
    else:
        blocks.append(Paragraph("(No figures: matplotlib is not installed; `pip install 'skimb[plots]'`.)"))
    return blocks


def _train_counts(data):
    if data.task == "multiclass":
        labels, counts = np.unique(np.asarray(data.y_train), return_counts=True)
        return {str(k): int(v) for k, v in zip(labels, counts)}
    if data.task == "multilabel":
        return {str(n): int(c) for n, c in zip(data.target_names, np.asarray(data.y_train).sum(0))}
    if data.task == "token":  # entity spans per type, counted by their B- tags (IOB2)
        spans = Counter(t[2:] for tags in data.y_train for t in tags if str(t).startswith("B-"))
        return dict(spans) or None
    return None
