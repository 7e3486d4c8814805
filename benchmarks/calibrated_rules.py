"""Decision rules from a calibrated stage 1, scored offline on saved features.

Reads the ``.npz`` files that ``benchmarks/quality.py`` writes beside its JSON
(``<out>/<config>_seed<n>.npz``: the validation and test logits of a fitted model and the training
class counts) and scores, per file and averaged over the seeds of one configuration of one folder:

* ``argmax``: the model's own decisions;
* ``tuned_offsets``: per-class logit offsets tuned for macro-F1 on the validation split
  (``threshold="tuned"``, :func:`skimb.metrics.tune_logit_offsets`, bagged 30 times);
* ``calibrated_tau<t>``: bias-corrected temperature scaling fitted on the validation split by
  likelihood (a temperature and a bias per class; Alexandari et al. 2020), then post-hoc logit
  adjustment ``- t log(prior)`` (Menon et al. 2021) for fixed ``t``;
* ``calibrated_tau_val``: the same with ``t`` chosen for macro-F1 on the validation split;
* ``em_prior``: the calibrated probabilities re-weighted to the test priors that EM estimates from
  the unlabelled test texts (Saerens et al. 2002), a transductive correction for a prior shift; its
  L1 error on the test priors beside the training priors' (``em_prior_l1`` against ``train_prior_l1``).

    python benchmarks/calibrated_rules.py 'benchmarks/results/quality_go28_round23_wce_s?/*.npz' \\
        --out benchmarks/results/calibrated_rules_round28.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from scipy.special import softmax

from _common import command_line, machine_description, markdown_table, mean_std, saved_fit_files, saved_fit_key, \
    write_outputs
from skimb.metrics import tune_logit_offsets
from skimb.metrics._decision import macro_f1_from_labels, temperature_and_biases

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)


def em_priors(proba, source_prior, n_iter=1000, tol=1e-8):
    """Saerens et al.'s EM: the class priors of the texts behind ``proba`` (calibrated posteriors
    under ``source_prior``) and the posteriors re-weighted to them."""
    prior = source_prior.copy()
    for _ in range(n_iter):
        weighted = proba * (prior / source_prior)
        weighted /= weighted.sum(1, keepdims=True)
        new = weighted.mean(0)
        done = np.abs(new - prior).max() < tol
        prior = new
        if done:
            break
    weighted = proba * (prior / source_prior)
    return prior, weighted / weighted.sum(1, keepdims=True)


def score_file(path, seed, logits="stage1"):
    d = np.load(path)
    n = len(d["classes"])
    val, test = d[f"val_{logits}"].astype(np.float64), d[f"test_{logits}"].astype(np.float64)
    y_val, y_test = d["y_val"], d["y_test"]
    counts = d["prior"] if "prior" in d.files else np.bincount(d["y_train"], minlength=n) + 1.0
    train_prior = counts / counts.sum()
    log_prior = np.log(train_prior)

    def f1(logits, y=y_test):
        return macro_f1_from_labels(y, logits.argmax(1), n)

    row = {"argmax": f1(test)}
    offsets = tune_logit_offsets(y_val, val, class_prior=counts, search="offsets", n_bootstrap=30,
                                 random_state=seed)  # as quality.py tunes it
    row["tuned_offsets"] = f1(test + offsets)
    T, b = temperature_and_biases(y_val, val)
    cal_val, cal_test = val / T + b, test / T + b
    for tau in TAUS:
        row[f"calibrated_tau{tau:g}"] = f1(cal_test - tau * log_prior)
    val_scores = [f1(cal_val - tau * log_prior, y_val) for tau in TAUS]
    row["calibrated_tau_val"] = f1(cal_test - TAUS[int(np.argmax(val_scores))] * log_prior)
    # the calibrated model's own prior: its mean posterior on the validation split
    source = softmax(cal_val, axis=1).mean(0)
    prior, adapted = em_priors(softmax(cal_test, axis=1), source)
    row["em_prior"] = macro_f1_from_labels(y_test, adapted.argmax(1), n)
    test_prior = np.bincount(y_test, minlength=n) / len(y_test)
    row["em_prior_l1"] = float(np.abs(prior - test_prior).sum())
    row["train_prior_l1"] = float(np.abs(train_prior - test_prior).sum())
    row["temperature"] = float(T)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+", help="globs of .npz files from quality.py --save-features")
    parser.add_argument("--logits", choices=("stage1", "calora"), default="stage1",
                        help="which saved logits to score: the stage-1 head's or CALoRA's stage 2 (quality.py's default)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    command = command_line("benchmarks/calibrated_rules.py", argv)
    groups = defaultdict(dict)
    for path in saved_fit_files(args.patterns):
        config, seed = saved_fit_key(path)
        groups[config][path] = score_file(path, seed, args.logits)
        print(path, {k: round(v, 4) for k, v in groups[config][path].items()}, flush=True)
    rules = list(next(iter(next(iter(groups.values())).values())))
    summary = {config: {rule: dict(zip(("mean", "std"), mean_std([r[rule] for r in rows.values()])))
                        for rule in rules} for config, rows in groups.items()}
    table = [[config, len(groups[config]), *(f"{s[rule]['mean']:.4f} ± {s[rule]['std']:.4f}" for rule in rules)]
             for config, s in summary.items()]
    markdown = "\n".join([f"# Decision rules from a calibrated stage 1\n\n`{command}`\n",
                          machine_description(), "", markdown_table(["configuration", "files", *rules], table)])
    print(markdown)
    write_outputs(args.out, {"command": command,
                             "summary": summary, "files": {c: rows for c, rows in groups.items()}}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
