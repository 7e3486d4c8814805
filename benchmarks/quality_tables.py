"""The tables of ``docs/benchmarks.md`` from the logits that ``benchmarks/quality.py`` saved.

Every row is rescored here with the current decision rules, so that runs made at different
times are scored by identical code: per fit, the stage-1 argmax (``<cfg>``), the stage-1 logits
plus bagged validation-tuned offsets (``+tuned``, what ``threshold="tuned"`` does), and, for
CALoRA fits, the same two rules after stage 2 (``+calora``, ``+calora+tuned``; ``+head`` for
the kNN and prototype heads; ``--calibrated``: ``+calibrated``, ``threshold="calibrated"``). Each row gets
its mean ± std over seeds, quartile F1, per-class F1 and the paired bootstrap interval of its
macro-F1 gap to ``--baseline`` (pooled over the seeds both have).

    python benchmarks/quality_tables.py benchmarks/results/quality_cyclone_*/*.npz \
        --baseline wce --vote ce,wce --out benchmarks/results/quality_cyclone_tables.json

``--vote ce,wce`` adds the soft vote of the two configurations' stage-1 models of each seed (the
``vote_ce_wce`` method of ``skimb compare``); a member can be any row of a fit before its decision
rule (``wce+calora``, ``wce+calora[class]``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from _common import QUARTILES, command_line, fmt, gap_text, machine_description, markdown_table, write_outputs


def rows_of(path, logits, calibrated=False):
    """``(seed, classes, y_test, {row: predicted indices})`` of one saved fit; the logits of each
    row before its decision rule go into ``logits[row, seed]`` for the votes. ``calibrated`` adds
    ``+calibrated`` rows: ``threshold="calibrated"`` (:func:`skimb.metrics.calibrated_logit_offsets`)."""
    from skimb.metrics import calibrated_logit_offsets, tune_logit_offsets

    d = np.load(path)
    cfg, seed = re.match(r"(.+)_seed(\d+)$", Path(path).stem).groups()
    classes = d["classes"]
    out = {}
    stages = [("stage1", cfg), ("calora", cfg + "+calora"), ("calora_layers", cfg + "+calora_layers"),
              ("head", cfg + "+head")]  # another second-stage head (knn, prototype; quality.py --no-calora)
    stages += [(key.removeprefix("test_"), f"{cfg}+calora[{key.removeprefix('test_calora_')}]")  # --calora-balances
               for key in d.files if key.startswith("test_calora_") and key != "test_calora_layers"]
    for stage, name in stages:
        if f"test_{stage}" not in d:
            continue
        val, test = d[f"val_{stage}"], d[f"test_{stage}"]
        logits[name, int(seed)] = (val, test, d["y_val"], d["prior"])  # any row can be a vote member
        out[name] = test.argmax(1)
        b = tune_logit_offsets(d["y_val"], val, class_prior=d["prior"], n_bootstrap=30, random_state=int(seed))
        out[name + "+tuned"] = (test + b).argmax(1)
        if calibrated:
            out[name + "+calibrated"] = (test + calibrated_logit_offsets(d["y_val"], val, class_prior=d["prior"])).argmax(1)
    return int(seed), classes, d["y_test"], out


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def seed_pair_vote_row(cfg, seed, seeds, logits):
    """The control for a vote: ``cfg``'s model of ``seed`` averaged with its model of the next seed
    (cyclically), an ensemble of the same size and cost without the second loss."""
    other = seeds[(seeds.index(seed) + 1) % len(seeds)]
    test = np.mean([_softmax(logits[cfg, s][1]) for s in (seed, other)], axis=0)
    return {f"{cfg} two-seed vote": test.argmax(1)}


def vote_rows(members, seed, logits):
    """The soft vote of ``members``' stage-1 models (the mean of their probabilities, what
    scikit-learn's ``VotingClassifier(voting="soft")`` predicts) and the same with validation-tuned
    offsets; ``{}`` unless every member was fitted with ``seed``."""
    from skimb.metrics import tune_logit_offsets

    fits = [logits.get((m, seed)) for m in members]
    if any(f is None for f in fits):
        return {}
    if any(not np.array_equal(f[2], fits[0][2]) for f in fits):
        raise SystemExit(f"{members} seed {seed}: the fits held out different validation splits")
    val, test = (np.log(np.mean([_softmax(f[i]) for f in fits], axis=0)) for i in (0, 1))
    name = "+".join(members) + " vote"
    b = tune_logit_offsets(fits[0][2], val, class_prior=fits[0][3], n_bootstrap=30, random_state=seed)
    return {name: test.argmax(1), name + "+tuned": (test + b).argmax(1)}


def main(argv=None):
    from skimb.metrics import example_counts, imbalance_report, paired_bootstrap_gap

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--baseline", default="wce")
    p.add_argument("--train-labels", default=None, help="data set name whose training labels define the quartiles")
    p.add_argument("--vote", action="append", default=[],
                   help="rows whose models are soft-voted, e.g. ce,wce or wce+calora,hamr (repeatable)")
    p.add_argument("--seed-pair-vote", action="append", default=[],
                   help="a config whose models of two seeds are soft-voted (the control for --vote)")
    p.add_argument("--calibrated", action="store_true",
                   help='also score every row with threshold="calibrated" (rows <row>+calibrated)')
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    train_labels = None
    if args.train_labels:
        from skimb.datasets import load_dataset

        train_labels = np.asarray(load_dataset(args.train_labels).y_train)
    preds, reports, counts, logits, fits = {}, {}, {}, {}, []
    for f in sorted(args.files):
        fits.append(rows_of(f, logits, calibrated=args.calibrated))
    for seed, classes, y_test, rows in fits:
        for vote in args.vote:
            rows.update(vote_rows(vote.split(","), seed, logits))
        for cfg in args.seed_pair_vote:
            seeds = sorted(s for c, s in logits if c == cfg)
            if (cfg, seed) in logits and len(seeds) > 1:
                rows.update(seed_pair_vote_row(cfg, seed, seeds, logits))
        y_true = classes[y_test]
        for name, pred in rows.items():
            if (name, seed) in preds:  # the same fit saved twice (a rerun with features): keep one
                continue
            preds[name, seed] = pred
            reports[name, seed] = imbalance_report(y_true, classes[pred], labels=classes, train_labels=train_labels)
            counts[name, seed] = example_counts("multiclass", y_test, pred, labels=np.arange(len(classes)))
    names = sorted({n for n, _ in preds}, key=lambda n: -np.mean([reports[k]["macro_f1"] for k in reports if k[0] == n]))
    table, summary = [], {}
    for name in names:
        seeds = sorted(s for n, s in preds if n == name)
        reps = [reports[name, s] for s in seeds]
        gap = ""
        shared = [s for s in seeds if (args.baseline, s) in counts]
        if name != args.baseline and shared:
            gap = gap_text(*paired_bootstrap_gap([counts[name, s] for s in shared],
                                                 [counts[args.baseline, s] for s in shared]))
        summary[name] = {"seeds": seeds, "macro_f1": [r["macro_f1"] for r in reps],
                         "micro_f1": [r["micro_f1"] for r in reps],
                         "quartile_f1": {q: float(np.mean([r["quartile_f1"][q] for r in reps])) for q in QUARTILES},
                         "per_class_f1": {str(c): float(np.mean([r["per_class"][c]["f1"] for r in reps]))
                                          for c in reps[0]["per_class"]}, "gap": gap}
        table.append([name, len(seeds), fmt(summary[name]["macro_f1"]), fmt(summary[name]["micro_f1"]),
                      *[f"{summary[name]['quartile_f1'][q]:.3f}" for q in QUARTILES], gap])
    classes = list(next(iter(summary.values()))["per_class_f1"])
    per_class = [[n, *[f"{summary[n]['per_class_f1'][c]:.3f}" for c in classes]] for n in names]
    md = "\n".join([
        "# Quality tables", "", f"- command: `{command_line('benchmarks/quality_tables.py', argv)}`",
        f"- machine: {machine_description()}", "",
        markdown_table(["row", "seeds", "macro-F1", "micro-F1", *QUARTILES,
                        f"gap to {args.baseline}, points [95% paired bootstrap]"], table), "",
        "## Per-class F1 (mean over seeds)", "", markdown_table(["row", *classes], per_class)])
    write_outputs(args.out, {"command": command_line("benchmarks/quality_tables.py", argv), "rows": summary}, md)
    print(md)


if __name__ == "__main__":
    main()
