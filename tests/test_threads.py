"""``n_threads``: torch's CPU threads while an estimator fits and predicts, restored afterwards."""

from __future__ import annotations

import pytest
import torch
from skorch.callbacks import Callback

from skimb import TransformerClassifier, TransformerEmbedder, TransformerTokenClassifier

from conftest import make_ner


class ThreadsSeen(Callback):
    def initialize(self):
        self.seen = set()
        return self

    def on_batch_begin(self, net, **kwargs):
        self.seen.add(torch.get_num_threads())


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_fit_and_predict_use_n_threads_and_restore_them(tiny_bert, toy_data, restore_threads, monkeypatch):
    X, y = toy_data
    torch.set_num_threads(2)
    seen = ThreadsSeen()
    clf = TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, random_state=0, n_threads=1,
                                callbacks=[seen]).fit(X, y)
    assert seen.seen == {1} and torch.get_num_threads() == 2
    from skimb import _text_task

    during = []
    original = _text_task.TextTask.logits
    monkeypatch.setattr(_text_task.TextTask, "logits",
                        lambda self, texts: during.append(torch.get_num_threads()) or original(self, texts))
    clf.predict(X[:4])
    clf.embed(X[:4])
    assert during == [1] and torch.get_num_threads() == 2


def test_none_leaves_the_process_setting(tiny_bert, toy_data, restore_threads):
    X, y = toy_data
    torch.set_num_threads(2)
    seen = ThreadsSeen()
    TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, random_state=0, callbacks=[seen]).fit(X, y)
    assert seen.seen == {2}


def test_token_classifier_and_embedder(tiny_bert, restore_threads):
    torch.set_num_threads(2)
    X, y = make_ner(12)
    seen = ThreadsSeen()
    ner = TransformerTokenClassifier(tiny_bert, max_epochs=1, batch_size=8, random_state=0, n_threads=1,
                                     callbacks=[seen]).fit(X, y)
    assert seen.seen == {1} and torch.get_num_threads() == 2
    assert len(ner.predict(X[:2])) == 2
    emb = TransformerEmbedder(tiny_bert, n_threads=1, cache=False).fit()
    assert emb.transform(["a b", "c"]).shape[0] == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("Estimator", [TransformerClassifier, TransformerTokenClassifier, TransformerEmbedder])
def test_bad_n_threads_is_rejected_before_training(tiny_bert, Estimator):
    est = Estimator(tiny_bert, n_threads=0)
    with pytest.raises(ValueError, match=r"n_threads must be None or an int in \[1, inf\]"):
        est.fit(["a b", "c d"], ["x", "y"]) if Estimator is TransformerClassifier else (
            est.fit([["a", "b"], ["c"]], [["B-PER", "O"], ["O"]]) if Estimator is TransformerTokenClassifier
            else est.fit())
