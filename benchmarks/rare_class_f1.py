"""Where a second stage gains: per-class F1 grouped by how many training examples a class has.

Reads the ``.npz`` files of ``benchmarks/quality.py --save-features`` (one per seed), scores the
stage-1 head and the prototype head (``head="prototype"``, the library's, on the saved features)
on the test split, and reports the mean F1 of the classes in each training-count bin, mean ± std
over the files, as ProtoBERT reports its gain for classes seen fewer than 100 times.

    python benchmarks/rare_class_f1.py results/quality_cyclone_ce_proto_s0/ce_proto_seed0.npz \
        results/quality_cyclone_ce/ce_seed1.npz results/quality_cyclone_ce/ce_seed2.npz \
        --out results/rare_class_f1_cyclone_ce_prototype.json
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import f1_score

from _common import command_line, fmt, machine_description, markdown_table, write_outputs
from second_stages import prototype_logits

BINS = ((0, 50), (50, 100), (100, 300), (300, None))


def _bin_name(lo, hi):
    return f">= {lo}" if hi is None else f"{lo}-{hi - 1}"


def score(path, scale, weight):
    d = dict(np.load(path))
    counts = np.bincount(d["y_train"], minlength=len(d["classes"]))
    stage1 = d["test_stage1"]
    proto = prototype_logits(d, scale=scale, weight=weight)(d["f_test"])
    per_class = {}
    for name, logits in (("stage-1 head", stage1), ("prototypes", proto)):
        per_class[name] = f1_score(d["y_test"], logits.argmax(1), labels=np.arange(len(counts)), average=None,
                                   zero_division=0)
    return counts, per_class


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--scale", type=float, default=20.0)
    p.add_argument("--weight", type=float, default=0.5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    results = [score(f, args.scale, args.weight) for f in args.files]
    counts = results[0][0]
    rows, summary = [], {}
    for lo, hi in BINS:
        members = np.flatnonzero((counts >= lo) & ((counts < hi) if hi is not None else True))
        if not len(members):
            continue
        cells = {}
        for name in results[0][1]:
            cells[name] = [float(np.mean(r[1][name][members])) for r in results]
        gain = [b - a for a, b in zip(cells["stage-1 head"], cells["prototypes"])]
        summary[_bin_name(lo, hi)] = {"classes": int(len(members)), **cells, "gain": gain}
        rows.append([_bin_name(lo, hi), len(members), fmt(cells["stage-1 head"]), fmt(cells["prototypes"]),
                     f"{100 * np.mean(gain):+.1f}"])
    md = "\n".join(["# Per-class F1 by training-count bin", "",
                    f"- command: `{command_line('benchmarks/rare_class_f1.py', argv)}`",
                    f"- machine: {machine_description()}", f"- files: {len(args.files)} (one per seed); "
                    f"prototypes: scale {args.scale:g}, weight {args.weight:g}", "",
                    markdown_table(["training examples", "classes", "stage-1 head F1", "prototypes F1",
                                    "gain, points"], rows)])
    write_outputs(args.out, {"command": command_line("benchmarks/rare_class_f1.py", argv),
                             "machine": machine_description(), "counts": counts.tolist(), "bins": summary}, md)
    print(md)


if __name__ == "__main__":
    main()
