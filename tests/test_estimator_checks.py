"""Our check suite over every public estimator, component and sampler, discovered through the
package's ``__all__``s (a new one is checked without being listed here)."""

import pytest

from skimb.heads import CALoRAHead
from skimb.utils.estimator_checks import all_estimators, parametrize_with_checks

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
]


def _instance(cls, params=None):
    params = _FAST.get(cls.__name__, {}) if params is None else params
    if "backbone" in cls().get_params(deep=False):
        params = dict(backbone=tiny_bert_dir(), **params)
    if "random_state" in cls().get_params(deep=False):
        params.setdefault("random_state", 0)
    return cls(**params)


CLASSES = dict(all_estimators())
ESTIMATORS = [_instance(cls) for cls in CLASSES.values()] + [_instance(CLASSES[n], p) for n, p in _VARIANTS]


def test_discovery_finds_every_kind():
    for name in ("TransformerClassifier", "TransformerTokenClassifier", "TransformerEmbedder", "CALoRAHead",
                 "HAMRTraining", "LoRAFinetune", "HardnessNeighborhoodSampler", "EDAOverSampler"):
        assert name in CLASSES


@parametrize_with_checks(ESTIMATORS)
def test_skimb_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("params", [dict(head="calora", head__k=0), dict(training="hamr", training__knn_k="3"),
                                    dict(finetune="lora", finetune__rank=-1), dict(head="prototype"),
                                    dict(head__kk=3, head="calora")])
def test_component_parameters_are_checked_before_training(params):
    from skimb import TransformerClassifier
    from skimb.utils.estimator_checks import make_check_texts

    est = TransformerClassifier(tiny_bert_dir(), **params)
    with pytest.raises((ValueError, TypeError)) as info:
        est.fit(*make_check_texts())
    assert any(key.split("__")[-1] in str(info.value) for key in params)
    assert not hasattr(est, "net_")
