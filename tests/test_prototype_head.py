"""``head="prototype"``: the stage-1 head mixed with cosine similarities to class prototypes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.heads import PrototypeInterpolatedHead, class_prototypes
from skimb.training import stage1_cache

from conftest import make_ner, same_model_tolerance

FAST = dict(max_epochs=2, batch_size=8, random_state=0)


pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


def _linear(weight, bias):
    base = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        base.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        base.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return base


def test_mixture_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    feats, targets = rng.normal(size=(30, 4)), np.arange(30) % 3
    x = rng.normal(size=(5, 4))
    base = _linear(rng.normal(size=(3, 4)), rng.normal(size=3))
    protos = class_prototypes(torch.tensor(feats), torch.tensor(targets), 3, multilabel=False)
    head = PrototypeInterpolatedHead(base, protos, scale=7.0, weight=0.3, multilabel=False)
    with torch.no_grad():
        got = head(torch.tensor(x, dtype=torch.float32)).softmax(-1).numpy()
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    centre = np.stack([unit[targets == c].mean(0) for c in range(3)])
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (centre / np.linalg.norm(centre, axis=1, keepdims=True)).T
    p_proto = np.exp(7 * cos) / np.exp(7 * cos).sum(1, keepdims=True)
    z = x @ base.weight.detach().numpy().T + base.bias.detach().numpy()
    p_head = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(got, 0.7 * p_head + 0.3 * p_proto, rtol=1e-5, atol=1e-6)


def test_prototypes_outvote_a_head_biased_to_the_frequent_class():
    # the head favours class 0 by a large bias; a text that points at class 1's prototype
    base = _linear(np.zeros((2, 2)), [3.0, 0.0])
    feats = torch.tensor([[1.0, 0.0]] * 50 + [[0.0, 1.0]] * 2)
    targets = torch.tensor([0] * 50 + [1] * 2)
    head = PrototypeInterpolatedHead(base, class_prototypes(feats, targets, 2, multilabel=False), scale=20.0,
                                     weight=0.5, multilabel=False)
    with torch.no_grad():
        assert base(torch.tensor([[0.1, 1.0]])).argmax().item() == 0
        assert head(torch.tensor([[0.1, 1.0]])).argmax().item() == 1
        assert head(torch.tensor([[1.0, 0.1]])).argmax().item() == 0


def test_ignored_rows_and_empty_classes():
    protos = class_prototypes(torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 5.0]]), torch.tensor([0, -100, 0]), 2,
                              multilabel=False)
    np.testing.assert_allclose(protos.numpy(), [[0.3, 0.9], [0.0, 0.0]], rtol=1e-6)


def test_multilabel_prototypes_contrast_positives_and_negatives():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    Y = torch.tensor([[1, 0], [0, 1], [0, 1]])
    protos = class_prototypes(feats, Y, 2, multilabel=True)
    np.testing.assert_allclose(protos.numpy(), [[[1, 0], [0, 1]], [[0, 1], [1, 0]]], rtol=1e-6)
    base = _linear(np.zeros((2, 2)), [0.0, 0.0])  # sigmoid 0.5 on both labels
    head = PrototypeInterpolatedHead(base, protos, scale=2.0, weight=0.5, multilabel=True)
    with torch.no_grad():
        p = torch.sigmoid(head(torch.tensor([[1.0, 0.0]]))).numpy()
    s = 1 / (1 + np.exp(-2.0))  # label 0: cos 1 - 0; label 1: cos 0 - 1
    np.testing.assert_allclose(p, [[0.25 + 0.5 * s, 0.25 + 0.5 * (1 - s)]], rtol=1e-5)


def test_prototype_head_fits_predicts_and_round_trips(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="prototype", **FAST).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.prototype_counts_, np.unique(y, return_counts=True)[1])
    features = torch.as_tensor(clf.embed(X))
    expected = F.normalize(class_prototypes(features, torch.as_tensor(np.searchsorted(clf.classes_, y)),
                                            len(clf.classes_), multilabel=False), dim=-1)
    np.testing.assert_allclose(clf.net_.module_.head.prototypes.cpu().numpy(), expected.numpy(),
                               **same_model_tolerance(clf, 1e-4, 1e-5))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba)
    clf.save_pretrained(tmp_path / "proto")
    loaded = TransformerClassifier.load_pretrained(tmp_path / "proto")
    np.testing.assert_allclose(loaded.predict_proba(X), proba, **same_model_tolerance(clf))


def test_weight_zero_is_the_stage1_head_and_candidates_share_it(tiny_bert, toy_data):
    X, y = toy_data
    outs = [TransformerClassifier(tiny_bert, head="prototype", head__weight=w, head__scale=s, **FAST).fit(X, y)
            for w, s in ((0.0, 20.0), (0.5, 10.0), (1.0, 20.0))]
    assert stage1_cache.misses == 1 and stage1_cache.hits == 2
    stage1_cache.clear()
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)  # trained anew
    np.testing.assert_allclose(outs[0].predict_proba(X), plain.predict_proba(X), **same_model_tolerance(plain, 1e-4))
    assert not np.allclose(outs[1].predict_proba(X), plain.predict_proba(X), atol=1e-3)


def test_prototype_parameters_are_ignored_with_a_warning_at_weight_zero(tiny_bert):
    """weight=0 predicts with the stage-1 head alone: the prototypes' scale and catch-all are not read."""
    import warnings

    est = TransformerClassifier(tiny_bert, head="prototype", head__weight=0.0, head__scale=10.0, head__catch_all="a")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est._check_params()
    assert sorted(str(w.message).split(" is ignored")[0] for w in caught) == [
        "TransformerClassifier: head__catch_all", "TransformerClassifier: head__scale"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformerClassifier(tiny_bert, head="prototype", head__weight=0.5, head__scale=10.0)._check_params()


def test_prototype_head_on_tokens_and_multilabel(tiny_bert, toy_data):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, head="prototype", max_length=32, **FAST).fit(X, y)
    assert [len(p) for p in tok.predict(X)] == [len(s) for s in X]
    embedded = tok.embed(X[:2] + [[]])  # the mean of the word features; zeros for an empty sentence
    np.testing.assert_allclose(embedded[0], tok.token_features(X[:1])[0].mean(0), rtol=1e-5)
    assert embedded.shape == (3, 32) and not embedded[2].any()
    assert tok.net_.module_.head.prototypes.shape[0] == len(tok.classes_)
    Xt, yt = toy_data
    Y = np.stack([yt == yt[0], yt == yt[-1]], axis=1).astype(int)
    ml = TransformerClassifier(tiny_bert, head="prototype", **FAST).fit(Xt, Y)
    assert ml.predict_proba(Xt).shape == Y.shape
    np.testing.assert_array_equal(ml.prototype_counts_, Y.sum(0))


