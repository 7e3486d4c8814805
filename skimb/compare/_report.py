"""Markdown, CSV, JSON and PNG output of a comparison."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from pathlib import Path

import numpy as np

__all__ = ["write_report", "machine_description", "summarise"]


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


def choose_baseline(results, baseline="auto"):
    """The method gaps are measured against: ``baseline`` if it ran, else (``"auto"``)
    ``weighted_ce`` or ``ce``, whichever ran (preferring the first); None when neither did."""
    ran = {r.method for r in results if r.error is None}
    candidates = ["weighted_ce", "ce"] if baseline == "auto" else [baseline]
    return next((c for c in candidates if c in ran), None)


def gaps_to_baseline(results, baseline, *, n_boot=2000):
    """``{method: (gap, low, high)}``: macro-F1 minus the baseline's, paired bootstrap over
    test examples pooled over the seeds both ran."""
    from ..metrics import paired_bootstrap_gap

    counts = {(r.method, r.seed): r.counts for r in results if r.error is None and r.counts is not None}
    gaps = {}
    for method in dict.fromkeys(r.method for r in results):
        if method == baseline:
            continue
        seeds = [s for (m, s) in counts if m == method and (baseline, s) in counts]
        if seeds:
            gaps[method] = paired_bootstrap_gap([counts[method, s] for s in seeds],
                                                [counts[baseline, s] for s in seeds], n_boot=n_boot)
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


def write_report(out, *, data, methods, budget, seeds, results, wall_s, baseline="auto") -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    baseline = choose_baseline(results, baseline)
    gaps, recommendation = {}, "No baseline ran."
    if baseline is not None:
        try:
            gaps = gaps_to_baseline(results, baseline)
            recommendation = recommend(gaps, baseline)
        except Exception as exc:  # noqa: BLE001 - the intervals must never cost the report
            recommendation = f"The gap intervals could not be computed ({type(exc).__name__}: {exc})."
    main_keys = list(next((s for s in summary.values() if s["n_seeds"]), {}).keys())
    metric_keys = [k for k in main_keys if k not in ("n_seeds", "errors", "train_s", "predict_s", "peak_mib",
                                                     "quartile_f1", "per_class_f1")]
    quartiles = ["Q1", "Q2", "Q3", "Q4"]

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
    (out / "results.json").write_text(json.dumps({
        "dataset": data.name, "task": data.task, "seeds": list(seeds), "budget": vars(budget) if hasattr(budget, "__dict__") else str(budget),
        "machine": machine_description(), "wall_s": wall_s,
        "results": [{k: v for k, v in vars(r).items() if k != "counts"} for r in results], "summary": summary,
        "baseline": baseline, "gaps": {m: dict(zip(("gap", "low", "high"), g)) for m, g in gaps.items()},
        "recommendation": recommendation}, indent=2, default=str))

    # plots (matplotlib is the optional "plots" extra: without it the report has no figures)
    from ..metrics import plot_gaps, plot_per_class_f1, plot_quartile_f1
    from ..utils._optional import has_optional

    plots = has_optional("matplotlib")
    if gaps and plots:
        plot_gaps(gaps, out / "gaps.png", baseline=baseline, title=f"Macro-F1 gap to {baseline} on {data.name}")
    ok = {n: s for n, s in summary.items() if s["n_seeds"]}
    if ok and plots:
        counts = _train_counts(data)
        plot_per_class_f1({n: s["per_class_f1"] for n, s in ok.items()}, out / "per_class_f1.png",
                          title=f"Per-class F1 on {data.name} (mean over seeds)", class_counts=counts)
        plot_quartile_f1({n: s["quartile_f1"] for n, s in ok.items()}, out / "quartile_f1.png",
                         title=f"Mean F1 per label-frequency quartile on {data.name}")

    # Markdown
    lines = [f"# skimb compare: {data.name}", ""]
    lines += [f"- task: {data.task}; train {len(data.X_train)} / test {len(data.X_test)} examples",
              f"- budget: backbone={budget.backbone or 'all-MiniLM-L6-v2 (bundled)'}, epochs={budget.max_epochs}, "
              f"batch={budget.batch_size}, max_length={budget.max_length}, lr={budget.lr}, device={budget.device}",
              f"- seeds: {', '.join(map(str, seeds))}",
              f"- machine: {machine_description()}",
              f"- wall time: {wall_s:.0f} s", ""]
    header = ["method", *metric_keys, *[f"{q} F1" for q in quartiles], "train s", "predict s", "peak MiB"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, s in summary.items():
        if not s["n_seeds"]:
            lines.append(f"| {name} | failed: {s['errors'][0][:120]} |")
            continue
        row = [name, *[_fmt(s[k]) for k in metric_keys],
               *[("n/a" if math.isnan(s["quartile_f1"].get(q, float("nan"))) else f"{s['quartile_f1'][q]:.4f}")
                 for q in quartiles],
               f"{s['train_s'][0]:.1f}", f"{s['predict_s'][0]:.1f}", f"{s['peak_mib'][0]:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Mean ± standard deviation over seeds. Q1 holds the rarest labels, Q4 the most frequent.",
              "Peak MiB is the process's peak resident memory during the method's fit and predict.", ""]
    if gaps:
        lines += [f"## Which differences are real: macro-F1 gap to `{baseline}`", "",
                  f"**Recommendation.** {recommendation}", "",
                  "| method | gap (points) | 95% interval | verdict |", "|---|---|---|---|"]
        for name, (gap, low, high) in sorted(gaps.items(), key=lambda kv: -kv[1][0]):
            verdict = "better" if low > 0 else ("worse" if high < 0 else "no clear difference")
            lines.append(f"| {name} | {100 * gap:+.1f} | {100 * low:+.1f} to {100 * high:+.1f} | {verdict} |")
        lines += ["", "Paired bootstrap over the test examples (2000 draws), each draw applied to every seed "
                  "of both methods; the gap is the mean over seeds.", "", "![gaps](gaps.png)" if plots else "", ""]
    classes = list(next(iter(ok.values()))["per_class_f1"]) if ok else []
    if classes:
        lines += ["## Per-class F1 (mean over seeds)", "",
                  "| method | " + " | ".join(classes) + " |", "|" + "---|" * (len(classes) + 1)]
        for name, s in ok.items():
            lines.append(f"| {name} | " + " | ".join(f"{s['per_class_f1'].get(c, float('nan')):.3f}" for c in classes) + " |")
        lines.append("")
    lines += ["## Methods", ""] + [f"- `{m.name}`: {m.description}" for m in methods]
    lines += (["", "![per-class F1](per_class_f1.png)", "", "![quartile F1](quartile_f1.png)", ""] if plots else
              ["", "(No figures: matplotlib is not installed; `pip install 'skimb[plots]'`.)", ""])
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _train_counts(data):
    if data.task == "multiclass":
        labels, counts = np.unique(np.asarray(data.y_train), return_counts=True)
        return {str(k): int(v) for k, v in zip(labels, counts)}
    if data.task == "multilabel":
        return {str(n): int(c) for n, c in zip(data.target_names, np.asarray(data.y_train).sum(0))}
    return None
