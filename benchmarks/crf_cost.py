"""What the CRF costs a tagger: training time of ``decoding="crf"`` against cross-entropy, side by side.

Fits the two taggers alternately (``--repeats`` times each, the same sentences, seed and budget) in one
process and one thread, and reports each fit's seconds and the median ratio, with the machine named.

    python benchmarks/crf_cost.py --dataset mit_restaurant --train-size 800 --epochs 1 --repeats 2 \\
        --out benchmarks/results/crf_cost_round42.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, load_subsampled, machine_description, markdown_table, write_outputs  # noqa: E402

VARIANTS = {"ce": {"loss": "ce"}, "crf": {"loss": "ce", "decoding": "crf"}}


def main(argv=None):
    import torch

    from skimb import TransformerTokenClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mit_restaurant")
    p.add_argument("--train-size", type=int, default=800)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_subsampled(args.dataset, train_size=args.train_size, seed=0, task="token")
    times = {name: [] for name in VARIANTS}
    # untimed: the first fit of a process loads the backbone into the process-wide cache
    TransformerTokenClassifier(max_epochs=1, batch_size=16, max_length=64, random_state=0,
                               device="cpu").fit(data.X_train[:32], data.y_train[:32])
    for _ in range(args.repeats):
        for name, params in VARIANTS.items():  # alternately: drift in the machine's speed hits both
            clf = TransformerTokenClassifier(max_epochs=args.epochs, batch_size=16, max_length=64, lr=2e-4,
                                             random_state=0, device="cpu", **params)
            t0 = time.perf_counter()
            clf.fit(data.X_train, data.y_train)
            times[name].append(time.perf_counter() - t0)
    ratios = [c / e for c, e in zip(times["crf"], times["ce"])]
    rows = [[name, ", ".join(f"{t:.1f}" for t in ts), f"{np.median(ts):.1f}"] for name, ts in times.items()]
    body = (f"{machine_description()}\n\n{len(data.X_train)} {args.dataset} sentences, {args.epochs} epoch(s), "
            f"batch 16, 64 tokens, one thread, the fits alternating.\n\n"
            + markdown_table(["tagger", "fit s (each repeat)", "median"], rows)
            + f"\n\nCRF / cross-entropy: median {np.median(ratios):.2f} (each repeat: "
            + ", ".join(f"{r:.2f}" for r in ratios) + ")\n")
    write_outputs(args.out, {"command": command_line("benchmarks/crf_cost.py", argv), "machine": machine_description(),
                             "times_s": times, "ratios": ratios}, "# What the CRF costs a tagger\n\n" + body)
    print(body)


if __name__ == "__main__":
    main()
