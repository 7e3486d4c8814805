"""Second stages on a fitted stage 1's cached features, scored offline.

Reads the ``.npz`` files that ``benchmarks/quality.py --save-features`` writes (penultimate
features of the training, validation and test texts, and the stage-1 head) and scores cheap
second stages on them, each with and without per-class logit offsets tuned on the validation
split: the stage-1 head itself, cRT (a linear head re-trained with class-balanced weighting,
Kang et al. 2020), tau-normalised head weights (tau chosen on validation), and the average of
the stage-1 and cRT probabilities; ``--knn`` adds ``head="knn"`` (the stage-1 head mixed with the
labels of the nearest training rows), ``--prototype`` ``head="prototype"`` (the stage-1 head mixed
with the cosine similarities to the class means).

    python benchmarks/second_stages.py benchmarks/results/quality_cyclone_wce/wce_seed*.npz \
        --out benchmarks/results/second_stages_cyclone_wce.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _common import class_logits, command_line, fmt, machine_description, markdown_table, write_outputs


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def crt_logits(f_train, y_train, n_classes, seed, C=1.0):
    """cRT: a linear head re-trained on the frozen features with class-balanced weighting."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
    lr.fit(f_train, y_train)
    full = np.full((n_classes,), -1e9)

    def logits(f):
        out = np.tile(full, (len(f), 1))
        out[:, lr.classes_] = class_logits(lr, f)  # a binary LR's 1-D margin as two columns
        return out

    return logits


def tau_norm_logits(W, b, tau):
    norms = np.linalg.norm(W, axis=1, keepdims=True) ** tau
    Wn = W / np.maximum(norms, 1e-12)
    return lambda f: f @ Wn.T  # bias dropped, as Kang et al.


def calora_logits(d, seed, *, k=2, rank=8, epochs=20, lr=1e-3, power=1.0, gamma=0.0):
    """CALoRA's stage 2 (skimb.heads.fit_calora_head) on the cached features; the training rows
    are weighted by their class frequency to the power ``-power`` (1: inverse frequency, as
    weighted CE's stage 1; 0.5: its square root; 0: unweighted); the loss is cross-entropy, or
    the focal loss with ``gamma > 0``."""
    import torch
    import torch.nn.functional as F

    from skimb.heads import CALoRAConfig, fit_calora_head
    from skimb.heads._components import class_balanced_row_weights
    from skimb.losses import FocalLoss

    W, b = torch.from_numpy(d["head_weight"]), torch.from_numpy(d["head_bias"])
    base = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        base.weight.copy_(W)
        base.bias.copy_(b)
    y = d["y_train"]
    weights = class_balanced_row_weights(torch.from_numpy(y), W.shape[0], power=power) if power else None
    feats = torch.from_numpy(d["f_train"])
    layer = fit_calora_head(base, feats, None, torch.from_numpy(y), config=CALoRAConfig(n_classes=W.shape[0], rank=rank, k=k),
                            loss_fn=FocalLoss(gamma, reduction="none") if gamma else
                            (lambda z, t: F.cross_entropy(z, t, reduction="none")), sample_weight=weights,
                            epochs=epochs, lr=lr, batch_size=256, random_state=seed)

    def logits(f):
        with torch.no_grad():
            return layer(torch.from_numpy(f)).numpy()

    return logits


def _stage1_head(d):
    import torch

    base = torch.nn.Linear(d["head_weight"].shape[1], d["head_weight"].shape[0])
    with torch.no_grad():
        base.weight.copy_(torch.from_numpy(d["head_weight"]))
        base.bias.copy_(torch.from_numpy(d["head_bias"]))
    return base


def _logits_of(head):
    import torch

    def logits(f):
        with torch.no_grad():
            return head(torch.from_numpy(f)).numpy()

    return logits


def knn_logits(d, *, k, weight):
    """skimb's ``head="knn"`` on the cached features: the stage-1 head mixed with the labels of
    the ``k`` nearest training rows."""
    import torch

    from skimb.heads import KNNInterpolatedHead

    return _logits_of(KNNInterpolatedHead(_stage1_head(d), torch.from_numpy(d["f_train"]),
                                          torch.from_numpy(d["y_train"]), k=k, weight=weight, multilabel=False))


def prototype_logits(d, *, scale, weight, catch_all=None):
    """skimb's ``head="prototype"`` on the cached features: the stage-1 head mixed with the scaled
    cosine similarities to the class means of the training rows (``catch_all``: a class index
    scored by the learned threshold)."""
    from types import SimpleNamespace

    from skimb.heads import PrototypeHead

    module = SimpleNamespace(head=_stage1_head(d))
    C = d["head_weight"].shape[0]
    PrototypeHead(scale=scale, weight=weight, catch_all=catch_all).fit_stage2(
        module, d["f_train"], d["y_train"], None, loss_fn=None, device="cpu", seed=0, batch_size=32,
        multilabel=False, classes=np.arange(C))
    return _logits_of(module.head)


