"""The token task adapter: sentences (lists of words) and tag lists (NER, BIO tags).

* The torch module is a :class:`~skimb.backbones.SequenceClassifier` over a token-level encoder
  (``TextEncoder(pooling=None)``): ``features(input_ids, attention_mask)`` gives per-sub-token
  hidden states ``(B, T, d)`` and ``head`` is applied to every token (CALoRA wraps it; its stage 2
  runs on one row per word).
* The training examples of the net are *windows* (a sentence longer than ``max_length`` gives
  several); the train dataset's ``sentence_index`` says which sentence each window comes from.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from ._task import TaskAdapter, _counts, validation_split_errors
from ._text_task import OFFSET_BOOTSTRAPS, FeatureDataset, warn_unlearnt_classes
from ._validation import check_sample_weight, check_token_lists
from .backbones import EncodedTextDataset, SequenceClassifier, autocast, pad_collate, sorted_batches
from .heads._components import class_neutral_loss
from .losses._base import per_item_losses
from .training._net import module_inputs
from .tokens import (IGNORE_INDEX, LinearChainCRF, align_word_labels, case_type_ids, convert_scheme, merge_windows,
                     tokenize_words)
from .utils._param_validation import InvalidParameterError
from .utils._progress import progress_bar
from .utils._warnings import warn_caller
from .utils._split import rarest_tag_keys

__all__ = ["TokenTask", "TagWeightedLoss"]

_TAG_POS = re.compile(r"tag_lists\[(\d+)\]\[(\d+)\]")


class TagWeightedLoss(nn.Module):
    """Multiplies a per-token loss by the weight of the token's true tag (``class_weight``).

    Targets below 0 (ignored tokens) get weight 0. ``fitted_attributes`` and ``set_epoch``
    are passed through to the wrapped loss.
    """

    def __init__(self, loss: nn.Module, tag_weight):
        super().__init__()
        self.loss = loss
        self.register_buffer("tag_weight", torch.as_tensor(np.asarray(tag_weight), dtype=torch.float32))

    def forward(self, logits, target):
        w = self.tag_weight.to(logits.device)[target.clamp(min=0)]
        losses = per_item_losses(self.loss(logits, target), len(target), self.loss)
        return losses * torch.where(target >= 0, w, torch.zeros_like(w))

    def without_class_balance(self):
        """The wrapped loss without the tag weights, and without its own class balancing."""
        return class_neutral_loss(self.loss)

    def fitted_attributes(self):
        fitted = getattr(self.loss, "fitted_attributes", None)
        return fitted() if callable(fitted) else {}

    def set_epoch(self, epoch, max_epochs=None):
        set_epoch = getattr(self.loss, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch, max_epochs)


def _train_token_types(encoder):
    """Train the backbone's token-type embedding (``mark_case``'s input) also where the fine-tuning
    freezes the backbone's own weights (LoRA): it learns what the case marks mean."""
    for name, param in encoder.named_parameters():
        if name.endswith("token_type_embeddings.weight"):
            param.requires_grad_(True)


def _onnx_refusal(est) -> str:
    return (f"{type(est).__name__}: quantize='onnx-int8' exports an encoder that takes token ids and attention "
            "masks only, and mark_case=True also feeds token types; use quantize='int8' or None with mark_case.")


def _tag_indices(tags, classes) -> np.ndarray:
    """IOB2 tag lists -> an object array of per-sentence index arrays into ``classes``."""
    index = {c: k for k, c in enumerate(np.asarray(classes).tolist())}
    rows = [np.array([index[t] for t in sent], dtype=np.int64) for sent in tags]
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def flat_tags(y_enc) -> np.ndarray:
    rows = list(y_enc)
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)


def tags_to_iob2(y, scheme, what="y"):
    """Validate tag lists in ``scheme`` and convert them to IOB2; an error names the sentence and
    position in ``what``."""
    try:
        return convert_scheme(y, scheme, "IOB2")
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        m = _TAG_POS.search(msg)
        where = f"sentence {m.group(1)}, position {m.group(2)}: " if m else ""
        raise type(exc)(f"{what}: {where}{msg.replace('tag_lists', what)} (scheme={scheme!r})") from None


