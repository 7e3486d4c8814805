"""Resampling on frozen MiniLM embeddings, then the best text samplers in front of fine-tuning.

Issue #7, on ``cyclone_idai_2019`` (HumAID, 10 classes, train imbalance ratio ~100).

Part 1 (frozen embeddings). ``skimb.TransformerEmbedder`` (MiniLM by default) embeds the train
and test texts once; every variant reuses these vectors and trains
``LogisticRegression(max_iter=2000)`` on its resampled training set:

* ``none``: no resampling;
* imbalanced-learn on the embeddings: ``ros`` (RandomOverSampler), ``smote``, ``adasyn``,
  ``borderline_smote`` (``k_neighbors`` / ``n_neighbors`` lowered to ``smallest class - 1``
  only when a class is too small for the default 5: tiny subsamples);
* skimb on the embeddings: ``textcut``, ``ge3``, ``reprint``, ``lnr`` (LabelNoiseRebalancer),
  ``hardness`` (HardnessNeighborhoodSampler);
* skimb on the texts: ``text_ros``, ``text_rus``, ``class_aware``, ``eda``: the texts are
  resampled, then the resampled texts are embedded through the same embedder (texts already
  embedded are looked up, only new texts such as EDA's are encoded; that time is reported
  apart from the resampling time).

Every sampler is seeded with each of ``--seeds``; reported per variant (mean ± std over
seeds): macro-F1, F1 per class-frequency quartile (``skimb.metrics.imbalance_report`` with the
training labels: Q1 = rarest classes), resampling time, embedding time of new texts, LR fit
time, training-set size after resampling and peak resident memory (VmHWM, reset per run). A
sampler that raises is recorded with its error and the run goes on.

Part 2 (``--finetune-top N``, default 2). Embedding-level samplers cannot precede fine-tuning:
they output vectors (synthetic ones have no text), while ``TransformerClassifier`` reads texts
and re-computes the representation it trains. So the N best *text-level* samplers of part 1
(by mean macro-F1) are put in front of fine-tuning, ``imblearn.pipeline.make_pipeline(sampler,
TransformerClassifier(...))``, and compared with fine-tuning without a sampler, on
``--ft-train-size`` training texts, ``--ft-epochs`` epochs and ``--ft-seeds``. Over-samplers
make the epochs longer (the number of epochs is the budget, not the number of steps).

Results go to ``--out`` (JSON) and the ``.md`` next to it (tables, also printed).

Usage::

    python benchmarks/samplers.py                          # the whole comparison (hours: see docs)
    OMP_NUM_THREADS=1 python benchmarks/samplers.py --train-size 400 --seeds 0,1 --finetune-top 0
    OMP_NUM_THREADS=1 python benchmarks/samplers.py --train-size 400 --seeds 0 --samplers text_ros,class_aware \\
        --finetune-top 2 --ft-train-size 100 --ft-epochs 1 --ft-seeds 0
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (QUARTILES, command_line, fmt, ints, load_subsampled, machine_description,  # noqa: E402
                     markdown_table, mean_std, measure, write_outputs)

from sklearn.linear_model import LogisticRegression  # noqa: E402

from skimb import TransformerClassifier, TransformerEmbedder  # noqa: E402
from skimb.metrics import imbalance_report  # noqa: E402


def _k(n_min, default=5):
    """Neighbour count that the smallest class can feed (imblearn needs k + 1 members)."""
    return max(1, min(default, n_min - 1))


def build_variants(n_min):
    """name -> (kind, factory(seed) -> sampler or None). kind: none | embedding | text."""
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    from skimb.samplers import (ClassAwareSampler, EDAOverSampler, GE3OverSampler, HardnessNeighborhoodSampler,
                                LabelNoiseRebalancer, RandomTextOverSampler, RandomTextUnderSampler,
                                REPRINTOverSampler, TextCutOverSampler)

    k = _k(n_min)
    return {
        "none": ("none", lambda seed: None),
        "ros": ("embedding", lambda seed: RandomOverSampler(random_state=seed)),
        "smote": ("embedding", lambda seed: SMOTE(k_neighbors=k, random_state=seed)),
        "adasyn": ("embedding", lambda seed: ADASYN(n_neighbors=k, random_state=seed)),
        "borderline_smote": ("embedding", lambda seed: BorderlineSMOTE(k_neighbors=k, random_state=seed)),
        "textcut": ("embedding", lambda seed: TextCutOverSampler(random_state=seed)),
        "ge3": ("embedding", lambda seed: GE3OverSampler(random_state=seed)),
        "reprint": ("embedding", lambda seed: REPRINTOverSampler(random_state=seed)),
        "lnr": ("embedding", lambda seed: LabelNoiseRebalancer(random_state=seed)),
        "hardness": ("embedding", lambda seed: HardnessNeighborhoodSampler(random_state=seed)),
        "hardness_multinomial": ("embedding", lambda seed: HardnessNeighborhoodSampler(draw_scheme="multinomial",
                                                                                       random_state=seed)),
        "text_ros": ("text", lambda seed: RandomTextOverSampler(random_state=seed)),
        "text_rus": ("text", lambda seed: RandomTextUnderSampler(random_state=seed)),
        "class_aware": ("text", lambda seed: ClassAwareSampler(random_state=seed)),
        "eda": ("text", lambda seed: EDAOverSampler(random_state=seed)),
    }


VARIANT_NAMES = ["none", "ros", "smote", "adasyn", "borderline_smote", "textcut", "ge3", "reprint", "lnr",
                 "hardness", "hardness_multinomial", "text_ros", "text_rus", "class_aware", "eda"]


def record_quality(rec, y_test, pred, labels, y_train):
    """Macro-F1, balanced accuracy, per-quartile and per-class F1 of one run into ``rec``."""
    rep = imbalance_report(y_test, pred, labels=labels, train_labels=y_train, digits=None)
    rec.update(macro_f1=rep["macro_f1"], balanced_accuracy=rep["balanced_accuracy"],
               quartile_f1=rep["quartile_f1"], quartile_labels=rep["quartile_labels"],
               per_class_f1={k: v["f1"] for k, v in rep["per_class"].items()})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="cyclone_idai_2019", help="a multi-class data set of load_dataset")
    p.add_argument("--train-size", type=int, default=0,
                   help="training texts for part 1 (stratified subsample); 0 = the whole train split")
    p.add_argument("--test-size", type=int, default=0, help="test texts (stratified subsample); 0 = all")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subsamples")
    p.add_argument("--samplers", default=",".join(VARIANT_NAMES), help="comma-separated variants; 'none' always runs")
    p.add_argument("--seeds", default="0,1,2,3,4", help="sampler seeds of part 1")
    p.add_argument("--backbone", default=None, help="backbone directory or name (default: offline MiniLM)")
    p.add_argument("--max-length", type=int, default=128, help="embedder truncation (sub-tokens)")
    p.add_argument("--embed-batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--finetune-top", type=int, default=2,
                   help="part 2: fine-tune behind the N best text-level samplers of part 1 (0 = skip)")
    p.add_argument("--ft-train-size", type=int, default=0,
                   help="training texts for part 2 (stratified subsample); 0 = the whole train split")
    p.add_argument("--ft-epochs", type=int, default=3)
    p.add_argument("--ft-seeds", default="0,1,2")
    p.add_argument("--ft-batch-size", type=int, default=32)
    p.add_argument("--ft-max-length", type=int, default=64)
    p.add_argument("--ft-lr", type=float, default=1e-4)
    p.add_argument("--out", default="benchmarks/results/samplers.json", help="JSON; the .md goes next to it")
    return p.parse_args(argv)


class EmbeddingStore:
    """Texts -> embeddings through one embedder; each distinct text is encoded once per run."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.table = {}

    def __call__(self, texts):
        """(embeddings, number of texts newly encoded, seconds spent encoding)."""
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        t0 = time.perf_counter()
        if missing:
            self.table.update(zip(missing, np.asarray(self.embedder.transform(missing), dtype=np.float32)))
        return np.stack([self.table[t] for t in texts]), len(missing), time.perf_counter() - t0


