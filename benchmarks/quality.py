"""Do the methods earn their place? Stage-1 losses, CALoRA, HAMR and the tuned decision rule
on a whole data set, several seeds, one thread per run.

Each fit yields several rows, measured on the same fitted model:

- ``<cfg>``: the stage-1 model (argmax). For a CALoRA fit this is the frozen stage-1 head on
  the stage-1 features, bitwise the model a ``head="linear"`` fit with the same parameters
  trains (``tests/test_classifier.py::test_calora_stage2_keeps_stage1_weights_bitwise``);
- ``<cfg>+tuned``: the same logits plus per-class offsets fitted on the validation split
  (``skimb.metrics.tune_logit_offsets``; ``+tau``: the one-parameter logit adjustment only);
- ``<cfg>+calora`` / ``+calora+tuned``: after CALoRA's stage 2 (the estimator's own
  ``predict`` with ``threshold="tuned"``);
- ``<cfg>+calora_layers`` / ``+calora_layers+tuned`` (``--calora-layers last``): CALoRA with class
  adapters in the backbone's layers too, refitted on the same stage 1 (a stage-1 cache hit).

Every fit holds out the same stratified validation split (``--validation-fraction``), so all
rows train on the same data. Results are written after every fit.

    python benchmarks/quality.py --dataset cyclone_idai_2019 --configs wce,ce --seeds 0,1,2 \
        --out benchmarks/results/quality_cyclone_losses.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from _common import QUARTILES, add_protocol_arguments, class_logits, command_line, fmt, load_protocol_data, \
    machine_description, markdown_table, measure, write_outputs

CONFIGS = {
    "ce": dict(loss="ce"),
    # the same stage 1 as "ce"; its CALoRA rows use the class-balanced stage 2 (head__balance="class",
    # the default since f66ffb8; the "ce" runs before it had the paper's stage-1 weights)
    "ce_b": dict(loss="ce"),
    "wce": dict(loss="ce", class_weight="balanced"),
    "focal": dict(loss="focal", loss__gamma=2.0),
    "wfocal": dict(loss="focal", loss__gamma=2.0, class_weight="balanced"),
    "la": dict(loss="logit_adjusted"),
    # half the prior adjustment: macro-F1 on a test split of the natural distribution wants less than balanced
    "la_t05": dict(loss="logit_adjusted", loss__tau=0.5),
    # deferred re-weighting (Cao et al. 2019) on cross-entropy: plain CE for the first two of 3 epochs, then CE
    # with the class-balanced weights (beta 0.9999). Round 33 ran these as LDAM with no margins and unit scale,
    # the same loss to the bit (tests/test_losses.py::test_class_balanced_drw_is_ldam_without_margins)
    "ce_drw": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=2),
    "ce_drw1": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1),  # re-weighted from the second epoch on
    # softer re-weighting (beta 0.999: effective numbers, about half the inverse-frequency spread here)
    "ce_drw1_b999": dict(loss="class_balanced", loss__beta=0.999, loss__drw_epoch=1),
    # sharpness-aware minimisation on CE-DRW (Rangwani et al. 2022), on every class or the minority ones (ImbSAM)
    "ce_drw1_sam": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1, training="sam"),
    "ce_drw1_imbsam": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1, training="sam",
                           training__classes="minority"),
    "ce_drw1_rdrop": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1, training="rdrop"),  # R-Drop, alpha 1
    "ce_drw1_rdrop03": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1, training="rdrop",
                            training__alpha=0.3),
    "ce_drw1_b999_rdrop": dict(loss="class_balanced", loss__beta=0.999, loss__drw_epoch=1, training="rdrop"),
    # layer-wise learning-rate decay 0.8 on it (round 45): the top layer at 0.8x the rate, the embeddings 0.21x
    "ce_drw1_b999_rdrop_ld8": dict(loss="class_balanced", loss__beta=0.999, loss__drw_epoch=1, training="rdrop",
                                   finetune__layer_decay=0.8),
    "ce_rdrop": dict(loss="ce", training="rdrop"),  # R-Drop's own share, on plain cross-entropy
    # soft ordinal labels (round 41) for graded classes (SST-5): a near-miss grade costs less than a far one
    # (the label texts sort as negative, neutral, positive, very negative, very positive: "ord" and "ord_rdrop"
    # read those indices as grades, the wrong order; the _sst5 configs give the grades)
    "ord": dict(loss="ordinal"),
    "ord_rdrop": dict(loss="ordinal", training="rdrop"),
    "ord_sst5": dict(loss="ordinal", loss__grades=[1, 2, 3, 0, 4]),
    "ord_rdrop_sst5": dict(loss="ordinal", loss__grades=[1, 2, 3, 0, 4], training="rdrop"),
    "ce_ema": dict(loss="ce", ema_decay=0.998),  # weight averaging (round 38)
    "ce_rdrop_ema": dict(loss="ce", training="rdrop", ema_decay=0.998),
    "ce_drw1_b999_rdrop_ema": dict(loss="class_balanced", loss__beta=0.999, loss__drw_epoch=1, training="rdrop",
                                   ema_decay=0.998),
    # HAMR with R-Drop on its update (round 37): on plain CE, on CE-DRW and on the soft CE-DRW
    "hamr_ce_rdrop": dict(loss="ce", training="hamr", training__rdrop_alpha=1.0),
    "hamr_ce_drw1_rdrop": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=1, training="hamr",
                               training__rdrop_alpha=1.0),
    "hamr_ce_drw1_b999_rdrop": dict(loss="class_balanced", loss__beta=0.999, loss__drw_epoch=1, training="hamr",
                                    training__rdrop_alpha=1.0),
    "hamr_ce_drw": dict(loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=2, training="hamr"),
    # the paper's LDAM-DRW: margins, s = 30 on a cosine head (run with --no-calora: CALoRA has its own head)
    "ldam_drw": dict(loss="ldam", loss__drw_epoch=2, head="cosine"),
    "afl": dict(loss="afl"),
    # AFL gives the rarest classes the largest gamma, which silences them under softmax (docs/losses.md);
    # inverse-frequency alpha is the variant meant to undo that
    "afl_b": dict(loss="afl", loss__alpha="balanced"),
    # since round 22 WNet's weights are normalised within each class here (weight_norm="auto"); the
    # batch-normalised composition of rounds 12-14 is hamr_wce_batch
    "hamr_wce": dict(loss="ce", class_weight="balanced", training="hamr"),
    "hamr_wce_batch": dict(loss="ce", class_weight="balanced", training="hamr", training__weight_norm="batch"),
    # the kNN head on weighted CE (run with --no-calora): rows wce_knn (stage 1) and wce_knn+head
    "wce_knn": dict(loss="ce", class_weight="balanced", head="knn"),
    "hamr_ce": dict(loss="ce", training="hamr"),
    # WNet's learning rate pinned (round 13: 1e-3 against the reference's 1e-4)
    "hamr_ce_wlr1e-3": dict(loss="ce", training="hamr", training__wnet_lr=1e-3),
    # meta-weighting only (round 21: for taggers, resampling costs from 1,200 sentences)
    "hamr_ce_weighting_only": dict(loss="ce", training="hamr", training__resampling=False, training__knn=False),
    # HAMR whose WNet also reads the sample's class size (training__class_aware=True, round 14)
    "hamr_ce_ca": dict(loss="ce", training="hamr", training__class_aware=True),
    # HAMR on class weighting with WNet's weights normalised within each class (training__weight_norm="class",
    # round 15): WNet reweights within a class, the class weights alone balance the classes
    "hamr_wce_cn": dict(loss="ce", class_weight="balanced", training="hamr", training__weight_norm="class"),
    # HAMR with the class-balanced meta objective (training__meta_loss="balanced", round 8)
    "hamr_wce_mb": dict(loss="ce", class_weight="balanced", training="hamr", training__meta_loss="balanced"),
    "hamr_ce_mb": dict(loss="ce", training="hamr", training__meta_loss="balanced"),
    # HAMR with systematic (low-variance) epoch draws (training__draw_scheme="systematic", round 8)
    "hamr_wce_sys": dict(loss="ce", class_weight="balanced", training="hamr", training__draw_scheme="systematic"),
    # ... and GBC's meta set (training__meta_selection="gbc", issue #16) in place of the validation-based one
    "hamr_wce_sys_gbc": dict(loss="ce", class_weight="balanced", training="hamr", training__draw_scheme="systematic",
                             training__meta_selection="gbc"),
    # plain CE with the class prototypes mixed into the head (run with --no-calora): rows ce_proto and ce_proto+head
    "ce_proto": dict(loss="ce", head="prototype"),
    # ... and on class weighting (run with --no-calora): rows wce_proto and wce_proto+head (round 27)
    "wce_proto": dict(loss="ce", class_weight="balanced", head="prototype"),
    "hamr_wce_proto": dict(loss="ce", class_weight="balanced", training="hamr", head="prototype"),
    # HAMR on weighted CE with the kNN head (run with --no-calora): rows hamr_wce_knn and hamr_wce_knn+head
    "hamr_wce_knn": dict(loss="ce", class_weight="balanced", training="hamr", head="knn"),
    # catch-all classes (issue #16), the class named by --catch-all: class weights over the real classes
    # only (Hu et al. 2022) and the ranking loss of dos Santos et al. (2015)
    # sequential targeting (issue #16): 3 stages from the original to a balanced class distribution, EWC
    # (the "seq" and "seq_l0" runs of round 8's first lanes ran before lr_restart existed: one schedule;
    # "seq" ran with ewc_lambda=1, the default until the end of round 8)
    "seq": dict(loss="ce", training="sequential", training__ewc_lambda=1.0),
    "seq_l0": dict(loss="ce", training="sequential", training__ewc_lambda=0.0),
    "seq_l01": dict(loss="ce", training="sequential", training__ewc_lambda=0.1),
    "seq_one_schedule": dict(loss="ce", training="sequential", training__lr_restart=False),
    "wce_catch_all": dict(loss="weighted_ce"),
    "ranking": dict(loss="ranking"),
}
CATCH_ALL_CONFIGS = {"wce_catch_all", "ranking"}


def _report(y_true, y_pred, train_labels, catch_all=None):
    from skimb.metrics import imbalance_report, real_class_f1_score

    rep = imbalance_report(y_true, y_pred, train_labels=train_labels)
    out = {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"], "weighted_f1": rep["weighted_f1"],
           "per_class_f1": {str(k): v["f1"] for k, v in rep["per_class"].items()},
           "quartile_f1": rep["quartile_f1"]}
    if catch_all is not None:
        out["real_class_f1"] = real_class_f1_score(y_true, y_pred, catch_all=catch_all,
                                                   labels=np.unique(np.asarray(train_labels)))
    return out


def _stage1_logits(est, texts):
    """Logits of the frozen stage-1 head (CALoRA fits) or of the model itself."""
    head = est.net_.module_.head
    if not hasattr(head, "base"):
        return class_logits(est, texts)
    feats = torch.from_numpy(est.embed(texts))
    with torch.inference_mode():
        return head.base(feats).float().numpy()


def run_one(cfg, seed, data, args):
    from skimb import TransformerClassifier
    from skimb.metrics import tune_logit_offsets

    params = dict(CONFIGS[cfg])
    if cfg in CATCH_ALL_CONFIGS:
        if args.catch_all is None:
            raise SystemExit(f"--configs {cfg} needs --catch-all LABEL")
        params["loss__catch_all"] = args.catch_all
    if args.calora:
        if "head" in params:
            raise SystemExit(f"--configs {cfg} trains head={params['head']!r}: run it with --no-calora")
        params.update(head="calora", head__k=args.k, head__rank=args.rank)
    est = TransformerClassifier(max_epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
                                lr=args.lr, validation_fraction=args.validation_fraction, threshold="tuned",
                                random_state=seed, **params)
    record = {"config": cfg, "seed": seed, "params": {k: str(v) for k, v in params.items()}}
    with measure(record):
        est.fit(data.X_train, data.y_train)
    record["fit_s"] = est.fit_time_s_
    classes = est.classes_
    y_enc = np.searchsorted(classes, np.asarray(data.y_train))
    train_idx, valid_idx = est._adapter().split(y_enc, "multiclass", seed)
    X_val = [data.X_train[i] for i in valid_idx]
    prior = np.bincount(y_enc[train_idx], minlength=len(classes)) + 1.0
    t0 = time.perf_counter()
    val1, test1 = _stage1_logits(est, X_val), _stage1_logits(est, data.X_test)
    rows = {cfg: classes[test1.argmax(1)]}
    for search, name in (("offsets", "+tuned"), ("tau", "+tau")):  # bagged, as threshold="tuned" is
        b = tune_logit_offsets(y_enc[valid_idx], val1, class_prior=prior, search=search, n_bootstrap=30,
                               random_state=seed)
        rows[cfg + name] = classes[(test1 + b).argmax(1)]
    if args.save_features:  # penultimate features and the stage-1 head, to study second stages offline
        head = est.net_.module_.head
        base = getattr(head, "base", head)
        extra = dict(f_train=est.embed([data.X_train[i] for i in train_idx]), f_val=est.embed(X_val),
                     f_test=est.embed(data.X_test), y_train=y_enc[train_idx],
                     head_weight=base.weight.detach().numpy(), head_bias=base.bias.detach().numpy())
    else:
        extra = {}
    logits = {**extra, "val_stage1": val1, "test_stage1": test1, "y_val": y_enc[valid_idx],
              "y_test": np.searchsorted(classes, np.asarray(data.y_test)), "prior": prior}
    if not args.calora and hasattr(est.net_.module_.head, "base"):  # another second-stage head (knn)
        test2 = class_logits(est, data.X_test)
        logits.update(val_head=class_logits(est, X_val), test_head=test2)
        rows[cfg + "+head"] = classes[test2.argmax(1)]
        rows[cfg + "+head+tuned"] = est.predict(data.X_test)
    if args.calora:
        test2 = class_logits(est, data.X_test)
        logits.update(val_calora=class_logits(est, X_val), test_calora=test2)
        rows[cfg + "+calora"] = classes[test2.argmax(1)]
        rows[cfg + "+calora+tuned"] = est.predict(data.X_test)
        record["stage2_s"] = est.stage2_time_s_
        record["routing_topk_coverage"] = est.routing_topk_coverage_
        record["stage2_balance"] = est.stage2_balance_
        if args.calora_layers:
            _calora_layers(est, data, X_val, classes, rows, logits, record, args)
        for balance in filter(None, (args.calora_balances or "").split(",")):
            _calora_balance(est, balance, data, X_val, classes, rows, logits, record)
    record["predict_s"] = time.perf_counter() - t0
    # the logits, so that other decision rules can be scored later without refitting
    path = Path(args.out).with_suffix("") / f"{cfg}_seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, classes=classes.astype(str), **logits)
    record["logits_file"] = str(path)
    record["rows"] = {name: _report(data.y_test, pred, data.y_train, args.catch_all) for name, pred in rows.items()}
    return record


def _calora_layers(est, data, X_val, classes, rows, logits, record, args):
    """CALoRA with adapters inside the backbone, on ``est``'s stage 1 (from the stage-1 cache)."""
    from sklearn.base import clone

    layered = clone(est).set_params(head__layers=args.calora_layers.split(",") if "," in args.calora_layers
                                     else args.calora_layers, head__layer_epochs=args.calora_layers_epochs,
                                     head__layer_lr=args.calora_layers_lr)
    layered.fit(data.X_train, data.y_train)
    assert layered.stage1_cached_, "the layered CALoRA must reuse the head-only fit's stage 1"
    t0 = time.perf_counter()
    est.embed(data.X_test)
    one_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    test3 = class_logits(layered, data.X_test)
    routed = time.perf_counter() - t0
    logits.update(val_calora_layers=class_logits(layered, X_val), test_calora_layers=test3)
    rows["{}+calora_layers".format(record["config"])] = classes[test3.argmax(1)]
    rows["{}+calora_layers+tuned".format(record["config"])] = layered.predict(data.X_test)
    record.update(layers_stage2_s=layered.stage2_time_s_, layers=layered.routed_layers_.tolist(),
                  test_one_pass_encode_s=one_pass, test_layers_predict_s=routed)