@pytest.mark.parametrize("bad", [{"head__scale": 0}, {"head__weight": -0.1}])
def test_bad_prototype_parameters_are_rejected_before_training(tiny_bert, toy_data, bad):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = toy_data
    with pytest.raises(InvalidParameterError):
        TransformerClassifier(tiny_bert, head="prototype", **bad, **FAST).fit(X, y)


# ------------------------------------------------------------------------- the catch-all threshold


def test_catch_all_threshold_minimises_the_negative_log_likelihood():
    from skimb.heads import fit_catch_all_threshold

    rng = np.random.default_rng(0)
    sims = torch.as_tensor(rng.uniform(-0.2, 1.0, size=(60, 3)))
    y = torch.as_tensor(rng.integers(0, 3, 60))
    y[:5] = -100  # ignored rows
    tau = fit_catch_all_threshold(sims, y, 2, scale=10.0)
    keep = y >= 0

    def nll(t):
        z = 10.0 * sims[keep].clone()
        z[:, 2] = 10.0 * t
        return float(F.cross_entropy(z, y[keep]))

    grid = np.linspace(-1, 1, 4001)
    best = grid[np.argmin([nll(t) for t in grid])]
    assert abs(tau - best) < 1e-3 and nll(tau) <= nll(best) + 1e-9


