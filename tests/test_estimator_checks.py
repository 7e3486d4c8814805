"""Our check suite over every public estimator and text sampler (tiny random BERT backbone)."""

from skimb import TransformerClassifier, TransformerEmbedder
from skimb.samplers import ClassAwareSampler, EDAOverSampler, RandomTextOverSampler, RandomTextUnderSampler
from skimb.utils.estimator_checks import parametrize_with_checks

from conftest import tiny_bert_dir

ESTIMATORS = [
    TransformerClassifier(backbone=tiny_bert_dir(), max_epochs=1, batch_size=8, random_state=0),
    TransformerClassifier(backbone=tiny_bert_dir(), finetune="head", max_epochs=2, random_state=0),
    TransformerClassifier(backbone=tiny_bert_dir(), finetune="lora", max_epochs=1, batch_size=8, random_state=0),
    TransformerClassifier(backbone=tiny_bert_dir(), finetune="head", head="calora", calora_epochs=2,
                          max_epochs=1, random_state=0),
    TransformerEmbedder(backbone=tiny_bert_dir()),
    RandomTextOverSampler(random_state=0),
    RandomTextUnderSampler(random_state=0),
    ClassAwareSampler(random_state=0),
    EDAOverSampler(random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_skimb_compatible_estimator(estimator, check):
    check(estimator)
