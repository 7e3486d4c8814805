"""How often a saved model predicts each class, against how often the class occurs in the test split.

Reads the ``.npz`` files of ``benchmarks/quality.py`` (``<out>/<config>_seed<n>.npz``) and prints, per
configuration (its seeds' folders, ``<name>_s<n>``, averaged), each class's predicted count over its true
count on the test split and its precision and recall, from the stage-1 argmax. A loss that balances
the classes fully (the logit-adjusted loss at tau 1, class weighting) predicts the rare classes
more often than they occur; on a test split with the natural class distribution that costs their
precision, and macro-F1 with it.

    python benchmarks/predicted_counts.py 'results/quality_ekman/ce_seed?.npz' \\
        'results/quality_ekman6000_round33/la_s?/*.npz' --out results/predicted_counts_round33_ekman6000.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from _common import command_line, machine_description, markdown_table, saved_fit_files, saved_fit_key, write_outputs


def class_rates(path):
    """``(classes, predicted / true count, precision, recall)`` of one saved fit's stage 1."""
    d = np.load(path)
    y, pred = d["y_test"], d["test_stage1"].argmax(1)
    n = len(d["classes"])
    precision, recall, _, _ = precision_recall_fscore_support(y, pred, labels=range(n), zero_division=0)
    ratio = np.bincount(pred, minlength=n) / np.maximum(np.bincount(y, minlength=n), 1)
    return d["classes"], ratio, precision, recall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("patterns", nargs="+", help="globs of .npz files from quality.py")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    command = command_line("benchmarks/predicted_counts.py", argv)
    by_config = defaultdict(list)
    for path in saved_fit_files(args.patterns):
        by_config[saved_fit_key(path)[0]].append(class_rates(path))
    classes = next(iter(by_config.values()))[0][0]
    if any(not np.array_equal(f[0], classes) for fits in by_config.values() for f in fits):
        raise SystemExit("the files hold different classes: run one data set at a time")
    rows, result = [], {}
    for config, fits in by_config.items():
        ratio, precision, recall = (np.mean([f[i] for f in fits], axis=0) for i in (1, 2, 3))
        result[config] = {"seeds": len(fits), "classes": classes.tolist(), "predicted_over_true": ratio.tolist(),
                          "precision": precision.tolist(), "recall": recall.tolist()}
        rows.append([config, len(fits)] + [f"{r:.2f} ({p:.2f}/{q:.2f})" for r, p, q in zip(ratio, precision, recall)])
    header = ["configuration", "seeds"] + [f"{c}: predicted/true (P/R)" for c in classes]
    text = "\n".join(["# Predicted against true class counts\n", f"`{command}`\n", machine_description(), "",
                      markdown_table(header, rows)])
    write_outputs(args.out, {"command": command, "configurations": result}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
