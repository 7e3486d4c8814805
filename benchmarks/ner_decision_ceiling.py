"""How far can re-balancing the decisions of a fitted NER model go? The span macro-F1 of each saved
model (``benchmarks/ner.py --save-logits``) under three rules, as ``decision_ceiling.py`` does for
texts: the argmax (repaired IOB2, what ``TransformerTokenClassifier.predict`` returns); per-type
logit offsets (one per entity type, added to its ``B-`` and ``I-`` logits) tuned for span macro-F1
on the fit's validation split; and the *oracle*, offsets tuned on the test set itself (not a method:
it bounds what any per-type shift of this model's word logits can reach). ``halves`` tunes on one
random half of the test sentences and scores on the other, both ways, over ``--halvings`` halvings.

With ``--vote A,B`` it also scores the soft vote of two fits of the same seed (mean of their word
probabilities), under the same rules.

    python benchmarks/ner_decision_ceiling.py benchmarks/results/ner_mit_restaurant_full_round18_*/*.npz \\
        --vote ce,hamr --title "MIT-Restaurant, whole split" --out benchmarks/results/ner_decision_ceiling_mit_restaurant.json
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from _common import fmt, markdown_table, publish

STEPS = np.round(np.arange(-3.0, 3.01, 0.25), 2)


class SpanScorer:
    """Span macro-F1 (seqeval strict IOB2 after ``repair_bio``) of word logits, vectorised over the
    stacked words of many sentences."""

    def __init__(self, classes, lengths, true_tags):
        classes = [str(c) for c in classes]
        self.types = sorted({c[2:] for c in classes if c != "O"})
        type_id = {t: i for i, t in enumerate(self.types)}
        self.tag_type = np.array([type_id[c[2:]] if c != "O" else -1 for c in classes])
        self.tag_inside = np.array([c.startswith("I-") for c in classes])
        n = int(np.sum(lengths))
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        self.first = np.zeros(n, dtype=bool)
        self.first[starts[starts < n]] = True
        index = {c: k for k, c in enumerate(classes)}
        self.true = self.spans(np.array([index[t] for t in true_tags], dtype=np.int64))
        self.true_n = np.bincount(self.true % len(self.types), minlength=len(self.types))

    def spans(self, tag_ids):
        """One integer per span: ``(start * n_words + end) * n_types + type``."""
        n, n_types = len(tag_ids), len(self.types)
        typ = self.tag_type[tag_ids]
        prev = np.r_[-1, typ[:-1]]
        prev[self.first] = -1
        # an I-X continues a span only after a word of type X in the same sentence (repair_bio)
        continues = (typ >= 0) & self.tag_inside[tag_ids] & (prev == typ)
        starts = np.flatnonzero((typ >= 0) & ~continues)
        breaks = np.flatnonzero(~continues)
        ends = np.r_[breaks, n][np.searchsorted(breaks, starts, side="right")] - 1
        return (starts * n + ends) * n_types + typ[starts]

    def macro_f1(self, logits, offsets=None):
        tag_offsets = 0.0 if offsets is None else np.where(self.tag_type >= 0, offsets[self.tag_type], 0.0)
        pred = self.spans((logits + tag_offsets).argmax(1))
        k = len(self.types)
        pred_n = np.bincount(pred % k, minlength=k)
        tp = np.bincount(np.intersect1d(pred, self.true) % k, minlength=k)
        present = (pred_n + self.true_n) > 0
        f1 = np.divide(2 * tp, pred_n + self.true_n, out=np.zeros(k), where=present)
        return float(f1[present].mean()) if present.any() else float("nan")

    def tune(self, logits, passes=3, steps=STEPS):
        """Per-type offsets by coordinate ascent over ``steps``; a move must gain to be taken."""
        offsets = np.zeros(len(self.types))
        best = self.macro_f1(logits, offsets)
        for _ in range(passes):
            moved = False
            for t in range(len(offsets)):
                for step in steps:
                    trial = offsets.copy()
                    trial[t] = step
                    score = self.macro_f1(logits, trial)
                    if score > best + 1e-12:
                        best, offsets, moved = score, trial, True
            if not moved:
                break
        return offsets


def sentence_rows(lengths):
    bounds = np.r_[0, np.cumsum(lengths)]
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(lengths))]


def halves(d, logits, n_halvings, seed):
    """Mean span macro-F1 on one half of the test sentences of the argmax and of offsets tuned on
    the other half."""
    rows = sentence_rows(d["test_lengths"])
    plain, tuned = [], []
    for h in range(n_halvings):
        order = np.random.default_rng(seed + h).permutation(len(rows))
        parts = [order[: len(order) // 2], order[len(order) // 2:]]
        for a, b in (parts, parts[::-1]):
            scorers = []
            for part in (a, b):
                idx = np.concatenate([rows[i] for i in part])
                scorers.append((SpanScorer(d["classes"], d["test_lengths"][part], d["test_tags"][idx]), idx))
            (tune_on, ia), (score_on, ib) = scorers
            offsets = tune_on.tune(logits[ia])
            plain.append(score_on.macro_f1(logits[ib]))
            tuned.append(score_on.macro_f1(logits[ib], offsets))
    return float(np.mean(plain)), float(np.mean(tuned))


def log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def rules(d, val_logits, test_logits, n_halvings, seed):
    val = SpanScorer(d["classes"], d["val_lengths"], d["val_tags"])
    test = SpanScorer(d["classes"], d["test_lengths"], d["test_tags"])
    tuned = val.tune(val_logits)
    oracle = test.tune(test_logits, passes=5, steps=np.round(np.arange(-3.0, 3.01, 0.1), 2))
    half_plain, half_tuned = halves(d, test_logits, n_halvings, seed)
    return {"argmax": test.macro_f1(test_logits), "tuned": test.macro_f1(test_logits, tuned),
            "halves_argmax": half_plain, "halves_tuned": half_tuned, "oracle": test.macro_f1(test_logits, oracle),
            "val_argmax": val.macro_f1(val_logits), "val_tuned": val.macro_f1(val_logits, tuned),
            "offsets": dict(zip(val.types, tuned.tolist())), "oracle_offsets": dict(zip(test.types, oracle.tolist()))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("npz", nargs="+", help="<fit>_seed<seed>.npz files of benchmarks/ner.py --save-logits")
    p.add_argument("--vote", action="append", default=[], help="A,B: also the soft vote of fits A and B per seed")
    p.add_argument("--halvings", type=int, default=5)
    p.add_argument("--title", default="NER")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from skimb.metrics import span_f1_score
    from skimb.tokens import repair_bio

    fits = {}
    for path in args.npz:
        fit, seed = re.match(r"(.+)_seed(\d+)$", Path(path).stem).groups()
        fits[fit, int(seed)] = dict(np.load(path))
    # the fast scorer must agree with the library's span macro-F1 of predict's tags
    (fit0, seed0), d0 = next(iter(fits.items()))
    classes = [str(c) for c in d0["classes"]]
    pred = repair_bio([[classes[k] for k in d0["test_logits"][r].argmax(1)] for r in sentence_rows(d0["test_lengths"])])
    truth = [[str(t) for t in d0["test_tags"][r]] for r in sentence_rows(d0["test_lengths"])]
    fast = SpanScorer(d0["classes"], d0["test_lengths"], d0["test_tags"]).macro_f1(d0["test_logits"])
    assert abs(fast - span_f1_score(truth, pred, average="macro")) < 1e-12, (fast, fit0, seed0)

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
            mean = {part: np.log((np.exp(log_softmax(da[f"{part}_logits"])) + np.exp(log_softmax(db[f"{part}_logits"]))) / 2)
                    for part in ("val", "test")}
            runs.append({"fit": f"vote({a},{b})", "seed": seed, **rules(da, mean["val"], mean["test"], args.halvings, seed)})
            print(runs[-1]["fit"], seed, {k: round(v, 4) for k, v in runs[-1].items() if isinstance(v, float)}, flush=True)

    cols = ["argmax", "tuned", "halves_argmax", "halves_tuned", "oracle"]
    rows = []
    for fit in dict.fromkeys(r["fit"] for r in runs):
        rs = [r for r in runs if r["fit"] == fit]
        rows.append([fit] + [fmt([r[c] for r in rs]) for c in cols])
    body = (f"Span macro-F1 (mean ± population std over seeds {sorted({r['seed'] for r in runs})}) under "
            "per-type logit offsets.\n\n"
            + markdown_table(["fit", "argmax", "tuned on validation", "half-test argmax", "half-test tuned", "oracle (test)"], rows))
    publish("ner_decision_ceiling.py", argv, args.out, f"{args.title}: how far re-balancing the decisions can go",
            body, runs)


if __name__ == "__main__":
    main()
