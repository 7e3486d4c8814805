"""skimb against the tools users would pick instead, on the same data, backbone, epochs, batch size,
max length and seeds: fit time, predict throughput, peak memory, macro-F1 and time to quality.

Tools (``--tools``):

- ``skimb``: ``TransformerClassifier(class_weight="balanced")``, its defaults otherwise;
- ``trainer``: the Hugging Face ``Trainer`` with ``AutoModelForSequenceClassification``, a
  class-weighted cross-entropy in a ``compute_loss`` override (the documented way) and
  ``train_sampling_strategy="group_by_length"``; weight decay 0.01 and 10% warm-up as skimb's;
- ``trainer_mean``: the same ``Trainer``, on a model that mean-pools the token states (the pooling
  the sentence-transformer backbone was trained with) instead of BERT's pooler on [CLS];
- ``setfit``: :class:`skimb.baselines.SetFitClassifier` with the same body: contrastive pairs
  anchored by a class-balanced resample of the training texts, as many body passes as the others
  get (``epochs x N`` texts, two per pair), then a class-weighted logistic-regression head; SetFit's
  own body learning rate (2e-5).

Every (tool, seed) run is its own process (one torch thread), so peak memory is the tool's own; the
runs alternate between tools so that machine noise hits all of them. After every epoch the
fine-tuned tools score the test split; the time of that scoring is left out of the training time,
which gives the time-to-quality figures. Results are written after every run.

    python benchmarks/peers.py run --tools skimb,trainer,setfit --seeds 0,1,2 --out results/peers_a.json
    python benchmarks/peers.py report results/peers_a.json results/peers_b.json --out results/peers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import fmt, load_subsampled, markdown_table, measure, publish

TOOLS = ("skimb", "trainer", "trainer_mean", "setfit")


def _macro_f1(y_true, pred):
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, pred, average="macro", zero_division=0))


class _EpochClock:
    """Training seconds and test macro-F1 after every epoch, scoring time left out."""

    def __init__(self, score):
        self.score, self.curve, self.t0, self.eval_s = score, [], None, 0.0

    def start(self):
        self.t0, self.eval_s = time.perf_counter(), 0.0

    def epoch_end(self, model):
        train_s = time.perf_counter() - self.t0 - self.eval_s
        t = time.perf_counter()
        self.curve.append({"train_s": train_s, "macro_f1": self.score(model)})
        self.eval_s += time.perf_counter() - t


# -- the tools ------------------------------------------------------------------------------------
def _balanced_weights(y, n_classes):
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return counts.sum() / (n_classes * np.maximum(counts, 1.0))


def run_skimb(data, y_train, y_test, classes, args, seed):
    import torch
    from skorch.callbacks import Callback
    from skorch.dataset import unpack_data

    from skimb import TransformerClassifier
    from skimb.backbones import EncodedTextDataset, tokenize

    def score(net):
        est_tok = net._skimb_tokenizer
        ds = EncodedTextDataset(tokenize(est_tok, data.X_test, args.max_length), y_test, None)
        was = net.module_.training
        net.module_.eval()
        with torch.inference_mode():
            logits = torch.cat([net.infer(unpack_data(b)[0]).float() for b in net.get_iterator(ds, training=False)])
        net.module_.train(was)
        return _macro_f1(y_test, logits.argmax(1).numpy())

    clock = _EpochClock(score)

    class TestScore(Callback):
        def on_train_begin(self, net, **kwargs):
            from transformers import AutoTokenizer

            from skimb.backbones import resolve_backbone
            net._skimb_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(None))
            clock.start()

        def on_epoch_end(self, net, **kwargs):
            clock.epoch_end(net)

    est = TransformerClassifier(class_weight="balanced", max_epochs=args.epochs, batch_size=args.batch_size,
                                max_length=args.max_length, lr=args.lr, random_state=seed, n_threads=1,
                                callbacks=[TestScore()])
    est.fit(data.X_train, [classes[i] for i in y_train])

    def predict(texts):
        return np.searchsorted(classes, est.predict(texts))

    return clock, predict


class _MeanPooled:
    """A sequence classifier on mean-pooled token states (built lazily: torch imported in the run)."""

    @staticmethod
    def build(path, n_classes):
        import torch
        from transformers import AutoModel
        from transformers.modeling_outputs import SequenceClassifierOutput

        class MeanPooledClassifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = AutoModel.from_pretrained(path)
                self.dropout = torch.nn.Dropout(0.1)
                self.classifier = torch.nn.Linear(self.encoder.config.hidden_size, n_classes)

            def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
                states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

        return MeanPooledClassifier()


def run_trainer(data, y_train, y_test, classes, args, seed, *, mean_pooling=False):
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    from skimb.backbones import resolve_backbone

    path = resolve_backbone(None)
    tok = AutoTokenizer.from_pretrained(path)
    set_seed(seed)  # the new head's initialisation
    model = (_MeanPooled.build(path, len(classes)) if mean_pooling
             else AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(classes)))
    weight = torch.tensor(_balanced_weights(y_train, len(classes)), dtype=torch.float32)
    collate = DataCollatorWithPadding(tok)

    def encode(texts, labels=None):
        enc = tok(list(texts), truncation=True, max_length=args.max_length)
        rows = [{"input_ids": ids, "attention_mask": m} for ids, m in zip(enc["input_ids"], enc["attention_mask"])]
        if labels is not None:
            for row, y in zip(rows, labels):
                row["labels"] = int(y)
        return rows

    test_rows = encode(data.X_test)

    def logits_of(m, rows):
        was = m.training
        m.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(rows), 64):
                batch = collate(rows[i:i + 64])
                out.append(m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float())
        m.train(was)
        return torch.cat(out)

    clock = _EpochClock(lambda m: _macro_f1(y_test, logits_of(m, test_rows).argmax(1).numpy()))

    class WeightedTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = torch.nn.functional.cross_entropy(outputs.logits, labels, weight=weight.to(outputs.logits.device))
            return (loss, outputs) if return_outputs else loss

    class TestScore(TrainerCallback):
        def on_train_begin(self, targs, state, control, **kwargs):
            clock.start()

        def on_epoch_end(self, targs, state, control, model=None, **kwargs):
            clock.epoch_end(model)

    with tempfile.TemporaryDirectory() as out_dir:
        targs = TrainingArguments(
            output_dir=out_dir, per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
            learning_rate=args.lr, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0, seed=seed,
            train_sampling_strategy="group_by_length", use_cpu=True, report_to="none", save_strategy="no",
            logging_strategy="no", eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
        trainer = WeightedTrainer(model=model, args=targs, train_dataset=encode(data.X_train, y_train),
                                  data_collator=collate, processing_class=tok, callbacks=[TestScore()])
        trainer.train()

    def predict(texts):
        return logits_of(model, encode(texts)).argmax(1).numpy()

    return clock, predict


def run_setfit(data, y_train, y_test, classes, args, seed):
    from skimb.baselines import SetFitClassifier

    steps = math.ceil(args.epochs * len(y_train) / (2 * args.batch_size))  # two texts a pair
    est = SetFitClassifier(max_length=args.max_length, batch_size=args.batch_size, max_steps=steps,
                           random_state=seed, n_threads=1)
    clock = _EpochClock(lambda m: _macro_f1(y_test, m.predict(data.X_test)))
    clock.start()
    est.fit(data.X_train, y_train)
    clock.epoch_end(est)
    return clock, est.predict


RUNNERS = {"skimb": run_skimb, "trainer": run_trainer, "setfit": run_setfit,
           "trainer_mean": lambda *a: run_trainer(*a, mean_pooling=True)}


def run_one(tool, seed, args):
    """One (tool, seed) run in this process: the record."""
    import torch

    torch.set_num_threads(1)
    data = load_subsampled(args.dataset, train_size=args.train_size, test_size=args.test_size, seed=0)
    classes = np.unique(np.asarray(data.y_train))
    y_train = np.searchsorted(classes, np.asarray(data.y_train))
    y_test = np.searchsorted(classes, np.asarray(data.y_test))
    record = {"tool": tool, "seed": seed, "n_train": len(y_train), "n_test": len(y_test)}
    with measure(record):
        clock, predict = RUNNERS[tool](data, y_train, y_test, classes, args, seed)
    record["curve"] = clock.curve
    record["eval_s"] = clock.eval_s
    record["fit_s"] = record["wall_s"] - clock.eval_s  # loading, tokenising and training
    t = time.perf_counter()
    pred = predict(data.X_test)
    record["predict_texts_per_s"] = len(y_test) / (time.perf_counter() - t)
    record["macro_f1"] = _macro_f1(y_test, pred)
    return record


# -- running and reporting -------------------------------------------------------------------------
def cmd_run(args, argv):
    out = Path(args.out)
    records = json.loads(out.read_text())["runs"] if out.exists() and args.resume else []
    done = {(r["tool"], r["seed"]) for r in records}
    tools = args.tools.split(",")
    order = []
    for k, seed in enumerate(int(s) for s in args.seeds.split(",")):  # rotate, so no tool always goes first
        order += [(tools[(k + j) % len(tools)], seed) for j in range(len(tools))]
    for tool, seed in order:
        if (tool, seed) in done:
            continue
        cmd = [sys.executable, __file__, "one", "--tool", tool, "--seed", str(seed), *_shared(args)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{tool} seed {seed} failed (exit {proc.returncode})")
        records.append(json.loads(lines[-1]))
        print(lines[-1], flush=True)
        publish("benchmarks/peers.py", argv, out, "peers (partial: one lane)", summary(records), records)


def _shared(args):
    return ["--dataset", args.dataset, "--train-size", str(args.train_size), "--test-size", str(args.test_size),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
            "--lr", str(args.lr)]


def _time_to(curve, target):
    """Training seconds at the first epoch whose macro-F1 reaches ``target`` (None: never)."""
    return next((p["train_s"] for p in curve if p["macro_f1"] >= target - 1e-12), None)


def summary(records):
    tools = list(dict.fromkeys(r["tool"] for r in records))
    by = {t: [r for r in records if r["tool"] == t] for t in tools}
    rows = [[t, len(rs), fmt([r["macro_f1"] for r in rs]), fmt([r["fit_s"] for r in rs], 1),
             fmt([r["curve"][-1]["train_s"] for r in rs], 1), fmt([r["predict_texts_per_s"] for r in rs], 1),
             fmt([r["peak_mib"] for r in rs], 0)] for t, rs in by.items()]
    body = "Each run in its own process with one torch thread; `fit s` leaves out the per-epoch test scoring.\n\n"
    body += markdown_table(["tool", "seeds", "macro-F1 (test)", "fit s", "of which training s",
                            "predict texts/s", "peak MiB"], rows)
    curves = []
    for t, rs in by.items():
        for k in range(max(len(r["curve"]) for r in rs)):
            pts = [r["curve"][k] for r in rs if len(r["curve"]) > k]
            curves.append([t, k + 1, fmt([p["train_s"] for p in pts], 1), fmt([p["macro_f1"] for p in pts])])
    body += "\n\nTest macro-F1 after each epoch (SetFit: once, after its body and head):\n\n"
    body += markdown_table(["tool", "epoch", "training s", "macro-F1"], curves)
    # time to quality: the seconds each tool needs to reach another's best, seed by seed
    ttq = []
    for a in tools:
        for b in tools:
            if a == b:
                continue
            times = []
            for ra in by[a]:
                rb = next((r for r in by[b] if r["seed"] == ra["seed"]), None)
                if rb is not None:
                    times.append(_time_to(ra["curve"], max(p["macro_f1"] for p in rb["curve"])))
            if times:
                reached = [t for t in times if t is not None]
                ttq.append([a, b, f"{len(reached)}/{len(times)}", fmt(reached, 1) if reached else "never"])
    body += "\n\nTime to quality: training seconds `tool` needs to reach `other`'s best macro-F1 (same seed):\n\n"
    body += markdown_table(["tool", "other", "seeds reached", "training s"], ttq)
    return body


def cmd_report(args, argv):
    lanes = [json.loads(Path(f).read_text()) for f in args.files]
    records = [r for lane in lanes for r in lane["runs"]]
    machines = " / ".join(dict.fromkeys(lane["machine"] for lane in lanes))  # where the runs ran
    publish("benchmarks/peers.py", argv, args.out, "peers", summary(records), records, machine=machines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "one"):
        q = sub.add_parser(name)
        q.add_argument("--dataset", default="cyclone_idai_2019")
        q.add_argument("--train-size", type=int, default=0)
        q.add_argument("--test-size", type=int, default=0)
        q.add_argument("--epochs", type=int, default=2)
        q.add_argument("--batch-size", type=int, default=32)
        q.add_argument("--max-length", type=int, default=64)
        q.add_argument("--lr", type=float, default=1e-4)
    run = sub.choices["run"]
    run.add_argument("--tools", default="skimb,trainer,setfit")
    run.add_argument("--seeds", default="0,1,2")
    run.add_argument("--resume", action="store_true", help="skip the runs already in --out")
    run.add_argument("--out", required=True)
    one = sub.choices["one"]
    one.add_argument("--tool", choices=TOOLS, required=True)
    one.add_argument("--seed", type=int, required=True)
    rep = sub.add_parser("report")
    rep.add_argument("files", nargs="+")
    rep.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.cmd == "one":
        print(json.dumps(run_one(args.tool, args.seed, args)), flush=True)
    elif args.cmd == "run":
        cmd_run(args, argv)
    else:
        cmd_report(args, argv)


if __name__ == "__main__":
    main()
