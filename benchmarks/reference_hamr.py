"""The public HAMR reference code itself on issue #13's protocol, over several seeds.

Issue #13 asks for HAMR's gain as the reference code (trust-nlp/ImbalanceLearning, ``HAMR/CLS``)
scored it: +3.9 points of macro-F1 over plain fine-tuning, one seed, on a stratified 1,500-text
subsample of Cyclone-Idai (MiniLM, 3 epochs, batch 16, max length 64, lr 1e-4, the dev split as
the meta set). This script does not run that code (it is not ours and needs its own environment);
it writes the data it reads and tabulates what it wrote:

``--prepare DIR --codes-from <ImbalanceLearning>/Datasets/cyclone_idai_2019/train.json``
    Writes ``DIR/data/{train,dev,test}.json`` in the reference's format (``text``, ``label``,
    ``label_text``, with the reference's label codes): the same 1,500-text subsample as
    ``hamr.py --train-size 1500`` (``--data-seed``), the whole dev and test splits.
``--table DIR``
    For each ``DIR/out/<variant>_s<seed>/`` (``plain``, ``hamr``): test macro-F1 from its
    ``predict_results.txt``, per-class and quartile F1, the training time of ``train_results.json``;
    mean ± std over seeds and HAMR's gap to plain with a paired bootstrap interval (per seed and
    pooled over seeds).

The runs between the two steps: ``benchmarks/reference_hamr_run.sh SEED plain|hamr CORE`` (its header
has the setup: a venv of the reference's pins, transformers 4.52.3 among them, with torch 2.13.0; the
reference's own embedding script on the bundled MiniLM; ``evaluate.load`` replaced by a scikit-learn
stand-in, the hub being unreachable); one thread per run. Figures: ``docs/benchmarks.md``, round 40.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import (QUARTILES, command_line, fmt, gap_text, load_subsampled, machine_description, markdown_table,
                     write_outputs)

DATASET = "cyclone_idai_2019"
VARIANTS = ("plain", "hamr")


def prepare(folder: Path, codes_from: Path, *, train_size: int, data_seed: int) -> None:
    data = load_subsampled(DATASET, train_size=train_size, seed=data_seed)
    code = {r["label_text"]: r["label"] for r in json.loads(codes_from.read_text())}  # the reference's codes
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        rows = [{"text": t, "label": code[c], "label_text": c} for t, c in zip(X, y)]
        (folder / "data" / f"{split}.json").write_text(json.dumps(rows))
        print(f"{split}: {len(rows)} texts")


def read_run(run: Path, label_text: dict) -> dict:
    """Test predictions (class names) and training seconds of one reference run."""
    lines = (run / "predict_results.txt").read_text().splitlines()[1:]  # "index<TAB>prediction"
    predicted = [label_text[int(line.split("\t")[1])] for line in lines]
    train = json.loads((run / "train_results.json").read_text())
    return {"pred": predicted, "train_s": float(train["train_runtime"])}


def table(folder: Path, out: str, argv) -> None:
    from sklearn.metrics import f1_score

    from skimb.metrics import example_counts, paired_bootstrap_gap, quartile_f1

    test = json.loads((folder / "data" / "test.json").read_text())
    train = json.loads((folder / "data" / "train.json").read_text())
    label_text = {r["label"]: r["label_text"] for r in test + train}
    y_test, y_train = [r["label_text"] for r in test], [r["label_text"] for r in train]
    classes = sorted(set(label_text.values()))
    runs = {}
    for variant in VARIANTS:
        for run in sorted(folder.glob(f"out/{variant}_s*")):
            if (run / "predict_results.txt").exists():
                runs[variant, int(run.name.rsplit("_s", 1)[1])] = read_run(run, label_text)
    rows, summary = [], {"command": command_line("benchmarks/reference_hamr.py", argv),
                         "machine": machine_description(), "runs": []}
    for (variant, seed), r in sorted(runs.items()):
        q = quartile_f1(y_test, r["pred"], train_labels=y_train)
        summary["runs"].append({"variant": variant, "seed": seed, "train_s": r["train_s"],
                                "macro_f1": float(f1_score(y_test, r["pred"], average="macro", labels=classes)),
                                "per_class_f1": dict(zip(classes, f1_score(y_test, r["pred"], average=None,
                                                                           labels=classes, zero_division=0).tolist())),
                                "quartile_f1": q, "pred": r["pred"]})
    by = {(r["variant"], r["seed"]): r for r in summary["runs"]}
    seeds = sorted({s for v, s in by if v == "hamr"} & {s for v, s in by if v == "plain"})
    counts = {k: example_counts("multiclass", y_test, r["pred"], labels=classes) for k, r in by.items()}
    for variant in VARIANTS:
        mine = [by[variant, s] for s in sorted(s for v, s in by if v == variant)]
        if not mine:
            continue
        gap = ""
        if variant == "hamr" and seeds:
            pooled = gap_text(*paired_bootstrap_gap([counts["hamr", s] for s in seeds],
                                                    [counts["plain", s] for s in seeds]))
            per_seed = ", ".join(f"{100 * (by['hamr', s]['macro_f1'] - by['plain', s]['macro_f1']):+.1f}"
                                 for s in seeds)
            gap = f"{pooled} (by seed {per_seed})"
        rows.append([variant, fmt([r["macro_f1"] for r in mine]), ", ".join(f"{r['macro_f1']:.4f}" for r in mine),
                     *(fmt([r["quartile_f1"][qq] for r in mine], 3) for qq in QUARTILES),
                     fmt([r["train_s"] for r in mine], 0), gap])
    headers = ["reference code", "macro-F1", "by seed", *(f"{qq} F1" for qq in QUARTILES), "train s",
               "HAMR − plain, points [95% paired bootstrap, pooled over seeds]"]
    markdown = markdown_table(headers, rows)
    write_outputs(out, summary, markdown)
    print(markdown)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", type=Path, help="write DIR/data/*.json for the reference code")
    p.add_argument("--table", type=Path, help="tabulate DIR/out/<variant>_s<seed>/")
    p.add_argument("--codes-from", type=Path, help="with --prepare: the reference's own "
                   "Datasets/cyclone_idai_2019/train.json, whose label codes the written files keep")
    p.add_argument("--train-size", type=int, default=1500)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--out", default="results/reference_hamr.json")
    args = p.parse_args(argv)
    if args.prepare:
        if args.codes_from is None:
            p.error("--prepare needs --codes-from")
        prepare(args.prepare, args.codes_from, train_size=args.train_size, data_seed=args.data_seed)
    if args.table:
        table(args.table, args.out, argv)
    if not (args.prepare or args.table):
        p.error("give --prepare DIR, --table DIR or both")


if __name__ == "__main__":
    main()
