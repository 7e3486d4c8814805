"""Variants of CALoRA with class adapters inside the backbone (``head__layers``) on one stage 1.

Fits head-only CALoRA once per seed (its stage 1 kept on disk with ``head__memory``, so several
processes share it), then each variant of ``--variants`` on the same stage 1, and scores every model
on the test split. A variant is ``name:key=value,key=value`` over the ``head__`` parameters
(``layers`` is ``last`` or ``+``-separated layer names).

    python benchmarks/calora_layers.py --seeds 2 --memory /tmp/skimb-stage1 \
        --variants "l1:layers=last;l3:layers=last,layer_epochs=3" \
        --out benchmarks/results/calora_layers_variants_s2.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from _common import class_logits, command_line, fmt, load_subsampled, machine_description, markdown_table, write_outputs
from quality import _report


def parse_variants(text):
    variants = {}
    for spec in filter(None, text.split(";")):
        name, _, body = spec.partition(":")
        params = {}
        for item in filter(None, body.split(",")):
            key, _, value = item.partition("=")
            if key == "layers":
                params["head__layers"] = value if value == "last" else value.split("+")
            elif key in ("epochs", "rank", "k", "layer_epochs"):
                params[f"head__{key}"] = int(value)
            elif key in ("lr", "layer_lr"):
                params[f"head__{key}"] = float(value)
            else:
                params[f"head__{key}"] = value
        variants[name] = params
    return variants


def main(argv=None):
    from sklearn.base import clone

    from skimb import TransformerClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--test-size", type=int, default=0)
    p.add_argument("--loss", default="ce", help="ce, or wce (class_weight='balanced')")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--finetune", default="full", help="stage 1's finetune (full, head)")
    p.add_argument("--lr", default="1e-4", help="stage 1's learning rate ('auto': the finetune mode's)")
    p.add_argument("--memory", required=True, help="folder of the shared stage-1 cache")
    p.add_argument("--variants", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size, seed=0)
    variants = {"head_only": {}, **parse_variants(args.variants)}
    loss = dict(loss="ce", class_weight="balanced") if args.loss == "wce" else dict(loss="ce")
    records = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        base = TransformerClassifier(max_epochs=args.epochs, batch_size=16, max_length=64,
                                     lr=args.lr if args.lr == "auto" else float(args.lr), finetune=args.finetune,
                                     validation_fraction=0.1, threshold="tuned", random_state=seed, head="calora",
                                     head__memory=args.memory, **loss)
        for name, params in variants.items():
            est = clone(base).set_params(**params)
            t0 = time.perf_counter()
            est.fit(data.X_train, data.y_train)
            fit_s = time.perf_counter() - t0
            logits = class_logits(est, data.X_test)
            rows = {name: _report(data.y_test, est.classes_[logits.argmax(1)], data.y_train, None),
                    name + "+tuned": _report(data.y_test, est.predict(data.X_test), data.y_train, None)}
            rec = {"variant": name, "seed": seed, "params": {k: str(v) for k, v in params.items()},
                   "stage1_cached": bool(est.stage1_cached_), "stage2_s": est.stage2_time_s_, "fit_s": fit_s,
                   "rows": rows}
            records.append(rec)
            print(json.dumps({"variant": name, "seed": seed, "stage2_s": round(est.stage2_time_s_, 1),
                              **{k: round(v["macro_f1"], 4) for k, v in rows.items()}}), flush=True)
            table = {}
            for r in records:
                for row, rep in r["rows"].items():
                    table.setdefault(row, []).append(rep["macro_f1"])
            md = "\n".join([f"# CALoRA variants on one stage 1: {args.dataset}", "",
                            f"- command: `{command_line('benchmarks/calora_layers.py', argv)}`",
                            f"- machine: {machine_description()}", "",
                            markdown_table(["row", "n", "macro-F1"],
                                           [[k, len(v), fmt(v)] for k, v in sorted(table.items(),
                                                                                   key=lambda kv: -np.mean(kv[1]))])])
            write_outputs(args.out, {"command": command_line("benchmarks/calora_layers.py", argv),
                                     "machine": machine_description(), "records": records}, md)


if __name__ == "__main__":
    main()
