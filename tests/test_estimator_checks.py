"""Our check suite over every public estimator, component and sampler, discovered through the
package's ``__all__``s (a new one is checked without being listed here)."""

import inspect
from numbers import Integral

import pytest

from skimb.heads import CALoRAHead
from skimb.samplers import BaseEmbeddingSampler, GE3OverSampler, TextCutOverSampler
from skimb.samplers._base import sampler_constraints
from skimb.utils._param_validation import Interval
from skimb.utils.estimator_checks import _bad_values, all_estimators, check_param_validation, parametrize_with_checks

from conftest import tiny_bert_dir

#: Fast settings for the estimators that train a transformer (tiny random BERT backbone).
_FAST = {
    "TransformerClassifier": dict(max_epochs=1, batch_size=8, random_state=0),
    "TransformerTokenClassifier": dict(max_epochs=1, batch_size=8, max_length=32, random_state=0),
}
#: More configurations of the same classes: the other fine-tuning modes and a staged head.
_VARIANTS = [
    ("TransformerClassifier", dict(finetune="head", max_epochs=2, random_state=0)),
    ("TransformerClassifier", dict(finetune="lora", max_epochs=1, batch_size=8, random_state=0)),
    ("TransformerClassifier", dict(finetune="head", head=CALoRAHead(epochs=2), max_epochs=1, random_state=0)),
    ("TunedOffsetsClassifier", dict(validation="estimator", random_state=0)),  # the wrapped fit holds out
]


def _instance(cls, params=None):
    params = dict(_FAST.get(cls.__name__, {}) if params is None else params)
    names = inspect.signature(cls).parameters
    if "backbone" in names:
        params["backbone"] = tiny_bert_dir()
    if "random_state" in names:
        params.setdefault("random_state", 0)
    if "estimator" in names:  # a meta-estimator wraps the fast classifier (holding out, if it tunes on its split)
        inner = {**_FAST["TransformerClassifier"], **({"validation_fraction": 0.25} if params.get("validation") == "estimator" else {})}
        params.setdefault("estimator", _instance(CLASSES["TransformerClassifier"], inner))
    if "estimators" in names:  # an ensemble (of taggers: the only one skimb adds) of two fast members
        tagger = CLASSES["TransformerTokenClassifier"]
        params.setdefault("estimators", [("ce", _instance(tagger)), ("focal", _instance(tagger).set_params(loss="focal"))])
    return cls(**params)


CLASSES = dict(all_estimators())
ESTIMATORS = [_instance(cls) for cls in CLASSES.values()] + [_instance(CLASSES[n], p) for n, p in _VARIANTS]


def test_discovery_finds_every_kind():
    for name in ("TransformerClassifier", "TransformerTokenClassifier", "TransformerEmbedder", "CALoRAHead",
                 "HAMRTraining", "LoRAFinetune", "HardnessNeighborhoodSampler", "EDAOverSampler",
                 "TunedOffsetsClassifier", "VotingTagger"):
        assert name in CLASSES


#: estimators that need an optional extra: checked where it is installed
_EXTRAS = {"SetFitClassifier": "setfit"}


@parametrize_with_checks(ESTIMATORS)
def test_skimb_compatible_estimator(estimator, check):
    if type(estimator).__name__ in _EXTRAS:
        pytest.importorskip(_EXTRAS[type(estimator).__name__])
    check(estimator)


@pytest.mark.parametrize("params", [dict(head="calora", head__k=0), dict(training="hamr", training__knn_k="3"),
                                    dict(finetune="lora", finetune__rank=-1), dict(head="centroids"),
                                    dict(head__kk=3, head="calora")])
def test_component_parameters_are_checked_before_training(params):
    from skimb import TransformerClassifier
    from skimb.utils.estimator_checks import make_check_texts

    est = TransformerClassifier(tiny_bert_dir(), **params)
    with pytest.raises((ValueError, TypeError)) as info:
        est.fit(*make_check_texts())
    assert any(key.split("__")[-1] in str(info.value) for key in params)
    assert not hasattr(est, "net_")


# ---------------------------------------------------------------- the validation check on samplers

class _KeepSampler(BaseEmbeddingSampler):
    """Returns its input.

    Parameters
    ----------
    k : int, default=1
    random_state : int, RandomState instance or None, default=None
    """

    _parameter_constraints = {**sampler_constraints(), "k": [Interval(Integral, 1, None)]}

    def __init__(self, k=1, random_state=None):
        super().__init__()
        self.k = k
        self.random_state = random_state

    def _fit_resample(self, X, y, rng):
        return X, y, lambda w: w


class _UndeclaredSampler(_KeepSampler):
    """Has a parameter missing from the table.

    Parameters
    ----------
    k : int, default=1
    m : int, default=2
    random_state : int, RandomState instance or None, default=None
    """

    def __init__(self, k=1, m=2, random_state=None):
        super().__init__(k=k, random_state=random_state)
        self.m = m


class _UncheckedSampler(_KeepSampler):
    def _validate_params(self):
        pass


class _LateSampler(_KeepSampler):
    def _validate_params(self):
        self.work_done_ = True
        super()._validate_params()


def test_param_validation_check_derives_sampler_bad_values_from_the_table():
    check_param_validation("_KeepSampler", _KeepSampler())
    assert _bad_values(_KeepSampler(), "k") == ["not-a-number", 0, None]
    cut = _bad_values(TextCutOverSampler(), "cut_ratio")
    assert "not-a-number" in cut and 0 in cut and 2 in cut  # a bad type, both ends of (0, 1]
    assert "__unknown_option__" in _bad_values(TextCutOverSampler(), "donor")
    strategy = _bad_values(GE3OverSampler(), "sampling_strategy")
    for bad in ("__unknown_option__", "majority", 1.5, [1, 2], {"a": 1.5}):
        assert bad in strategy


@pytest.mark.parametrize("sampler, message", [
    (_UndeclaredSampler(), r"missing from its _parameter_constraints table: \['m'\]"),
    (_UncheckedSampler(), "accepted k='not-a-number'"),
    (_LateSampler(), r"reported only after training \(\['work_done_'\]\)"),
], ids=["undeclared", "unchecked", "late"])
def test_param_validation_check_catches_a_sampler_without_its_table(sampler, message):
    with pytest.raises(AssertionError, match=message):
        check_param_validation(type(sampler).__name__, sampler)


def test_taggers_are_told_apart_from_regressors_and_transformers():
    from sklearn.linear_model import Ridge

    from skimb.utils.estimator_checks import _kind

    kinds = {type(e).__name__: _kind(e) for e in ESTIMATORS}
    assert kinds["TransformerTokenClassifier"] == kinds["VotingTagger"] == "token"
    assert kinds["TransformerEmbedder"] == "transformer" and kinds["TunedOffsetsClassifier"] == "classifier"
    assert _kind(Ridge()) != "token"  # a predictor of numbers, not of tag lists
