"""HAMR's default (head) meta step with and without the MATH attention kernel forced.

Before the fix, ``meta_step="head"`` ran the batch forward (whose graph also serves the real
backward) under PyTorch's MATH scaled-dot-product-attention kernel, which only the "full" mode's
double backward needs. This times one HAMR training step (meta step + real backward) on the
bundled MiniLM, both ways, alternating A/B so that machine noise hits both, in one process.

    OMP_NUM_THREADS=1 python benchmarks/hamr_kernel.py --rounds 4 --steps 5 --out benchmarks/results/hamr_kernel.json
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from _common import command_line, machine_description, write_outputs


def _batch(tokenizer, texts, max_length, device):
    from skimb.backbones import tokenize

    ids = tokenize(tokenizer, texts, max_length)
    width = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for r, row in enumerate(ids):
        input_ids[r, :len(row)] = torch.tensor(row)
        mask[r, :len(row)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from skimb.backbones import SequenceClassifier, TextEncoder, load_backbone
    from skimb.datasets import load_goemotions_ekman
    from skimb.training.hamr import WeightNet, make_wnet_optimizer, meta_step
    from skimb.training.hamr import _meta

    data = load_goemotions_ekman()
    long_texts = sorted(data.X_train, key=len)[-4 * args.batch_size:]  # full-length batches
    model, tokenizer, _ = load_backbone(None)
    module = SequenceClassifier(TextEncoder(model, pooling="mean"), 7).to(args.device).train()
    wnet = WeightNet().to(args.device)
    opt = make_wnet_optimizer(wnet, lr=1e-4)
    batch = _batch(tokenizer, long_texts[:args.batch_size], args.max_length, args.device)
    meta = _batch(tokenizer, long_texts[args.batch_size:2 * args.batch_size], args.max_length, args.device)
    y = torch.randint(0, 7, (args.batch_size,), device=args.device)
    fixed_sdpa = _meta._math_sdpa

    @contextlib.contextmanager
    def forced(enabled):  # the code before the fix: MATH for every mode but first_order
        with fixed_sdpa(True):
            yield

    def step():
        res = meta_step(module, wnet, opt, lambda lg, t: F.cross_entropy(lg, t, reduction="none"), batch, y,
                        meta, y, F.cross_entropy, meta_update_lr=1e-4, mode="head", head_param_names=("head",),
                        keep_graph=True)
        (res.weights * res.losses).mean().backward()
        module.zero_grad(set_to_none=True)

    times = {"math_forced (before)": [], "fused (after)": []}
    step()  # warm-up
    for r in range(args.rounds):
        order = list(times) if r % 2 == 0 else list(reversed(times))
        for name in order:
            _meta._math_sdpa = forced if name.startswith("math") else fixed_sdpa
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            if args.device == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - t0) / args.steps)
    _meta._math_sdpa = fixed_sdpa
    before, after = np.mean(times["math_forced (before)"]), np.mean(times["fused (after)"])
    summary = {"command": command_line("benchmarks/hamr_kernel.py", argv), "machine": machine_description(),
               "device": args.device, "torch_threads": torch.get_num_threads(), "args": vars(args),
               "step_s": times, "speedup": float(before / after)}
    md = "\n".join([
        "# HAMR head-mode step: MATH kernel forced (before) vs fused kernels (after)", "",
        f"- command: `{summary['command']}`", f"- machine: {summary['machine']}; device {args.device}", "",
        "| kernel | s per step (mean ± std over rounds) |", "|---|---|",
        *[f"| {k} | {np.mean(v):.3f} ± {np.std(v):.3f} |" for k, v in times.items()], "",
        f"Speed-up: {before / after:.2f}x"])
    write_outputs(args.out, summary, md)
    print(md)


if __name__ == "__main__":
    main()
