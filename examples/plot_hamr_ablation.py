"""
=============================================
HAMR and its ablations
=============================================

HAMR, hardness-aware meta-resample (Rao et al., 2025; ``training="hamr"``), adds two modules
to training: a small weight network, meta-learned on a class-balanced meta set, that weights
every sample's loss (*adaptive weight estimation*), and a per-epoch resampling that draws hard
samples and their embedding-space neighbours more often (*hardness-aware region resampling*,
with a kNN neighbourhood boost). Each module has a switch, for the ablations of the paper's
module study: ``training__meta_weighting``, ``training__resampling`` and ``training__knn``. With
all three off, HAMR is bit for bit the standard training of the same split.

To build fast, this example freezes the backbone (``finetune="head"``) and trains 10 epochs of
the head on 600 texts; one seed on 400 test texts is noisy, so read the numbers as a recipe, not a
measurement (``docs/benchmarks.md`` has those).
"""

# %%
from collections import Counter

from skimb.datasets import load_goemotions_ekman

data = load_goemotions_ekman(subsample={"train": 600, "test": 400}, random_state=0)
print("training examples per class:", dict(Counter(map(str, data.y_train)).most_common()))

# %%
# Full HAMR and the four ablations
# --------------------------------
# ``validation_fraction=0.1`` holds out 10% of the training texts: the base of HAMR's balanced
# meta set (HAMR with every module off holds it out too, so all five train on the same rows).
from sklearn.base import clone

from skimb import TransformerClassifier
from skimb.metrics import imbalance_report

variants = {
    "HAMR": {},
    "w/o weighting": {"training__meta_weighting": False},
    "w/o resampling": {"training__resampling": False},
    "w/o kNN": {"training__knn": False},
    "w/o all": {"training__meta_weighting": False, "training__resampling": False,
                "training__knn": False},
}
base = TransformerClassifier(finetune="head", lr=1e-2, max_epochs=10, class_weight="balanced",
                             training="hamr", validation_fraction=0.1, random_state=0)
models, reports = {}, {}
for name, switches in variants.items():
    models[name] = clone(base).set_params(**switches).fit(data.X_train, data.y_train)
    reports[name] = imbalance_report(data.y_test, models[name].predict(data.X_test),
                                     train_labels=data.y_train)
    print(f"{name:15s} macro-F1 {reports[name]['macro_f1']:.3f}   "
          f"Q1 F1 {reports[name]['quartile_f1']['Q1']:.3f}")

# %%
# Macro-F1 and the rarest quartile
# --------------------------------
import matplotlib.pyplot as plt
import numpy as np

names = list(reports)
fig, ax = plt.subplots(figsize=(8, 3.8))
y = np.arange(len(names))[::-1]
ax.barh(y + 0.2, [reports[n]["macro_f1"] for n in names], 0.4, label="macro-F1")
ax.barh(y - 0.2, [reports[n]["quartile_f1"]["Q1"] for n in names], 0.4,
        label="Q1 F1 (rarest classes)")
ax.set_yticks(y, names)
ax.set_xlabel("F1 on the test split")
ax.set_title("HAMR and its ablations (frozen MiniLM, 600 texts, one seed)")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# What the weight network learned
# -------------------------------
# ``sample_weights_history_`` summarises, per epoch, the weights the weight network gave
# (quantiles, overall and per class), and ``hardness_`` is each training sample's final hardness,
# the resampling's main input (one entry per trained row: ``hamr_train_indices_`` gives their
# positions in ``X``, as the meta set is not trained on). With ``class_weight="balanced"`` the
# weights are normalised to mean 1 within each class (``weight_norm_`` is ``"class"``: the class
# weights keep the balance between the classes), so every class's mean weight is 1 and what the
# weight network learned is the spread inside a class: its quartiles, and the range of the
# hardness, per class, rarest class first.
hamr = models["HAMR"]
print("weights normalised within:", hamr.weight_norm_)
counts = Counter(map(str, data.y_train))
last = hamr.sample_weights_history_[-1]["per_class"]
y_trained = np.asarray(data.y_train)[hamr.hamr_train_indices_]
relative = hamr.hardness_ / hamr.hardness_.mean()
print("class      train  weight q25-q75 (last epoch)  hardness min-max (1 = average)")
for c in sorted(last, key=lambda c: counts[str(c)]):
    h = relative[y_trained == c]
    print(f"{str(c):9s} {counts[str(c)]:6d}  {last[c]['q25']:15.3f}-{last[c]['q75']:.3f}  "
          f"{h.min():24.3f}-{h.max():.3f}")
