"""``head="knn"``: the stage-1 head mixed with the labels of the nearest training rows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.heads import KNNInterpolatedHead
from skimb.training import stage1_cache

from conftest import make_ner, same_model_tolerance

FAST = dict(max_epochs=2, batch_size=8, random_state=0)


pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


def test_mixture_matches_a_hand_computation():
    base = torch.nn.Linear(3, 3)
    torch.nn.init.normal_(base.weight, generator=torch.Generator().manual_seed(0))
    memory = torch.randn(20, 3, generator=torch.Generator().manual_seed(1))
    targets = torch.arange(20) % 3
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    head = KNNInterpolatedHead(base, memory, targets, k=5, weight=0.3, multilabel=False)
    with torch.no_grad():
        got = head(x).softmax(-1)
        cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(memory, dim=1).T
        votes = np.array([np.bincount(targets[row.argsort(descending=True)[:5]].numpy(), minlength=3) / 5
                          for row in cos])
        expected = 0.7 * base(x).softmax(-1).numpy() + 0.3 * votes
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_multilabel_mixture_is_per_label():
    base = torch.nn.Linear(2, 2)
    with torch.no_grad():
        base.weight.zero_(), base.bias.zero_()
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    head = KNNInterpolatedHead(base, memory, torch.tensor([[1, 1], [0, 1]]), k=1, weight=0.5, multilabel=True)
    with torch.no_grad():
        p = torch.sigmoid(head(torch.tensor([[2.0, 0.1]])))
    np.testing.assert_allclose(p.numpy(), [[0.75, 0.75]], rtol=1e-5)  # 0.5 * 0.5 + 0.5 * 1 on both labels


def test_knn_head_fits_predicts_and_round_trips(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="knn", head__k=3, **FAST).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert clf.memory_size_ == len(X)
    # the training texts are their own nearest neighbours: the memory pulls them to their label
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    own = proba[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    own_plain = plain.predict_proba(X)[np.arange(len(y)), np.searchsorted(plain.classes_, y)]
    assert own.mean() > own_plain.mean()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba)
    clf.save_pretrained(tmp_path / "knn")
    loaded = TransformerClassifier.load_pretrained(tmp_path / "knn")
    np.testing.assert_allclose(loaded.predict_proba(X), proba, **same_model_tolerance(clf))


def test_weight_zero_is_the_stage1_head(tiny_bert, toy_data):
    X, y = toy_data
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    knn = TransformerClassifier(tiny_bert, head="knn", head__weight=0.0, **FAST).fit(X, y)
    np.testing.assert_allclose(knn.predict_proba(X), plain.predict_proba(X), **same_model_tolerance(plain, 1e-4))


def test_k_is_ignored_with_a_warning_at_weight_zero(tiny_bert):
    """weight=0 predicts with the stage-1 head alone: the neighbours' k is not read (as SAM's rho=0 warns
    about the parameters it then ignores)."""
    import warnings

    with pytest.warns(UserWarning, match=r"head__k is ignored: weight=0 predicts with the stage-1 head alone"):
        TransformerClassifier(tiny_bert, head="knn", head__weight=0.0, head__k=5)._check_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformerClassifier(tiny_bert, head="knn", head__weight=0.0)._check_params()
        TransformerClassifier(tiny_bert, head="knn", head__weight=0.5, head__k=5)._check_params()


def test_knn_candidates_share_one_stage1(tiny_bert, toy_data):
    X, y = toy_data
    for k in (1, 3, 5):
        TransformerClassifier(tiny_bert, head="knn", head__k=k, **FAST).fit(X, y)
    assert stage1_cache.misses == 1 and stage1_cache.hits == 2


def test_knn_head_on_tokens_and_multilabel(tiny_bert, toy_data):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, head="knn", max_length=32, **FAST).fit(X, y)
    assert [len(p) for p in tok.predict(X)] == [len(s) for s in X]
    embedded = tok.embed(X[:2] + [[]])  # the mean of the word features; zeros for an empty sentence
    np.testing.assert_allclose(embedded[0], tok.token_features(X[:1])[0].mean(0), rtol=1e-5)
    assert embedded.shape == (3, 32) and not embedded[2].any()
    Xt, yt = toy_data
    Y = np.stack([yt == yt[0], yt == yt[-1]], axis=1).astype(int)
    ml = TransformerClassifier(tiny_bert, head="knn", **FAST).fit(Xt, Y)
    assert ml.predict_proba(Xt).shape == Y.shape


@pytest.mark.parametrize("bad", [{"head__k": 0}, {"head__weight": 1.5}])
def test_bad_knn_parameters_are_rejected_before_training(tiny_bert, toy_data, bad):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = toy_data
    with pytest.raises(InvalidParameterError):
        TransformerClassifier(tiny_bert, head="knn", **bad, **FAST).fit(X, y)


def _half_weights(n):
    """Weight 0 on every other row, 1 elsewhere."""
    return (np.arange(n) % 2).astype(float)


def test_rows_of_weight_zero_stay_out_of_the_memory(tiny_bert, toy_data):
    X, y = toy_data
    sw = _half_weights(len(X))
    clf = TransformerClassifier(tiny_bert, head="knn", head__k=3, **FAST).fit(X, y, sample_weight=sw)
    assert clf.memory_size_ == int((sw > 0).sum())
    memory = clf.net_.module_.head.memory
    kept = torch.nn.functional.normalize(torch.as_tensor(clf.embed([x for x, w in zip(X, sw) if w > 0])), dim=-1)
    np.testing.assert_allclose(memory.numpy(), kept.numpy(), rtol=1e-4, atol=1e-5)


def test_a_k_beyond_the_memory_warns_once_naming_head__k(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.warns(UserWarning, match=rf"head__k=100 is more than the {len(X)} training rows") as record:
        TransformerClassifier(tiny_bert, head="knn", head__k=100, **FAST).fit(X, y)
    assert sum("head__k=100" in str(w.message) for w in record) == 1
    assert all(w.filename == __file__ for w in record if "head__k" in str(w.message))
