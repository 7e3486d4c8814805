"""Votes of saved taggers (soft, or of CRF taggers their log-linear pool), and every row's gap to
the first with a paired bootstrap interval.

Reads the word logits that ``benchmarks/ner.py --save-logits`` writes (``<loss>_seed<n>.npz``),
scores each named fit on the test split (argmax, repaired IOB2: what ``predict`` returns; a CRF
tagger's Viterbi with its saved transitions), then the vote of every pair of them as
``skimb.ensemble.VotingTagger`` (default ``decoding="auto"``) computes it: of two CRF taggers their
log-linear pool (the mean of their emissions and of their transition, start and end scores, a CRF
decoded by Viterbi); otherwise the soft vote (the mean of their word probabilities, a CRF tagger's
marginals, repaired argmax). It gives each row's span macro-F1 gap to the first fit:
the mean over seeds with a 95% paired bootstrap interval over the test sentences, pooled over seeds
(``skimb.metrics.paired_bootstrap_gap``), and how many seeds went up.

    python benchmarks/ner_votes.py \\
        focal=benchmarks/results/ner_conll600_round20_focal_hamr_focal/focal_seed*.npz \\
        calora=benchmarks/results/ner_conll600_round20_focal_calora/focal_calora_unbalanced_seed*.npz \\
        hamr=benchmarks/results/ner_conll600_round20_focal_hamr_focal/hamr_focal_seed*.npz \\
        --out benchmarks/results/ner_votes_conll600_round20.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt, gap_text, markdown_table, publish, seeded_files  # noqa: E402


def load(pattern) -> dict:
    """``{seed: arrays}`` of the files matching ``pattern``."""
    return {seed: dict(np.load(path)) for seed, path in seeded_files(pattern).items()}


def test_predictions(d, log_proba, crf=None):
    """The test split's true tags and the tags decoded from ``log_proba``, one list per sentence: the
    repaired argmax, or with ``crf`` (a CRF tagger's saved scores) Viterbi with its transitions."""
    from skimb.tokens import decode_tags

    cuts = np.cumsum(d["test_lengths"])[:-1]
    truth = [list(map(str, t)) for t in np.split(d["test_tags"], cuts)]
    sentences = np.split(log_proba, cuts)
    if crf is None:
        return truth, decode_tags(sentences, d["classes"])
    return truth, decode_tags(sentences, d["classes"], "constrained", **crf)


def fit_scores(d):
    """What a fit's ``predict`` decodes: a CRF tagger's emissions with its scores (Viterbi), or the
    log-softmax of the logits (repaired argmax); as ``(word scores, CRF scores or None)``."""
    crf = crf_scores(d)
    if crf is not None:
        return d["test_logits"], crf
    return log_softmax(d["test_logits"], axis=1), None


def vote_scores(*members):
    """What the equal-weight ``VotingTagger`` of the fits decodes, as ``(word scores, CRF scores or
    None)``: of CRF taggers their log-linear pool, itself a CRF (Viterbi); otherwise the log of
    their mean word probabilities (repaired argmax)."""
    crfs = [crf_scores(d) for d in members]
    if all(c is not None for c in crfs):
        emissions = np.mean([d["test_logits"].astype(np.float64) for d in members], axis=0)
        return emissions, {name: np.mean([c[name] for c in crfs], axis=0) for name in crfs[0]}
    return np.logaddexp.reduce([word_log_proba(d) for d in members]) - np.log(len(members)), None


def word_log_proba(d):
    """Each test word's log tag probabilities: the softmax of its logits, or for a CRF tagger its
    marginals under the CRF (what ``predict_proba`` gives, and a soft vote averages)."""
    crf = crf_scores(d)
    if crf is None:
        return log_softmax(d["test_logits"], axis=1)
    import torch

    from skimb.tokens import LinearChainCRF

    model = LinearChainCRF([str(c) for c in d["classes"]])
    with torch.no_grad():
        for name, value in crf.items():
            getattr(model, name).copy_(torch.as_tensor(value))
    cuts = np.cumsum(d["test_lengths"])[:-1]
    marginals = [model.marginals(s) for s in np.split(d["test_logits"], cuts) if len(s)]
    return np.log(np.clip(np.concatenate(marginals), 1e-30, None))


def crf_scores(d):
    """A CRF tagger's learned scores saved beside its emissions (``ner.py --save-logits``), or None."""
    if "crf_transitions" not in d:
        return None
    return {name: d[f"crf_{name}"] for name in ("transitions", "start", "end")}


def main(argv=None):
    from skimb.metrics import example_counts, paired_bootstrap_gap, span_report

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("fits", nargs="+", metavar="NAME=GLOB", help="a name and the saved logits of its seeds")
    p.add_argument("--pool", action="append", default=[], metavar="NAME,NAME,...",
                   help="also the vote of these fits, any number (repeatable)")
    p.add_argument("--out", default=None, help="JSON file to write (and the .md beside it)")
    args = p.parse_args(argv)

    fits = {name: load(pattern) for name, pattern in (f.split("=", 1) for f in args.fits)}
    names = list(fits)
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in fits.values())))
    ref = fits[names[0]]
    for name in names[1:]:
        for s in seeds:
            if not np.array_equal(fits[name][s]["test_tags"], ref[s]["test_tags"]):
                raise SystemExit(f"{name} seed {s} was scored on other test sentences than {names[0]}")
            if not np.array_equal(fits[name][s]["classes"], ref[s]["classes"]):
                raise SystemExit(f"{name} seed {s} has other tag columns than {names[0]}: its logits cannot be averaged")
    scores = {n: {s: fit_scores(fits[n][s]) for s in seeds} for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            scores[f"vote({a},{b})"] = {s: vote_scores(fits[a][s], fits[b][s]) for s in seeds}
    for pool in args.pool:
        members = pool.split(",")
        unknown = sorted(set(members) - set(fits))
        if unknown:
            raise SystemExit(f"--pool names fits that were not given: {', '.join(unknown)}")
        scores[f"vote({pool})"] = {s: vote_scores(*(fits[m][s] for m in members)) for s in seeds}
    types = sorted({str(t)[2:] for t in ref[seeds[0]]["classes"] if t != "O"})
    runs = []
    for row, by_seed in scores.items():
        for s in seeds:
            truth, pred = test_predictions(ref[s], *by_seed[s])
            runs.append({"fit": row, "seed": s, "macro_f1": span_report(truth, pred)["macro_f1"],
                         "counts": example_counts("token", truth, pred, labels=types)})
    table = []
    for row in scores:
        mine = [r for r in runs if r["fit"] == row]
        base = [r for r in runs if r["fit"] == names[0]]
        gap = ""
        if row != names[0]:
            g, low, high = paired_bootstrap_gap([r["counts"] for r in mine], [r["counts"] for r in base])
            up = sum(a["macro_f1"] > b["macro_f1"] for a, b in zip(mine, base))
            gap = f"{gap_text(g, low, high)}, {up} of {len(seeds)} seeds up"
        table.append([row, fmt([r["macro_f1"] for r in mine]), ", ".join(f"{r['macro_f1']:.4f}" for r in mine), gap])
    body = markdown_table(["fit", "span macro-F1", "per seed", f"gap to {names[0]} [95% paired bootstrap]"], table)
    for r in runs:
        del r["counts"]
    publish("benchmarks/ner_votes.py", argv, args.out, "Votes of saved taggers", body, runs)


if __name__ == "__main__":
    main()
