"""What per-label HAMR's WNet learned on GoEmotions (round 26; losses.py's protocol, seed 0).

Run from the repository root, one thread, with the estimator parameters as JSON:

    DIAG_PARAMS='{"training": "hamr", "training__weight_unit": "label", "training__class_aware": true,
                  "training__wnet_lr": 0.001, "training__meta_loss": "balanced"}' \\
        OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/results/hamr_multilabel_wnet_round26/diag.py
    # diag_label_ca_bal.log; training__wnet_lr 0.01: diag_label_ca_bal_1e2.log

Prints per epoch the WNet weights' quantiles and each label's median positive-term weight (labels
from the most to the least frequent), WNet's output over a grid of inputs, the predicted positives
per label and the macro-F1. (The two logs came from a first draft of this script that computed the
same things with less tidy code.)
"""
import json
import os

import numpy as np
import torch

import benchmarks.losses as L
from skimb.metrics import multilabel_report

args = L.parse_args(["--dataset", "goemotions", "--train-size", "3000", "--test-size", "1500", "--epochs", "3",
                     "--batch-size", "16", "--max-length", "64", "--lr", "1e-4", "--validation-fraction", "0.1"])
data = L.load(args)
Y_train, Y_test = np.asarray(data.y_train), np.asarray(data.y_test)
clf = L.make_classifier(args, json.loads(os.environ["DIAG_PARAMS"]), 0).fit(data.X_train, Y_train)
names = list(data.target_names)
order = np.argsort(-Y_train.sum(0))
for h in clf.sample_weights_history_:
    print("epoch", h["epoch"], {k: round(v, 3) for k, v in h.items() if k not in ("per_class", "epoch")})
    print("  positive-term weight (median) by label, frequent -> rare:",
          " ".join(f"{names[c]}:{h['per_class'][c].get('median')}" for c in order))
wnet = clf.wnet_
for z in (-1.0, 0.0, 1.0, 3.0, 6.0):
    cells = []
    for sign in (1.0, -1.0):
        for size in (-2.0, 0.0, 1.5):
            x = torch.tensor([[z, sign, size][:wnet.linear1.in_features]])
            cells.append(f"s{int(sign):+d}/n{size:+.1f}:{torch.sigmoid(wnet(x)).item():.3f}")
    print("wnet z", z, " ".join(cells))
Y_pred = (np.asarray(clf.predict_proba(data.X_test)) >= 0.5).astype(int)
print("pred positives per label (frequent->rare) vs true:",
      [(names[c], int(Y_pred[:, c].sum()), int(Y_test[:, c].sum())) for c in order])
print("macro-F1", multilabel_report(Y_test, Y_pred)["macro_f1"])
