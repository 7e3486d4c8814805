"""
==============================================================
Searching CALoRA's k and rank without refitting stage 1
==============================================================

CALoRA (``head="calora"``; Zhu et al., *Adaptive Fine-Tuning for Class Imbalance in NLP*)
trains in two stages: stage 1 is the ordinary fit, stage 2 freezes it and trains one low-rank
adapter per class on the head, routed by the stage-1 ranking of the classes (top-``k``).
Only stage 2 depends on ``head__k`` and ``head__rank``, so skimb caches stage 1, keyed by the
backbone, every stage-1 parameter, the seed and the exact training rows: the candidates of a
:class:`~sklearn.model_selection.GridSearchCV` share **one stage 1 per fold**.

To build fast, this example freezes the backbone (``finetune="head"``: the texts are encoded
once, only the linear head trains in stage 1). With fine-tuning (the default
``finetune="full"``) the saving is the same number of stage-1 fits, each much more expensive.
"""

# %%
from collections import Counter

from skimb.datasets import load_goemotions_ekman

data = load_goemotions_ekman(subsample={"train": 600, "test": 400}, random_state=0)
print("training examples per class:", dict(Counter(map(str, data.y_train)).most_common()))

# %%
# The search
# ----------
# The cache needs an integer ``random_state``. It lives in memory (bounded by
# ``$SKIMB_STAGE1_CACHE_MIB``); with ``head__memory="some/dir"`` (or a :class:`joblib.Memory`)
# it is also written to disk and shared by the worker processes of ``n_jobs > 1``.
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skimb import TransformerClassifier
from skimb.training import stage1_cache

clf = TransformerClassifier(finetune="head", lr=1e-2, max_epochs=10, head="calora",
                            head__epochs=20, random_state=0)
grid = {"head__k": [1, 2, 3], "head__rank": [2, 8]}
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(clf, grid, cv=cv, scoring="f1_macro")

stage1_cache.clear()
search.fit(data.X_train, data.y_train)
n_fits = len(search.cv_results_["params"]) * cv.get_n_splits()
print(f"{n_fits} candidate fits + 1 refit: {stage1_cache.misses} stage-1 fits, "
      f"{stage1_cache.hits} stage-1 cache hits")
print("best:", search.best_params_, f"cross-validated macro-F1 {search.best_score_:.3f}")

# %%
# The fitted search's best estimator reports where its stage 1 came from and what each stage
# cost. It is the refit on all the training rows, which no fold saw together: it trains its own
# stage 1 (the 4th stage-1 fit above).
best = search.best_estimator_
print(f"stage 1 from the cache: {best.stage1_cached_}; "
      f"stage 1 {best.stage1_time_s_:.2f} s, stage 2 {best.stage2_time_s_:.2f} s")
print("share of training texts whose class is in their top-k:",
      round(float(best.routing_topk_coverage_), 3))

# %%
# Mean macro-F1 over the folds
# ----------------------------
import matplotlib.pyplot as plt
import numpy as np

scores = search.cv_results_["mean_test_score"].reshape(len(grid["head__k"]), len(grid["head__rank"]))
fig, ax = plt.subplots(figsize=(4.5, 3.5))
im = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(grid["head__rank"])), [str(r) for r in grid["head__rank"]])
ax.set_yticks(range(len(grid["head__k"])), [str(k) for k in grid["head__k"]])
ax.set_xlabel("head__rank")
ax.set_ylabel("head__k")
for (i, j), v in np.ndenumerate(scores):
    ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white")
fig.colorbar(im, ax=ax, label="macro-F1")
ax.set_title("CALoRA: 3-fold CV on 600 texts")
fig.tight_layout()
plt.show()

# %%
# On the test split
# -----------------
from skimb.metrics import imbalance_report

stage1 = TransformerClassifier(finetune="head", lr=1e-2, max_epochs=10, random_state=0)
for name, model in {"stage 1 alone (CE)": stage1.fit(data.X_train, data.y_train),
                    "CALoRA (best k, rank)": best}.items():
    report = imbalance_report(data.y_test, model.predict(data.X_test), train_labels=data.y_train)
    print(f"{name:22s} macro-F1 {report['macro_f1']:.3f}   Q1 F1 {report['quartile_f1']['Q1']:.3f}")
