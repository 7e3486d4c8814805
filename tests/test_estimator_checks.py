"""Our check suite over every public estimator (tiny random BERT backbone)."""

from skimb import TransformerClassifier, TransformerEmbedder
from skimb.utils.estimator_checks import parametrize_with_checks

from conftest import tiny_bert_dir

ESTIMATORS = [
    TransformerClassifier(backbone=tiny_bert_dir(), max_epochs=1, batch_size=8, random_state=0),
    TransformerClassifier(backbone=tiny_bert_dir(), finetune="head", max_epochs=2, random_state=0),
    TransformerEmbedder(backbone=tiny_bert_dir()),
]


@parametrize_with_checks(ESTIMATORS)
def test_skimb_compatible_estimator(estimator, check):
    check(estimator)
