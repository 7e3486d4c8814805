"""Bar charts of per-class and per-quartile F1 (matplotlib, imported lazily).

The figures are drawn with matplotlib's object-oriented API on an Agg canvas
(``matplotlib.figure.Figure``), so neither ``pyplot`` nor the global backend
is touched.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from skimb.metrics._quartiles import QUARTILES, _to_python

__all__ = ["plot_gaps", "plot_per_class_f1", "plot_quartile_f1"]


def _check_results(results, what, example):
    """``results`` is ``{method: {key: f1}}``; ``example`` says how to get one method's scores."""
    if not isinstance(results, dict) or not results:
        raise ValueError(f"{what} must be a non-empty dict {{method name: {{key: f1}}}}.")
    for name, scores in results.items():
        if not isinstance(scores, dict):
            raise TypeError(f"{what}[{name!r}] must be a dict of scores, got {type(scores).__name__}; "
                            f"pass e.g. {example}.")
        for key, value in scores.items():  # a whole report, or its per-class dicts, is the usual slip
            if value is not None and not isinstance(value, numbers.Real):
                raise TypeError(f"{what}[{name!r}][{key!r}] must be an F1 score (a number), got "
                                f"{type(value).__name__}; pass e.g. {example}.")
    return results


def _matplotlib():
    """``(FigureCanvasAgg, Figure)``; an error naming the ``plots`` extra when it is missing."""
    from ..utils._optional import import_optional

    return (import_optional("matplotlib.backends.backend_agg").FigureCanvasAgg,
            import_optional("matplotlib.figure").Figure)


def _literal(text) -> str:
    """``text`` as matplotlib is to draw it: a name's ``$`` escaped, which would otherwise start TeX
    (and fail at savefig on what TeX cannot parse)."""
    return str(text).replace("$", r"\$")


def _value(scores, key):
    v = scores.get(key)
    if v is None:
        return math.nan
    return float(v)


