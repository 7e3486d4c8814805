"""Training throughput on the CPU: what SDPA attention, torch.compile and bf16 autocast buy, and
the tokenizer's share of a fit (issue #17), measured side by side in one process.

Every variant trains the same model (MiniLM by default, mean pooling, a linear head) from the same
initial weights on the same length-grouped batches (dynamic padding, the batches skimb trains on)
with AdamW, and the variants take turns (``--rounds`` rounds of every variant in a rotated order)
so that machine noise hits all of them. Variants:

``sdpa``      the default: the backbone's scaled-dot-product attention kernels (``attn_implementation="sdpa"``)
``eager``     the backbone's plain attention (``attn_implementation="eager"``)
``compile``   ``sdpa`` with the module compiled by ``torch.compile(dynamic=True)``; its first pass
              (the compilation) is reported apart
``bf16``      ``sdpa`` under CPU bf16 autocast

It reports training samples per second per variant (mean ± std over rounds, after one warm-up
pass), the ratio to ``sdpa``, the loss after the last pass (a sanity check that the variant trains
the same model: bf16 differs by rounding), and the tokenizer's time over the training texts
against one epoch of training. Usage::

    python benchmarks/throughput.py --out benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_subsampled, write_outputs  # noqa: E402

from skimb.backbones import LengthGroupedBatchSampler, SequenceClassifier, TextEncoder, load_backbone, pad_collate, tokenize  # noqa: E402
from skimb.compare._report import machine_description  # noqa: E402

VARIANTS = ("sdpa", "eager", "compile", "bf16")


def _batches(ids, y, batch_size, n_batches, pad_id, seed=0):
    sampler = LengthGroupedBatchSampler([len(i) for i in ids], batch_size, seed=seed)
    out = []
    for batch in sampler:
        items = [({"input_ids": ids[i], "index": i}, int(y[i])) for i in batch]
        out.append(pad_collate(items, pad_token_id=pad_id))
        if len(out) == n_batches:
            break
    return out


def _model(backbone, attn, n_classes, state=None):
    model = copy.deepcopy(load_backbone(backbone)[0])  # load_backbone shares one model per path
    if attn != "sdpa":
        model.set_attn_implementation(attn)
    torch.manual_seed(0)
    module = SequenceClassifier(TextEncoder(model, "mean"), n_classes, dropout=0.0)
    if state is not None:
        module.load_state_dict(state)
    return module


def _train_pass(module, opt, batches, *, bf16=False):
    """One pass over ``batches``; returns (samples, seconds, last loss)."""
    module.train()
    n, t0, loss = 0, time.perf_counter(), None
    for X, y in batches:
        inputs = {k: v for k, v in X.items() if k in ("input_ids", "attention_mask")}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = module(**inputs)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n, time.perf_counter() - t0, float(loss)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batches", type=int, default=30, help="batches per timed pass")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backbone", default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    data = load_subsampled(args.dataset)
    texts = list(data.X_train)
    classes, y = np.unique(np.asarray(data.y_train), return_inverse=True)
    _, tokenizer, _ = load_backbone(args.backbone)

    t0 = time.perf_counter()
    ids = tokenize(tokenizer, texts, args.max_length)
    tokenize_s = time.perf_counter() - t0
    batches = _batches(ids, y, args.batch_size, args.batches, tokenizer.pad_token_id or 0)
    state0 = _model(args.backbone, "sdpa", len(classes)).state_dict()

    setups = {}
    for v in variants:
        module = _model(args.backbone, "eager" if v == "eager" else "sdpa", len(classes), state0)
        opt = torch.optim.AdamW(module.parameters(), lr=1e-5, fused=True)
        runner = module
        if v == "compile":
            runner = torch.compile(module, dynamic=True)
        t = time.perf_counter()
        _train_pass(runner, opt, batches, bf16=v == "bf16")  # warm-up (compilation for "compile")
        setups[v] = {"module": runner, "opt": opt, "warmup_s": time.perf_counter() - t, "rates": [], "loss": None}
        print(f"{v}: warm-up pass {setups[v]['warmup_s']:.1f} s", flush=True)
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            n, s, loss = _train_pass(setups[v]["module"], setups[v]["opt"], batches, bf16=v == "bf16")
            setups[v]["rates"].append(n / s)
            setups[v]["loss"] = loss
            print(f"round {r} {v}: {n / s:.1f} samples/s", flush=True)

    base = np.mean(setups["sdpa"]["rates"]) if "sdpa" in setups else None
    rows = []
    for v in variants:
        rates = np.array(setups[v]["rates"])
        rows.append({"variant": v, "samples_per_s": float(rates.mean()), "std": float(rates.std()),
                     "vs_sdpa": None if base is None else float(rates.mean() / base),
                     "warmup_s": setups[v]["warmup_s"], "last_loss": setups[v]["loss"]})
    n_tokens = sum(len(i) for i in ids)
    epoch_s = len(texts) / base if base else None
    result = {"machine": machine_description(), "threads": args.threads, "command": " ".join(sys.argv),
              "n_texts": len(texts), "batches_per_pass": len(batches), "rows": rows,
              "tokenize_s": tokenize_s, "tokens": n_tokens,
              "tokenizer_share_of_one_epoch": None if epoch_s is None else tokenize_s / (tokenize_s + epoch_s)}
    lines = ["| variant | samples/s | vs sdpa | first pass s | last loss |", "|---|---|---|---|---|"]
    for row in rows:
        ratio = "" if row["vs_sdpa"] is None else f"{row['vs_sdpa']:.2f}"
        lines.append(f"| {row['variant']} | {row['samples_per_s']:.1f} ± {row['std']:.1f} | {ratio} | "
                     f"{row['warmup_s']:.1f} | {row['last_loss']:.4f} |")
    share = result["tokenizer_share_of_one_epoch"]
    lines.append("")
    lines.append(f"Tokenizer: {tokenize_s:.2f} s for {len(texts)} texts ({n_tokens} tokens)"
                 + ("" if share is None else f", {100 * share:.1f}% of tokenising + one epoch of training"))
    md = "\n".join([f"# Training throughput ({machine_description()}, {args.threads} thread(s))", "",
                    f"`{result['command']}`", ""] + lines)
    write_outputs(args.out, result, md)
    print(md)


if __name__ == "__main__":
    main()
