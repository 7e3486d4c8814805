"""Peak memory and throughput of encoding many texts: does memory stay bounded as N grows?

Embeds N texts (Cyclone-Idai tweets, repeated with a counter so that every text is new) with
``TransformerEmbedder(cache=False)``, the path every prediction of a transformer estimator takes
(chunked tokenisation and encoding into one preallocated array), for each N in ``--sizes``, in one
process, smallest first. Reports wall time, texts per second, the process's peak RSS during the
call (reset before each size on Linux) and the output array's own size.

    python benchmarks/predict_memory.py --sizes 1000,10000,100000 --out benchmarks/results/predict_memory.json

``--backbone embeddings-only`` swaps MiniLM's six transformer layers for none (its tokenizer and
384-wide output kept, the weights random): the same chunked path at a few thousand texts per
second, so that sizes of 10⁶ texts, beyond several chunks, run in minutes. It measures the
streaming, not MiniLM's activations.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from _common import ints, load_subsampled, markdown_table, measure, publish


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backbone", default="minilm", help="'minilm', 'embeddings-only' or a local model folder")
    p.add_argument("--out", default="benchmarks/results/predict_memory.json")
    args = p.parse_args(argv)

    import torch

    from skimb import TransformerEmbedder

    base = list(load_subsampled(args.dataset).X_train)
    backbone = _embeddings_only() if args.backbone == "embeddings-only" else args.backbone
    emb = TransformerEmbedder(backbone, max_length=args.max_length, batch_size=args.batch_size, cache=False).fit()
    emb.transform(base[:64])  # warm-up
    runs = []
    for n in ints(args.sizes):
        texts = [f"{base[i % len(base)]} #{i}" for i in range(n)]
        rec = {"N": n, "input_mib": (sys.getsizeof(texts) + sum(map(sys.getsizeof, texts))) / 2**20}
        with measure(rec):
            out = emb.transform(texts)
        rec.update(texts_per_s=n / rec["wall_s"], output_mib=out.nbytes / 2**20)
        runs.append(rec)
        print(f"N={n:>8}  {rec['wall_s']:7.1f} s  {rec['texts_per_s']:6.1f} texts/s  peak {rec['peak_mib']:.0f} MiB  "
              f"output {rec['output_mib']:.1f} MiB", flush=True)
        del texts, out
        _publish(args, argv, runs)  # after every size: a long run keeps what it measured


def _embeddings_only() -> str:
    """A folder with MiniLM's tokenizer and a random BERT of MiniLM's width with no layers."""
    import tempfile

    import torch
    from transformers import AutoConfig, AutoTokenizer, BertModel

    from skimb.backbones import resolve_backbone

    minilm = resolve_backbone("minilm")
    folder = tempfile.mkdtemp(prefix="skimb-embeddings-only-")
    config = AutoConfig.from_pretrained(minilm)
    config.num_hidden_layers = 0
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm).save_pretrained(folder)
    return folder


def _publish(args, argv, runs):
    import torch

    rows = [[r["N"], f"{r['wall_s']:.1f}", f"{r['texts_per_s']:.1f}", f"{r['peak_mib']:.0f}", f"{r['output_mib']:.1f}",
             f"{r['input_mib']:.1f}", f"{r['peak_mib'] - r['output_mib'] - r['input_mib']:.0f}"] for r in runs]
    table = markdown_table(["texts", "seconds", "texts / s", "peak RSS MiB", "output MiB", "input texts MiB",
                            "peak minus output and input MiB"], rows)
    publish("benchmarks/predict_memory.py", argv, args.out, "Encoding many texts: peak memory and throughput",
            f"{torch.get_num_threads()} torch threads; backbone {args.backbone}, max length {args.max_length}, "
            f"batch {args.batch_size}"
            f"\n\n{table}", runs)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