def run_variant(name, kind, factory, seed, X_train, y_train, E_train, E_test, y_test, labels, store):
    rec = {"variant": name, "kind": kind, "seed": seed}
    try:
        with measure(rec):
            sampler = factory(seed)
            t0 = time.perf_counter()
            if kind == "none":
                E_res, y_res = E_train, y_train
            elif kind == "embedding":
                E_res, y_res = sampler.fit_resample(E_train, y_train)
            else:
                T_res, y_res = sampler.fit_resample(list(X_train), y_train)
            rec["resample_s"] = 0.0 if kind == "none" else time.perf_counter() - t0
            rec["embed_new_s"], rec["n_new_texts"] = 0.0, 0
            if kind == "text":
                E_res, rec["n_new_texts"], rec["embed_new_s"] = store(T_res)
            y_res = np.asarray(y_res)
            t0 = time.perf_counter()
            clf = LogisticRegression(max_iter=2000).fit(E_res, y_res)
            rec["lr_fit_s"] = time.perf_counter() - t0
            pred = clf.predict(E_test)
        rec["n_train_resampled"] = int(len(y_res))
        rec["resampled_counts"] = {str(c): int(n) for c, n in zip(*np.unique(y_res, return_counts=True))}
        record_quality(rec, y_test, pred, labels, y_train)
        print(f"[seed {seed}] {name:16s} macro-F1 {rec['macro_f1']:.4f} n={rec['n_train_resampled']:6d} "
              f"resample {rec['resample_s']:.2f}s embed-new {rec['embed_new_s']:.1f}s LR {rec['lr_fit_s']:.1f}s",
              flush=True)
    except Exception as exc:  # one failing sampler must not sink the comparison
        rec["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[seed {seed}] {name:16s} FAILED {rec['error']}", flush=True)
    return rec


