"""Pickle size and time of a fitted estimator: its weights once, against skorch's own layout.

Fits the bundled MiniLM (one epoch on a few dozen Cyclone-Idai tweets: the size does not depend
on the data) for each ``--finetune`` mode, then pickles it twice in the same process: as skimb
pickles it (AdamW's moments dropped once the fit is over, ``module`` stored as ``module_``) and as
skorch's default layout does (``NeuralNet.__getstate__`` pickles ``module_``, ``optimizer_`` and
``criterion_`` apart from the rest, so the ``module`` parameter, which is ``module_``, and the
learning-rate scheduler's optimizer travel a second time; the moments stay). Reports bytes, the
ratio to the trainable model's weights, ``pickle.dumps`` and ``pickle.loads`` seconds, and checks
that both pickles predict as the estimator does.

    python benchmarks/pickle_size.py --out benchmarks/results/pickle_size
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np

from _common import load_subsampled, markdown_table, publish


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _measure(est, X, layout):
    dump_s, data = _timed(lambda: pickle.dumps(est))
    load_s, back = _timed(lambda: pickle.loads(data))
    same = bool(np.array_equal(back.predict_proba(X), est.predict_proba(X)))
    return {"layout": layout, "bytes": len(data), "dumps_s": dump_s, "loads_s": load_s, "same_predictions": same}


def _fit(finetune, X, y, skorch_layout):
    from skorch import NeuralNet

    from skimb import TransformerClassifier
    from skimb.training import TransformerNet

    saved = {name: TransformerNet.__dict__[name] for name in ("release_training_state", "__getstate__", "__setstate__")}
    if skorch_layout:  # the layout before round 48: nothing released, skorch's own pickling
        TransformerNet.release_training_state = lambda self: None
        TransformerNet.__getstate__, TransformerNet.__setstate__ = NeuralNet.__getstate__, NeuralNet.__setstate__
    try:
        est = TransformerClassifier(finetune=finetune, max_epochs=1, batch_size=16, random_state=0,
                                    validation_fraction=None).fit(X, y)
        return est, _measure(est, X, "skorch's default" if skorch_layout else "skimb")
    finally:
        for name, value in saved.items():
            setattr(TransformerNet, name, value)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--finetune", default="full,lora,head")
    p.add_argument("--n-texts", type=int, default=48)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = load_subsampled("cyclone_idai_2019")
    X, y = list(data.X_train[:args.n_texts]), np.asarray(data.y_train[:args.n_texts])
    runs, rows = [], []
    for finetune in args.finetune.split(","):
        for skorch_layout in (True, False):
            est, run = _fit(finetune, X, y, skorch_layout)
            module = est.net_.module_
            run.update(finetune=finetune,
                       weights_bytes=sum(q.numel() * q.element_size() for q in module.parameters()),
                       trainable_bytes=sum(q.numel() * q.element_size() for q in module.parameters() if q.requires_grad))
            runs.append(run)
            rows.append([finetune, run["layout"], f"{run['bytes'] / 2**20:.1f}",
                         f"{run['bytes'] / run['weights_bytes']:.2f}x", f"{run['dumps_s']:.2f}", f"{run['loads_s']:.2f}",
                         "yes" if run["same_predictions"] else "NO"])
    body = markdown_table(["finetune", "layout", "pickle MiB", "/ weights", "dumps s", "loads s", "predicts the same"],
                          rows)
    publish("pickle_size.py", argv, args.out, "Pickle size of a fitted MiniLM classifier", body, runs)


if __name__ == "__main__":
    main()
