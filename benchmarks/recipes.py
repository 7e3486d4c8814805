"""A ``skimb compare`` method, exactly as the registry builds it, on a data set of any size, several
seeds, one thread per run: the figures of a shipped recipe (not a re-scoring of saved logits).

Each fit writes its test predictions (``<out>/<method>_seed<S>.npz``: ``y_test``, ``y_pred`` as
class indices, ``classes``), so that they can be set against ``benchmarks/quality.py``'s saved
logits of the same test set.

    python benchmarks/recipes.py --dataset goemotions_single --train-size 6000 \\
        --methods vote_wce_hamr_tuned --seeds 0 --out benchmarks/results/recipes_goemotions_single_s0.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from _common import QUARTILES, add_protocol_arguments, command_line, fmt, key_values, load_protocol_data, \
    machine_description, markdown_table, measure, write_outputs


def run_one(name, seed, data, args):
    from skimb.compare import Budget
    from skimb.compare._registry import METHODS
    from skimb.compare._runner import _context
    from skimb.metrics import imbalance_report

    budget = Budget(max_epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length, lr=args.lr,
                    device="cpu")
    est = METHODS[name].build(budget, seed, _context(data))
    est.set_params(**args.set_params)
    record = {"method": name, "seed": seed}
    with measure(record):
        est.fit(data.X_train, data.y_train)
    t0 = time.perf_counter()
    y_pred = est.predict(data.X_test)
    record["predict_s"] = time.perf_counter() - t0
    rep = imbalance_report(data.y_test, y_pred, train_labels=data.y_train)
    record.update(macro_f1=rep["macro_f1"], micro_f1=rep["micro_f1"], quartile_f1=rep["quartile_f1"],
                  per_class_f1={str(k): v["f1"] for k, v in rep["per_class"].items()})
    classes = np.unique(np.asarray(data.y_train))
    path = Path(args.out).with_suffix("") / f"{name}_seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, classes=classes.astype(str), y_test=np.searchsorted(classes, np.asarray(data.y_test)),
                        y_pred=np.searchsorted(classes, np.asarray(y_pred)))
    record["predictions_file"] = str(path)
    if hasattr(est, "offsets_"):
        record["offsets"] = np.round(est.offsets_, 3).tolist()
    return record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="goemotions_ekman")
    p.add_argument("--methods", default="vote_wce_hamr_tuned")
    add_protocol_arguments(p)
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="set_params on the built estimator, e.g. estimator__hamr__validation_fraction=0.2")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.set_params = key_values(args.set, "--set")  # before the data load: a bad pair fails at once
    data = load_protocol_data(args, task="multiclass")
    records = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in args.methods.split(","):
            rec = run_one(name, seed, data, args)
            records.append(rec)
            print(json.dumps({k: rec[k] for k in ("method", "seed", "macro_f1", "micro_f1", "wall_s")}), flush=True)
            rows = []
            for method in dict.fromkeys(r["method"] for r in records):
                mine = [r for r in records if r["method"] == method]
                rows.append([method, len(mine), fmt([r["macro_f1"] for r in mine]), fmt([r["micro_f1"] for r in mine]),
                             *[fmt([r["quartile_f1"].get(q) for r in mine], 3, std=False) for q in QUARTILES],
                             fmt([r["wall_s"] for r in mine], 1, std=False)])
            md = "\n".join([f"# recipes: {args.dataset}", "", f"- command: `{command_line('benchmarks/recipes.py', argv)}`",
                            f"- machine: {machine_description()}", f"- train {len(data.X_train)} / test {len(data.X_test)}",
                            "", markdown_table(["method", "n", "macro-F1", "micro-F1", *QUARTILES, "fit s"], rows)])
            write_outputs(args.out, {"command": command_line("benchmarks/recipes.py", argv), "args": vars(args),
                                     "machine": machine_description(), "records": records}, md)


if __name__ == "__main__":
    main()
