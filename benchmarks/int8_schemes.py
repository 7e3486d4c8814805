"""Which dynamic-int8 scheme: one weight scale per matrix or per output channel, side by side.

Loads the models that ``benchmarks/inference.py --models DIR`` saved (one per seed), predicts the
test split in float32, with every ``nn.Linear`` of the encoder quantised with one scale per weight
matrix (torch's default qconfig, skimb's ``quantize="int8"`` before round 7), and with one scale per
output channel (skimb's ``quantize="int8"`` since), alternating the three ``--repeats`` times.

    python benchmarks/int8_schemes.py --models /tmp/int8_models --seeds 0,1,2 --threads 2 \
        --out benchmarks/results/int8_schemes.json
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from _common import command_line, fmt, ints, load_subsampled, machine_description, markdown_table, write_outputs

SCHEMES = ("float32", "per-matrix", "per-channel")


def _quantised(module, scheme):
    if scheme == "float32":
        return module
    qconfig = (torch.ao.quantization.default_dynamic_qconfig if scheme == "per-matrix"
               else torch.ao.quantization.per_channel_dynamic_qconfig)
    out = copy.deepcopy(module).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.encoder = torch.ao.quantization.quantize_dynamic(out.encoder, {nn.Linear: qconfig}, dtype=torch.qint8)
    return out


def run_seed(args, data, seed):
    from sklearn.metrics import f1_score

    from skimb import TransformerClassifier

    clf = TransformerClassifier.load_pretrained(Path(args.models) / f"seed{seed}", device="cpu")
    fitted = clf.net_.module_
    modules = {s: _quantised(fitted, s) for s in SCHEMES}
    texts, speeds, preds = list(data.X_test), {s: [] for s in SCHEMES}, {}
    for _ in range(args.repeats):
        for scheme in SCHEMES:
            clf.net_.module_ = modules[scheme]
            clf.predict(texts[:64])
            t0 = time.perf_counter()
            preds[scheme] = clf.predict(texts)
            speeds[scheme].append(len(texts) / (time.perf_counter() - t0))
    clf.net_.module_ = fitted
    rec = {"seed": seed}
    for s in SCHEMES:
        rec[s] = {"texts_per_s": float(np.median(speeds[s])), "agreement": float(np.mean(preds[s] == preds["float32"])),
                  "macro_f1": float(f1_score(data.y_test, preds[s], average="macro"))}
    print(rec, flush=True)
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--models", required=True, help="the folder inference.py --models wrote (seed<n>/)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_subsampled(args.dataset, train_size=0, test_size=0, seed=0)
    records = [run_seed(args, data, seed) for seed in ints(args.seeds)]
    base = [r["float32"]["texts_per_s"] for r in records]
    rows = [[s, fmt([r[s]["texts_per_s"] for r in records], 1),
             fmt([r[s]["texts_per_s"] / b for r, b in zip(records, base)], 2),
             fmt([r[s]["macro_f1"] for r in records]),
             fmt([r[s]["macro_f1"] - r["float32"]["macro_f1"] for r in records]),
             fmt([r[s]["agreement"] for r in records], 4)] for s in SCHEMES]
    md = "\n".join([
        f"# Dynamic int8 schemes on {args.dataset}", "",
        f"- command: `{command_line('benchmarks/int8_schemes.py', argv)}`",
        f"- machine: {machine_description()}; torch threads: {args.threads}",
        f"- test {len(data.X_test)} texts; seeds {args.seeds}; median of {args.repeats} alternating repeats", "",
        markdown_table(["scheme", "texts / s", "x float32", "macro-F1", "change", "same prediction"], rows)])
    write_outputs(args.out, {"command": command_line("benchmarks/int8_schemes.py", argv), "args": vars(args),
                             "machine": machine_description(), "records": records}, md)
    print(md)


if __name__ == "__main__":
    main()
