"""Peak memory and throughput of encoding many texts: does memory stay bounded as N grows?

Embeds N texts (Cyclone-Idai tweets, repeated with a counter so that every text is new) with
``TransformerEmbedder(cache=False)``, the path every prediction of a transformer estimator takes
(chunked tokenisation and encoding into one preallocated array), for each N in ``--sizes``, in one
process, smallest first. Reports wall time, texts per second, the process's peak RSS during the
call (reset before each size on Linux) and the output array's own size.

    python benchmarks/predict_memory.py --sizes 1000,10000,100000 --out benchmarks/results/predict_memory.json
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import ints, load_subsampled, markdown_table, measure, publish


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="benchmarks/results/predict_memory.json")
    args = p.parse_args(argv)

    import torch

    from skimb import TransformerEmbedder

    base = list(load_subsampled(args.dataset).X_train)
    emb = TransformerEmbedder(max_length=args.max_length, batch_size=args.batch_size, cache=False).fit()
    emb.transform(base[:64])  # warm-up
    runs = []
    for n in ints(args.sizes):
        texts = [f"{base[i % len(base)]} #{i}" for i in range(n)]
        rec = {"N": n}
        with measure(rec):
            out = emb.transform(texts)
        rec.update(texts_per_s=n / rec["wall_s"], output_mib=out.nbytes / 2**20)
        runs.append(rec)
        print(f"N={n:>8}  {rec['wall_s']:7.1f} s  {rec['texts_per_s']:6.1f} texts/s  peak {rec['peak_mib']:.0f} MiB  "
              f"output {rec['output_mib']:.1f} MiB", flush=True)
        del texts, out
        _publish(args, argv, runs)  # after every size: a long run keeps what it measured


def _publish(args, argv, runs):
    import torch

    rows = [[r["N"], f"{r['wall_s']:.1f}", f"{r['texts_per_s']:.1f}", f"{r['peak_mib']:.0f}", f"{r['output_mib']:.1f}",
             f"{r['peak_mib'] - r['output_mib']:.0f}"] for r in runs]
    table = markdown_table(["texts", "seconds", "texts / s", "peak RSS MiB", "output MiB", "peak minus output MiB"], rows)
    publish("benchmarks/predict_memory.py", argv, args.out, "Encoding many texts: peak memory and throughput",
            f"{torch.get_num_threads()} torch threads; MiniLM, max length {args.max_length}, batch {args.batch_size}"
            f"\n\n{table}", runs)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
