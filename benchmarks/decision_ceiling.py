"""How far can re-balancing the decisions of a fitted model go? The macro-F1 of each saved model
(``benchmarks/quality.py`` logits) under three rules: the argmax; per-class logit offsets tuned on
the validation split (bagged, what ``threshold="tuned"`` does); and the *oracle*: offsets tuned on
the test set itself. The oracle is not a method (it sees the test labels): the best shift the
search finds there estimates what any per-class shift of this model's logits can reach, which is
what class weighting, logit adjustment and post-hoc tuning change (Menon et al., 2021: the balanced-error optimum is a shift of the
logits). A gap to a baseline that the oracle of the baseline's own model already cannot close
needs a better representation, not a better balance.

The oracle also overfits the test set (one offset per class, a handful of test examples of the
rarest). The ``halves`` rule separates the two: offsets tuned (bagged, as on validation) on one
random half of the test set and scored on the other, both ways, over ``--halvings`` random halvings.
It is what a tuning split as large as half the test set, drawn from the test distribution, would
give; next to ``tuned`` (the validation split) it says whether a larger or better-matched tuning
split would help.

    python benchmarks/decision_ceiling.py benchmarks/results/quality_ekman/*.npz \\
        --title "GoEmotions-Ekman 6,000" --out benchmarks/results/decision_ceiling_ekman6000.json
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from _common import command_line, fmt, machine_description, markdown_table, write_outputs

#: Finer moves and more passes than the validation search: the oracle should be near the ceiling.
ORACLE_STEPS = np.round(np.arange(-3.0, 3.01, 0.1), 2)


def halves_scores(y, logits, prior, n_halvings, seed):
    """Mean macro-F1 on one half of ``(y, logits)`` of the argmax and of offsets tuned on the other
    half (stratified halvings)."""
    from sklearn.model_selection import StratifiedKFold

    from skimb.metrics import macro_f1_from_labels, tune_logit_offsets

    n = logits.shape[1]
    plain, tuned = [], []
    counts = np.bincount(y, minlength=n)
    strata = np.where(counts[y] >= 2, y, -1)  # a class with one test example goes to either half
    for h in range(n_halvings):
        for a, b in StratifiedKFold(2, shuffle=True, random_state=seed + h).split(logits, strata):
            off = tune_logit_offsets(y[a], logits[a], class_prior=prior, n_bootstrap=30, random_state=seed + h)
            plain.append(macro_f1_from_labels(y[b], logits[b].argmax(1), n))
            tuned.append(macro_f1_from_labels(y[b], (logits[b] + off).argmax(1), n))
    return float(np.mean(plain)), float(np.mean(tuned))


def scores_of(path, n_halvings):
    from skimb.metrics import macro_f1_from_labels, tune_logit_offsets

    d = np.load(path)
    cfg, seed = re.match(r"(.+)_seed(\d+)$", Path(path).stem).groups()
    test, y_test, n = d["test_stage1"], d["y_test"], d["test_stage1"].shape[1]
    tuned = tune_logit_offsets(d["y_val"], d["val_stage1"], class_prior=d["prior"], n_bootstrap=30,
                               random_state=int(seed))
    oracle = tune_logit_offsets(y_test, test, class_prior=d["prior"], steps=ORACLE_STEPS, n_rounds=6)
    scores = {rule: macro_f1_from_labels(y_test, (test + b).argmax(1), n)
              for rule, b in (("argmax", 0.0), ("tuned", tuned), ("oracle", oracle))}
    scores["halves_argmax"], scores["halves_tuned"] = halves_scores(y_test, test, d["prior"], n_halvings, int(seed))
    return cfg, int(seed), scores


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--title", required=True)
    p.add_argument("--halvings", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    runs = [dict(zip(("config", "seed", "macro_f1"), scores_of(f, args.halvings)), file=f) for f in args.files]
    configs = list(dict.fromkeys(r["config"] for r in runs))
    argmax = {c: np.mean([r["macro_f1"]["argmax"] for r in runs if r["config"] == c]) for c in configs}
    baseline = max((c for c in configs if c in ("ce", "wce")), key=argmax.get, default=None)
    rows = []
    for c in configs:
        mine = [r["macro_f1"] for r in runs if r["config"] == c]
        gap = "" if baseline is None else f"{100 * (np.mean([m['oracle'] for m in mine]) - argmax[baseline]):+.1f}"
        rows.append([c, len(mine), *(fmt([m[rule] for m in mine]) for rule in ("argmax", "tuned", "oracle")), gap,
                     *(fmt([m[rule] for m in mine]) for rule in ("halves_argmax", "halves_tuned"))])
    md = "\n".join([f"# Decision ceiling: {args.title}", "", f"- command: `{command_line('benchmarks/decision_ceiling.py', argv)}`",
                    f"- machine: {machine_description()}", f"- baseline (the better of ce and wce by argmax): {baseline}",
                    "", markdown_table(["model", "seeds", "argmax", "+ tuned on validation", "+ oracle offsets (test)",
                                        f"oracle - {baseline}, points", "test halves: argmax",
                                        "test halves: tuned on the other half"], rows)])
    write_outputs(args.out, {"command": command_line("benchmarks/decision_ceiling.py", argv), "title": args.title,
                             "baseline": baseline, "runs": runs}, md)
    print(md)


if __name__ == "__main__":
    main()
