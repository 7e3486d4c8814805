"""Integration tests: the real all-MiniLM-L6-v2 on a slice of cyclone_idai_2019.

Marked ``integration``; skipped when the data folder is absent (set SKIMB_DATA_DIR).
"""

import numpy as np
import pytest
from sklearn.metrics import f1_score

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cyclone(data_dir):
    from skimb.datasets import load_dataset

    return load_dataset("cyclone_idai_2019", data_home=data_dir, subsample={"train": 400, "test": 200},
                        random_state=0)


def test_real_minilm_head_beats_chance(cyclone):
    from skimb import TransformerClassifier

    clf = TransformerClassifier(finetune="head", max_epochs=30, lr=5e-3, max_length=64, random_state=0)
    clf.fit(cyclone.X_train, cyclone.y_train)
    pred = clf.predict(cyclone.X_test)
    n_classes = len(np.unique(cyclone.y_train))
    assert f1_score(cyclone.y_test, pred, average="macro") > 2.0 / n_classes
    assert clf.score(cyclone.X_test, cyclone.y_test) > 0.5


def test_real_minilm_fine_tuning_step_and_round_trip(cyclone, tmp_path):
    from skimb import TransformerClassifier

    X, y = cyclone.X_train[:64], np.asarray(cyclone.y_train[:64])
    clf = TransformerClassifier(max_epochs=1, batch_size=16, max_length=48, random_state=0).fit(X, y)
    proba = clf.predict_proba(cyclone.X_test[:20])
    assert proba.shape == (20, len(clf.classes_)) and np.allclose(proba.sum(1), 1, atol=1e-5)
    loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(cyclone.X_test[:20]), proba, rtol=1e-4, atol=1e-5)


def test_real_embedder_smote_pipeline(cyclone):
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    from skimb import TransformerEmbedder

    pipe = make_pipeline(TransformerEmbedder(max_length=64), SMOTE(k_neighbors=3, random_state=0),
                         LogisticRegression(max_iter=2000))
    pipe.fit(cyclone.X_train, cyclone.y_train)
    emb = pipe[0].transform(cyclone.X_test[:5])
    assert emb.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert f1_score(cyclone.y_test, pipe.predict(cyclone.X_test), average="macro") > 0.2
