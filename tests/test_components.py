"""Methods as components: routed parameters, instances, registries, warnings, persistence."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skimb import TransformerClassifier
from skimb.heads import HEADS, CALoRAHead, Head
from skimb.training import TRAININGS, stage1_cache

FAST = dict(max_epochs=1, batch_size=8, random_state=0)


def test_instance_and_name_expose_the_same_nested_parameters(tiny_bert):
    by_name = TransformerClassifier(tiny_bert, head="calora", head__k=3)
    by_instance = TransformerClassifier(tiny_bert, head=CALoRAHead(k=3))
    for est in (by_name, by_instance, clone(by_name), clone(by_instance)):
        params = est.get_params(deep=True)
        assert params["head__k"] == 3 and params["head__rank"] == 8
    by_instance.set_params(head__rank=2)
    assert by_instance.head.rank == 2
    by_name.set_params(head__rank=2)
    assert by_name.get_params()["head__rank"] == 2


def test_a_routed_value_beside_an_instance_is_what_set_params_changes(tiny_bert):
    # head__k given beside head=CALoRAHead(...) overrides the instance at fit: set_params (a grid
    # search's) must change that value, not the instance's k that it overrides
    est = TransformerClassifier(tiny_bert, head=CALoRAHead(rank=4), head__k=3)
    for candidate in (est, clone(est)):
        candidate.set_params(head__k=1, head__rank=2)
        assert candidate.get_params()["head__k"] == 1 and candidate.head.rank == 2
        head = candidate._check_params()["head"]
        assert (head.k, head.rank) == (1, 2)
    # switching the slot to a name in the same call: its routed values are stored, not sent to the instance
    est = TransformerClassifier(tiny_bert, head=CALoRAHead(rank=4)).set_params(head="calora", head__rank=2)
    assert est._check_params()["head"].rank == 2
    # a new instance brings its own parameters (a grid search over instances fits each one's own rank);
    # a value given in the same call still overrides it
    est = TransformerClassifier(tiny_bert, head="calora", head__rank=3).set_params(head=CALoRAHead(rank=4))
    assert est._check_params()["head"].rank == 4 and est.get_params()["head__rank"] == 4
    est = TransformerClassifier(tiny_bert, head="calora", head__rank=3)
    est.set_params(head=CALoRAHead(rank=4), head__rank=2)
    assert est._check_params()["head"].rank == 2
    again = clone(est).set_params(**est.get_params(deep=False))  # a round trip keeps everything
    assert again._check_params()["head"].rank == 2


def test_ignored_routed_parameters_warn(tiny_bert):
    with pytest.warns(UserWarning, match="training__knn_k is ignored"):
        TransformerClassifier(tiny_bert, training="hamr", training__knn=False, training__knn_k=3)._check_params()
    with pytest.warns(UserWarning, match="head__k is ignored by head='linear'"):
        TransformerClassifier(tiny_bert, head__k=3)._check_params()


def test_ignored_parameter_warnings_point_at_the_callers_line(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, head__k=3, training="hamr", training__knn=False, training__knn_k=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="at least 2 classes"):  # stops right after the parameter checks
            est.fit(X, np.full(len(X), y[0]))
        # the loss's, raised once training starts, points at the caller too
        TransformerClassifier(tiny_bert, loss__gamma=2.0, **FAST).fit(X, y)
    ignored = [w for w in caught if "ignored" in str(w.message)]
    assert [str(w.message).split(" is ignored")[0] for w in ignored] == [
        "TransformerClassifier: head__k", "TransformerClassifier: training__knn_k",
        "loss 'ce' (CrossEntropyLoss) does not use gamma; ignored."]
    assert [w.filename for w in ignored] == [__file__] * 3, [(w.filename, w.lineno) for w in ignored]


def test_the_stack_walking_fallback_points_at_the_caller_too(tiny_bert, monkeypatch):
    import sys
    from types import SimpleNamespace

    from skimb.utils import _warnings

    monkeypatch.setattr(_warnings, "sys", SimpleNamespace(version_info=(3, 11), _getframe=sys._getframe))
    with pytest.warns(UserWarning, match="head__k is ignored") as record:
        TransformerClassifier(tiny_bert, head__k=3)._check_params()
    assert record[0].filename == __file__


def test_a_registered_head_needs_no_estimator_change(tiny_bert, toy_data):
    @HEADS.register("identity_demo")
    class IdentityDemoHead(Head):
        """A head that changes nothing, with one parameter.

        Parameters
        ----------
        tag : str, default="x"
        """

        def __init__(self, tag="x"):
            self.tag = tag

    try:
        X, y = toy_data
        est = TransformerClassifier(tiny_bert, head="identity_demo", head__tag="y", finetune="head", **FAST).fit(X, y)
        assert isinstance(est.head_, IdentityDemoHead) and est.head_.tag == "y"
    finally:
        HEADS._classes.pop("identity_demo")


def test_grid_search_over_loss_and_training_parameters(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, loss="focal", training="hamr", finetune="head", lr=1e-2, **FAST)
    search = GridSearchCV(est, {"loss__gamma": [1.0, 2.0], "training__knn_k": [2, 3]}, cv=2, refit=False)
    search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_component_instance_round_trips_through_save_pretrained(tiny_bert, toy_data, tmp_path):
    stage1_cache.clear()
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head=CALoRAHead(k=2, rank=2, epochs=3), finetune="head", **FAST).fit(X, y)
    loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "m"))
    assert isinstance(loaded.head, CALoRAHead) and loaded.head.get_params() == clf.head.get_params()
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["crt", "tau_norm"])
def test_decoupled_heads_share_stage1_and_change_only_the_head(tiny_bert, head, tmp_path):
    from conftest import make_toy_texts, same_model_tolerance

    from skimb import TransformerClassifier
    from skimb.training import stage1_cache

    X, y = make_toy_texts()
    stage1_cache.clear()
    params = dict(max_epochs=2, batch_size=8, random_state=0)
    first = TransformerClassifier(tiny_bert, head=head, **params).fit(X, y)
    calora = TransformerClassifier(tiny_bert, head="calora", head__rank=2, head__epochs=2, **params).fit(X, y)
    assert calora.stage1_cached_  # every head with a second stage shares the same stage 1
    linear = TransformerClassifier(tiny_bert, **params).fit(X, y)
    new, old = first.net_.module_.state_dict(), linear.net_.module_.state_dict()
    for name, value in old.items():
        if not name.startswith("head."):
            assert torch.equal(new[name], value), name  # the backbone is stage 1's
    assert not torch.equal(new["head.weight"], old["head.weight"])
    proba = first.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    loaded = TransformerClassifier.load_pretrained(first.save_pretrained(tmp_path / head))
    np.testing.assert_allclose(loaded.predict_proba(X), proba, **same_model_tolerance(first))


def test_crt_balances_the_classes():
    from skimb.heads import CRTHead

    torch.manual_seed(0)
    x = torch.cat([torch.randn(90, 4) + 1.0, torch.randn(10, 4) - 1.0])
    y = torch.cat([torch.zeros(90, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    module = torch.nn.Module()
    module.head = torch.nn.Linear(4, 2)
    CRTHead(epochs=50, lr=5e-2).fit_stage2(module, x, y, None, device="cpu", seed=0, batch_size=32,
                                           multilabel=False,
                                           loss_fn=lambda z, t: torch.nn.functional.cross_entropy(z, t, reduction="none"))
    pred = module.head(x).argmax(1)
    assert (pred[90:] == 1).float().mean() > 0.8  # the minority class is recalled


def test_crt_balances_once_with_a_class_weighted_loss():
    """cRT's rows balance the classes; a class-weighted loss gives it its weights' effect only once."""
    from skimb.heads import CRTHead
    from skimb.losses import CrossEntropyLoss, WeightedCrossEntropyLoss

    torch.manual_seed(0)
    x = torch.cat([torch.randn(90, 4) + 0.3, torch.randn(10, 4) - 0.3])
    y = torch.cat([torch.zeros(90, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    heads = {}
    for name, loss in (("plain", CrossEntropyLoss(reduction="none")),
                       ("weighted", WeightedCrossEntropyLoss([90, 10], reduction="none"))):
        module = torch.nn.Module()
        module.head = torch.nn.Linear(4, 2)
        CRTHead(epochs=20, lr=5e-2).fit_stage2(module, x, y, None, device="cpu", seed=0, batch_size=32,
                                               multilabel=False, loss_fn=loss)
        heads[name] = module.head.state_dict()
    for key, value in heads["plain"].items():
        torch.testing.assert_close(heads["weighted"][key], value)


@pytest.mark.parametrize("slot, name", [("head", name) for name in HEADS.names()]
                         + [("training", name) for name in TRAININGS.names()])
def test_fit_leaves_the_callers_global_rng_alone(slot, name, tiny_bert, toy_data):
    # every registered head and training strategy: their initial draws (later overwritten) included
    X, y = toy_data
    torch.manual_seed(123)
    np.random.seed(5)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TransformerClassifier(tiny_bert, finetune="head", validation_fraction=0.3, **{slot: name}, **FAST).fit(X, y)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_crt_stops_on_a_non_finite_loss_as_calora_does(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="crt", head__lr=1e37, head__epochs=5, threshold="tuned",
                                validation_fraction=0.3, **FAST)
    with pytest.raises(FloatingPointError, match=r"non-finite cRT stage-2 loss in epoch \d+ \(.*\); lower head__lr\."):
        clf.fit(X, y)
    # the stage-1 head stays, with the decision rule tuned on it: the model predicts as it asked
    assert clf.logit_offsets_.shape == (len(clf.classes_),)
    assert np.isfinite(clf.predict_proba(X)).all() and set(clf.predict(X)) <= set(clf.classes_)


def test_an_estimator_routed_by_name_exposes_its_parameters_as_an_instance_does(tiny_bert):
    # training__embedder=TransformerEmbedder(...) beside training="hamr": training__embedder__pooling reaches the
    # embedder (a grid search over it), as it does inside training=HAMRTraining(embedder=...)
    from skimb import TransformerEmbedder
    from skimb.training import HAMRTraining

    by_name = TransformerClassifier(tiny_bert, training="hamr", training__embedder=TransformerEmbedder(tiny_bert))
    by_instance = TransformerClassifier(tiny_bert, training=HAMRTraining(embedder=TransformerEmbedder(tiny_bert)))
    for est in (by_name, by_instance, clone(by_name)):
        assert est.get_params(deep=True)["training__embedder__pooling"] == "mean"
        est.set_params(training__embedder__pooling="cls")
        assert est.get_params(deep=True)["training__embedder__pooling"] == "cls"
        assert est._check_params()["training"].embedder.pooling == "cls"
    assert "training__embedder__pooling" not in vars(by_name)  # reached the embedder, not stored beside it
    est = clone(by_name).set_params(training__embedder=TransformerEmbedder(tiny_bert), training__embedder__max_length=32)
    assert est._check_params()["training"].embedder.max_length == 32  # the new embedder, in the same call
    # a value stored beside an instance overrides it at fit: set_params reaches that one
    beside = TransformerClassifier(tiny_bert, training=HAMRTraining(), training__embedder=TransformerEmbedder(tiny_bert))
    beside.set_params(training__embedder__pooling="cls")
    assert beside._check_params()["training"].embedder.pooling == "cls"


def test_an_unregistered_name_says_an_instance_reaches_worker_processes(tiny_bert):
    # a head registered in the script of a search with n_jobs=2 is unknown in the workers, which import
    # skimb afresh: the error there must give the remedy that works, an instance (pickled with its class)
    with pytest.raises(ValueError, match=r"got 'class_mean_demo'.*registered .*in another process.*pass an "
                                         r"instance \(head=MyHead\(\.\.\.\)\)"):
        TransformerClassifier(tiny_bert, head="class_mean_demo")._check_params()
    with pytest.raises(ValueError, match=r"pass an instance \(training=MyTraining\(\.\.\.\)\)"):
        TransformerClassifier(tiny_bert, training="demo_training")._check_params()
