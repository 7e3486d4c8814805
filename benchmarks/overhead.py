"""Overhead of TransformerClassifier against a plain PyTorch loop, measured side by side.

Same model (MiniLM by default), same initialisation, same data, same batch order,
same optimiser and schedule. Three runs in one process:

1. ``skimb``: ``TransformerClassifier(finetune="full")``;
2. ``plain-dynamic``: a hand-written loop with per-batch (dynamic) padding;
3. ``plain-padded``: the same loop padding every batch to ``max_length`` (what many
   users do), to show what dynamic padding buys;
4. ``plain-fused`` (by ``--order``): the dynamic loop with AdamW's fused kernel, skimb's optimiser
   since round 7 (``plain-dynamic`` keeps torch's default per-parameter loop).

Usage::

    python benchmarks/overhead.py                      # cyclone_idai_2019 train split, 3 epochs
    python benchmarks/overhead.py --train-size 300 --epochs 1   # a quick look

Targets (issue #2): skimb / plain-dynamic wall-clock ratio <= 1.05, macro-F1 within 0.01.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from sklearn.metrics import f1_score

from _common import write_json
from skimb import TransformerClassifier
from skimb.backbones import (LengthGroupedBatchSampler, SequenceClassifier, TextEncoder, load_backbone,
                             pad_collate, tokenize)
from skimb.compare._report import machine_description
from skimb.datasets import load_dataset
from skimb.training import WarmupLinearSchedule


def plain_loop(texts, y, n_classes, *, backbone, seed, epochs, batch_size, max_length, lr, pad_to_max, fused=False):
    """The reference: what a careful user writes by hand (``fused``: AdamW's fused kernel, as the
    Hugging Face Trainer's default and skimb use, instead of torch's default per-parameter loop)."""
    t0 = time.perf_counter()
    model, tokenizer, _ = load_backbone(backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = SequenceClassifier(TextEncoder(model, "mean"), n_classes, dropout=0.1)
        ids = tokenize(tokenizer, texts, max_length)
        no_decay = [p for n, p in module.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
        decay = [p for n, p in module.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=lr, fused=fused)
        steps = -(-len(texts) // batch_size) * epochs
        sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupLinearSchedule(steps, round(0.1 * steps)))
        sampler = LengthGroupedBatchSampler([len(i) for i in ids], batch_size, seed=seed)
        y_t = torch.as_tensor(y)
        module.train()
        for _ in range(epochs):
            for batch in sampler:
                inputs, target = pad_collate([({"input_ids": ids[i], "index": i}, y_t[i]) for i in batch],
                                             pad_token_id=tokenizer.pad_token_id)
                if pad_to_max:
                    pad = max_length - inputs["input_ids"].shape[1]
                    inputs["input_ids"] = torch.nn.functional.pad(inputs["input_ids"], (0, pad),
                                                                  value=tokenizer.pad_token_id)
                    inputs["attention_mask"] = torch.nn.functional.pad(inputs["attention_mask"], (0, pad))
                logits = module(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
                loss = torch.nn.functional.cross_entropy(logits, target)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                opt.step()
                sched.step()
    return module, tokenizer, time.perf_counter() - t0


def plain_predict(module, tokenizer, texts, max_length, batch_size=64):
    module.eval()
    ids = tokenize(tokenizer, texts, max_length)
    out = []
    with torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            inputs, _ = pad_collate([({"input_ids": i, "index": 0}, 0) for i in ids[s:s + batch_size]],
                                    pad_token_id=tokenizer.pad_token_id)
            out.append(module(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).argmax(1))
    return torch.cat(out).numpy()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=0, help="0 = the whole train split")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone", default=None)
    p.add_argument("--order", default="plain-dynamic,skimb,skimb,plain-dynamic,plain-padded",
                   help="the runs, in this order, one after the other in this process; repeated names are "
                        "averaged (the default ABBA order cancels linear drifts of the machine's speed)")
    p.add_argument("--out", default="benchmarks/results/overhead.json")
    args = p.parse_args(argv)

    data = load_dataset(args.dataset, subsample={"train": args.train_size} if args.train_size else None)
    classes, y = np.unique(np.asarray(data.y_train), return_inverse=True)
    y_test = np.searchsorted(classes, np.asarray(data.y_test))
    common = dict(backbone=args.backbone, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                  max_length=args.max_length, lr=args.lr)
    load_backbone(args.backbone)  # warm the weight cache so no run pays for the first read
    results = {}

    def run_skimb():
        t0 = time.perf_counter()
        clf = TransformerClassifier(args.backbone, max_epochs=args.epochs, batch_size=args.batch_size,
                                    max_length=args.max_length, lr=args.lr, random_state=args.seed, device="cpu")
        clf.fit(data.X_train, y)
        fit_s = time.perf_counter() - t0
        return fit_s, f1_score(y_test, clf.predict(data.X_test), average="macro")

    def run_plain(pad, fused=False):
        module, tok, fit_s = plain_loop(data.X_train, y, len(classes), pad_to_max=pad, fused=fused, **common)
        return fit_s, f1_score(y_test, plain_predict(module, tok, data.X_test, args.max_length), average="macro")

    runs = {"plain-dynamic": lambda: run_plain(False), "skimb": run_skimb, "plain-padded": lambda: run_plain(True),
            "plain-fused": lambda: run_plain(False, fused=True)}
    for name in args.order.split(","):  # a name may repeat (e.g. ABBA) to cancel drifts of the machine
        fit_s, f1 = runs[name]()
        entry = results.setdefault(name, {"fit_s_runs": [], "macro_f1": f1})
        entry["fit_s_runs"].append(fit_s)
        entry["fit_s"] = float(np.mean(entry["fit_s_runs"]))
        print(f"{name:14s} fit {fit_s:8.1f} s  macro-F1 {f1:.4f}", flush=True)

    summary = {
        "machine": machine_description(),
        "command": "python benchmarks/overhead.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": args.dataset, "n_train": len(data.X_train), "n_test": len(data.X_test),
        "settings": vars(args), "results": results,
    }
    if {"skimb", "plain-dynamic"} <= results.keys():
        summary["ratio_skimb_over_plain"] = results["skimb"]["fit_s"] / results["plain-dynamic"]["fit_s"]
        summary["macro_f1_difference"] = results["skimb"]["macro_f1"] - results["plain-dynamic"]["macro_f1"]
    if {"plain-padded", "plain-dynamic"} <= results.keys():
        summary["speedup_dynamic_over_padded"] = results["plain-padded"]["fit_s"] / results["plain-dynamic"]["fit_s"]
    if {"skimb", "plain-fused", "plain-dynamic"} <= results.keys():
        summary["ratio_skimb_over_plain_fused"] = results["skimb"]["fit_s"] / results["plain-fused"]["fit_s"]
        summary["speedup_fused_over_loop"] = results["plain-dynamic"]["fit_s"] / results["plain-fused"]["fit_s"]
    print(json.dumps({k: v for k, v in summary.items() if k.startswith(("ratio", "speedup", "macro"))}, indent=2))
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
