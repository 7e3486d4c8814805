"""Fit time and peak memory against the training-set size, for standard, CALoRA and HAMR training.

Fits ``TransformerClassifier`` on stratified subsamples of ``--dataset`` (GoEmotions-Ekman: 39,555
training texts) of each size in ``--sizes``, once per method in ``--methods``, in one process,
smallest first; the peak RSS (VmHWM) is reset before each fit. Methods: ``standard`` (cross-entropy),
``calora`` (``head="calora"``: the same stage 1, then its stage 2 on cached features) and ``hamr``
(``training="hamr"``). Writes the results after every fit, and a plot of both curves
(``--plot``, with matplotlib).

    python benchmarks/fit_scaling.py --sizes 1000,3000,10000 --epochs 1 --out benchmarks/results/fit_scaling.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import ints, load_subsampled, markdown_table, measure, publish

METHODS = {
    "standard": {},
    "calora": {"head": "calora"},
    "hamr": {"training": "hamr"},
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="goemotions_ekman")
    p.add_argument("--sizes", default="1000,3000,10000,40000", help="training-set sizes (0 or more than the "
                   "training split: all of it)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"from {', '.join(METHODS)}")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--include", nargs="*", default=[], help="JSON outputs of earlier runs to add to the table and "
                   "the plot (with --sizes '': only merge them)")
    p.add_argument("--plot", default=None, help="PNG path of the plot (default: next to --out)")
    p.add_argument("--out", default="benchmarks/results/fit_scaling.json")
    args = p.parse_args(argv)

    from skimb import TransformerClassifier

    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    runs = [r for path in args.include for r in json.loads(Path(path).read_text())["runs"]]
    if not args.sizes:
        _publish(args, argv, runs)
        return
    full = load_subsampled(args.dataset)
    warm = load_subsampled(args.dataset, train_size=100, test_size=1, seed=args.seed)
    TransformerClassifier(max_epochs=1, max_length=args.max_length).fit(warm.X_train, warm.y_train)  # loads, warms up
    for size in ints(args.sizes):
        n = size if 0 < size < len(full.X_train) else 0
        data = load_subsampled(args.dataset, train_size=n, test_size=1, seed=args.seed) if n else full
        for method in methods:
            clf = TransformerClassifier(max_epochs=args.epochs, batch_size=args.batch_size,
                                        max_length=args.max_length, random_state=args.seed, **METHODS[method])
            rec = {"method": method, "n_train": len(data.X_train)}
            with measure(rec):
                clf.fit(data.X_train, data.y_train)
            rec["fit_s"] = rec.pop("wall_s")
            rec["texts_per_s"] = args.epochs * len(data.X_train) / rec["fit_s"]
            runs.append(rec)
            print(f"{method:9s} N={rec['n_train']:>6}  fit {rec['fit_s']:8.1f} s  {rec['texts_per_s']:6.1f} texts/s "
                  f"peak {rec['peak_mib']:.0f} MiB", flush=True)
            del clf
            _publish(args, argv, runs)


def _publish(args, argv, runs):
    import torch

    by_n = {}
    for r in runs:
        by_n.setdefault(r["n_train"], {})[r["method"]] = r
    methods = [m for m in METHODS if any(m in row for row in by_n.values())]
    rows = []
    for n, row in sorted(by_n.items()):
        cells = [n]
        for m in methods:
            r = row.get(m)
            cells.append(f"{r['fit_s']:.0f} s, {r['peak_mib']:.0f} MiB" if r else "")
        base = row.get("standard")
        cells += [f"{row[m]['fit_s'] / base['fit_s']:.2f}" if base and m in row else "" for m in methods
                  if m != "standard"]
        rows.append(cells)
    headers = ["training texts", *[f"{m}: fit, peak RSS" for m in methods],
               *[f"{m} / standard" for m in methods if m != "standard"]]
    setting = (f"runs merged from {', '.join(args.include)}" if not args.sizes else
               f"{args.dataset}, {args.epochs} epoch(s), batch {args.batch_size}, max length {args.max_length}, "
               f"seed {args.seed}, {torch.get_num_threads()} torch threads")
    body = f"{setting}\n\n{markdown_table(headers, rows)}"
    publish("benchmarks/fit_scaling.py", argv, args.out, "Fit time and memory against training-set size", body, runs)
    _plot(args, by_n, methods)


def _plot(args, by_n, methods):
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.5))
    for m in methods:
        pts = sorted((n, row[m]) for n, row in by_n.items() if m in row)
        ns = [n for n, _ in pts]
        ax_t.plot(ns, [r["fit_s"] for _, r in pts], marker="o", label=m)
        ax_m.plot(ns, [r["peak_mib"] for _, r in pts], marker="o", label=m)
    for ax, label in ((ax_t, "fit time (s)"), (ax_m, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_xlabel("training texts")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_t.set_yscale("log")
    ax_t.legend()
    fig.tight_layout()
    path = args.plot or str(args.out).rsplit(".", 1)[0] + ".png"
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