def check_tag_lengths(counts, tags, what="y"):
    """One tag per token: ``counts`` the sentences' token counts, ``tags`` their tag lists."""
    if len(counts) != len(tags):
        raise ValueError(f"X and {what} have different lengths: {len(counts)} sentences != {len(tags)}.")
    for i, (n, t) in enumerate(zip(counts, tags)):
        if n != len(t):
            raise ValueError(f"sentence {i}: X[{i}] has {n} tokens but {what}[{i}] has {len(t)} tags; "
                             "every token needs exactly one tag.")


class TokenTask(TaskAdapter):
    """Sentences in, one IOB2 tag per word out."""

    class_key_hint = " (IOB2 tags, whatever the scheme of y)"

    def validate_X(self, X, what="X"):
        return check_token_lists(X, what=what)

    def to_iob2(self, y, what="y"):
        """Validate tag lists in the estimator's ``scheme`` and convert them to IOB2."""
        return tags_to_iob2(y, self.est.scheme, what)

    check_lengths = staticmethod(check_tag_lengths)

    def encode_targets(self, y, X):
        tags = self.to_iob2(y)
        self.check_lengths([len(s) for s in X], tags)
        types = sorted({t[2:] for sent in tags for t in sent if t != "O"})
        if not types:
            raise ValueError("y holds no entity tag (only 'O'): nothing to learn.")
        classes = np.array(["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")])
        return classes, _tag_indices(tags, classes), "token"

    def encode_known_targets(self, y, X, classes, task, what):
        tags = self.to_iob2(y, what=what)
        self.check_lengths([len(s) for s in X], tags, what=what)
        unknown = sorted({t for sent in tags for t in sent if t not in set(classes.tolist())})
        if unknown:
            raise ValueError(f"{what.split()[0]} has tags not seen in y: {unknown}.")
        return _tag_indices(tags, classes)

    def split(self, y_enc, task, seed):
        """Split by sentence, stratified by each sentence's rarest entity tag when possible."""
        vf = self.est.validation_fraction
        idx = np.arange(len(y_enc))
        if vf is None:
            return idx, None
        try:
            tr, va = train_test_split(idx, test_size=vf, random_state=seed, stratify=rarest_tag_keys(y_enc))
        except ValueError:  # a stratum too small for the split
            with validation_split_errors(vf, f"{len(idx)} sentences"):
                tr, va = train_test_split(idx, test_size=vf, random_state=seed)
        counts = np.bincount(flat_tags(y_enc))
        warn_unlearnt_classes(counts, np.bincount(flat_tags(y_enc[tr]), minlength=counts.size), vf, "tag(s)")
        return np.sort(tr), np.sort(va)

    def sample_weights(self, ctx):
        """Per-sentence weights (``sample_weight``, mean 1) and per-tag ``class_weight`` (from the
        training split's tags)."""
        sw = check_sample_weight(ctx.sample_weight, len(ctx.y), positive_sum=True)
        ctx.class_weight = self.class_weights(ctx.classes, flat_tags(ctx.y[ctx.train_idx]))
        ctx.tag_weight = ctx.class_weight if self.est.class_weight is not None else None
        trained = sw  # > 0 where a sentence has some tag that counts in the loss
        if ctx.tag_weight is not None:
            trained = np.array([float((ctx.tag_weight[np.asarray(tags, dtype=np.int64)] > 0).any()) for tags in ctx.y])
            trained = trained if sw is None else trained * sw
        what = "class_weight x sample_weight" if ctx.tag_weight is not None and sw is not None else "sample_weight"
        self.check_training_weights(trained, ctx.train_idx, what)
        ctx.weights = None if sw is None else (sw / sw.mean()).astype(np.float32)

    def after_fit(self, ctx):
        """Per-type logit offsets tuned for span macro-F1 on the validation split, when asked."""
        if self.est.threshold != "tuned":
            return {}
        from .metrics import tune_span_offsets

        sentences = [ctx.X[i] for i in ctx.valid_idx]
        truth = [ctx.classes[ctx.y[i]].tolist() for i in ctx.valid_idx]
        return {"logit_offsets_": tune_span_offsets(truth, self.logits(sentences), ctx.classes,
                                                    n_bootstrap=OFFSET_BOOTSTRAPS, random_state=ctx.seed)}

    # -- the model and the data -----------------------------------------------------------------
    def build_module(self, backbone_model, n_outputs, finetune, classes=None):
        if self.est.mark_case:
            self.check_token_types(backbone_model)
        encoder = finetune.build_encoder(backbone_model, None)
        if self.est.mark_case and not finetune.frozen:
            _train_token_types(encoder)
        module = SequenceClassifier(encoder, n_outputs, dropout=self.est.dropout)
        if self.est.decoding == "crf":
            self.add_crf(module, classes)
        return module

    def check_token_types(self, backbone_model):
        """``mark_case`` needs a backbone with a token-type embedding of two types or more."""
        config = getattr(backbone_model, "config", None)
        n_types = int(getattr(config, "type_vocab_size", 0) or 0)
        if n_types < 2:
            name = getattr(config, "name_or_path", "") or type(backbone_model).__name__
            raise ValueError(
                f"{type(self.est).__name__}: mark_case=True marks case through the backbone's token types, and "
                f"{name!r} has {n_types} (type_vocab_size; BERT-style backbones such as MiniLM have 2). Use "
                "mark_case=False, or a cased backbone, which reads case from its tokens.")

    @staticmethod
    def add_crf(module, classes):
        """Give ``module`` a :class:`~skimb.tokens.LinearChainCRF` over the tags ``classes``
        (``module.crf``): the net then trains by its sequence likelihood."""
        if classes is None:
            raise ValueError("a CRF needs the tags (classes) it scores.")
        module.crf = LinearChainCRF(classes)

    @property
    def sequence_loss(self) -> bool:
        return self.est.decoding == "crf"

    def check_params(self, components=None):
        """``stride`` within a window; ``decoding="crf"`` trains on whole windows, with the CRF's loss in
        place of the tag loss."""
        super().check_params(components)
        self.check_stride()
        est = self.est
        if est.mark_case and est.quantize == "onnx-int8":
            raise InvalidParameterError(_onnx_refusal(est))
        if est.decoding != "crf" or components is None:
            return
        owner = type(est).__name__
        if components["finetune"].frozen:
            raise InvalidParameterError(
                f"{owner}: decoding='crf' trains the CRF with the encoder on whole windows, and "
                f"finetune={est.finetune!r} trains the head on single words; use finetune='full' or 'lora', or "
                "decoding='constrained' (Viterbi without learned transitions).")
        refusal = components["training"].sequence_loss_refusal()
        if refusal:
            raise InvalidParameterError(
                f"{owner}: decoding='crf' trains by each window's sequence likelihood, and with "
                f"training={est.training!r} {refusal}, or decoding='constrained' (Viterbi without learned "
                "transitions).")
        if est.threshold is not None:
            raise InvalidParameterError(
                f"{owner}: threshold={est.threshold!r} tunes offsets for the repaired argmax of the logits, not "
                "for the CRF's Viterbi decoding; use threshold=None with decoding='crf'.")
        ignored = [f"loss__{k}={v!r}" for k, v in est.routed_params_for("loss").items()]
        if not (isinstance(est.loss, str) and est.loss == "ce"):
            ignored.insert(0, f"loss={est.loss!r}")
        if est.class_weight is not None:
            ignored.append(f"class_weight={est.class_weight!r}")
        if ignored:
            warn_caller(f"{owner}: decoding='crf' trains by the CRF's sequence likelihood; {', '.join(ignored)} "
                        "is ignored in training (a second stage, such as head='calora', still uses the loss).")

    def check_stride(self):
        """``stride < max_length``, before the backbone loads. The precise bound, ``max_length`` less the
        tokenizer's special tokens, is checked when the windows are made (:func:`~skimb.tokens.tokenize_words`)."""
        est = self.est
        if est.stride is not None and est.stride >= est.max_length:
            raise InvalidParameterError(
                f"{type(est).__name__}: stride={est.stride} must be smaller than max_length={est.max_length} (the "
                "sub-tokens that consecutive windows share, out of a window's max_length); lower stride, raise "
                "max_length, or leave stride=None (a quarter of a window).")

    def train_targets(self, ctx):
        return flat_tags(ctx.y[ctx.train_idx]), "multiclass"

    def make_loss(self, ctx, task=None, y_enc=None):
        flat, task = self.train_targets(ctx)
        loss = super().make_loss(ctx, task, flat)
        if ctx.tag_weight is None:
            return loss
        counts = _counts(flat, task, ctx.n_classes)
        mean = float(counts @ ctx.tag_weight) / max(int(counts.sum()), 1)
        return TagWeightedLoss(loss, ctx.tag_weight / (mean if mean > 0 else 1.0))

    def net_kwargs(self, finetune):
        # token targets (B, T) padded with -100; a frozen backbone trains on flattened word rows
        return {"label_pad_id": None if finetune.frozen else IGNORE_INDEX}

    def n_training_rows(self, ctx) -> int:
        """The training sentences' windows (a sentence longer than ``max_length`` gives several,
        an empty one none); on a frozen backbone their words."""
        if self.finetune.frozen:
            return int(sum(len(ctx.X[i]) for i in ctx.train_idx))
        rows = Counter(win.sentence for win in self.windows(ctx.X) if win.responsible)
        return int(sum(rows[int(i)] for i in ctx.train_idx))

    #: ``(sentences, their windows, the windows' token types)`` of the last :meth:`windows` call
    _windows_of = (None, None, None)

    def windows(self, sentences):
        # a fit asks twice for its sentences' windows (lr="auto"'s step count, then the datasets):
        # tokenize once; an adapter lives for one fit or one prediction
        if self._windows_of[0] is not sentences:
            windows = tokenize_words(self.est.tokenizer_, sentences, self.est.max_length, self.est.stride)
            types = case_type_ids(windows, sentences) if self.est.mark_case else None
            self._windows_of = (sentences, windows, types)
        return self._windows_of[1]

    def check_fitted_case(self):
        """Prediction marks case as the fit did: ``mark_case`` changed since the fit, or ``quantize="onnx-int8"``
        set on a model that marks case, is refused (the token types are part of the model's input)."""
        est = self.est
        fitted = bool(getattr(est, "mark_case_", False))  # folders saved before mark_case: False
        if bool(est.mark_case) != fitted:
            raise ValueError(
                f"{type(est).__name__}: mark_case={est.mark_case!r}, and the model was fitted with "
                f"mark_case={fitted!r}: its input {'marks' if fitted else 'does not mark'} case. Set "
                f"mark_case={fitted!r} back to predict with this model, or refit.")
        if fitted and est.quantize == "onnx-int8":
            raise InvalidParameterError(_onnx_refusal(est))

    def window_types(self, sentences):
        """The token type ids of each of :meth:`windows`' windows under ``mark_case``, else None."""
        self.windows(sentences)
        return self._windows_of[2]

    def datasets(self, sentences, y_enc, weights, train_idx, valid_idx, module, device):
        windows, types = self.windows(sentences), self.window_types(sentences)
        if self.finetune.frozen:
            module.to(device)
            feats = self.word_outputs(windows, module.features, device, module=module, types=types)
            dataset = self._word_rows(feats, y_enc, weights)
        else:
            dataset = self._window_rows(windows, y_enc, weights, whole_windows=self.sequence_loss, types=types)
        train_ds = dataset(train_idx)
        if train_ds is None:
            raise ValueError("every training sentence is empty: nothing to learn.")
        valid_ds = dataset(valid_idx) if valid_idx is not None else None
        if valid_idx is not None and valid_ds is None:
            raise ValueError("every validation sentence is empty; lower validation_fraction or drop "
                             "the empty sentences.")
        return train_ds, valid_ds

    @staticmethod
    def _word_rows(feats, y_enc, weights):
        def dataset(idx):
            counts = np.array([len(y_enc[i]) for i in idx])
            if counts.sum() == 0:
                return None
            X = torch.from_numpy(np.concatenate([feats[i] for i in idx if len(feats[i])]))
            w = None if weights is None else np.repeat(weights[idx], counts).astype(np.float32)
            ds = FeatureDataset(X, flat_tags(y_enc[idx]), w)
            ds.sentence_index = np.repeat(idx, counts)
            return ds

        return dataset

    @staticmethod
    def _window_rows(windows, y_enc, weights, whole_windows=False, types=None):
        """Training rows of windows: each labels the words it is responsible for (every word once),
        or with ``whole_windows`` (a CRF, whose transitions must see the pairs on either side of a
        window's responsibility boundary) every word it holds; ``types``: each window's token type ids."""
        by_sentence = defaultdict(list)
        for k, win in enumerate(windows):
            if win.responsible:  # empty sentences have nothing to learn
                by_sentence[win.sentence].append(k)

        def dataset(idx):
            ids, labels, sent, edges, row_types = [], [], [], [], []
            for i in idx:
                tags = y_enc[i].tolist()
                for k in by_sentence.get(int(i), ()):
                    win = windows[k]
                    ids.append(list(win.input_ids))
                    if types is not None:
                        row_types.append(types[k])
                    row = align_word_labels(win.word_ids, tags, IGNORE_INDEX,
                                            label_words=None if whole_windows else win.responsible)
                    labels.append(row)
                    sent.append(int(i))
                    # a CRF learns its start and end scores at the sentence's edges only, not a window's
                    words = [w for w, label in zip(win.word_ids, row) if label != IGNORE_INDEX]
                    edges.append((min(words) == 0, max(words) == len(tags) - 1))
            if not ids:
                return None
            sent = np.asarray(sent, dtype=np.int64)
            ds = EncodedTextDataset(ids, labels, None if weights is None else weights[sent],
                                    sentence_edges=np.asarray(edges, dtype=bool),
                                    token_type_ids=row_types if types is not None else None)
            ds.sentence_index = sent
            return ds

        return dataset

    def stage2_inputs(self, ctx):
        # Heads route per token: one stage-2 row per word of the training sentences.
        feats = self.token_features([ctx.X[i] for i in ctx.train_idx])
        counts = np.array([len(f) for f in feats])
        X = torch.from_numpy(np.concatenate([f for f in feats if len(f)]))
        w = None if ctx.weights is None else torch.from_numpy(
            np.repeat(ctx.weights[ctx.train_idx], counts).astype(np.float32))
        return X, torch.from_numpy(flat_tags(ctx.y[ctx.train_idx])), w

    def fitted_attributes(self, ctx):
        return {"entity_types_": sorted({c[2:] for c in ctx.classes.tolist() if c != "O"}),
                "mark_case_": bool(self.est.mark_case)}

    # -- prediction -----------------------------------------------------------------------------
    def word_outputs(self, windows, fn, device, *, module=None, types=None) -> list:
        """Run ``fn(input_ids=..., attention_mask=...) -> (B, T, k)`` over the windows (with
        ``token_type_ids=`` each window's ``types`` where given) and merge them into one
        ``(n_words, k)`` float32 array per sentence."""
        est = self.est
        module = module if module is not None else est.net_.module_
        was_training = module.training
        module.eval()
        pad = est.tokenizer_.pad_token_id or 0
        lengths = [len(w) for w in windows]
        rows = EncodedTextDataset([w.input_ids for w in windows], token_type_ids=types)
        outs = [None] * len(windows)
        dev = torch.device(device)
        try:
            with torch.inference_mode(), progress_bar(len(windows), "predicting", est.verbose, unit="window") as bar:
                for idx in sorted_batches(lengths, max(int(est.batch_size), 32)):
                    batch, _ = pad_collate([rows[i] for i in idx], pad_token_id=pad)
                    with autocast(dev, enabled=est.amp):
                        res = fn(**module_inputs(batch, dev))
                    res = res.float().cpu().numpy()
                    for r, i in enumerate(idx):
                        outs[i] = res[r, :lengths[i]]
                    bar.update(len(idx))
        finally:
            module.train(was_training)
        return merge_windows(windows, outs)

    def logits(self, sentences) -> list:
        self.check_fitted_case()
        module, device, _ = self.est._inference_module()
        return self.word_outputs(self.windows(sentences), module, device, module=module,
                                 types=self.window_types(sentences))

    decision_function = logits

    def scores(self, sentences) -> list:
        """Each word's tag probabilities: the softmax of its logits, or with ``decoding="crf"`` its
        marginals under the CRF."""
        crf = self.fitted_crf() if self.est.decoding == "crf" else None
        out = []
        for logits in self.logits(sentences):
            if crf is not None:
                out.append(crf.marginals(logits).astype(np.float32))
                continue
            t = torch.from_numpy(logits)
            out.append(torch.softmax(t, dim=-1).numpy() if len(t) else logits)
        return out

    def fitted_crf(self):
        """The fitted model's CRF, or a ``ValueError`` naming the remedies where it has none."""
        crf = getattr(self.est.net_.module_, "crf", None)
        if crf is None:
            raise ValueError(f"{type(self.est).__name__}: decoding='crf' needs a model fitted with it; this one was "
                             "fitted without a CRF. Refit with decoding='crf', or predict with decoding='repair' or "
                             "'constrained'.")
        return crf

    def token_features(self, sentences) -> list:
        self.check_fitted_case()
        module = self.est.net_.module_
        return self.word_outputs(self.windows(sentences), module.features, self.est.net_.device,
                                 types=self.window_types(sentences))