def summarise(runs, names, kinds, key="variant"):
    out = {}
    for name in names:
        rs = [r for r in runs if r[key] == name and "error" not in r]
        errs = [r["error"] for r in runs if r[key] == name and "error" in r]
        entry = {"kind": kinds.get(name), "n_runs": len(rs), "n_failed": len(errs), "errors": errs}
        for k in ("macro_f1", "balanced_accuracy", "resample_s", "embed_new_s", "lr_fit_s", "fit_s", "predict_s",
                  "n_train_resampled", "peak_mib"):
            if any(k in r for r in rs):
                entry[k] = mean_std([r.get(k) for r in rs])
        entry["quartile_f1"] = {q: mean_std([r["quartile_f1"].get(q) for r in rs]) for q in QUARTILES}
        out[name] = entry
    return out


def part1_table(runs, names, kinds):
    rows = []
    for name in names:
        rs = [r for r in runs if r["variant"] == name and "error" not in r]
        errs = [r["error"] for r in runs if r["variant"] == name and "error" in r]
        if not rs:
            rows.append([name, kinds[name], "failed: " + (errs[0][:80] if errs else "?"), *[""] * 8])
            continue
        note = f" ({len(errs)} failed)" if errs else ""
        rows.append([name, kinds[name], fmt([r["macro_f1"] for r in rs]) + note,
                     *(fmt([r["quartile_f1"].get(q) for r in rs], 3) for q in QUARTILES),
                     fmt([r["resample_s"] for r in rs], 2, std=False),
                     fmt([r["embed_new_s"] for r in rs], 1, std=False),
                     fmt([r["lr_fit_s"] for r in rs], 1, std=False),
                     fmt([r["n_train_resampled"] for r in rs], 0, std=False)])
    return markdown_table(["variant", "on", "macro-F1", *QUARTILES, "resample s", "embed new s", "LR fit s",
                           "n train"], rows)


def rank_text_samplers(summary):
    ok = [(s["macro_f1"][0], n) for n, s in summary.items() if s["kind"] == "text" and s["n_runs"] > 0]
    return [n for _, n in sorted(ok, reverse=True)]


def _n_resampled(sampler, n_input):
    if hasattr(sampler, "sample_indices_"):
        return int(len(sampler.sample_indices_))
    if hasattr(sampler, "parent_indices_"):  # EDA: the input texts, then the generated ones
        return int(n_input + len(sampler.parent_indices_))
    return -1


