"""Render the report dicts of :mod:`skimb.metrics` as Markdown or plain-text tables."""

from __future__ import annotations

import math
import numbers

from skimb.metrics._quartiles import QUARTILES

__all__ = ["format_report"]

# (key holding the per-entry table, header of its first column)
_ENTRY_KEYS = (("per_class", "class"), ("per_label", "label"), ("per_type", "type"))
_COLUMNS = ("precision", "recall", "f1", "support")
_SKIP = {"support", "n_labels", "n_sentences", "n_predicted", "n_labels_auc_skipped"}


def _fmt(value, digits):
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _cell(value) -> str:
    """A cell on one line: a label's line breaks, printed, would start a row of their own."""
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


def markdown_cell(value) -> str:
    """``value`` as a Markdown table cell: on one line, its ``|`` escaped."""
    return _cell(value).replace("|", "\\|")


def _markdown(header, rows, align):
    lines = ["| " + " | ".join(map(markdown_cell, header)) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _text(header, rows, align):
    table = [list(map(_cell, header))] + [list(map(_cell, r)) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    out = [line(table[0]), line(["-" * w for w in widths])]
    out += [line(r) for r in table[1:]]
    return "\n".join(out)


def format_report(report, fmt="markdown", *, digits=4):
    """Format a report from :func:`imbalance_report`, :func:`multilabel_report` or :func:`span_report`.

    Parameters
    ----------
    report : dict
        A report dict; its per-entry table (``per_class``, ``per_label`` or
        ``per_type``) becomes the first table, its scalar metrics and the
        quartile F1s the second.
    fmt : {"markdown", "text"}, default="markdown"
        GitHub-flavoured Markdown tables or aligned plain text.
    digits : int, default=4
        Decimals for floats; NaN and ``None`` print as ``n/a``.

    Returns
    -------
    table : str
        The per-entry table, a blank line, then a ``metric | value`` table
        with the summary metrics followed by ``quartile_f1 Q1 (rarest)`` ...
        ``quartile_f1 Q4 (most frequent)`` (with the number of labels in each
        quartile).

    Examples
    --------
    >>> from skimb.metrics import imbalance_report
    >>> rep = imbalance_report(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    >>> print(format_report(rep, "text", digits=2))
    class  precision  recall    f1  support
    -----  ---------  ------  ----  -------
    a           1.00    0.50  0.67        2
    b           0.50    1.00  0.67        1
    c           1.00    1.00  1.00        1
    <BLANKLINE>
    metric                               value
    -----------------------------------  -----
    macro_f1                              0.78
    weighted_f1                           0.75
    micro_f1                              0.75
    macro_precision                       0.83
    macro_recall                          0.83
    accuracy                              0.75
    balanced_accuracy                     0.83
    geometric_mean                        0.86
    quartile_f1 Q1 (rarest, n=1)          0.67
    quartile_f1 Q2 (n=1)                  1.00
    quartile_f1 Q3 (n=1)                  0.67
    quartile_f1 Q4 (most frequent, n=0)    n/a
    """
    if fmt not in ("markdown", "text"):
        raise ValueError(f"fmt must be 'markdown' or 'text', got {fmt!r}.")
    if not isinstance(report, dict):
        raise TypeError(f"report must be a dict from a skimb.metrics report function, got {type(report).__name__}.")
    if not isinstance(digits, numbers.Integral) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be an int >= 0 (decimals for floats), got {digits!r}.")
    render = _markdown if fmt == "markdown" else _text

    blocks = []
    for key, first in _ENTRY_KEYS:
        if key in report:
            rows = [
                [name] + [_fmt(stats.get(c), digits) for c in _COLUMNS]
                for name, stats in report[key].items()
            ]
            blocks.append(render((first,) + _COLUMNS, rows, "lrrrr"))
            break

    summary = []
    for key, value in report.items():
        if key in _SKIP or isinstance(value, (bool, dict, list, tuple, str)) or value is None:
            continue
        if isinstance(value, numbers.Real):
            summary.append([key, _fmt(value, digits)])
    quartiles = report.get("quartile_f1")
    if isinstance(quartiles, dict):
        groups = report.get("quartile_labels", {})
        for q in QUARTILES:
            if q not in quartiles:
                continue
            notes = []
            if q == QUARTILES[0]:
                notes.append("rarest")
            elif q == QUARTILES[-1]:
                notes.append("most frequent")
            if q in groups:
                notes.append(f"n={len(groups[q])}")
            label = f"quartile_f1 {q}" + (f" ({', '.join(notes)})" if notes else "")
            summary.append([label, _fmt(quartiles[q], digits)])
    if summary:
        blocks.append(render(("metric", "value"), summary, "lr"))
    return "\n\n".join(blocks)
