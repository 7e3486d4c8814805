"""CALoRA's stage 2 on training features computed with the encoder's dropout on (round 30's
offline probe, not adopted).

One stage-1 fit with ``head="calora"`` at the protocol's budget (3 epochs, batches of 16, 64
tokens, lr 1e-4, 10% held out), then stage 2 refitted on the same stage 1 from the training texts'
eval-mode features (what the estimator does), dropout-on features (1 and 4 passes), both, and
eval-mode features plus Gaussian noise of the dropout's size; each row the mean test macro-F1 over
5 stage-2 seeds. Appends a JSON line to ``OUT``:

    python benchmarks/calora_dropout_features.py cyclone_idai_2019 ce 0 \\
        benchmarks/results/calora_dropout_features_round30.jsonl      # DATASET ce|wce SEED OUT [TRAIN_SIZE]

(The first two lines of round 30's output, Cyclone-Idai ``ce`` and ``wce`` seed 0, came from an
earlier version with one stage-2 seed, the model's, and no Gaussian row.)
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from _common import class_logits, load_subsampled

STAGE2_SEEDS = (0, 1, 2, 3, 4)


def _fit(dataset, weighting, seed, train_size):
    from skimb import TransformerClassifier

    data = load_subsampled(dataset, train_size=train_size, seed=0)
    est = TransformerClassifier(validation_fraction=0.1, random_state=seed, head="calora", max_epochs=3,
                                batch_size=16, max_length=64, lr=1e-4,
                                class_weight="balanced" if weighting == "wce" else None)
    t0 = time.perf_counter()
    est.fit(data.X_train, data.y_train)
    return data, est, time.perf_counter() - t0


def _dropout_features(est, texts, n_passes, seed):
    """``n_passes`` encodings of ``texts`` with the encoder in training mode (dropout on)."""
    from skimb.backbones._modules import encode_texts

    encoder = est.net_.module_.encoder
    encoder.train()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            return [encode_texts(encoder, est.tokenizer_, texts, max_length=est.max_length, batch_size=64,
                                 device="cpu", amp=est.amp) for _ in range(n_passes)]
    finally:
        encoder.eval()


def main(argv):
    from sklearn.metrics import f1_score

    from skimb.heads._components import calora_stage2_epochs, class_neutral_loss
    from skimb.heads.calora.train import fit_calora_head

    dataset, weighting, seed, out = argv[0], argv[1], int(argv[2]), argv[3]
    data, est, fit_s = _fit(dataset, weighting, seed, int(argv[4]) if len(argv) > 4 else 0)
    classes = est.classes_
    y_enc = np.searchsorted(classes, np.asarray(data.y_train))
    train_idx = np.setdiff1d(np.arange(len(y_enc)), est.validation_indices_)
    texts = [data.X_train[i] for i in train_idx]
    y_train, y_test = torch.as_tensor(y_enc[train_idx]), np.searchsorted(classes, np.asarray(data.y_test))
    base = est.net_.module_.head.base  # the frozen stage-1 head
    f_test, f_eval = torch.from_numpy(est.embed(data.X_test)), torch.from_numpy(est.embed(texts))
    dropped = _dropout_features(est, texts, 4, seed)
    noise_std = float((dropped[0] - f_eval).std())
    n_classes = len(classes)

    def macro_f1(logits):
        return float(f1_score(y_test, logits.argmax(1), average="macro"))

    def train_accuracy(features):
        return float((base(features).argmax(1) == y_train).float().mean())

    config, loss_fn = est.head_.config(n_classes), class_neutral_loss(est.net_.criterion_)

    def stage2(features, targets):  # the estimator's own stage-2 row weights (fitted stage2_balance_)
        weights = est.head_._stage2_weights(est.stage2_balance_, None, targets, n_classes)
        with torch.no_grad():
            stage1_logits = base(features).float()
        scores = []
        for s in STAGE2_SEEDS:  # stage 2's own noise, averaged over its seeds
            layer = fit_calora_head(base, features, stage1_logits, targets, config=config, loss_fn=loss_fn,
                                    sample_weight=weights, epochs=calora_stage2_epochs("auto", len(features), 256),
                                    lr=1e-3, batch_size=256, random_state=100 * seed + s)
            layer.eval()
            with torch.no_grad():
                scores.append(macro_f1(layer(f_test).float().numpy()))
        return float(np.mean(scores)), [round(x, 4) for x in scores]

    with torch.no_grad():
        result = {"stage1": macro_f1(base(f_test).numpy()), "calora_est": macro_f1(class_logits(est, data.X_test)),
                  "train_acc_eval": train_accuracy(f_eval), "train_acc_dropout": train_accuracy(dropped[0])}
    noise = torch.Generator().manual_seed(seed)
    noised = [f_eval + noise_std * torch.randn(f_eval.shape, generator=noise) for _ in range(4)]
    result.update(s2_eval=stage2(f_eval, y_train), s2_drop1=stage2(dropped[0], y_train),
                  s2_drop4=stage2(torch.cat(dropped), y_train.repeat(4)),
                  **{"s2_eval+drop4": stage2(torch.cat([f_eval] + dropped), y_train.repeat(5))},
                  s2_gauss4=stage2(torch.cat(noised), y_train.repeat(4)), dropout_feature_noise_std=noise_std,
                  dataset=dataset, cw=weighting, seed=seed, fit_s=fit_s)
    print(json.dumps(result))
    with open(out, "a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