def test_catch_all_class_scores_the_threshold(tiny_bert, tmp_path):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, head="prototype", head__catch_all="O", head__weight=1.0,
                                     max_length=32, **FAST).fit(X, y)
    head, k = tok.net_.module_.head, list(tok.classes_).index("O")
    assert int(head.catch_all_index) == k and float(head.catch_all_threshold) == pytest.approx(tok.catch_all_threshold_)
    x = torch.randn(5, head.prototypes.shape[1], device=head.prototypes.device)
    cos = F.normalize(x, dim=-1) @ head.prototypes.T
    cos[:, k] = tok.catch_all_threshold_
    with torch.no_grad():
        torch.testing.assert_close(head.prototype_probabilities(x), torch.softmax(head.scale * cos, -1))
    tok.save_pretrained(tmp_path / "ner")
    loaded = TransformerTokenClassifier.load_pretrained(tmp_path / "ner")
    assert float(loaded.net_.module_.head.catch_all_threshold) == pytest.approx(tok.catch_all_threshold_)
    assert loaded.predict(X) == tok.predict(X)
    # a head saved before the threshold existed loads without a catch-all
    state = {n: v for n, v in head.state_dict().items() if not n.startswith("catch_all")}
    fresh = PrototypeInterpolatedHead(torch.nn.Linear(head.prototypes.shape[1], len(tok.classes_)),
                                      torch.zeros_like(head.prototypes), scale=20.0, weight=1.0, multilabel=False)
    fresh.load_state_dict(state)
    assert int(fresh.catch_all_index) == -1


def test_catch_all_is_checked_before_training(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="head__catch_all='nope' is not a class of y"):
        TransformerClassifier(tiny_bert, head="prototype", head__catch_all="nope", **FAST).fit(X, y)
    Y = np.stack([y == y[0], y == y[-1]], axis=1).astype(int)
    with pytest.raises(ValueError, match="not to multi-label"):
        TransformerClassifier(tiny_bert, head="prototype", head__catch_all=0, **FAST).fit(X, Y)
    clf = TransformerClassifier(tiny_bert, head="prototype", head__catch_all=y[0], **FAST).fit(X, y)
    assert -1.0 <= clf.catch_all_threshold_ <= 1.0


def test_prototypes_are_weighted_means_without_the_rows_of_weight_zero():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [1.0, 1.0]])
    targets = torch.tensor([0, 0, 1, -100])
    weighted = class_prototypes(features, targets, 3, multilabel=False,
                                sample_weight=torch.tensor([3.0, 1.0, 0.0, 1.0]))
    np.testing.assert_allclose(weighted.numpy(), [[0.75, 0.25], [0.0, 0.0], [0.0, 0.0]], atol=1e-6)
    Y = torch.tensor([[1, 0], [1, 1], [0, 1]])
    ml = class_prototypes(features[:3], Y, 2, multilabel=True, sample_weight=torch.tensor([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(ml.numpy(), class_prototypes(features[[0, 2]], Y[[0, 2]], 2, multilabel=True).numpy())


def test_rows_of_weight_zero_stay_out_of_the_prototypes(tiny_bert, toy_data):
    X, y = toy_data
    sw = (np.arange(len(X)) % 2).astype(float)
    clf = TransformerClassifier(tiny_bert, head="prototype", **FAST).fit(X, y, sample_weight=sw)
    kept = sw > 0
    expected = [int(np.sum(kept & (y == c))) for c in clf.classes_]
    np.testing.assert_array_equal(clf.prototype_counts_, expected)
    features = torch.as_tensor(clf.embed(X))
    targets = torch.as_tensor(np.searchsorted(clf.classes_, y))
    np.testing.assert_allclose(clf.net_.module_.head.prototypes.numpy(),
                               F.normalize(class_prototypes(features[kept], targets[kept], 3, multilabel=False),
                                           dim=-1).numpy(), rtol=1e-4, atol=1e-5)