def _grouped_bars(results, keys, tick_labels, path, *, title, xlabel, width_per_key, rotate=None):
    FigureCanvasAgg, Figure = _matplotlib()

    n_methods = len(results)
    n_keys = len(keys)
    fig_w = min(max(6.0, 1.2 + width_per_key * n_keys * max(1.0, n_methods / 2.0)), 60.0)
    fig = Figure(figsize=(fig_w, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    bar_w = 0.8 / n_methods
    for m, (name, scores) in enumerate(results.items()):
        xs = [i - 0.4 + bar_w * (m + 0.5) for i in range(n_keys)]
        heights = [_value(scores, k) for k in keys]
        ax.bar(xs, [0.0 if math.isnan(h) else h for h in heights], width=bar_w, label=_literal(name))
        for x, h in zip(xs, heights):
            if math.isnan(h):
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(list(range(n_keys)))
    if rotate is None:
        rotate = n_keys > 8 or max((len(t) for t in tick_labels), default=0) > 10
    ax.set_xticklabels([_literal(t) for t in tick_labels], rotation=60 if rotate else 0,
                       ha="right" if rotate else "center", fontsize=8)
    ax.set_ylim(0.0, 1.15)  # headroom for the legend above F1 = 1
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("F1")
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(n_methods, 6), loc="upper center", frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_per_class_f1(results, path, title=None, *, class_counts=None):
    """Grouped bar chart of per-class F1, one bar per method, classes rarest first.

    Parameters
    ----------
    results : dict
        ``{method name: {class label: f1}}``, e.g.
        ``{k: v["f1"] for k, v in report["per_class"].items()}`` per method. A
        class missing for a method is drawn as ``n/a``.
    path : str or path-like
        Output file, written as PNG (parent directories are created).
    title : str, default=None
        Figure title.
    class_counts : mapping, default=None
        Training frequency per class (e.g. ``collections.Counter(y_train)``,
        or a report's ``frequencies``). Classes are ordered by ascending count
        (a class without a count counts 0; ties keep first-seen order) and the
        counts are shown under the class names. Without it, classes keep the
        order in which they first appear in ``results``.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, os
    >>> res = {"ce": {"rare": 0.2, "common": 0.9}, "focal": {"rare": 0.4, "common": 0.88}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = plot_per_class_f1(res, os.path.join(d, "f1.png"), class_counts={"rare": 5, "common": 500})
    ...     out.stat().st_size > 0
    True
    """
    _check_results(results, "results", "{k: v['f1'] for k, v in report['per_class'].items()}")
    keys, seen = [], set()
    for scores in results.values():
        for k in scores:
            k = _to_python(k)
            if k not in seen:
                seen.add(k)
                keys.append(k)
    if class_counts is not None:
        counts = {_to_python(k): v for k, v in dict(class_counts).items()}
        keys = sorted(keys, key=lambda k: float(counts.get(k, 0)))  # stable
        ticks = [f"{k}\n(n={counts.get(k, 0)})" for k in keys]
    else:
        ticks = [str(k) for k in keys]
    results = {name: {_to_python(k): v for k, v in s.items()} for name, s in results.items()}
    return _grouped_bars(
        results,
        keys,
        ticks,
        path,
        title=title,
        xlabel="class (rarest first)" if class_counts is not None else "class",
        width_per_key=0.45,
    )


def plot_quartile_f1(results, path, title=None):
    """Grouped bar chart of quartile F1 (Q1 rarest ... Q4), one bar per method.

    Parameters
    ----------
    results : dict
        ``{method name: {quartile: f1}}``, e.g. a report's ``quartile_f1`` per
        method. ``Q1``..``Q4`` are drawn in that order, followed by any other
        keys in first-seen order; NaN (empty quartile) is drawn as ``n/a``.
    path : str or path-like
        Output file, written as PNG (parent directories are created).
    title : str, default=None
        Figure title (default: "F1 by label-frequency quartile").

    Returns
    -------
    path : pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, os
    >>> res = {"ce": {"Q1": 0.1, "Q2": 0.5, "Q3": 0.7, "Q4": 0.9},
    ...        "afl": {"Q1": 0.3, "Q2": 0.55, "Q3": 0.7, "Q4": 0.88}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = plot_quartile_f1(res, os.path.join(d, "q.png"))
    ...     out.stat().st_size > 0
    True
    """
    _check_results(results, "results", "report['quartile_f1']")
    extra = []
    for scores in results.values():
        for k in scores:
            if k not in QUARTILES and k not in extra:
                extra.append(k)
    present = [q for q in QUARTILES if any(q in s for s in results.values())]
    keys = present + extra
    names = {"Q1": "Q1 (rarest)", "Q4": "Q4 (most frequent)"}
    ticks = [names.get(k, str(k)) for k in keys]
    return _grouped_bars(
        results,
        keys,
        ticks,
        path,
        title=title or "F1 by label-frequency quartile",
        xlabel="label-frequency quartile",
        width_per_key=1.0,
        rotate=False,
    )


def plot_gaps(gaps, path, *, baseline, title=None):
    """Horizontal bars of each method's macro-F1 gap to ``baseline`` with its interval.

    Parameters
    ----------
    gaps : dict
        ``{method name: (gap, low, high)}``, e.g. from
        :func:`skimb.metrics.paired_bootstrap_gap`.
    path : str or path-like
        Output PNG.
    baseline : str
        The method the gaps are measured against (named on the axis).
    title : str, default=None

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = plot_gaps({"afl": (0.02, -0.01, 0.05)}, os.path.join(d, "g.png"), baseline="ce")
    ...     out.stat().st_size > 0
    True
    """
    FigureCanvasAgg, Figure = _matplotlib()

    if not gaps:
        raise ValueError("gaps must be a non-empty dict {method: (gap, low, high)}.")
    names = list(gaps)
    fig = Figure(figsize=(7.0, 1.2 + 0.35 * len(names)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, name in enumerate(names):
        gap, low, high = (float(v) for v in gaps[name])
        colour = "tab:green" if low > 0 else ("tab:red" if high < 0 else "tab:gray")
        ax.barh(i, gap, color=colour, alpha=0.6)
        ax.errorbar(gap, i, xerr=[[gap - low], [high - gap]], fmt="none", ecolor="black", capsize=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(list(range(len(names))))
    ax.set_yticklabels([_literal(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"macro-F1 minus {_literal(baseline)} (95% paired bootstrap interval)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"Gap to {_literal(baseline)}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
