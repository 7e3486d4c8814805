"""
===============================================================
Frozen embeddings, SMOTE and logistic regression in a pipeline
===============================================================

:class:`~skimb.TransformerEmbedder` turns texts into sentence embeddings, so the whole
scikit-learn and imbalanced-learn toolbox works on texts: here SMOTE over-samples the rare
emotions *in the embedding space* before a logistic regression, inside one
:class:`imblearn.pipeline.Pipeline` (SMOTE runs in ``fit`` only, never in ``predict``).

The data are 600 training and 400 test comments of the bundled GoEmotions-Ekman data set
(:func:`~skimb.datasets.load_goemotions_ekman`); *disgust* and *fear* have only a handful of
training examples.
"""

# %%
# The data
# --------
from collections import Counter

from skimb.datasets import load_goemotions_ekman

data = load_goemotions_ekman(subsample={"train": 600, "test": 400}, random_state=0)
counts = Counter(map(str, data.y_train))
print("training examples per class:", dict(counts.most_common()))

# %%
# Three pipelines on the same embeddings
# --------------------------------------
# The default backbone is the bundled all-MiniLM-L6-v2 (no download). Embeddings are cached per
# text and process, so the three pipelines encode the texts only once.
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression

from skimb import TransformerEmbedder

pipelines = {
    "LR": make_pipeline(TransformerEmbedder(), LogisticRegression(max_iter=2000)),
    "balanced LR": make_pipeline(TransformerEmbedder(),
                                 LogisticRegression(max_iter=2000, class_weight="balanced")),
    "SMOTE + LR": make_pipeline(TransformerEmbedder(), SMOTE(random_state=0),
                                LogisticRegression(max_iter=2000)),
}
predictions = {name: pipe.fit(data.X_train, data.y_train).predict(data.X_test)
               for name, pipe in pipelines.items()}

# %%
# Per-class report
# ----------------
# :func:`~skimb.metrics.imbalance_report` gives per-class precision, recall and F1, the macro,
# weighted and micro averages, and the mean F1 per label-frequency quartile (Q1 = the rarest
# classes, counted on the training labels).
from skimb.metrics import format_report, imbalance_report

reports = {name: imbalance_report(data.y_test, pred, train_labels=data.y_train)
           for name, pred in predictions.items()}
for name, report in reports.items():
    print(f"{name:12s} macro-F1 {report['macro_f1']:.3f}   Q1 F1 {report['quartile_f1']['Q1']:.3f}")

# %%
# The whole report of the SMOTE pipeline (``fmt="markdown"`` gives Markdown tables):
print(format_report(reports["SMOTE + LR"], fmt="text"))

# %%
# Per-class F1, rarest classes first
# ----------------------------------
# :func:`~skimb.metrics.plot_per_class_f1` writes a PNG (it is the figure of ``skimb compare``'s
# report); we show it here.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from skimb.metrics import plot_per_class_f1

path = plot_per_class_f1({name: {c: v["f1"] for c, v in r["per_class"].items()}
                          for name, r in reports.items()},
                         Path(tempfile.mkdtemp()) / "per_class_f1.png",
                         title="Per-class F1 on GoEmotions-Ekman (600 training texts)",
                         class_counts=counts)
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.imshow(plt.imread(path))
ax.set_axis_off()
plt.show()
