"""Per-class views of two methods: the confusion matrix normalised by true class, and the
precision / recall / F1 of the rarest classes."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["pooled_confusion", "normalise_by_true_class", "rarest_classes", "mean_per_class", "plot_confusion"]


def pooled_confusion(results, method):
    """``(labels, counts)`` of ``method``'s confusion matrix summed over the seeds it ran
    (rows = true class), or None (another task, a failure, or a journal line without one)."""
    runs = [r for r in results if r.method == method and r.error is None and r.confusion]
    if not runs:
        return None
    labels = runs[0].confusion["labels"]
    counts = sum(np.asarray(r.confusion["counts"], dtype=np.int64) for r in runs if r.confusion["labels"] == labels)
    return labels, counts


def normalise_by_true_class(counts) -> np.ndarray:
    """Each row divided by its sum, so it sums to 1 (what ``confusion_matrix(normalize="true")``
    gives); a class with no test example has a row of NaN rather than a row of zeros."""
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def rarest_classes(train_counts: dict, classes, *, share=0.25, minimum=3) -> list:
    """The rarest ``share`` of ``classes`` by training count (at least ``minimum``, at most all),
    rarest first; ties by name, so that the table is the same from run to run."""
    n = min(len(classes), max(minimum, math.ceil(share * len(classes))))
    return sorted(classes, key=lambda c: (train_counts.get(c, 0), str(c)))[:n]


def mean_per_class(results, method) -> dict:
    """``{class: {"precision", "recall", "f1", "support"}}``, mean over the seeds ``method`` ran."""
    runs = [r for r in results if r.method == method and r.error is None and r.per_class]
    table = {}
    for cls in (runs[0].per_class if runs else {}):
        values = [r.per_class[cls] for r in runs if cls in r.per_class]
        table[cls] = {k: float(np.mean([v[k] for v in values])) for k in ("precision", "recall", "f1", "support")}
    return table


def _colormap(mpl_colormaps):
    # a class without test examples (a NaN row) is drawn grey, not as 0
    return mpl_colormaps["Blues"].with_extremes(bad="0.85")


def plot_confusion(matrix, labels, path, *, title):
    """A heat map of ``matrix`` (rows sum to 1) with the share in each cell."""
    from ..utils._optional import import_optional

    FigureCanvasAgg = import_optional("matplotlib.backends.backend_agg").FigureCanvasAgg
    Figure = import_optional("matplotlib.figure").Figure
    colormaps = import_optional("matplotlib").colormaps

    n = len(labels)
    side = min(max(4.5, 1.6 + 0.42 * n), 16.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=_colormap(colormaps), vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 20:  # beyond that the numbers no longer fit in the cells
        for i in range(n):
            for j in range(n):
                value = matrix[i][j]
                text = "n/a" if math.isnan(value) else f"{value:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if n > 10 else 8,
                        color="white" if not math.isnan(value) and value > 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    from ..metrics._plots import _literal  # a class name's "$" would start TeX

    labels = [_literal(label) for label in labels]
    ax.set_xticklabels(labels, rotation=60 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
