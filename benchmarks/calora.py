"""CALoRA against the vanilla model: quality over (k, rank) and the cost of staging.

Part (b) of issue #4 on ``cyclone_idai_2019``:

* quality: vanilla vs CALoRA over k x rank for each seed: macro-F1 and per-class F1
  (every CALoRA candidate of a seed reuses that seed's stage 1 through the stage-1 cache);
* cost: stage-2 time / stage-1 time; ``GridSearchCV`` over the (k, rank) grid with ``cv`` folds
  against one ``cross_validate`` of the vanilla model; prediction time CALoRA / vanilla.

Usage::

    python benchmarks/calora.py --seeds 0,1,2                      # full train split, MiniLM, 3 epochs
    python benchmarks/calora.py --train-size 300 --epochs 1 --seeds 0 --ks 1,2 --ranks 1,4   # quick look

Part (a), ``--part conll``: CoNLL-2003 with the paper's protocol (keep ``--misc-sentences`` training
sentences that contain both B-MISC and I-MISC, drop the other sentences that contain MISC, keep the
rest, here subsampled to ``--conll-train-size``), vanilla vs CALoRA (rank 8, top-2) on
``TransformerTokenClassifier``: span-level macro and weighted F1 on the test split. CALoRA
reuses the vanilla model as its stage 1 (same seed and data), so the pair costs one fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from _common import write_json
from skimb import TransformerClassifier
from skimb.compare._report import machine_description
from skimb.datasets import load_dataset
from skimb.training import stage1_cache


def _ints(text):
    return [int(v) for v in text.split(",") if v]


def conll_protocol(X, y, *, misc_sentences, rng):
    """The paper's MISC subsampling: keep ``misc_sentences`` sentences with both B-MISC and
    I-MISC, drop the other sentences containing MISC, keep the rest."""
    both = [i for i, t in enumerate(y) if "B-MISC" in t and "I-MISC" in t]
    misc = {i for i, t in enumerate(y) if any(tag.endswith("MISC") for tag in t)}
    keep_misc = set(rng.choice(both, size=min(misc_sentences, len(both)), replace=False).tolist())
    keep = [i for i in range(len(y)) if i not in misc or i in keep_misc]
    return [X[i] for i in keep], [y[i] for i in keep], len(keep_misc)


def run_conll(args):
    from skimb import TransformerTokenClassifier
    from skimb.metrics import span_report

    data = load_dataset("conll2003")
    rng = np.random.default_rng(0)
    X, y, n_misc = conll_protocol(data.X_train, data.y_train, misc_sentences=args.misc_sentences, rng=rng)
    if args.conll_train_size and args.conll_train_size < len(X):
        misc_idx = [i for i, t in enumerate(y) if any(tag.endswith("MISC") for tag in t)]
        other = [i for i in range(len(y)) if i not in set(misc_idx)]
        pick = sorted(misc_idx + rng.choice(other, size=args.conll_train_size - len(misc_idx), replace=False).tolist())
        X, y = [X[i] for i in pick], [y[i] for i in pick]
    X_test, y_test = data.X_test, data.y_test
    if args.conll_test_size:
        idx = sorted(rng.choice(len(X_test), size=min(args.conll_test_size, len(X_test)), replace=False).tolist())
        X_test, y_test = [X_test[i] for i in idx], [y_test[i] for i in idx]
    results = {}
    for seed in _ints(args.seeds):
        params = dict(backbone=args.backbone, max_epochs=args.epochs, batch_size=args.batch_size,
                      max_length=args.max_length, lr=args.lr, random_state=seed, device="cpu")
        for name, extra in (("vanilla", {}), ("calora_r8_top2", {"head": "calora", "head__rank": 8, "head__k": 2})):
            est = TransformerTokenClassifier(**params, **extra).fit(X, y)
            rep = span_report(y_test, est.predict(X_test), train_tags=y)
            entry = results.setdefault(name, [])
            entry.append({"seed": seed, "macro_f1": rep["macro_f1"], "weighted_f1": rep["weighted_f1"],
                          "micro_f1": rep["micro_f1"],
                          "per_type_f1": {k: v["f1"] for k, v in rep["per_type"].items()},
                          "fit_s": est.fit_time_s_})
            print(f"conll seed {seed} {name}: macro-F1 {rep['macro_f1']:.4f} weighted-F1 {rep['weighted_f1']:.4f} "
                  f"MISC F1 {rep['per_type']['MISC']['f1']:.4f}", flush=True)
    return {"n_train_sentences": len(X), "n_misc_sentences_kept": n_misc, "n_test_sentences": len(X_test),
            "results": results,
            "mean": {n: {k: float(np.mean([r[k] for r in rs])) for k in ("macro_f1", "weighted_f1", "micro_f1")}
                     for n, rs in results.items()}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=0, help="0 = the whole train split")
    p.add_argument("--finetune", default="full", choices=["full", "lora", "head"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ks", default="1,2,3,4")
    p.add_argument("--ranks", default="1,4,8")
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--skip-cost", action="store_true", help="only the quality table")
    p.add_argument("--skip-quality", action="store_true", help="only the cost of the grid search")
    p.add_argument("--backbone", default=None)
    p.add_argument("--part", choices=["cyclone", "conll"], default="cyclone")
    p.add_argument("--misc-sentences", type=int, default=100)
    p.add_argument("--conll-train-size", type=int, default=0, help="0 = every sentence the protocol keeps")
    p.add_argument("--conll-test-size", type=int, default=0, help="0 = the whole test split")
    p.add_argument("--out", default="benchmarks/results/calora.json")
    args = p.parse_args(argv)
    if args.part == "conll":
        summary = {"machine": machine_description(),
                   "command": "python benchmarks/calora.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   "settings": vars(args), **run_conll(args)}
        print(json.dumps(summary["mean"], indent=2))
        write_json(args.out, summary)
        return 0

    data = load_dataset(args.dataset, subsample={"train": args.train_size} if args.train_size else None)
    X, y, X_test, y_test = data.X_train, np.asarray(data.y_train), data.X_test, np.asarray(data.y_test)
    base = TransformerClassifier(args.backbone, finetune=args.finetune, max_epochs=args.epochs,
                                 batch_size=args.batch_size, max_length=args.max_length, lr=args.lr, device="cpu")
    ks, ranks = _ints(args.ks), _ints(args.ranks)
    labels = np.unique(y)
    quality = []
    for seed in ([] if args.skip_quality else _ints(args.seeds)):
        vanilla = clone(base).set_params(random_state=seed).fit(X, y)
        t0 = time.perf_counter()
        pred = vanilla.predict(X_test)
        vanilla_predict_s = time.perf_counter() - t0
        row = {"seed": seed, "vanilla": {
            "macro_f1": f1_score(y_test, pred, average="macro"),
            "per_class_f1": dict(zip(labels.tolist(), f1_score(y_test, pred, average=None, labels=labels).tolist())),
            "fit_s": vanilla.fit_time_s_, "predict_s": vanilla_predict_s}, "calora": []}
        print(f"seed {seed} vanilla macro-F1 {row['vanilla']['macro_f1']:.4f} fit {vanilla.fit_time_s_:.1f}s",
              flush=True)
        for k in ks:
            for rank in ranks:
                est = clone(base).set_params(random_state=seed, head="calora", head__k=k, head__rank=rank).fit(X, y)
                t0 = time.perf_counter()
                pred = est.predict(X_test)
                predict_s = time.perf_counter() - t0
                entry = {"k": k, "rank": rank, "macro_f1": f1_score(y_test, pred, average="macro"),
                         "per_class_f1": dict(zip(labels.tolist(),
                                                  f1_score(y_test, pred, average=None, labels=labels).tolist())),
                         "coverage": est.routing_topk_coverage_, "stage1_s": est.stage1_time_s_,
                         "stage2_s": est.stage2_time_s_, "stage1_cached": est.stage1_cached_,
                         "predict_s": predict_s}
                row["calora"].append(entry)
                print(f"seed {seed} k={k} rank={rank} macro-F1 {entry['macro_f1']:.4f} stage2 {entry['stage2_s']:.1f}s "
                      f"(stage1 cached: {entry['stage1_cached']}) coverage {entry['coverage']:.3f}", flush=True)
        quality.append(row)

    # The vanilla fit (head="linear") is not cached: each seed's first CALoRA candidate fits stage 1 and
    # records its time, the others reuse it.
    stage1_s = [next(c["stage1_s"] for c in r["calora"] if not c["stage1_cached"]) for r in quality] or [np.nan]
    stage2_s = [c["stage2_s"] for r in quality for c in r["calora"]] or [np.nan]
    predict_ratio = [c["predict_s"] / r["vanilla"]["predict_s"] for r in quality for c in r["calora"]] or [np.nan]
    summary = {
        "machine": machine_description(),
        "command": "python benchmarks/calora.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": args.dataset, "n_train": len(X), "n_test": len(X_test), "settings": vars(args),
        "quality": quality,
        "stage2_over_stage1": float(np.mean(stage2_s) / np.mean(stage1_s)),
        "predict_ratio_calora_over_vanilla": float(np.mean(predict_ratio)),
        "mean_macro_f1": {
            "vanilla": float(np.mean([r["vanilla"]["macro_f1"] for r in quality])) if quality else None,
            **{f"calora_k{k}_r{rk}": float(np.mean([c["macro_f1"] for r in quality for c in r["calora"]
                                                     if c["k"] == k and c["rank"] == rk]))
               for k in ks for rk in ranks if quality}},
    }

    if not args.skip_cost:
        seed = _ints(args.seeds)[0]
        folds = StratifiedKFold(args.cv, shuffle=True, random_state=0)
        t0 = time.perf_counter()
        cross_validate(clone(base).set_params(random_state=seed), X, y, cv=folds, scoring="f1_macro")
        cv_s = time.perf_counter() - t0
        stage1_cache.clear()
        t0 = time.perf_counter()
        search = GridSearchCV(clone(base).set_params(random_state=seed, head="calora"),
                              {"head__k": ks, "head__rank": ranks}, cv=folds, scoring="f1_macro", refit=False)
        search.fit(X, y)
        grid_s = time.perf_counter() - t0
        summary.update({"cross_validate_vanilla_s": cv_s, "grid_search_calora_s": grid_s,
                        "grid_over_cross_validate": grid_s / cv_s, "n_candidates": len(ks) * len(ranks),
                        "stage1_cache_hits": stage1_cache.hits, "stage1_cache_misses": stage1_cache.misses,
                        "grid_best_params": search.best_params_, "grid_best_score": search.best_score_})
        print(f"cross_validate(vanilla) {cv_s:.1f}s, GridSearchCV(CALoRA, {len(ks) * len(ranks)} candidates) "
              f"{grid_s:.1f}s, ratio {grid_s / cv_s:.2f}", flush=True)

    print(json.dumps({k: v for k, v in summary.items() if k not in ("quality", "settings")}, indent=2, default=str))
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
