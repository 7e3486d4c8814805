"""Multi-label decision rules on one fitted model: the fixed 0.5, one F1 search per label on the
validation split (``threshold="tuned"`` before round 24), the search only for labels with at least m
validation positives, and the search bagged over 30 bootstrap resamples (``threshold="tuned"`` now).
GoEmotions, 3,000 training texts (10% held out for validation) and 1,500 test texts, seed 0, one fit
per loss named on the command line; prints each rule's test macro-F1.

    python benchmarks/multilabel_thresholds.py distribution_balanced bce
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_subsampled, source_commit  # noqa: E402
from skimb import TransformerClassifier  # noqa: E402
from skimb.metrics import multilabel_report, tune_thresholds  # noqa: E402

data = load_subsampled("goemotions", train_size=3000, test_size=1500, seed=0, task="multilabel")
Y, Yt = np.asarray(data.y_train), np.asarray(data.y_test)
out = {"commit": source_commit()}
for loss in sys.argv[1:]:
    clf = TransformerClassifier(max_epochs=3, batch_size=16, max_length=64, lr=1e-4, random_state=0, loss=loss,
                                threshold="tuned", validation_fraction=0.1).fit(data.X_train, Y)
    vi = clf.validation_indices_
    Xv = [data.X_train[i] for i in vi]
    sv, st = clf.predict_proba(Xv), clf.predict_proba(data.X_test)
    pos_v = Y[vi].sum(0)
    def f1(th):
        return multilabel_report(Yt, (st >= th).astype(int), Y_score=st)["macro_f1"]
    one = tune_thresholds(Y[vi], sv)  # one F1 search per label
    rules = {"0.5": np.full(Y.shape[1], 0.5), "tuned": one}
    for m in (3, 5, 10):
        rules[f"tuned_if_{m}pos"] = np.where(pos_v >= m, one, 0.5)
    rules["bagged30"] = tune_thresholds(Y[vi], sv, n_bootstrap=30, random_state=0)  # threshold="tuned" now
    out[loss] = {k: round(f1(v), 4) for k, v in rules.items()}
    out[loss]["thresholds"] = np.round(one, 2).tolist()
    out[loss]["val_positives"] = pos_v.tolist()
    out[loss]["mean_score_test"] = float(st.mean())
    print(loss, out[loss], flush=True)
print(json.dumps(out))
