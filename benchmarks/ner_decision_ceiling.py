"""How far can re-balancing the decisions of a fitted NER model go? The span macro-F1 of each saved
model (``benchmarks/ner.py --save-logits``) under three rules, as ``decision_ceiling.py`` does for
texts: the argmax (repaired IOB2, what ``TransformerTokenClassifier.predict`` returns); per-type
logit offsets (one per entity type, added to its ``B-`` and ``I-`` logits) tuned for span macro-F1
on the fit's validation split (``skimb.metrics.tune_span_offsets``; alone and bagged over 30
bootstrap resamples of the sentences); and the *oracle*, offsets tuned on the test set itself (not a method:
it bounds what any per-type shift of this model's word logits can reach). ``halves`` tunes on one
random half of the test sentences and scores on the other, both ways, over ``--halvings`` halvings.

With ``--vote A,B`` it also scores the soft vote of two fits of the same seed (mean of their word
probabilities), under the same rules.

    python benchmarks/ner_decision_ceiling.py benchmarks/results/ner_mit_restaurant_full_round18_*/*.npz \\
        --vote ce,hamr --title "MIT-Restaurant, whole split" --out benchmarks/results/ner_decision_ceiling_mit_restaurant_full.json
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from _common import fmt, markdown_table, publish
from decision_ceiling import ORACLE_STEPS  # the texts' oracle moves


def sentences(d, part, logits=None):
    """``(tags, logits)`` of split ``part`` as per-sentence lists."""
    cuts = np.cumsum(d[f"{part}_lengths"])[:-1]
    logits = d[f"{part}_logits"] if logits is None else logits
    return [list(map(str, t)) for t in np.split(d[f"{part}_tags"], cuts)], np.split(logits, cuts)


def halves(tags, logits, classes, n_halvings, seed):
    """Mean span macro-F1 on one half of the test sentences of the argmax and of offsets tuned on
    the other half."""
    from skimb.metrics import span_macro_f1_from_logits, tune_span_offsets

    plain, tuned = [], []
    for h in range(n_halvings):
        order = np.random.default_rng(seed + h).permutation(len(tags))
        parts = [order[: len(order) // 2], order[len(order) // 2:]]
        for a, b in (parts, parts[::-1]):
            offsets = tune_span_offsets([tags[i] for i in a], [logits[i] for i in a], classes)
            held = [tags[i] for i in b], [logits[i] for i in b]
            plain.append(span_macro_f1_from_logits(*held, classes))
            tuned.append(span_macro_f1_from_logits(*held, classes, offsets))
    return float(np.mean(plain)), float(np.mean(tuned))


def rules(d, val_logits, test_logits, n_halvings, seed):
    from skimb.metrics import span_macro_f1_from_logits as score
    from skimb.metrics import tune_span_offsets

    classes = [str(c) for c in d["classes"]]
    val, test = sentences(d, "val", val_logits), sentences(d, "test", test_logits)
    tuned = tune_span_offsets(*val, classes)
    bagged = tune_span_offsets(*val, classes, n_bootstrap=30, random_state=seed)
    oracle = tune_span_offsets(*test, classes, steps=ORACLE_STEPS, n_rounds=5)
    half_plain, half_tuned = halves(*test, classes, n_halvings, seed)
    types = sorted({c[2:] for c in classes if c != "O"})
    by_type = {c[2:]: k for k, c in enumerate(classes) if c.startswith("B-")}
    return {"argmax": score(*test, classes), "tuned": score(*test, classes, tuned),
            "tuned_bagged": score(*test, classes, bagged), "halves_argmax": half_plain, "halves_tuned": half_tuned,
            "oracle": score(*test, classes, oracle), "val_argmax": score(*val, classes),
            "val_tuned": score(*val, classes, tuned),
            "offsets": {t: float(tuned[by_type[t]]) for t in types},
            "oracle_offsets": {t: float(oracle[by_type[t]]) for t in types}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("npz", nargs="+", help="<fit>_seed<seed>.npz files of benchmarks/ner.py --save-logits")
    p.add_argument("--vote", action="append", default=[], help="A,B: also the soft vote of fits A and B per seed")
    p.add_argument("--halvings", type=int, default=5)
    p.add_argument("--title", default="NER")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    fits = {}
    for path in args.npz:
        fit, seed = re.match(r"(.+)_seed(\d+)$", Path(path).stem).groups()
        fits[fit, int(seed)] = dict(np.load(path))
        if not len(fits[fit, int(seed)]["val_lengths"]):
            raise SystemExit(f"{path} holds no validation split: fit with ner.py --validation-fraction 0.1.")

    runs = []
    for (fit, seed), d in sorted(fits.items()):
        runs.append({"fit": fit, "seed": seed, **rules(d, d["val_logits"], d["test_logits"], args.halvings, seed)})
        print(fit, seed, {k: round(v, 4) for k, v in runs[-1].items() if isinstance(v, float)}, flush=True)
    for vote in args.vote:
        a, b = vote.split(",")
        for seed in sorted({s for f, s in fits if f == a} & {s for f, s in fits if f == b}):
            da, db = fits[a, seed], fits[b, seed]
            if not np.array_equal(da["validation_indices"], db["validation_indices"]):
                raise SystemExit(f"{a} and {b} seed {seed} held out different validation splits")
            # log of the mean of the two fits' word probabilities
            mean = {part: np.logaddexp(log_softmax(da[f"{part}_logits"], axis=1),
                                       log_softmax(db[f"{part}_logits"], axis=1)) - np.log(2)
                    for part in ("val", "test")}
            runs.append({"fit": f"vote({a},{b})", "seed": seed, **rules(da, mean["val"], mean["test"], args.halvings, seed)})
            print(runs[-1]["fit"], seed, {k: round(v, 4) for k, v in runs[-1].items() if isinstance(v, float)}, flush=True)

    cols = ["argmax", "tuned", "tuned_bagged", "halves_argmax", "halves_tuned", "oracle"]
    rows = []
    for fit in dict.fromkeys(r["fit"] for r in runs):
        rs = [r for r in runs if r["fit"] == fit]
        rows.append([fit] + [fmt([r[c] for r in rs]) for c in cols])
    body = (f"Span macro-F1 (mean ± population std over seeds {sorted({r['seed'] for r in runs})}) under "
            "per-type logit offsets.\n\n"
            + markdown_table(["fit", "argmax", "tuned on validation", "tuned, bagged", "half-test argmax", "half-test tuned",
                            "oracle (test)"], rows))
    publish("ner_decision_ceiling.py", argv, args.out, f"{args.title}: how far re-balancing the decisions can go",
            body, runs)


if __name__ == "__main__":
    main()