def score_file(path, calora_grid=(), knn_grid=(), n_bootstrap=0, crt=True, prototype_grid=()):
    from skimb.metrics import macro_f1_from_labels, tune_logit_offsets

    d = np.load(path)
    C = d["head_weight"].shape[0]
    seed = int(Path(path).stem.split("seed")[-1])
    heads = {"stage1": lambda f: f @ d["head_weight"].T + d["head_bias"]}
    if crt:  # a many-class logistic regression is slow on 2 cores
        heads["crt"] = crt_logits(d["f_train"], d["y_train"], C, seed)
    best_tau, best = 0.0, -1.0
    for tau in np.round(np.arange(0, 1.01, 0.1), 1):  # chosen on validation
        s = macro_f1_from_labels(d["y_val"], tau_norm_logits(d["head_weight"], d["head_bias"], tau)(d["f_val"]).argmax(1), C)
        if s > best:
            best_tau, best = tau, s
    heads["tau_norm"] = tau_norm_logits(d["head_weight"], d["head_bias"], best_tau)
    if crt:
        s1, cr = heads["stage1"], heads["crt"]
        heads["stage1+crt"] = lambda f: np.log(0.5 * _softmax(s1(f)) + 0.5 * _softmax(cr(f)) + 1e-12)
    for spec in calora_grid:  # "k,rank,epochs,lr,power[,gamma]" (power 1: class-balanced, 0: unweighted)
        k, rank, epochs, lr, power, *gamma = spec.split(",")
        name = f"calora k={k} r={rank} ep={epochs} lr={lr} bal={power}" + (f" focal={gamma[0]}" if gamma else "")
        heads[name] = calora_logits(d, seed, k=int(k), rank=int(rank), epochs=int(epochs), lr=float(lr),
                                    power=float(power), gamma=float(gamma[0]) if gamma else 0.0)
    for spec in knn_grid:  # "k,weight"
        k, weight = spec.split(",")
        heads[f"knn k={k} w={weight}"] = knn_logits(d, k=int(k), weight=float(weight))
    for spec in prototype_grid:  # "scale,weight[,catch-all class index]"
        scale, weight, *catch_all = spec.split(",")
        name = f"prototype s={scale} w={weight}" + (f" catch_all={catch_all[0]}" if catch_all else "")
        heads[name] = prototype_logits(d, scale=float(scale), weight=float(weight),
                                       catch_all=int(catch_all[0]) if catch_all else None)
    rows = {}
    for name, fn in heads.items():
        val, test = fn(d["f_val"]), fn(d["f_test"])
        rows[name] = macro_f1_from_labels(d["y_test"], test.argmax(1), C)
        b = tune_logit_offsets(d["y_val"], val, class_prior=np.bincount(d["y_train"], minlength=C) + 1.0,
                               n_bootstrap=n_bootstrap, random_state=seed)
        rows[name + " +tuned"] = macro_f1_from_labels(d["y_test"], (test + b).argmax(1), C)
    return rows, {"tau": best_tau}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--calora", default="", help="';'-separated CALoRA stage-2 settings 'k,rank,epochs,lr,power"
                   "[,gamma]' (rows weighted by class count ** -power: 1 class-balanced, 0 unweighted; the focal "
                   "loss of gamma, else cross-entropy)")
    p.add_argument("--knn", default="", help="';'-separated head='knn' settings 'k,weight'")
    p.add_argument("--prototype", default="", help="';'-separated head='prototype' settings 'scale,weight[,catch-all class index]'")
    p.add_argument("--n-bootstrap", type=int, default=0,
                   help="bootstrap resamples the +tuned offsets are averaged over (threshold='tuned' uses 30)")
    p.add_argument("--no-crt", dest="crt", action="store_false", help="skip cRT (slow with many classes)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    grid = [g for g in args.calora.split(";") if g]
    knn = [g for g in args.knn.split(";") if g]
    protos = [g for g in args.prototype.split(";") if g]
    per_file = {f: score_file(f, grid, knn, args.n_bootstrap, crt=args.crt, prototype_grid=protos) for f in args.files}
    names = list(next(iter(per_file.values()))[0])
    table = [[n, fmt([r[n] for r, _ in per_file.values()])] for n in names]
    md = "\n".join(["# Second stages on cached stage-1 features", "",
                    f"- command: `{command_line('benchmarks/second_stages.py', argv)}`",
                    f"- machine: {machine_description()}", f"- files: {len(args.files)} (one per seed)", "",
                    markdown_table(["second stage", "test macro-F1"], table)])
    write_outputs(args.out, {"command": command_line("benchmarks/second_stages.py", argv),
                             "per_file": {f: {"rows": r, **extra} for f, (r, extra) in per_file.items()}}, md)
    print(md)


if __name__ == "__main__":
    main()
