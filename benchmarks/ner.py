"""NER benchmark: TransformerTokenClassifier with CE, weighted CE, focal and Dice losses.

Trains one model per (loss, seed) on a data set read by ``skimb.datasets.load_dataset``
(CoNLL-2003 or MIT-Restaurant, from the data folder ``$SKIMB_DATA_DIR`` / ``shared/data``)
and reports, on the test split: span-level micro- and macro-F1 (seqeval strict IOB2), F1 per
entity type and per frequency quartile, training and prediction throughput (words/s),
training time and peak memory. Writes ``ner_<dataset>.md`` (Markdown tables) and
``ner_<dataset>.json`` (every run plus the mean and standard deviation over seeds) to
``--out``.

Examples::

    # smoke run (about a minute on 2 CPU cores)
    python benchmarks/ner.py --dataset mit_restaurant --train-size 200 --epochs 1 \\
        --seeds 0 --losses ce --test-size 300

    # the comparison (GPU recommended): 4 losses x 3 seeds on a 2000-sentence subsample
    python benchmarks/ner.py --dataset conll2003 --train-size 2000 --epochs 3 --seeds 0 1 2

The training subsample is stratified by each sentence's rarest entity tag (keeping the
imbalance) and drawn once with ``--data-seed``, so every loss and seed sees the same
sentences; ``--seeds`` only changes the model's initialisation and batch order.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_subsampled, sparse_entities, write_json  # noqa: E402

FOCAL = {"loss": "focal", "loss__gamma": 2.0}

#: Loss variants: name -> TransformerTokenClassifier parameters.
VARIANTS = {
    "ce": {"loss": "ce"},
    "weighted_ce": {"loss": "weighted_ce"},  # inverse tag frequency, weights mean 1 over tags
    "focal": dict(FOCAL),
    "dice": {"loss": "dice"},
    # class prototypes mixed into the head; the second with "O" scored by a learned threshold (round 8)
    "ce_proto": {"loss": "ce", "head": "prototype"},
    "ce_proto_catch_all": {"loss": "ce", "head": "prototype", "head__catch_all": "O"},
    # CALoRA's per-token class adapters on the head (class-balanced stage 2) on CE and focal stage 1s
    "ce_calora": {"loss": "ce", "head": "calora"},
    "ce_calora_unbalanced": {"loss": "ce", "head": "calora", "head__balance": "none"},
    "focal_calora": {**FOCAL, "head": "calora"},
    "focal_calora_unbalanced": {**FOCAL, "head": "calora", "head__balance": "none"},
    # fewer stage-2 epochs (default 20): on the whole MIT-Restaurant split stage 2 takes ten times the steps
    "ce_calora_unbalanced_e5": {"loss": "ce", "head": "calora", "head__balance": "none", "head__epochs": 5},
    "ce_calora_unbalanced_e2": {"loss": "ce", "head": "calora", "head__balance": "none", "head__epochs": 2},
    # HAMR's defaults on CE (with --validation-fraction its meta set is the held-out split)
    "hamr": {"loss": "ce", "training": "hamr"},
    # per-type logit offsets tuned for span macro-F1 on the validation split (needs --validation-fraction)
    "ce_tuned": {"loss": "ce", "threshold": "tuned"},
    "hamr_tuned": {"loss": "ce", "training": "hamr", "threshold": "tuned"},
    "focal_tuned": {**FOCAL, "threshold": "tuned"},
    "hamr_focal": {**FOCAL, "training": "hamr"},
    # HAMR's meta objective pinned: class-balanced over the tags, or the plain mean ("auto", the
    # defaults above, is balanced where one tag holds >= 90% of the tokens, round 19)
    "hamr_balanced": {"loss": "ce", "training": "hamr", "training__meta_loss": "balanced"},
    "hamr_mean": {"loss": "ce", "training": "hamr", "training__meta_loss": "mean"},
    "hamr_focal_balanced": {**FOCAL, "training": "hamr", "training__meta_loss": "balanced"},
    "hamr_focal_mean": {**FOCAL, "training": "hamr", "training__meta_loss": "mean"},
    "hamr_focal_balanced_calora_unbalanced": {**FOCAL, "training": "hamr",
                                              "training__meta_loss": "balanced", "head": "calora",
                                              "head__balance": "none"},
    # HAMR's two modules apart, on focal loss, with the mean meta objective (as round 19 measured them)
    "hamr_focal_no_resampling": {**FOCAL, "training": "hamr", "training__meta_loss": "mean",
                                 "training__resampling": False, "training__knn": False},
    "hamr_focal_no_weighting": {**FOCAL, "training": "hamr", "training__meta_loss": "mean",
                                "training__meta_weighting": False, "training__resampling": True},
    # HAMR on focal with "auto"'s meta objective: weighting only, flatter hardness draws, resampling pinned on (round 21)
    "hamr_focal_weighting_only": {**FOCAL, "training": "hamr", "training__resampling": False, "training__knn": False},
    "hamr_focal_flat_draws": {**FOCAL, "training": "hamr", "training__resampling": True, "training__temperature": 3.0},
    "hamr_focal_resampling": {**FOCAL, "training": "hamr", "training__resampling": True},
    "hamr_weighting_only": {"loss": "ce", "training": "hamr", "training__resampling": False, "training__knn": False},
    # CALoRA's unbalanced stage 2 on a HAMR-on-focal stage 1 (mean meta objective)
    "hamr_focal_calora_unbalanced": {**FOCAL, "training": "hamr",
                                     "training__meta_loss": "mean", "head": "calora", "head__balance": "none"},
    # R-Drop (round 36): two dropout passes per step and the symmetric KL between them, per labelled token
    "ce_rdrop": {"loss": "ce", "training": "rdrop"},
    "focal_rdrop": {**FOCAL, "training": "rdrop"},
    "ce_ema": {"loss": "ce", "ema_decay": 0.998},  # weight averaging (round 38)
    "ce_rdrop_ema": {"loss": "ce", "training": "rdrop", "ema_decay": 0.998},
    "hamr_rdrop": {"loss": "ce", "training": "hamr", "training__rdrop_alpha": 1.0},
    "hamr_focal_rdrop": {**FOCAL, "training": "hamr", "training__rdrop_alpha": 1.0},
    # a linear-chain CRF on the head, trained by the sequence likelihood (round 42)
    "crf": {"loss": "ce", "decoding": "crf"},
    "crf_rdrop": {"loss": "ce", "decoding": "crf", "training": "rdrop"},
    # with layer-wise learning-rate decay 0.8 (round 45): MiniLM's top layer at 0.8x the rate, the embeddings 0.21x
    "crf_rdrop_ld8": {"loss": "ce", "decoding": "crf", "training": "rdrop", "finetune__layer_decay": 0.8},
    "crf_rdrop_hamr_ld8": {"loss": "ce", "decoding": "crf", "training": "hamr", "training__rdrop_alpha": 1.0,
                           "finetune__layer_decay": 0.8},
    # each word's case as a token type (round 46): MiniLM's tokenizer lowercases every word
    "focal_case": {**FOCAL, "mark_case": True},
    "crf_rdrop_case": {"loss": "ce", "decoding": "crf", "training": "rdrop", "mark_case": True},
    "crf_rdrop_hamr_case": {"loss": "ce", "decoding": "crf", "training": "hamr", "training__rdrop_alpha": 1.0,
                            "mark_case": True},
    # HAMR on a CRF: windows weighed by their likelihood, the CRF's likelihood as the meta objective (round 43)
    "crf_hamr": {"loss": "ce", "decoding": "crf", "training": "hamr"},
    "crf_rdrop_hamr": {"loss": "ce", "decoding": "crf", "training": "hamr", "training__rdrop_alpha": 1.0},
    # CALoRA's unbalanced stage 2 on the CRF + R-Drop stage 1 (decodes with the stage-1 transitions, round 43)
    "crf_rdrop_calora_unbalanced": {"loss": "ce", "decoding": "crf", "training": "rdrop", "head": "calora",
                                    "head__balance": "none"},
}

#: Soft votes (skimb.ensemble.VotingTagger): name -> the VARIANTS of its members, each fitted as alone.
VOTES = {
    # the best tagger measured on tweet-like data (round 19, offline from saved logits; round 20 shipped)
    "vote_focal_calora_hamr": ("focal_calora_unbalanced", "hamr_focal"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="conll2003",
                   help="conll2003, mit_restaurant, or a folder/file load_dataset can read")
    p.add_argument("--data-home", default=None, help="folder holding the data sets (default: SKIMB_DATA_DIR)")
    p.add_argument("--train-size", type=int, default=None,
                   help="number of training sentences (stratified subsample); default: all")
    p.add_argument("--test-size", type=int, default=None,
                   help="number of evaluation sentences (stratified subsample); default: all")
    p.add_argument("--eval-split", choices=("test", "dev"), default="test")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subsamples")
    p.add_argument("--entity-free-share", type=float, default=None,
                   help="redraw both splits so that this share of the sentences carry no entity (tweet-like NER)")
    p.add_argument("--losses", nargs="+", default=list(VARIANTS), choices=[*VARIANTS, *VOTES])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", default="auto", help="learning rate or 'auto'")
    p.add_argument("--finetune", choices=("full", "lora", "head"), default="full")
    p.add_argument("--decoding", choices=("repair", "constrained"), default="repair")
    p.add_argument("--scheme", default="IOB2", help="tagging scheme of the data files")
    p.add_argument("--backbone", default=None, help="backbone directory or name (default: offline MiniLM)")
    p.add_argument("--device", default="auto")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="share of the training sentences every fit holds out (HAMR: its meta set)")
    p.add_argument("--save-logits", action="store_true",
                   help="write each fit's word logits on its validation split and the evaluation split to "
                        "<out>/<loss>_seed<seed>.npz (for benchmarks/ner_decision_ceiling.py)")
    p.add_argument("--memory", default=None, help="folder of a stage-1 cache shared by the CALoRA variants "
                   "(head__memory), across runs and processes")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    return p.parse_args(argv)


def load(args):
    if args.entity_free_share is not None:
        if args.eval_split != "test":
            raise SystemExit("--entity-free-share redraws the train and test splits: use --eval-split test.")
        data = sparse_entities(load_subsampled(args.dataset, seed=args.data_seed, task="token", data_home=args.data_home),
                               args.entity_free_share, train_size=args.train_size, test_size=args.test_size,
                               seed=args.data_seed)
    else:
        data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size,
                               seed=args.data_seed, eval_split=args.eval_split, task="token", data_home=args.data_home)
    X_eval, y_eval = data[f"X_{args.eval_split}"], data[f"y_{args.eval_split}"]
    if X_eval is None:
        raise SystemExit(f"{args.dataset} has no {args.eval_split} split.")
    return data.name, data.X_train, data.y_train, X_eval, y_eval


def span_counts(tags, scheme):
    from skimb.metrics import get_entities
    from skimb.tokens import convert_scheme

    counts = {}
    for sent in convert_scheme(tags, scheme, "IOB2"):
        for typ, _, _ in get_entities(sent):
            counts[typ] = counts.get(typ, 0) + 1
    return dict(sorted(counts.items()))


def peak_memory_mb():
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def run_one(args, variant, seed, X_train, y_train, X_eval, y_eval, train_counts):
    import torch

    from skimb.metrics import span_report
    from skimb.tokens import convert_scheme

    clf = build(args, variant, seed)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = clf.predict(X_eval)
    predict_s = time.perf_counter() - t0
    truth = convert_scheme(y_eval, args.scheme, "IOB2")
    train_tags = convert_scheme(y_train, args.scheme, "IOB2")
    rep = span_report(truth, pred, train_tags=train_tags)
    if args.save_logits:
        save_logits(Path(args.out) / f"{variant}_seed{seed}.npz", clf, X_train, train_tags, X_eval, truth)
    fitted = members(clf)[0]  # the epochs, loss and device reported: the first member's
    n_train_words = sum(map(len, X_train))
    n_eval_words = sum(map(len, X_eval))
    return {
        "loss": variant,
        "seed": seed,
        "micro_f1": rep["micro_f1"],
        "macro_f1": rep["macro_f1"],
        "weighted_f1": rep["weighted_f1"],
        "micro_precision": rep["micro_precision"],
        "micro_recall": rep["micro_recall"],
        "per_type_f1": {t: v["f1"] for t, v in rep["per_type"].items() if t in train_counts or v["support"]},
        "per_type": rep["per_type"],
        "quartile_f1": rep["quartile_f1"],
        "train_s": train_s,
        "predict_s": predict_s,
        "train_words_per_s": n_train_words * sum(m.n_iter_ for m in members(clf)) / train_s,  # every member's epochs
        "predict_words_per_s": n_eval_words / predict_s,
        "epochs_run": fitted.n_iter_,
        "final_train_loss": float(fitted.history_[-1, "train_loss"]),
        "peak_memory_mb": peak_memory_mb(),
        "device": fitted.device_,
    }


def members(clf) -> list:
    """The fitted taggers behind ``clf``: a vote's members, or ``clf`` itself."""
    return list(getattr(clf, "estimators_", [clf]))


