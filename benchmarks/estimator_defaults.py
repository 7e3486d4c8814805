"""What a ``TransformerClassifier`` scores with its own defaults against other training budgets.

One fit per call, on ``--dataset`` (``--train-size`` texts of its training split, the whole test
split), with ``random_state=--seed`` and the estimator parameters of ``--params`` (JSON) over the
defaults; appends a JSON line with test macro-F1, accuracy, fit time and the resolved ``lr_``
and ``batch_size`` to ``--out``. Round 30 ran it with ``--params '{}'`` under the defaults of the
time (lr 5e-5, batches of 32: the recorded ``lr_`` 5e-05), then with the rates named:

    python benchmarks/estimator_defaults.py --dataset cyclone_idai_2019 --seed 0 --params '{}' \
        --out benchmarks/results/estimator_defaults_round30.jsonl
    python benchmarks/estimator_defaults.py --dataset cyclone_idai_2019 --seed 0 \
        --params '{"lr": 1e-4, "batch_size": 16}' --out benchmarks/results/estimator_defaults_round30.jsonl

(taggers: ``benchmarks/ner.py`` with ``--lr`` and ``--batch-size``.)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import load_subsampled


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--params", default="{}", help="estimator parameters over the defaults, as JSON")
    p.add_argument("--out", required=True, help="JSON-lines file a result line is appended to")
    args = p.parse_args(argv)

    from sklearn.metrics import f1_score

    from skimb import TransformerClassifier

    params = json.loads(args.params)
    data = load_subsampled(args.dataset, train_size=args.train_size, seed=0)
    est = TransformerClassifier(random_state=args.seed, **params)
    t0 = time.perf_counter()
    est.fit(data.X_train, data.y_train)
    fit_s = time.perf_counter() - t0
    pred = est.predict(data.X_test)
    result = dict(dataset=args.dataset, seed=args.seed, params=params, train_size=args.train_size,
                  fit_s=round(fit_s, 1), lr_=est.lr_, batch_size=est.batch_size,
                  macro_f1=float(f1_score(data.y_test, pred, average="macro")),
                  accuracy=float(np.mean(np.asarray(pred) == np.asarray(data.y_test))))
    print(json.dumps(result))
    with open(args.out, "a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