def part2(args, factories, chosen):
    from imblearn.pipeline import make_pipeline

    data = load_subsampled(args.dataset, train_size=args.ft_train_size, test_size=args.test_size, seed=args.data_seed)
    X, y, X_test, y_test = list(data.X_train), np.asarray(data.y_train), list(data.X_test), np.asarray(data.y_test)
    labels = np.unique(np.concatenate([y, y_test]))
    runs = []
    for seed in ints(args.ft_seeds):
        for name in ["none", *chosen]:
            rec = {"variant": name, "seed": seed}
            try:
                with measure(rec):
                    clf = TransformerClassifier(args.backbone, finetune="full", max_epochs=args.ft_epochs,
                                                batch_size=args.ft_batch_size, max_length=args.ft_max_length,
                                                lr=args.ft_lr, device=args.device, random_state=seed)
                    model = clf if name == "none" else make_pipeline(factories[name](seed), clf)
                    t0 = time.perf_counter()
                    model.fit(X, y)
                    rec["fit_s"] = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    pred = model.predict(X_test)
                    rec["predict_s"] = time.perf_counter() - t0
                fitted = model if name == "none" else model[-1]
                rec["n_train_resampled"] = len(X) if name == "none" else _n_resampled(model[0], len(X))
                rec["epoch_s"] = float(np.mean(fitted.history_[:, "dur"]))
                record_quality(rec, y_test, pred, labels, y)
                print(f"[ft seed {seed}] {name:12s} macro-F1 {rec['macro_f1']:.4f} n={rec['n_train_resampled']} "
                      f"fit {rec['fit_s']:.1f}s predict {rec['predict_s']:.1f}s peak {rec['peak_mib']:.0f} MiB",
                      flush=True)
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {exc}"
                print(f"[ft seed {seed}] {name}: FAILED {rec['error']}", flush=True)
            runs.append(rec)
    n_train, n_test = len(X), len(X_test)
    return runs, n_train, n_test