def build(args, variant, seed):
    """The estimator of ``variant``: a TransformerTokenClassifier, or a VotingTagger of them."""
    from skimb import TransformerTokenClassifier
    from skimb.ensemble import VotingTagger

    if variant in VOTES:
        crfs = all(VARIANTS[member].get("decoding") == "crf" for member in VOTES[variant])
        return VotingTagger([(member, build(args, member, seed)) for member in VOTES[variant]],
                            decoding="crf" if crfs else args.decoding)  # CRFs vote as one CRF (round 43)
    lr = args.lr if args.lr == "auto" else float(args.lr)
    params = {"decoding": args.decoding, **VARIANTS[variant]}  # a variant may set its own decoding (a CRF)
    clf = TransformerTokenClassifier(
        args.backbone, finetune=args.finetune, max_length=args.max_length, batch_size=args.batch_size,
        max_epochs=args.epochs, lr=lr, scheme=args.scheme, device=args.device,
        validation_fraction=args.validation_fraction, random_state=seed, **params)
    if args.memory and VARIANTS[variant].get("head") == "calora":
        clf.set_params(head__memory=args.memory)
    return clf


def save_logits(path, clf, X_train, train_tags, X_eval, eval_tags):
    """Word logits (rows of all sentences stacked), sentence lengths and IOB2 tags of the fit's
    validation split (``val_*``; empty without one) and of the evaluation split (``test_*``)."""
    held_out = members(clf)[0]  # a vote's members share one split
    valid = getattr(held_out, "validation_indices_", np.array([], dtype=np.int64))
    arrays = {"classes": np.asarray(clf.classes_), "validation_indices": valid}
    for part, X, tags in (("val", [X_train[i] for i in valid], [train_tags[i] for i in valid]),
                          ("test", X_eval, eval_tags)):
        logits = clf.decision_function(X) if X else []
        n_tags = len(clf.classes_)
        arrays[f"{part}_logits"] = np.concatenate([lg.reshape(-1, n_tags) for lg in logits]) if logits \
            else np.zeros((0, n_tags), np.float32)
        arrays[f"{part}_lengths"] = np.array([len(s) for s in X], dtype=np.int64)
        arrays[f"{part}_tags"] = np.array([t for s in tags for t in s], dtype=str)
    crf = getattr(getattr(getattr(clf, "net_", None), "module_", None), "crf", None)
    if crf is not None:  # what decodes its predictions (ner_votes.py)
        arrays.update({f"crf_{name}": v for name, v in crf.decoding_scores().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def summarise(runs, keys):
    out = {}
    for variant in dict.fromkeys(r["loss"] for r in runs):
        rows = [r for r in runs if r["loss"] == variant]
        s = {"n_seeds": len(rows)}
        for k in keys:
            v = np.array([r[k] for r in rows], dtype=float)
            s[k] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}
        types = sorted({t for r in rows for t in r["per_type_f1"]})
        s["per_type_f1"] = {t: {"mean": float(np.mean([r["per_type_f1"].get(t, 0.0) for r in rows])),
                                "std": float(np.std([r["per_type_f1"].get(t, 0.0) for r in rows],
                                                    ddof=1)) if len(rows) > 1 else 0.0}
                            for t in types}
        out[variant] = s
    return out


def _fmt(stat, scale=1.0, digits=3):
    m, s = stat["mean"] * scale, stat["std"] * scale
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s else f"{m:.{digits}f}"


def markdown(meta, summary, train_counts):
    lines = [f"# NER benchmark: {meta['dataset']}", ""]
    lines.append(
        f"Backbone `{meta['backbone']}`, finetune={meta['finetune']}, {meta['epochs']} epoch(s), batch "
        f"{meta['batch_size']}, max_length {meta['max_length']}, lr {meta['lr']}, decoding {meta['decoding']} "
        "(a variant's own where it sets one, as crf), "
        f"device {meta['device']}. Train: {meta['n_train_sentences']} sentences / {meta['n_train_words']} words "
        f"({meta['train_sample']}); evaluated on {meta['eval_split']}: {meta['n_eval_sentences']} sentences / "
        f"{meta['n_eval_words']} words ({meta['eval_sample']}). Seeds {meta['seeds']} (mean ± std). "
        "Span-level F1, seqeval strict IOB2.")
    lines.append("")
    lines.append("Training spans per type: " + ", ".join(f"{t} {n}" for t, n in train_counts.items()))
    lines.append("")
    lines += ["| loss | micro-F1 | macro-F1 | weighted-F1 | train words/s | predict words/s | train s | peak MB |",
              "|---|---|---|---|---|---|---|---|"]
    for variant, s in summary.items():
        lines.append(f"| {variant} | {_fmt(s['micro_f1'])} | {_fmt(s['macro_f1'])} | {_fmt(s['weighted_f1'])} | "
                     f"{_fmt(s['train_words_per_s'], digits=0)} | {_fmt(s['predict_words_per_s'], digits=0)} | "
                     f"{_fmt(s['train_s'], digits=1)} | {_fmt(s['peak_memory_mb'], digits=0)} |")
    types = list(train_counts) or sorted({t for s in summary.values() for t in s["per_type_f1"]})
    lines += ["", "F1 per entity type (training span count in brackets, rarest first):", ""]
    ordered = sorted(types, key=lambda t: (train_counts.get(t, 0), t))
    lines.append("| loss | " + " | ".join(f"{t} ({train_counts.get(t, 0)})" for t in ordered) + " |")
    lines.append("|---|" + "---|" * len(ordered))
    for variant, s in summary.items():
        cells = [_fmt(s["per_type_f1"][t]) if t in s["per_type_f1"] else "-" for t in ordered]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers

    from skimb.backbones import resolve_backbone

    t_start = time.perf_counter()
    name, X_train, y_train, X_eval, y_eval = load(args)
    train_counts = span_counts(y_train, args.scheme)
    meta = {
        "dataset": name,
        "eval_split": args.eval_split,
        "train_sample": (f"redrawn with {args.entity_free_share:.0%} entity-free sentences, data seed {args.data_seed}"
                         if args.entity_free_share is not None else
                         f"stratified subsample of {args.train_size}, data seed {args.data_seed}"
                         if args.train_size else "full train split"),
        "entity_free_share": args.entity_free_share,
        "eval_sample": (f"redrawn with {args.entity_free_share:.0%} entity-free sentences, data seed {args.data_seed}"
                        if args.entity_free_share is not None else
                        f"stratified subsample of {args.test_size}, data seed {args.data_seed}"
                        if args.test_size else "full split"),
        "n_train_sentences": len(X_train),
        "n_train_words": sum(map(len, X_train)),
        "n_eval_sentences": len(X_eval),
        "n_eval_words": sum(map(len, X_eval)),
        "train_span_counts": train_counts,
        "backbone": str(resolve_backbone(args.backbone)) if args.backbone else "all-MiniLM-L6-v2 (offline)",
        "finetune": args.finetune,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lr": args.lr,
        "decoding": args.decoding,
        "validation_fraction": args.validation_fraction,
        "seeds": args.seeds,
        "losses": args.losses,
        "device": args.device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
    }
    print(f"{name}: train {meta['n_train_sentences']} sentences ({meta['train_sample']}), "
          f"{args.eval_split} {meta['n_eval_sentences']} sentences; spans {train_counts}", flush=True)
    runs = []
    for variant in args.losses:
        for seed in args.seeds:
            r = run_one(args, variant, seed, X_train, y_train, X_eval, y_eval, train_counts)
            meta["device"] = r["device"]
            runs.append(r)
            print(f"  {variant:12s} seed {seed}: micro-F1 {r['micro_f1']:.4f} macro-F1 {r['macro_f1']:.4f} "
                  f"train {r['train_s']:.1f}s ({r['train_words_per_s']:.0f} words/s) "
                  f"predict {r['predict_s']:.1f}s ({r['predict_words_per_s']:.0f} words/s)", flush=True)
    keys = ["micro_f1", "macro_f1", "weighted_f1", "train_s", "predict_s", "train_words_per_s",
            "predict_words_per_s", "peak_memory_mb"]
    summary = summarise(runs, keys)
    meta["total_s"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"ner_{Path(str(name)).name}"
    write_json(out / f"{stem}.json", {"meta": meta, "summary": summary, "runs": runs})
    table = markdown(meta, summary, train_counts)
    (out / f"{stem}.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / (stem + '.md')} and {out / (stem + '.json')} in {meta['total_s']:.0f} s")
    return summary


if __name__ == "__main__":
    main()
