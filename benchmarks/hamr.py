"""HAMR (``TransformerClassifier(training="hamr")``): module ablations, meta-step modes, kNN backends.

Issue #5, item 6. Two parts.

**Training** (``--datasets``, default ``cyclone_idai_2019,sst5``): every variant below is
fitted with the same budget (``--epochs``, ``--batch-size``, ``--max-length``, ``--lr``,
MiniLM unless ``--backbone``) and the same seeds on the same stratified subsample of the train
split (``--train-size``, drawn once with ``--data-seed``), and scored on the test split
(``--test-size``). Variants (``--variants``, comma-separated, default all):

=================  ==========================================================================
``hamr``           full HAMR, ``training__meta_step="head"`` (the default)
``no_weighting``   w/o adaptive weighting (``training__meta_weighting=False``; WNet still drives the hardness)
``no_resampling``  w/o resampling (``training__resampling=False``, ``training__knn=False``)
``no_knn``         w/o the kNN boost (``training__knn=False``)
``none``           every module off: plain fine-tuning on the same training share
``meta_first_order``  full HAMR with ``training__meta_step="first_order"``
``meta_full``      full HAMR with ``training__meta_step="full"`` (the reference's second-order step)
``topup_move``     the meta set's top-up leaves training (``training__meta_topup="move"``, the paper)
``topup_none``     the validation split as the meta set, no top-up (the reference code)
``token_max``      NER: the real update on each window's largest token loss (the reference)
``meta_balanced``  full HAMR with the class-balanced meta objective (``training__meta_loss="balanced"``)
``systematic``     full HAMR with systematic (low-variance) epoch draws (the default since round 8)
``multinomial``    full HAMR with independent epoch draws (the paper; the default before round 8)
``systematic_mb``  both of the above
``reference``      ``HAMRTraining.reference()``: every switch as the reference code runs
=================  ==========================================================================

The meta set: ``--meta split`` (default, as ``skimb compare``) holds out ``validation_fraction=0.1``
of the training data as the base of the balanced meta set (``none`` holds it out too, so every
variant trains on the same share); ``--meta dev`` passes the dataset's dev split as an explicit
``meta_set`` (used as given; nothing is held out). Per variant (mean ± std over ``--seeds``):
macro-F1, micro-F1, the mean per-class F1 of each training-frequency quartile (Q1 = rarest
classes), training wall time, its ratio to ``none`` of the same seed, time per drawn training
sample, and peak resident memory (VmHWM, reset before each fit). A short warm-up fit runs first, and
the feature cache is cleared before each fit, so every variant with kNN pays for its embeddings
(MiniLM's pretrained features of the training texts).

**Neighbour search** (``--knn-sizes``, default ``10000,100000``; ``--knn-sizes ""`` skips it):
HAMR's boost (hard set = ``--knn-ratio`` of the samples, ``--knn-k`` neighbours, cosine) with
FAISS (``IndexFlatIP``, exact; also IVF and HNSW with their recall@k) against scikit-learn's
``NearestNeighbors(metric="cosine", algorithm="brute")`` on ``--knn-dim``-d embeddings (a
mixture of Gaussian clusters, ``--knn-clusters``): build + search seconds, the time ratio, the
share of hard samples whose exact neighbour *sets* are identical (where they differ: the gap between
the two k-th similarities, i.e. whether it is a float32 near-tie), and the largest boost difference.

Usage::

    # the full study (hours on 2 CPU cores; minutes on a GPU)
    python benchmarks/hamr.py --seeds 0,1,2
    # a quick look (a few minutes on 2 CPU cores)
    OMP_NUM_THREADS=1 python benchmarks/hamr.py --train-size 200 --test-size 200 --epochs 1 \\
        --seeds 0 --knn-sizes 10000
    # only the neighbour search
    python benchmarks/hamr.py --datasets "" --knn-sizes 10000,100000

Results go to ``--out`` (JSON: every run, the summaries, the machine and the command) and to the
``.md`` next to it (the tables, also printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (QUARTILES, command_line, fmt, ints, load_subsampled, machine_description,  # noqa: E402
                     markdown_table, measure, sparse_entities, write_json)

from skimb import TransformerClassifier, TransformerTokenClassifier  # noqa: E402
from skimb.backbones import feature_cache  # noqa: E402
from skimb.compare._runner import evaluate  # noqa: E402

from skimb.training.hamr import HAMRTraining  # noqa: E402

# the variants that change the resampling or its settings pin it on (for NER, "auto" turns it off
# from 750 training sentences)
RESAMPLED = {"training__resampling": True}

VARIANTS = {
    "hamr": {},
    "no_weighting": {**RESAMPLED, "training__meta_weighting": False},
    "no_resampling": {"training__resampling": False, "training__knn": False},
    "no_knn": {**RESAMPLED, "training__knn": False},
    "none": {"training__meta_weighting": False, "training__resampling": False, "training__knn": False},
    "meta_first_order": {"training__meta_step": "first_order"},
    "meta_full": {"training__meta_step": "full"},
    "topup_move": {"training__meta_topup": "move"},
    "topup_none": {"training__meta_topup": "none"},
    "token_max": {"training__token_loss": "max"},
    "meta_balanced": {"training__meta_loss": "balanced"},
    "meta_mean": {"training__meta_loss": "mean"},  # the default before round 11
    "weighting_balanced": {"training__meta_loss": "balanced", "training__resampling": False, "training__knn": False},
    "systematic": {**RESAMPLED, "training__draw_scheme": "systematic"},
    "systematic_mb": {**RESAMPLED, "training__draw_scheme": "systematic", "training__meta_loss": "balanced"},
    "reference": {"training": HAMRTraining.reference()},
    # the reference code as its classification script ran: its Trainer drops the sample-id column, so
    # the hardness never updates and the 1.2 N draws stay uniform (hardness_alpha=0, no kNN boost)
    "reference_as_run": {"training": HAMRTraining.reference(hardness_alpha=0.0, knn=False)},
    # the default before round 5: 1.2 N draws per epoch, embeddings from a separate pass
    "round4_default": {**RESAMPLED, "training__oversample_ratio": 1.2, "training__embedder": "pretrained",
                       "training__draw_scheme": "multinomial"},
    # the default before round 8: independent (multinomial) epoch draws
    "multinomial": {**RESAMPLED, "training__draw_scheme": "multinomial"},
    # one deviation of the default from the reference at a time (the reference's value)
    "ref_meta_lr": {"training__meta_update_lr": 2e-4},
    "ref_detach_mean": {"training__detach_mean": True},
    "ref_hardness": {**RESAMPLED, "training__hardness_update": "reference"},
    "ref_random_batches": {**RESAMPLED, "training__group_by_length": False},
    "ref_oversample": {**RESAMPLED, "training__oversample_ratio": 1.2},
    "ref_embedder": {**RESAMPLED, "training__embedder": "pretrained"},
    # the meta step every k training steps (WNet's current weights in between)
    "meta_every2": {"training__meta_interval": 2},
    "meta_every4": {"training__meta_interval": 4},
    "meta_cached": {"training__meta_features": "cached"},
    "meta_live": {"training__meta_features": "live"},  # the default before round 12
    # on top of class weighting (the best loss on Cyclone-Idai)
    "wce": {"class_weight": "balanced", "training__meta_weighting": False, "training__resampling": False,
            "training__knn": False},
    "hamr_wce": {"class_weight": "balanced"},
    "hamr_wce_mean": {"class_weight": "balanced", "training__meta_loss": "mean"},
    "hamr_wce_balanced": {"class_weight": "balanced", "training__meta_loss": "balanced"},
    # WNet's weights normalised within each class (round 15): the class weights alone balance the classes
    "hamr_wce_class_norm": {"class_weight": "balanced", "training__weight_norm": "class"},
    "meta_cached_r1": {"training__meta_features": "cached", "training__meta_refresh": 1},
    "meta_cached_r16": {"training__meta_features": "cached", "training__meta_refresh": 16},
    # WNet's learning rate (round 13: at the reference's 1e-4 WNet moves little in a few hundred steps)
    "wnet_lr_1e-3": {"training__wnet_lr": 1e-3},
    "wnet_lr_3e-3": {"training__wnet_lr": 3e-3},
}


def _names(text):
    return [v.strip() for v in str(text).split(",") if v.strip()]


# ----------------------------------------------------------------------------- training part


def run_training(args, log=print, on_run=None):
    runs = []
    for name in _names(args.datasets):
        if args.entity_free_share is None:
            data = load_subsampled(name, train_size=args.train_size, test_size=args.test_size, seed=args.data_seed)
        else:
            data = sparse_entities(load_subsampled(name, seed=args.data_seed), args.entity_free_share,
                                   train_size=args.train_size, test_size=args.test_size, seed=args.data_seed)
        token = data.task == "token"  # NER: TransformerTokenClassifier, span-level F1
        Estimator = TransformerTokenClassifier if token else TransformerClassifier
        X, X_test = list(data.X_train), list(data.X_test)
        y, y_test = (list(data.y_train), list(data.y_test)) if token else (np.asarray(data.y_train),
                                                                            np.asarray(data.y_test))
        n_classes = len({t[2:] for s in y for t in s if t != "O"}) if token else len(np.unique(y))
        log(f"\n## {name}: {len(X)} train / {len(X_test)} test, {n_classes} {'entity types' if token else 'classes'}")
        budget = dict(backbone=args.backbone, max_epochs=args.epochs, batch_size=args.batch_size,
                      max_length=args.max_length, lr=args.lr, device=args.device, training="hamr",
                      **({} if token else {"pooling": args.pooling}))
        # warm-up (thread pools, allocator, kernels), so that the first variant timed is not penalised
        if token:
            warm = list(range(min(len(X), 4 * args.batch_size)))
        else:
            _, first = np.unique(y, return_index=True)  # every class once, then the first rows
            warm = list(dict.fromkeys([*first.tolist(), *range(min(len(X), 4 * args.batch_size))]))
        Estimator(**{**budget, "max_epochs": 1, "random_state": 0}, **VARIANTS["none"]).fit(
            [X[i] for i in warm], [y[i] for i in warm] if token else y[warm])
        for seed in ints(args.seeds):
            for variant in _names(args.variants):
                params = dict(budget, random_state=seed, **VARIANTS[variant])
                if args.meta == "dev":
                    params["training__meta_set"] = (list(data.X_dev), list(data.y_dev) if token else list(np.asarray(data.y_dev)))
                else:
                    params["validation_fraction"] = 0.1
                clf = Estimator(**params)
                rec = {"dataset": name, "variant": variant, "seed": seed}
                feature_cache.clear()  # every fit pays for its own kNN embeddings
                with measure(rec):
                    clf.fit(X, y)
                rec["train_s"] = rec.pop("wall_s")
                t0 = time.perf_counter()
                y_pred = clf.predict(X_test)
                rec["predict_s"] = time.perf_counter() - t0
                metrics, per_class, quartiles = evaluate(data.task, y_test, y_pred, y_train=y)
                rec.update(metrics=metrics, per_class_f1=per_class, quartile_f1=quartiles)
                n_train = len(clf.hardness_)
                per_epoch = clf.training_.epoch_size(n_train) if getattr(clf, "resampling_", False) else n_train
                rec["n_train"] = n_train
                rec["meta_set_size"] = int(clf.meta_set_size_)
                rec["samples_drawn"] = per_epoch * clf.n_iter_
                rec["ms_per_sample"] = 1000 * rec["train_s"] / max(1, rec["samples_drawn"])
                if clf.sample_weights_history_:
                    last = clf.sample_weights_history_[-1]
                    rec["wnet_weights_last_epoch"] = {k: last[k] for k in ("min", "median", "max") if k in last}
                log(f"[{name} seed {seed}] {variant:16s} macro-F1 {metrics['macro_f1']:.4f} "
                    f"micro-F1 {metrics['micro_f1']:.4f} train {rec['train_s']:.1f}s "
                    f"peak {rec['peak_mib']:.0f} MiB (N={n_train}, meta {rec['meta_set_size']})")
                runs.append(rec)
                if on_run is not None:
                    on_run(runs)
    return add_time_ratios(runs)


def add_time_ratios(runs, reference="none"):
    """``time_vs_none``: training time over that of ``reference`` with the same data set and seed."""
    base = {(r["dataset"], r["seed"]): r["train_s"] for r in runs if r["variant"] == reference}
    for r in runs:
        b = base.get((r["dataset"], r["seed"]))
        r["time_vs_none"] = r["train_s"] / b if b else float("nan")
    return runs


def training_tables(runs, reference="none"):
    out = []
    for name in dict.fromkeys(r["dataset"] for r in runs):
        rows = []
        for variant in dict.fromkeys(r["variant"] for r in runs if r["dataset"] == name):
            rs = [r for r in runs if r["dataset"] == name and r["variant"] == variant]
            rows.append([variant, fmt([r["metrics"]["macro_f1"] for r in rs]),
                         fmt([r["metrics"]["micro_f1"] for r in rs])]
                        + [fmt([r["quartile_f1"].get(q, float("nan")) for r in rs], 3) for q in QUARTILES]
                        + [fmt([r["train_s"] for r in rs], 1), fmt([r["time_vs_none"] for r in rs], 2),
                           fmt([r["ms_per_sample"] for r in rs], 1), fmt([r["peak_mib"] for r in rs], 0)])
        out.append(f"### {name}\n\n" + markdown_table(
            ["variant", "macro-F1", "micro-F1", *(f"{q} F1" for q in QUARTILES), "train s", f"time / {reference}",
             "ms / drawn sample", "peak MiB"], rows))
    return "\n\n".join(out)


# ----------------------------------------------------------------------------- kNN part


def _clustered(n, d, n_clusters, rng):
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    labels = rng.integers(0, n_clusters, size=n)
    x = centres[labels] + 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_knn(args, log=print):
    from sklearn.neighbors import NearestNeighbors

    from skimb.training.hamr import build_index, knn_search, neighbor_boost, recall_at_k

    results = []
    for n in ints(args.knn_sizes):
        rng = np.random.default_rng(0)
        emb = _clustered(n, args.knn_dim, args.knn_clusters, rng)
        hard = np.sort(rng.choice(n, size=max(1, int(args.knn_ratio * n)), replace=False))
        k = args.knn_k
        rec = {"n": n, "dim": args.knn_dim, "n_hard": int(hard.size), "k": k}

        t0 = time.perf_counter()
        flat = build_index(emb, "flat")
        _, ids_faiss = knn_search(flat, emb[hard], k)
        boost_faiss = neighbor_boost(flat, emb, hard, k)
        rec["faiss_flat_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(emb)
        _, ids_sk = nn.kneighbors(emb[hard])
        counts = np.bincount(ids_sk.ravel(), minlength=n).astype(np.float64)
        boost_sk = counts / counts.max()
        rec["sklearn_brute_s"] = time.perf_counter() - t0
        rec["sklearn_over_faiss"] = rec["sklearn_brute_s"] / rec["faiss_flat_s"]

        same = np.array([set(a) == set(b) for a, b in zip(ids_faiss.tolist(), ids_sk.tolist())])
        rec["identical_neighbour_sets"] = float(same.mean())
        rec["identical_ordered"] = float(np.mean(np.all(ids_faiss == ids_sk, axis=1)))
        rec["boost_max_abs_diff"] = float(np.abs(boost_faiss - boost_sk).max())
        # rows whose sets differ: is the difference a near-tie at the k-th neighbour (float32 rounding)?
        gaps = []
        for r in np.flatnonzero(~same):
            q = emb[hard[r]].astype(np.float64)
            sims = lambda ids: np.sort(emb[np.asarray(ids)].astype(np.float64) @ q)[::-1]  # noqa: E731
            gaps.append(abs(sims(ids_faiss[r])[-1] - sims(ids_sk[r])[-1]))
        rec["rows_differing"] = int((~same).sum())
        rec["max_kth_similarity_gap"] = float(max(gaps)) if gaps else 0.0

        for kind in ("ivf", "hnsw"):
            t0 = time.perf_counter()
            index = build_index(emb, kind)
            neighbor_boost(index, emb, hard, k)
            rec[f"faiss_{kind}_s"] = time.perf_counter() - t0
            rec[f"faiss_{kind}_recall"] = recall_at_k(index, flat, emb[hard], k)
        log(f"[kNN N={n}] faiss flat {rec['faiss_flat_s']:.2f}s, sklearn brute {rec['sklearn_brute_s']:.2f}s "
            f"(x{rec['sklearn_over_faiss']:.2f}); identical neighbour sets {rec['identical_neighbour_sets']:.4f}, "
            f"boost max |diff| {rec['boost_max_abs_diff']:.2g}, k-th similarity gap where sets differ "
            f"{rec['max_kth_similarity_gap']:.1g}; ivf {rec['faiss_ivf_s']:.2f}s "
            f"recall {rec['faiss_ivf_recall']:.3f}; hnsw {rec['faiss_hnsw_s']:.2f}s recall "
            f"{rec['faiss_hnsw_recall']:.3f}")
        results.append(rec)
    return results


def knn_table(results):
    rows = [[r["n"], r["dim"], r["n_hard"], r["k"], f"{r['faiss_flat_s']:.2f}", f"{r['sklearn_brute_s']:.2f}",
             f"{r['sklearn_over_faiss']:.2f}", f"{r['identical_neighbour_sets']:.4f}",
             f"{r['boost_max_abs_diff']:.2g}", f"{r['max_kth_similarity_gap']:.1g}", f"{r['faiss_ivf_s']:.2f} / {r['faiss_ivf_recall']:.3f}",
             f"{r['faiss_hnsw_s']:.2f} / {r['faiss_hnsw_recall']:.3f}"] for r in results]
    return markdown_table(["N", "dim", "hard", "k", "FAISS flat s", "sklearn brute s", "sklearn / FAISS",
                   "identical neighbour sets", "boost max |diff|", "k-th sim. gap where different", "IVF s / recall@k", "HNSW s / recall@k"], rows)


# ----------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="cyclone_idai_2019,sst5", help='comma-separated; "" skips training')
    p.add_argument("--train-size", type=int, default=0, help="stratified subsample of train; 0 = all")
    p.add_argument("--test-size", type=int, default=0, help="stratified subsample of test; 0 = all")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"from {', '.join(VARIANTS)}")
    p.add_argument("--meta", choices=["split", "dev"], default="split")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--entity-free-share", type=float, default=None,
                   help="NER: redraw train and test so that this share of the sentences has no entity "
                        "(a tweet-NER-like regime)")
    p.add_argument("--pooling", default="mean", choices=["mean", "cls", "pooler"],
                   help="text classification: pooling='pooler' classifies BERT's pooler output, as the "
                        "reference code's AutoModelForSequenceClassification does")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--backbone", default=None, help="default: the offline MiniLM")
    p.add_argument("--device", default="auto")
    p.add_argument("--knn-sizes", default="10000,100000", help='comma-separated N; "" skips the kNN part')
    p.add_argument("--knn-dim", type=int, default=384)
    p.add_argument("--knn-clusters", type=int, default=50)
    p.add_argument("--knn-k", type=int, default=10)
    p.add_argument("--knn-ratio", type=float, default=0.1)
    p.add_argument("--out", default="benchmarks/results/hamr.json")
    p.add_argument("--tables-from", default=None,
                   help="comma-separated result JSONs: print their training tables (time ratios to "
                        "--time-reference) and exit; for studies run in several processes")
    p.add_argument("--time-reference", default="none", help="variant the times are divided by (--tables-from)")
    args = p.parse_args(argv)
    if args.tables_from:
        runs = [r for f in _names(args.tables_from) for r in json.loads(Path(f).read_text())["runs"]]
        print(training_tables(add_time_ratios(runs, args.time_reference), args.time_reference))
        return 0
    unknown = [v for v in _names(args.variants) if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    t0 = time.perf_counter()
    command = command_line("benchmarks/hamr.py", argv)
    out = Path(args.out)

    def save(runs, knn=()):
        write_json(out, {"command": command, "machine": machine_description(), "args": vars(args),
                         "runs": runs, "knn": list(knn)})

    # written after every fit, so that an interrupted study keeps what it measured
    runs = run_training(args, on_run=save) if _names(args.datasets) else []
    knn = run_knn(args) if ints(args.knn_sizes) else []
    md = [f"# HAMR benchmark\n\n`{command}`\n\n{machine_description()}; total {time.perf_counter() - t0:.0f} s"]
    if runs:
        md.append("## Training (mean ± std over seeds)\n\n" + training_tables(runs))
    if knn:
        md.append("## Neighbour search for the kNN boost\n\n" + knn_table(knn))
    markdown = "\n\n".join(md)
    print("\n" + markdown)
    save(runs, knn)
    out.with_suffix(".md").write_text(markdown + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