def part2_table(runs, names):
    rows = []
    for name in names:
        rs = [r for r in runs if r["variant"] == name and "error" not in r]
        if not rs:
            errs = [r["error"] for r in runs if r["variant"] == name and "error" in r]
            rows.append([name, "failed: " + (errs[0][:80] if errs else "?"), *[""] * 7])
            continue
        rows.append([name, fmt([r["macro_f1"] for r in rs]), *(fmt([r["quartile_f1"].get(q) for r in rs], 3)
                                                                 for q in QUARTILES),
                     fmt([r["n_train_resampled"] for r in rs], 0, std=False), fmt([r["fit_s"] for r in rs], 1),
                     fmt([r["predict_s"] for r in rs], 1, std=False), fmt([r["peak_mib"] for r in rs], 0, std=False)])
    return markdown_table(["sampler before fine-tuning", "macro-F1", *QUARTILES, "n train", "fit s", "predict s",
                           "peak RSS MiB"], rows)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    seeds = ints(args.seeds)
    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size,
                           seed=args.data_seed, task="multiclass")
    X_train, y_train = list(data.X_train), np.asarray(data.y_train)
    X_test, y_test = list(data.X_test), np.asarray(data.y_test)
    classes, counts = np.unique(y_train, return_counts=True)
    labels = np.unique(np.concatenate([y_train, y_test]))
    variants = build_variants(int(counts.min()))
    requested = [n.strip() for n in args.samplers.split(",") if n.strip()]
    unknown = sorted(set(requested) - set(variants))
    if unknown:
        raise SystemExit(f"unknown samplers {unknown}; choose from {VARIANT_NAMES}")
    names = list(dict.fromkeys(["none", *requested]))
    kinds = {n: variants[n][0] for n in variants}
    how = f"stratified subsample, seed {args.data_seed}" if args.train_size else "whole split"
    how_test = f"stratified subsample, seed {args.data_seed}" if args.test_size else "whole split"
    sub = (f"{args.dataset}: {len(X_train)} train texts ({how}), {len(X_test)} test texts ({how_test}); "
           f"{len(classes)} classes, train counts {int(counts.max())} … {int(counts.min())} "
           f"(imbalance ratio {counts.max() / counts.min():.1f})")
    print(sub, flush=True)

    # Part 1: embeddings computed once, shared by every variant and seed.
    embedder = TransformerEmbedder(args.backbone, max_length=args.max_length, batch_size=args.embed_batch_size,
                                   device=args.device).fit()
    store = EmbeddingStore(embedder)
    E_train, _, embed_train_s = store(X_train)
    E_test, _, embed_test_s = store(X_test)
    print(f"embedded {len(X_train)} train texts in {embed_train_s:.1f}s and {len(X_test)} test texts in "
          f"{embed_test_s:.1f}s ({E_train.shape[1]} dimensions)", flush=True)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        for seed in seeds:
            for name in names:
                kind, factory = variants[name]
                runs.append(run_variant(name, kind, factory, seed, X_train, y_train, E_train, E_test, y_test,
                                        labels, store))
    summary = summarise(runs, names, kinds)

    md = [f"## Samplers on {args.dataset}\n",
          f"{sub}. Frozen {args.backbone or 'all-MiniLM-L6-v2 (bundled)'} embeddings (mean pooling, L2-normalised, "
          f"max length {args.max_length}; train {embed_train_s:.1f} s, test {embed_test_s:.1f} s, computed once) + "
          f"LogisticRegression(max_iter=2000); sampler seeds {args.seeds}. Machine: {machine_description()}.\n",
          "### Part 1: frozen embeddings (mean ± std over seeds; quartiles by training class frequency, "
          "Q1 = rarest; times are means)\n",
          part1_table(runs, names, kinds)]
    if int(counts.min()) <= 5:
        md.append(f"\nSmallest training class has {int(counts.min())} texts: SMOTE/ADASYN/BorderlineSMOTE "
                  f"use k = {_k(int(counts.min()))} neighbours.")

    result = {
        "machine": machine_description(),
        "command": command_line("benchmarks/samplers.py", argv),
        "dataset": args.dataset, "subsample": sub, "n_train": len(X_train), "n_test": len(X_test),
        "train_counts": {str(c): int(n) for c, n in zip(classes, counts)},
        "settings": vars(args), "embed_train_s": embed_train_s, "embed_test_s": embed_test_s,
        "smote_k_neighbors": _k(int(counts.min())), "summary": summary, "runs": runs,
    }

    if args.finetune_top > 0:
        ranking = rank_text_samplers(summary)
        chosen = ranking[:args.finetune_top]
        overall = sorted(((s["macro_f1"][0], n) for n, s in summary.items() if s["n_runs"] and n != "none"),
                         reverse=True)
        note = ("Embedding-level samplers (imbalanced-learn's, TextCut, GE3, REPRINT, LNR, HAMR's sampler) output "
                "vectors, and synthetic vectors have no text, while fine-tuning reads texts and re-computes the "
                "representation it trains: they cannot precede fine-tuning. The best text-level samplers of part 1 "
                f"are used instead: {', '.join(chosen) or 'none succeeded'} (text-level ranking: "
                f"{', '.join(ranking)}; overall best in part 1: "
                f"{', '.join(f'{n} {m:.4f}' for m, n in overall[:3])}).")
        print("\n" + note, flush=True)
        ft_runs, ft_n_train, ft_n_test = part2(args, {n: variants[n][1] for n in variants}, chosen)
        ft_names = ["none", *chosen]
        result["finetune"] = {"chosen": chosen, "text_ranking": ranking, "note": note, "n_train": ft_n_train,
                              "n_test": ft_n_test, "summary": summarise(ft_runs, ft_names, kinds), "runs": ft_runs}
        md += [f"\n### Part 2: fine-tuning behind the best {len(chosen)} text-level samplers\n",
               note + "\n",
               f"`imblearn.pipeline.make_pipeline(sampler, TransformerClassifier(...))`, full fine-tuning of "
               f"{args.backbone or 'MiniLM'}, {ft_n_train} training texts "
               f"({'stratified subsample' if args.ft_train_size else 'whole split'}), {ft_n_test} test texts, "
               f"{args.ft_epochs} epoch(s), batch {args.ft_batch_size}, max length {args.ft_max_length}, "
               f"lr {args.ft_lr}, seeds {args.ft_seeds}. Over-samplers lengthen the epochs.\n",
               part2_table(ft_runs, ft_names)]

    total_s = time.perf_counter() - t_start
    result["total_wall_s"] = total_s
    md.append(f"\nTotal wall time {total_s:.0f} s.")
    md = "\n".join(md)
    print()
    print(md, flush=True)
    out, md_path = write_outputs(args.out, result, md)
    print(f"\nwrote {out} and {md_path} ({total_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
