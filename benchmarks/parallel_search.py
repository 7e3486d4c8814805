"""Candidates per hour of a grid search on the CPU: one process using every core against
single-threaded workers, one per core (joblib's loky backend, and a Dask ``LocalCluster``),
side by side in one run.

The same ``GridSearchCV`` (``TransformerClassifier``, the bundled MiniLM, a small grid, 2 folds,
no refit) runs in each mode; the modes alternate ``--repeats`` times so that machine noise hits
all of them. Worker start-up (loky's executor, the Dask cluster) is paid once before the timing,
as in a long search. Reports fits per hour, the speed-up over one process and the largest
difference of a candidate's mean score from the one-process run (thread counts change the order
of floating-point sums, so scores may differ in the last digits).

    python benchmarks/parallel_search.py --dataset cyclone_idai_2019 --train-size 600 --repeats 2 \
        --out benchmarks/results/parallel_search.json
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from _common import fmt, load_subsampled, markdown_table, publish

MODES = ("one process", "loky", "dask")


def _search(args, n_jobs):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skimb import TransformerClassifier

    est = TransformerClassifier(max_epochs=args.epochs, batch_size=16, max_length=64, random_state=0)
    grid = {"class_weight": [None, "balanced"], "lr": [1e-4, 2e-4]}
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    return GridSearchCV(est, grid, cv=cv, scoring="f1_macro", refit=False, n_jobs=n_jobs)


def _timed(search, X, y, backend=None):
    from joblib import parallel_config

    t0 = time.perf_counter()
    if backend is None:
        search.fit(X, y)
    else:
        with parallel_config(backend=backend):
            search.fit(X, y)
    return time.perf_counter() - t0, search.cv_results_["mean_test_score"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=600)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/parallel_search.json")
    args = p.parse_args(argv)

    from dask.distributed import Client, LocalCluster
    from joblib import Parallel, delayed

    cores = os.cpu_count() or 1
    data = load_subsampled(args.dataset, train_size=args.train_size)
    X, y = list(data.X_train), np.asarray(data.y_train)
    Parallel(n_jobs=cores)(delayed(abs)(i) for i in range(cores))  # start loky's workers
    client = Client(LocalCluster(n_workers=cores, threads_per_worker=1, processes=True))
    client.run(lambda: __import__("skimb"))  # import torch and skimb on the workers
    n_fits = 8  # 4 candidates x 2 folds
    runs = []
    for r in range(args.repeats):
        order = MODES if r % 2 == 0 else MODES[::-1]
        for mode in order:
            torch.set_num_threads(cores)  # the parent (mode "one process") uses every core
            if mode == "one process":
                seconds, scores = _timed(_search(args, 1), X, y)
            elif mode == "loky":
                seconds, scores = _timed(_search(args, cores), X, y)
            else:
                seconds, scores = _timed(_search(args, cores), X, y, backend="dask")
            runs.append({"mode": mode, "repeat": r, "seconds": seconds, "fits_per_hour": 3600 * n_fits / seconds,
                         "mean_test_score": [float(s) for s in scores]})
            print(f"[repeat {r}] {mode:12s} {seconds:7.1f} s  {3600 * n_fits / seconds:6.1f} fits/h", flush=True)
    client.close()

    base = {r["repeat"]: r for r in runs if r["mode"] == "one process"}
    rows = []
    for mode in MODES:
        rs = [r for r in runs if r["mode"] == mode]
        speedup = [base[r["repeat"]]["seconds"] / r["seconds"] for r in rs]
        diff = max(float(np.max(np.abs(np.subtract(r["mean_test_score"], base[r["repeat"]]["mean_test_score"]))))
                   for r in rs)
        workers = "1 process" if mode == "one process" else f"{cores} workers x 1 thread"
        threads = cores if mode == "one process" else 1
        rows.append([mode, workers, threads, fmt([r["seconds"] for r in rs], 1), fmt([r["fits_per_hour"] for r in rs], 1),
                     fmt(speedup, 2), f"{diff:.4f}"])
    table = markdown_table(["mode", "workers", "torch threads each", "search s", "fits / hour", "speed-up",
                            "max score diff"], rows)
    publish("benchmarks/parallel_search.py", argv, args.out, "Grid search: one process vs one single-threaded worker per core",
            f"{args.dataset}, {len(X)} training texts, {args.epochs} epoch(s), 4 candidates x 2 folds, "
            f"{args.repeats} alternating repeats (mean ± std)\n\n{table}", runs)


if __name__ == "__main__":
    main()
