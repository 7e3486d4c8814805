"""Neighbour search for HAMR's kNN boost by index size: recall against exact search and time.

For each size N, clustered unit vectors (``--dim``, ``--clusters`` Gaussian clusters), and the
boost's workload: the ``--hard-share`` hardest rows (at most ``--max-queries``) query their
``--k`` nearest neighbours. Times build + search for scikit-learn's exact ``NearestNeighbors``
(brute force, cosine; up to ``--sklearn-max``), FAISS flat (exact), IVF over an ``nprobe`` sweep
and HNSW (up to ``--hnsw-max``), and the index ``build_index(kind="auto")`` picks. Recall@k is
against FAISS flat.

    python benchmarks/knn_index.py --sizes 10000,100000,1000000 --out benchmarks/results/knn_index.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import ints, markdown_table, publish

from skimb.utils._neighbors import auto_index_kind, build_index, knn_search


def clustered(n, d, n_clusters, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, size=n)]
    x += 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall(found, exact):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_size(args, n, log):
    x = clustered(n, args.dim, args.clusters, seed=n)
    rng = np.random.default_rng(1)
    q_idx = rng.choice(n, size=min(int(args.hard_share * n), args.max_queries), replace=False)
    queries, k = x[q_idx], args.k
    rows = []

    def add(method, build_s, search_s, ids, exact_ids):
        r = {"N": n, "method": method, "queries": len(q_idx), "build_s": build_s, "search_s": search_s,
             "total_s": build_s + search_s, "recall": recall(ids, exact_ids) if exact_ids is not None else 1.0}
        rows.append(r)
        log(f"N={n:>8} {method:28s} build {build_s:7.2f}s search {search_s:7.2f}s recall {r['recall']:.4f}")

    build_s, flat = timed(lambda: build_index(x, "flat"))
    search_s, (_, exact) = timed(lambda: knn_search(flat, queries, k))
    add("faiss flat (exact)", build_s, search_s, exact, None)
    del flat
    if n <= args.sklearn_max:
        from sklearn.neighbors import NearestNeighbors

        build_s, nn = timed(lambda: NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine").fit(x))
        search_s, ids = timed(lambda: nn.kneighbors(queries, return_distance=False))
        add("sklearn brute (exact)", build_s, search_s, ids, exact)
    nlist = max(1, int(round(args.nlist_per_sqrt * np.sqrt(n))))
    for nprobe in ints(args.nprobes):
        if nprobe > nlist:
            continue
        build_s, ivf = timed(lambda: build_index(x, "ivf", nlist=nlist, nprobe=nprobe,
                                                 train_per_list=args.train_per_list))
        search_s, (_, ids) = timed(lambda: knn_search(ivf, queries, k))
        add(f"ivf nlist={nlist} nprobe={nprobe}", build_s, search_s, ids, exact)
    if n <= args.hnsw_max:
        build_s, hnsw = timed(lambda: build_index(x, "hnsw"))
        search_s, (_, ids) = timed(lambda: knn_search(hnsw, queries, k))
        add("hnsw M=32 ef=64", build_s, search_s, ids, exact)
    build_s, auto = timed(lambda: build_index(x, "auto"))
    search_s, (_, ids) = timed(lambda: knn_search(auto, queries, k))
    add(f"auto ({auto_index_kind(n)})", build_s, search_s, ids, exact)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=50)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--hard-share", type=float, default=0.1)
    p.add_argument("--max-queries", type=int, default=10_000)
    p.add_argument("--nprobes", default="4,8,16,32,64")
    p.add_argument("--nlist-per-sqrt", type=float, default=2.0, help="IVF lists = this x sqrt(N)")
    p.add_argument("--train-per-list", type=int, default=16, help="k-means training points per list")
    p.add_argument("--sklearn-max", type=int, default=100_000)
    p.add_argument("--hnsw-max", type=int, default=100_000)
    p.add_argument("--out", default="benchmarks/results/knn_index.json")
    args = p.parse_args(argv)
    runs = []
    for n in ints(args.sizes):
        runs += run_size(args, n, print)
    table = []
    for r in runs:
        base = next((b for b in runs if b["N"] == r["N"] and b["method"].startswith("sklearn")), None)
        speed = f"{base['total_s'] / r['total_s']:.1f}" if base else "n/a"
        table.append([r["N"], r["queries"], r["method"], f"{r['build_s']:.2f}", f"{r['search_s']:.2f}",
                      f"{r['total_s']:.2f}", speed, f"{r['recall']:.4f}"])
    md_table = markdown_table(["N", "queries", "method", "build s", "search s", "total s", "sklearn / this",
                               "recall@k"], table)
    publish("benchmarks/knn_index.py", argv, args.out, "Neighbour search by index size",
            f"{args.dim}-d unit vectors in {args.clusters} clusters, k={args.k}, queries: {args.hard_share:.0%} of N, "
            f"at most {args.max_queries}\n\n{md_table}", runs)


if __name__ == "__main__":
    main()
