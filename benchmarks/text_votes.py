"""Soft votes of saved text classifiers, and every row's gap to the first with a paired bootstrap interval.

Reads the logits that ``benchmarks/quality.py`` saves (``<config>_seed<n>.npz``). Each fit is
``NAME=GLOB`` or ``NAME=GLOB:calora`` (the same fits after CALoRA's stage 2); each vote is a
comma-separated list of names: the mean of their class probabilities, as scikit-learn's
``VotingClassifier(voting="soft")`` computes. Every row gets its macro-F1 (argmax) and its gap to the
first fit: the mean over seeds with a 95% paired bootstrap interval over the test texts, pooled over
seeds (``skimb.metrics.paired_bootstrap_gap``).

    cd benchmarks/results
    python ../text_votes.py "wce=quality_cyclone_wce/wce_seed*.npz" \\
        "wce_calora=quality_cyclone_wce/wce_seed*.npz:calora" \\
        "hamr_wce_cn=quality_cyclone_round15_hamr_wce_cn_s*/hamr_wce_cn_seed*.npz" \\
        wce_calora,hamr_wce_cn --out text_votes_cyclone_round20.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt, gap_text, markdown_table, publish, seeded_files  # noqa: E402


def load(spec) -> dict:
    """``{seed: (log-probabilities, y_test)}`` of ``GLOB[:stage]``."""
    pattern, _, stage = spec.partition(":")
    found = {}
    for seed, path in seeded_files(pattern).items():
        d = np.load(path)
        found[seed] = (log_softmax(d[f"test_{stage or 'stage1'}"].astype(np.float64), axis=1), d["y_test"])
    return found


def main(argv=None):
    from skimb.metrics import example_counts, paired_bootstrap_gap
    from sklearn.metrics import f1_score

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("items", nargs="+", metavar="NAME=GLOB[:calora] | A,B[,C]", help="fits, then votes of them")
    p.add_argument("--out", default=None, help="JSON file to write (and the .md beside it)")
    args = p.parse_args(argv)

    rows = {name: load(spec) for name, spec in (i.split("=", 1) for i in args.items if "=" in i)}
    first = next(iter(rows))
    for name, by_seed in rows.items():
        for s in set(by_seed) & set(rows[first]):
            if not np.array_equal(by_seed[s][1], rows[first][s][1]):
                raise SystemExit(f"{name} seed {s} was scored on other test texts than {first}")
    for members in [i.split(",") for i in args.items if "=" not in i]:
        unknown = [m for m in members if m not in rows]
        if unknown:
            raise SystemExit(f"vote {','.join(members)}: no fit named {unknown}; name them first (NAME=GLOB)")
        seeds = set.intersection(*(set(rows[m]) for m in members))
        rows["vote(" + ",".join(members) + ")"] = {
            s: (np.logaddexp.reduce([rows[m][s][0] for m in members], axis=0) - np.log(len(members)), rows[members[0]][s][1])
            for s in seeds}
    runs, table = [], []
    for row, by_seed in rows.items():
        seeds = sorted(set(by_seed) & set(rows[first]))
        if not seeds:
            raise SystemExit(f"{row} shares no seed with {first}")
        mine = [(s, by_seed[s][0].argmax(1), by_seed[s][1]) for s in seeds]
        f1 = [f1_score(y, pred, average="macro") for _, pred, y in mine]
        runs += [{"fit": row, "seed": s, "macro_f1": v} for s, v in zip(seeds, f1)]
        gap = ""
        if row != first:
            n_classes = by_seed[seeds[0]][0].shape[1]

            def counts(fits):
                return [example_counts("multiclass", y, pred, labels=np.arange(n_classes)) for _, pred, y in fits]

            base = [(s, rows[first][s][0].argmax(1), rows[first][s][1]) for s in seeds]
            gap = gap_text(*paired_bootstrap_gap(counts(mine), counts(base)))
        table.append([row, fmt(f1), ", ".join(f"{v:.4f}" for v in f1), gap, ", ".join(map(str, seeds))])
    body = markdown_table(["fit", "macro-F1", "per seed", f"gap to {first} [95% paired bootstrap]", "seeds"], table)
    publish("benchmarks/text_votes.py", argv, args.out, "Soft votes of saved text classifiers", body, runs)


if __name__ == "__main__":
    main()
