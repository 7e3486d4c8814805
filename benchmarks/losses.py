"""Multi-label losses on GoEmotions (28 labels): BCE, focal BCE (γ = 1.5, 2, 2.5) and AFL.

Issue #3. Every loss is trained with the same budget (``--epochs``, ``--batch-size``,
``--max-length``, ``--lr``) and the same seeds on the same stratified subsample of
``goemotions`` (``--train-size``/``--test-size``, drawn once with ``--data-seed``, stratified
by each row's rarest label so the label imbalance is kept), with
``skimb.TransformerClassifier`` (MiniLM by default, ``--finetune full``, decision threshold
0.5; ``--finetune head`` trains the head on the frozen backbone's features, computed once by
the first run and then shared). It reports, per loss, the mean ± std over ``--seeds`` of:

* macro-F1, micro-F1, macro ROC AUC and micro recall, and the mean F1 per label-frequency
  quartile (Q1 = rarest labels, by training positive counts), all from
  ``skimb.metrics.multilabel_report``;
* the training time per epoch relative to BCE: the mean of skorch's per-epoch ``dur``
  (``clf.history_[:, "dur"]``) of the loss divided by that of BCE fitted with the same
  seed in the same process, the losses of a seed run back to back (target <= 1.02);
* fit and predict wall time and peak resident memory of each run (VmHWM, reset per run).

It also prints AFL's fitted per-label ``gamma_``. Results go to ``--out`` (JSON: every run,
the summary, the machine and the command) and to the ``.md`` next to it (the tables, also
printed).

Usage::

    # the comparison (default subsample 4000 train / 2000 test; about 2 h on 2 CPU cores)
    python benchmarks/losses.py
    # a quick look (a few minutes)
    OMP_NUM_THREADS=1 python benchmarks/losses.py --train-size 300 --test-size 200 --epochs 1 \\
        --seeds 0 --losses bce,afl

``--losses`` takes a comma-separated list of presets (``bce``, ``focal1.5``, ``focal2``,
``focal2.5``, ``afl``, ``afl_cap4``, ``afl_b``; the default runs the first five), ``focal<γ>`` / ``afl<γ>`` for other values of γ, or any multi-label
loss name of ``skimb.losses`` (``weighted_bce``, ``distribution_balanced``, ...) with its
defaults, or with ``loss__`` parameters: ``weighted_bce[max_pos_weight=8]``. BCE is always run (it is the time reference) unless ``--no-bce``. ``<loss>+calora[<balance>]`` adds CALoRA
on that loss's stage 1 with ``head__balance=<balance>`` (``class``, ``sqrt``, ``uniform``, ``none``);
``<loss>+hamr`` trains that loss with HAMR, ``<loss>+hamr[meta_loss=balanced;wnet_lr=1e-3]`` with those
``training__`` settings (HAMR's meta set is the validation split: pass ``--validation-fraction`` so that
every loss trains on the same rows). With ``--threshold tuned`` each run also records its macro-F1 at
the fixed 0.5 (``macro_f1_at_0.5``; a column of the quality table).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (QUARTILES, command_line, fmt, ints, key_values, load_subsampled,  # noqa: E402
                     machine_description, markdown_table, mean_std, measure, write_outputs)

from skimb import TransformerClassifier  # noqa: E402
from skimb.backbones import load_backbone  # noqa: E402
from skimb.losses import available_losses  # noqa: E402
from skimb.metrics import multilabel_report  # noqa: E402
from skimb.training import stage1_cache  # noqa: E402

#: Presets: name -> TransformerClassifier parameters.
PRESETS = {
    "bce": {"loss": "bce"},
    "focal1.5": {"loss": "focal_bce", "loss__gamma": 1.5},
    "focal2": {"loss": "focal_bce", "loss__gamma": 2.0},
    "focal2.5": {"loss": "focal_bce", "loss__gamma": 2.5},
    "afl": {"loss": "afl"},
    # AFL with its focusing capped lower: at gamma 10 a positive at p = 0.5 keeps 0.1% of its gradient
    "afl_cap4": {"loss": "afl", "loss__max_gamma": 4.0},
    # AFL with inverse-frequency label weights (both terms of a label)
    "afl_b": {"loss": "afl", "loss__alpha": "balanced"},
}
DEFAULT_LOSSES = "bce,focal1.5,focal2,focal2.5,afl"


def resolve_loss(name):
    """Preset, ``focal<γ>``, ``afl<γ>`` or a registered multi-label loss name -> parameters;
    ``<loss>+calora[<balance>]``: that loss with CALoRA's stage 2 weighting its rows by
    ``head__balance=<balance>`` (the first fit of a seed with that stage 1, ``<loss>`` or a
    ``+calora`` variant, trains it; the others load it from the stage-1 cache);
    ``<loss>+hamr[key=value;...]``: that loss trained with HAMR and those ``training__`` settings
    (values read as JSON where they parse, else as text); ``<loss>[key=value;...]``: that loss with
    those ``loss__`` parameters (``weighted_bce[max_pos_weight=8]``)."""
    m = re.fullmatch(r"(.+)\+calora\[(\w+)\]", name)
    if m:
        return {**resolve_loss(m.group(1)), "head": "calora", "head__balance": m.group(2)}
    m = re.fullmatch(r"(.+)\+hamr(?:\[(.*)\])?", name)
    if m:
        return {**resolve_loss(m.group(1)), "training": "hamr", **_settings(name, m.group(2), "training")}
    m = re.fullmatch(r"(\w[\w.]*)\[(.*)\]", name)
    if m:
        return {**resolve_loss(m.group(1)), **_settings(name, m.group(2), "loss")}
    if name in PRESETS:
        return dict(PRESETS[name])
    m = re.fullmatch(r"(focal|afl)(\d+(?:\.\d+)?)", name)
    if m:
        return {"loss": "focal_bce" if m.group(1) == "focal" else "afl", "loss__gamma": float(m.group(2))}
    if name in available_losses("multilabel"):
        return {"loss": name}
    raise SystemExit(f"unknown loss {name!r}: use one of {sorted(PRESETS)}, focal<gamma>, afl<gamma> or "
                     f"{sorted(available_losses('multilabel'))}")


def _settings(name, text, prefix):
    """``key=value;...`` -> ``{prefix__key: value}`` (values read as JSON where they parse)."""
    return key_values((text or "").split(";"), f"{name!r} (pairs separated by ';')", prefix + "__")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="goemotions", help="a multi-label data set of load_dataset")
    p.add_argument("--train-size", type=int, default=4000,
                   help="training rows (stratified subsample by rarest label); 0 = the whole train split")
    p.add_argument("--test-size", type=int, default=2000,
                   help="test rows (stratified subsample by rarest label); 0 = the whole test split")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subsamples (same rows for every run)")
    p.add_argument("--losses", default=DEFAULT_LOSSES, help="comma-separated; see the module docstring")
    p.add_argument("--seeds", default="0,1,2", help="model seeds (initialisation, dropout, batch order)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--micro-only", action="store_true",
                   help="only time each loss's forward + backward on a batch of logits (no model)")
    p.add_argument("--head-lr-multiplier", default="auto",
                   help="the estimator's head_lr_multiplier ('auto': 10 for full fine-tuning of multi-label)")
    p.add_argument("--finetune", choices=["full", "lora", "head"], default="full",
                   help='"head": frozen backbone, its pooled features computed once for all runs')
    p.add_argument("--backbone", default=None, help="backbone directory or name (default: offline MiniLM)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the short untimed fit that keeps one-off start-up costs out of the first loss")
    p.add_argument("--threshold", choices=["0.5", "tuned"], default="0.5",
                   help="decision thresholds: 0.5, or per label tuned on a validation split (--validation-fraction)")
    p.add_argument("--validation-fraction", type=float, default=None,
                   help="held-out share of the training rows (needed by --threshold tuned; default: 0.1 then)")
    p.add_argument("--no-bce", action="store_true",
                   help="run BCE only if --losses lists it (the epoch-time ratios are then n/a)")
    p.add_argument("--out", default="benchmarks/results/losses.json", help="JSON; the .md goes next to it")
    return p.parse_args(argv)


def load(args):
    return load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size,
                           seed=args.data_seed, task="multilabel")


def make_classifier(args, params, seed):
    tuned, fraction = args.threshold == "tuned", args.validation_fraction
    return TransformerClassifier(args.backbone, finetune=args.finetune, max_epochs=args.epochs,
                                 batch_size=args.batch_size, max_length=args.max_length, lr=args.lr,
                                 head_lr_multiplier=_multiplier(args.head_lr_multiplier), device=args.device,
                                 random_state=seed, threshold="tuned" if tuned else 0.5,
                                 validation_fraction=fraction if fraction is not None else (0.1 if tuned else None),
                                 **params)


def _multiplier(text):
    return text if text == "auto" else float(text)


def run_one(args, name, params, seed, data, Y_train, Y_test):
    rec = {"loss": name, "params": params, "seed": seed}
    try:
        with measure(rec):
            clf = make_classifier(args, params, seed)
            t0 = time.perf_counter()
            clf.fit(data.X_train, Y_train)
            rec["fit_s"] = time.perf_counter() - t0
            rec["stage1_cached"] = bool(clf.stage1_cached_)
            if params.get("head") == "calora":
                rec.update(stage2_balance=clf.stage2_balance_, stage2_s=float(clf.stage2_time_s_))
            if params.get("training") == "hamr":
                rec["meta_objective"] = clf.meta_objective_
            t0 = time.perf_counter()
            proba = np.asarray(clf.predict_proba(data.X_test))
            rec["predict_s"] = time.perf_counter() - t0
        Y_pred = (proba >= clf.thresholds_).astype(np.int64)  # exactly clf.predict
        rep = multilabel_report(Y_test, Y_pred, Y_score=proba, train_Y=Y_train,
                                label_names=list(data.target_names))
        rec["epoch_dur_s"] = [float(d) for d in clf.history_[:, "dur"]]
        rec["metrics"] = {k: rep[k] for k in ("macro_f1", "micro_f1", "macro_roc_auc", "micro_roc_auc",
                                              "micro_recall", "micro_precision", "samples_f1",
                                              "n_labels_auc_skipped")}
        if args.threshold == "tuned":  # the same fit at the fixed 0.5, for the tuned thresholds' gain
            fixed = multilabel_report(Y_test, (proba >= 0.5).astype(np.int64), label_names=list(data.target_names))
            rec["macro_f1_at_0.5"] = fixed["macro_f1"]
        rec["quartile_f1"] = rep["quartile_f1"]
        rec["quartile_labels"] = rep["quartile_labels"]
        rec["per_label_f1"] = {k: v["f1"] for k, v in rep["per_label"].items()}
        gamma = getattr(clf, "gamma_", None)
        if gamma is not None:
            rec["gamma_"] = dict(zip(data.target_names, np.asarray(gamma, dtype=float).round(4).tolist()))
        at_half = f" (at 0.5: {rec['macro_f1_at_0.5']:.4f})" if "macro_f1_at_0.5" in rec else ""
        print(f"[seed {seed}] {name:10s} macro-F1 {rep['macro_f1']:.4f}{at_half} micro-F1 {rep['micro_f1']:.4f} "
              f"macro-AUC {rep['macro_roc_auc']:.4f} epoch {np.mean(rec['epoch_dur_s']):.1f}s "
              f"fit {rec['fit_s']:.1f}s peak {rec['peak_mib']:.0f} MiB", flush=True)
    except Exception as exc:  # one failing loss must not sink the comparison
        rec["error"] = f"{type(exc).__name__}: {exc}"
        print(f"[seed {seed}] {name}: FAILED {rec['error']}", flush=True)
    return rec


def summarise(runs, names, seeds):
    ok = [r for r in runs if "error" not in r]
    bce_dur = {r["seed"]: float(np.mean(r["epoch_dur_s"])) for r in ok if r["loss"] == "bce"}
    summary = {}
    for name in names:
        rs = [r for r in ok if r["loss"] == name]
        ratios = [float(np.mean(r["epoch_dur_s"])) / bce_dur[r["seed"]] for r in rs if r["seed"] in bce_dur]
        entry = {"n_runs": len(rs), "n_failed": sum(1 for r in runs if r["loss"] == name and "error" in r),
                 "errors": [r["error"] for r in runs if r["loss"] == name and "error" in r]}
        for key in ("macro_f1", "micro_f1", "macro_roc_auc", "micro_recall"):
            entry[key] = mean_std([r["metrics"][key] for r in rs])
        entry["macro_f1_at_0.5"] = mean_std([r.get("macro_f1_at_0.5") for r in rs])  # tuned thresholds only
        entry["quartile_f1"] = {q: mean_std([r["quartile_f1"].get(q) for r in rs]) for q in QUARTILES}
        entry["epoch_s"] = mean_std([float(np.mean(r["epoch_dur_s"])) for r in rs])
        entry["epoch_time_vs_bce"] = mean_std(ratios)
        entry["fit_s"] = mean_std([r["fit_s"] for r in rs])
        entry["predict_s"] = mean_std([r["predict_s"] for r in rs])
        entry["peak_mib"] = mean_std([r["peak_mib"] for r in rs])
        summary[name] = entry
    return summary


def tables(summary, runs, names, header, threshold="0.5"):
    def col(name, pick, digits=4):
        rs = [r for r in runs if r["loss"] == name and "error" not in r]
        return fmt([pick(r) for r in rs], digits)

    bce = {r["seed"]: float(np.mean(r["epoch_dur_s"])) for r in runs if r["loss"] == "bce" and "error" not in r}
    tuned = threshold == "tuned"  # then a column of the same fits at the fixed 0.5
    headers = ["loss", "macro-F1", *(["macro-F1 at 0.5"] if tuned else []), "micro-F1", "macro ROC AUC",
               "micro recall", "runs"]
    main_rows, q_rows, cost_rows = [], [], []
    for name in names:
        if summary[name]["n_runs"] == 0:
            main_rows.append([name, *(["failed"] * (len(headers) - 2)),
                              summary[name]["errors"][0] if summary[name]["errors"] else ""])
            continue
        at_half = [col(name, lambda r: r.get("macro_f1_at_0.5"))] if tuned else []
        main_rows.append([name, col(name, lambda r: r["metrics"]["macro_f1"]), *at_half,
                          col(name, lambda r: r["metrics"]["micro_f1"]),
                          col(name, lambda r: r["metrics"]["macro_roc_auc"]),
                          col(name, lambda r: r["metrics"]["micro_recall"]), summary[name]["n_runs"]])
        q_rows.append([name, *(col(name, lambda r, q=q: r["quartile_f1"].get(q)) for q in QUARTILES)])
        cost_rows.append([name, col(name, lambda r: float(np.mean(r["epoch_dur_s"])), 1),
                          col(name, lambda r: float(np.mean(r["epoch_dur_s"])) / bce[r["seed"]]
                              if r["seed"] in bce else None, 3),
                          col(name, lambda r: r["fit_s"], 1), col(name, lambda r: r["predict_s"], 1),
                          col(name, lambda r: r["peak_mib"], 0)])
    parts = [header,
             f"### Quality (mean ± std over seeds; threshold {threshold})", "",
             markdown_table(headers, main_rows),
             "", "### F1 per label-frequency quartile (Q1 = rarest labels, by training positives)", "",
             markdown_table(["loss", *QUARTILES], q_rows),
             "", "### Cost (time per epoch from skorch's `dur`; ratio to BCE of the same seed, target <= 1.02; "
             "a loss and its `+calora` variants share one stage 1 and its epochs; the one that loads it "
             "times its own part only)", "",
             markdown_table(["loss", "s / epoch", "epoch time / BCE", "fit s", "predict s", "peak RSS MiB"],
                            cost_rows)]
    return "\n".join(parts)


def loss_microbench(names, variants, Y_train, batch_size, repeats=2000):
    """Forward + backward time of each loss alone on a ``(batch_size, C)`` batch of logits.

    The per-epoch ratios of fitted runs carry the machine's noise; this is the part of a
    training step that differs between the losses, measured on its own (single thread).
    """
    import torch

    from skimb.losses import make_loss

    rng = np.random.default_rng(0)
    n, C = Y_train.shape
    counts, out = Y_train.sum(axis=0).astype(np.float64), {}
    for name in names:
        params = {k: v for k, v in variants[name].items() if not k.startswith(("head", "training"))}  # the loss alone
        loss_name = params.pop("loss")
        loss = make_loss(loss_name, task="multilabel", class_counts=counts, n_samples=n, **params)
        rows = rng.integers(0, n, size=batch_size)
        target = torch.as_tensor(Y_train[rows], dtype=torch.float32)
        logits = torch.randn(batch_size, C, requires_grad=True)
        for _ in range(50):  # warm-up
            loss(logits, target).mean().backward()
        t0 = time.perf_counter()
        for _ in range(repeats):
            loss(logits, target).mean().backward()
        out[name] = 1e6 * (time.perf_counter() - t0) / repeats
    return out


def main(argv=None):
    args = parse_args(argv)
    listed = [n.strip() for n in args.losses.split(",") if n.strip()]
    names = list(dict.fromkeys(listed if args.no_bce else ["bce", *listed]))
    variants = {n: resolve_loss(n) for n in names}
    if args.micro_only:
        data = load(args)
        us = loss_microbench(names, variants, np.asarray(data.y_train), args.batch_size)
        rows = [[n, f"{us[n]:.0f}", f"{us[n] - us['bce']:+.0f}" if "bce" in us else "n/a"] for n in names]
        print(f"Loss forward + backward alone, batch {args.batch_size} x {np.asarray(data.y_train).shape[1]} "
              f"labels, {machine_description()}:\n")
        print(markdown_table(["loss", "µs per batch", "vs BCE µs"], rows))
        return 0
    seeds = ints(args.seeds)
    t_start = time.perf_counter()
    data = load(args)
    Y_train, Y_test = np.asarray(data.y_train), np.asarray(data.y_test)
    pos = Y_train.sum(axis=0)
    sub = (f"stratified subsample (rarest label, seed {args.data_seed}) of {args.dataset}: "
           f"{len(data.X_train)} train rows (--train-size {args.train_size or 'all'}), "
           f"{len(data.X_test)} test rows (--test-size {args.test_size or 'all'}); "
           f"{Y_train.shape[1]} labels, training positives {int(pos.max())} … {int(pos.min())}")
    print(sub, flush=True)

    load_backbone(args.backbone)  # warm the weight cache so no run pays for the first read
    if not args.no_warmup:  # one tiny untimed fit: lazy initialisation of torch kernels, tokenizer, ...
        warm = dict(args.__dict__, epochs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # labels without positives in the 2 warm-up batches
            make_classifier(argparse.Namespace(**warm), {"loss": "bce"}, 0).fit(
                data.X_train[:2 * args.batch_size], Y_train[:2 * args.batch_size])

    runs, calora_bases = [], {n.split("+calora[")[0] for n in names if "+calora[" in n}
    for i, seed in enumerate(seeds):
        # The losses of a seed run back to back, so each epoch-time ratio compares runs made under the
        # same machine load; the order is reversed on every other seed so that no loss is always first.
        # A loss and its +calora variants share one stage 1 whichever runs first: a plain fit keeps
        # its stage 1 only where a +calora variant follows, and only until the seed's runs end.
        with stage1_cache.sharing(share=lambda est: False):
            for name in (names if i % 2 == 0 else names[::-1]):
                with stage1_cache.sharing(share=(lambda est: True) if name in calora_bases else None):
                    runs.append(run_one(args, name, variants[name], seed, data, Y_train, Y_test))

    summary = summarise(runs, names, seeds)
    afl_gammas = {r["loss"]: r["gamma_"] for r in runs if "gamma_" in r and "error" not in r and r["seed"] == seeds[0]}
    total_s = time.perf_counter() - t_start
    header = (f"## Multi-label losses on {args.dataset}\n\n"
              f"{sub}. Backbone {args.backbone or 'all-MiniLM-L6-v2 (bundled)'}, finetune={args.finetune!r}, "
              f"{args.epochs} epoch(s), batch {args.batch_size}, max length {args.max_length}, lr {args.lr}, "
              f"head_lr_multiplier {args.head_lr_multiplier}, "
              f"seeds {args.seeds}. Machine: {machine_description()}. Total wall time {total_s:.0f} s.\n")
    md = tables(summary, runs, names, header, args.threshold)
    if afl_gammas:
        md += "\n\n### Fitted `gamma_` (seed {}; per label, most frequent label first)\n\n".format(seeds[0])
        order = np.argsort(-pos, kind="stable")
        rows = [[data.target_names[j], int(pos[j]), *(g[data.target_names[j]] for g in afl_gammas.values())]
                for j in order]
        md += markdown_table(["label", "train positives", *afl_gammas], rows)
    print()
    print(md, flush=True)

    result = {
        "machine": machine_description(),
        "command": command_line("benchmarks/losses.py", argv),
        "dataset": args.dataset, "subsample": sub, "n_train": len(data.X_train), "n_test": len(data.X_test),
        "n_labels": int(Y_train.shape[1]), "train_positives": dict(zip(data.target_names, pos.tolist())),
        "settings": vars(args), "variants": variants, "summary": summary, "afl_gamma_": afl_gammas,
        "total_wall_s": total_s, "runs": runs,
    }
    out, md_path = write_outputs(args.out, result, md)
    print(f"\nwrote {out} and {md_path} ({total_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
