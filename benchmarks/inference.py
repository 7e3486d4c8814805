"""Faster CPU prediction: ``quantize="int8"`` and ``"onnx-int8"`` against float32, side by side in one run.

Fits one ``TransformerClassifier`` per seed (weighted CE, the bundled MiniLM) on a data set's
training split, then predicts the test split with the float32 model and with each of ``--modes``
(``set_params(quantize=mode)``, no refit: torch's dynamic int8 with one scale per output channel,
or the encoder in ONNX Runtime with int8 weights), alternating them ``--repeats`` times so that
machine noise hits all. Reports texts per second (median over repeats), their ratio, and
macro-F1 of both (mean ± std over seeds), with the threads used. ``--models DIR`` keeps the fitted
models, so that a later run (on an idle machine, with other threads) measures without refitting.

    python benchmarks/inference.py --dataset cyclone_idai_2019 --seeds 0 --threads 2 \
        --out benchmarks/results/inference_int8.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _common import command_line, fmt, ints, load_subsampled, machine_description, markdown_table, write_outputs


def _throughput(clf, texts, mode):
    clf.set_params(quantize=mode)
    clf.predict(texts[:64])  # the int8 copy is built once, outside the timing
    t0 = time.perf_counter()
    pred = clf.predict(texts)
    return len(texts) / (time.perf_counter() - t0), pred


def run_seed(args, data, seed):
    from sklearn.metrics import f1_score

    from skimb import TransformerClassifier

    saved = Path(args.models) / f"seed{seed}" if args.models else None
    fit_s = None
    if saved is not None and saved.exists():  # fitted by an earlier run with the same settings
        clf = TransformerClassifier.load_pretrained(saved, device="cpu")
    else:
        clf = TransformerClassifier(class_weight="balanced", max_epochs=args.epochs, batch_size=args.batch_size,
                                    max_length=args.max_length, lr=args.lr, random_state=seed)
        t0 = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        fit_s = time.perf_counter() - t0
        if saved is not None:
            clf.save_pretrained(saved)
    modes = [None, *args.modes.split(",")]
    speeds = {mode: [] for mode in modes}
    preds = {}
    for r in range(args.repeats):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            speed, preds[mode] = _throughput(clf, list(data.X_test), mode)
            speeds[mode].append(speed)
    rec = {"seed": seed, "fit_s": fit_s}
    for mode in modes:
        name = mode or "float32"
        rec[f"{name}_texts_per_s"] = float(np.median(speeds[mode]))
        rec[f"{name}_macro_f1"] = float(f1_score(data.y_test, preds[mode], average="macro"))
        if mode is not None:
            rec[f"{name}_speedup"] = rec[f"{name}_texts_per_s"] / rec["float32_texts_per_s"]
            rec[f"{name}_agreement"] = float(np.mean(preds[None] == preds[mode]))
    print(rec, flush=True)
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--test-size", type=int, default=0)
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--modes", default="int8,onnx-int8", help="quantize values to time against float32")
    p.add_argument("--models", default="",
                   help="a folder for the fitted models (seed<n>/): loaded when there, else fitted and saved")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size, seed=0)
    records = [run_seed(args, data, seed) for seed in ints(args.seeds)]
    names = ["float32", *args.modes.split(",")]
    rows = [[name, fmt([r[f"{name}_texts_per_s"] for r in records], 1), fmt([r[f"{name}_macro_f1"] for r in records]),
             *([fmt([r[f"{name}_speedup"] for r in records], 2),
                fmt([r[f"{name}_agreement"] for r in records], 4),
                fmt([100 * (r[f"{name}_macro_f1"] - r["float32_macro_f1"]) for r in records], 2)]
               if name != "float32" else ["1", "1", "0"])]
            for name in names]
    md = "\n".join([
        f"# Prediction in float32 and with int8 weights on {args.dataset}", "",
        f"- command: `{command_line('benchmarks/inference.py', argv)}`",
        f"- machine: {machine_description()}; threads: {args.threads}",
        f"- train {len(data.X_train)} / test {len(data.X_test)} texts; seeds {args.seeds}", "",
        markdown_table(["model", "test texts / s (median of repeats)", "macro-F1", "throughput / float32",
                        "same prediction", "macro-F1 change, points"], rows)])
    write_outputs(args.out, {"command": command_line("benchmarks/inference.py", argv), "args": vars(args),
                             "machine": machine_description(), "records": records}, md)
    print(md)


if __name__ == "__main__":
    main()
