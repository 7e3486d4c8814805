"""CALoRA's stage-2 epochs on a large text set: does the step budget of ``epochs="auto"`` cost quality?

``CALoRAHead(epochs="auto")`` runs 20 stage-2 epochs, capped at 600 optimiser steps (round 10: on
the whole MIT-Restaurant split, 60,000 token rows, 20 epochs overfit). Text sets above 7,680
training texts get fewer than 20 epochs. This fits one stage 1 per seed (shared through the stage-1
cache) and CALoRA with each ``--stage2-epochs`` value on it, and reports macro-F1 and the F1 of the
class-frequency quartiles on the test split.

    python benchmarks/calora_epochs.py --dataset goemotions_single --finetune head --seeds 0,1,2 \\
        --stage2-epochs auto,10,20 --out benchmarks/results/calora_epochs_goemotions_single.json
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score

from _common import fmt, ints, load_subsampled, markdown_table, publish


def _epochs(text):
    return [v if v == "auto" else int(v) for v in text.split(",") if v.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="goemotions_single")
    p.add_argument("--train-size", type=int, default=0, help="0 = the whole train split")
    p.add_argument("--test-size", type=int, default=0, help="0 = the whole test split")
    p.add_argument("--finetune", default="head", choices=["full", "lora", "head"])
    p.add_argument("--epochs", type=int, default=3, help="stage-1 epochs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", default="auto", help="stage-1 lr ('auto': the finetune mode's default, 3e-2 for a "
                   "frozen backbone's head; 2e-3 until round 30)")
    p.add_argument("--class-weight", default=None, choices=[None, "balanced"], help="stage 1's class weights")
    p.add_argument("--seeds", default="0")
    p.add_argument("--stage2-epochs", default="auto,20")
    p.add_argument("--memory", default=None, help="stage-1 cache folder (default: a temporary one)")
    p.add_argument("--out", default="benchmarks/results/calora_epochs.json")
    args = p.parse_args(argv)

    from skimb import TransformerClassifier
    from skimb.metrics import quartile_f1

    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size)
    X, y, X_test, y_test = list(data.X_train), np.asarray(data.y_train), list(data.X_test), np.asarray(data.y_test)
    memory = args.memory or tempfile.mkdtemp(prefix="skimb-calora-epochs-")
    base = TransformerClassifier(finetune=args.finetune, max_epochs=args.epochs, batch_size=args.batch_size,
                                 max_length=args.max_length, lr=args.lr if args.lr == "auto" else float(args.lr),
                                 class_weight=args.class_weight, device="cpu", n_threads=1)
    runs = []

    def record(seed, variant, est, fit_s):
        pred = est.predict(X_test)
        quart = quartile_f1(y_test, pred, train_labels=y)
        rec = {"seed": seed, "variant": variant, "macro_f1": float(f1_score(y_test, pred, average="macro")),
               **{q: float(v) for q, v in quart.items()}, "fit_s": fit_s,
               "stage2_epochs": getattr(est, "stage2_epochs_", None)}
        runs.append(rec)
        print(f"seed {seed} {variant:>12}: macro-F1 {rec['macro_f1']:.4f}  Q1 {rec['Q1']:.3f}  "
              f"stage-2 epochs {rec['stage2_epochs']}  {fit_s:.1f} s", flush=True)
        _publish(args, argv, runs, len(X), len(X_test))

    for seed in ints(args.seeds):
        for epochs in [None, *_epochs(args.stage2_epochs)]:  # None: the same stage 1 with its linear head
            params = {"random_state": seed}
            if epochs is not None:
                params.update(head="calora", head__memory=memory, head__epochs=epochs)
            est = clone(base).set_params(**params)
            t0 = time.perf_counter()
            est.fit(X, y)
            record(seed, "stage 1" if epochs is None else str(epochs), est, time.perf_counter() - t0)


def _publish(args, argv, runs, n_train, n_test):
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    rows = []
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        rows.append([v, len(rs), fmt([r["macro_f1"] for r in rs]), *(fmt([r[q] for r in rs], 3) for q in
                     ("Q1", "Q2", "Q3", "Q4")), ", ".join(str(r["stage2_epochs"]) for r in rs)])
    table = markdown_table(["stage 2 epochs", "seeds", "macro-F1", "Q1 F1", "Q2 F1", "Q3 F1", "Q4 F1",
                            "epochs run"], rows)
    publish("benchmarks/calora_epochs.py", argv, args.out, "CALoRA's stage-2 epochs on a large text set",
            f"{args.dataset}: {n_train} training texts, {n_test} test texts; stage 1 `finetune={args.finetune!r}`, "
            f"class weights {args.class_weight}, {args.epochs} epochs, batch {args.batch_size}, "
            f"max length {args.max_length}, lr {args.lr}\n\n{table}", runs)


if __name__ == "__main__":
    main()
