"""What CALoRA with class adapters inside the backbone (``head__layers``) costs against head-only
CALoRA, measured side by side in one run: stage-2 time, and prediction time on the test texts for
the stage-1 model (one pass), head-only CALoRA, and the layered model with its second pass resumed
at the first adapted block (the default) or run whole.

    python benchmarks/calora_layers_cost.py --train-size 600 --epochs 1 --repeats 3 \
        --out benchmarks/results/calora_layers_cost.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import command_line, fmt, load_subsampled, machine_description, markdown_table, write_outputs


def _timed(fn):
    from skimb.backbones import feature_cache

    feature_cache.clear()  # head-only CALoRA would otherwise reuse the stage-1 features of the last call
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None):
    from skimb import TransformerClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=600)
    p.add_argument("--test-size", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--layers", default="last")
    p.add_argument("--layers-epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size, seed=0)
    common = dict(max_epochs=args.epochs, batch_size=16, max_length=64, lr=1e-4, head="calora",
                  random_state=args.seed, n_threads=args.threads)
    head_only = TransformerClassifier(**common).fit(data.X_train, data.y_train)
    layered = TransformerClassifier(**common, head__layers=args.layers,
                                    head__layer_epochs=args.layers_epochs).fit(data.X_train, data.y_train)
    assert layered.stage1_cached_
    routing = layered.net_.module_.encoder.routing
    X = data.X_test

    def whole_second_pass():
        routing.resume = False
        try:
            return layered.decision_function(X)
        finally:
            routing.resume = True

    runs = {"stage-1 model (one pass)": lambda: head_only.embed(X),
            "head-only CALoRA": lambda: head_only.decision_function(X),
            "layered, resumed second pass": lambda: layered.decision_function(X),
            "layered, whole second pass": whole_second_pass}
    _timed(runs["layered, resumed second pass"])  # the first batch checks the shortcut
    assert routing.resume is True
    times = {name: [] for name in runs}
    outputs = {}
    for r in range(args.repeats):  # alternating, so that machine noise hits every variant
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            t, outputs[name] = _timed(runs[name])
            times[name].append(t)
    same = float(np.abs(outputs["layered, resumed second pass"] - outputs["layered, whole second pass"]).max())
    base = np.mean(times["stage-1 model (one pass)"])
    rows = [[name, fmt(t, 2), f"{len(X) / np.mean(t):.1f}", f"{np.mean(t) / base:.2f}"] for name, t in times.items()]
    summary = {"command": command_line("benchmarks/calora_layers_cost.py", argv), "args": vars(args),
               "machine": machine_description(), "n_test": len(X), "predict_s": times,
               "stage1_s": head_only.stage1_time_s_, "stage2_s": {"head-only": head_only.stage2_time_s_,
                                                                  "layered": layered.stage2_time_s_},
               "routed_layers": layered.routed_layers_.tolist(), "max_abs_diff_resumed_vs_whole": same}
    md = "\n".join([
        "# CALoRA with adapters in the backbone: cost", "",
        f"- command: `{summary['command']}`", f"- machine: {summary['machine']}",
        f"- {len(data.X_train)} training texts, {args.epochs} stage-1 epochs ({head_only.stage1_time_s_:.1f} s); "
        f"stage 2: head-only {head_only.stage2_time_s_:.1f} s ({head_only.get_params()['head__epochs']} epochs on "
        f"cached features), layered {layered.stage2_time_s_:.1f} s (the same, then {args.layers_epochs} epoch(s) of "
        f"{len(summary['routed_layers'])} backbone layers' adapters on the texts)",
        f"- resumed and whole second pass agree to {same:.2e}", "",
        markdown_table(["predicting the test texts", "s", "texts/s", "time / one pass"], rows)])
    write_outputs(args.out, summary, md)
    print(md)


if __name__ == "__main__":
    main()