def _calora_balance(est, balance, data, X_val, classes, rows, logits, record):
    """CALoRA with another stage-2 ``head__balance`` on ``est``'s stage 1 (from the stage-1 cache)."""
    from sklearn.base import clone

    other = clone(est).set_params(head__balance=balance).fit(data.X_train, data.y_train)
    assert other.stage1_cached_, "the stage-2 variant must reuse the first fit's stage 1"
    test = class_logits(other, data.X_test)
    logits.update({f"val_calora_{balance}": class_logits(other, X_val), f"test_calora_{balance}": test})
    name = "{}+calora[{}]".format(record["config"], balance)
    rows[name] = classes[test.argmax(1)]
    rows[name + "+tuned"] = other.predict(data.X_test)
    record.setdefault("balance_stage2_s", {})[balance] = other.stage2_time_s_


def summarise(records):
    by_row = {}
    for r in records:
        for name, rep in r["rows"].items():
            by_row.setdefault(name, []).append((r, rep))
    table = []
    for name, items in by_row.items():
        reps = [rep for _, rep in items]
        real = [fmt([x["real_class_f1"] for x in reps])] if "real_class_f1" in reps[0] else []
        table.append([name, len(items), fmt([x["macro_f1"] for x in reps]), *real,
                      fmt([x["micro_f1"] for x in reps]),
                      *[fmt([x["quartile_f1"].get(q) for x in reps], 3, std=False) for q in QUARTILES],
                      fmt([r["fit_s"] for r, _ in items], 1, std=False)])
    table.sort(key=lambda row: -float(row[2].split()[0]) if row[2] != "n/a" else 0)
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--configs", default="wce,ce")
    add_protocol_arguments(p)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--no-calora", dest="calora", action="store_false")
    p.add_argument("--catch-all", default=None,
                   help="the catch-all label: used by the wce_catch_all and ranking configs; every row then "
                        "also reports macro-F1 over the real classes")
    p.add_argument("--calora-layers", default=None,
                   help="also fit CALoRA with adapters in these backbone layers ('last' or comma-separated "
                        "names) on the same stage 1")
    p.add_argument("--calora-layers-epochs", type=int, default=1, help="head__layer_epochs")
    p.add_argument("--calora-layers-lr", type=float, default=1e-4, help="head__layer_lr")
    p.add_argument("--calora-balances", default=None,
                   help="comma-separated head__balance values ('class,sqrt,uniform,none') fitted as well, on the "
                        "same stage 1: rows <config>+calora[<balance>]")
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--save-features", action="store_true",
                   help="also save the train/val/test penultimate features and the stage-1 head")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_protocol_data(args)
    records = []
    out = Path(args.out)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for cfg in args.configs.split(","):
            rec = run_one(cfg, seed, data, args)
            records.append(rec)
            print(json.dumps({"config": cfg, "seed": seed, "fit_s": round(rec["fit_s"], 1),
                              **{k: v["macro_f1"] for k, v in rec["rows"].items()}}), flush=True)
            table = summarise(records)
            md = "\n".join([
                f"# quality: {args.dataset}", "", f"- command: `{command_line('benchmarks/quality.py', argv)}`",
                f"- machine: {machine_description()}", f"- train {len(data.X_train)} / test {len(data.X_test)}",
                "", markdown_table(["row", "n", "macro-F1", *(["real-class F1"] if args.catch_all else []), "micro-F1",
                                     *QUARTILES, "fit s"], table)])
            write_outputs(out, {"command": command_line("benchmarks/quality.py", argv), "args": vars(args),
                                "machine": machine_description(), "records": records}, md)


if __name__ == "__main__":
    main()
