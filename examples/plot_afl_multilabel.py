"""
==========================================
Adaptive focal loss on multi-label texts
==========================================

AFL, the adaptive focal loss (Labd et al., 2025; ``loss="afl"``), is a focal loss whose
focusing parameter is set per label from the label frequencies: ``gamma_c = gamma * n_max /
n_c``, capped at ``max_gamma``, so that the rare labels get the strongest focus on their hard
examples. With a 2-D 0/1 label matrix :class:`~skimb.TransformerClassifier` is a multi-label
classifier (sigmoid outputs, ``predict`` returns the indicator matrix), and
:func:`~skimb.metrics.multilabel_report` scores it.

The data are synthetic: short texts about one to three of six topics, whose frequencies fall
from 50% to about 1% of the texts. To build fast, the backbone (the bundled MiniLM) is frozen
(``finetune="head"``).
"""

# %%
# A small multi-label data set
# ----------------------------
import numpy as np

TOPICS = {
    "weather": ["it rained all day", "the storm knocked the power out", "a heat wave is coming",
                "snow closed the roads", "the forecast says sunshine"],
    "food": ["we cooked pasta tonight", "this bakery sells great bread", "the soup was too salty",
             "I tried a new curry recipe", "breakfast was pancakes"],
    "sport": ["the match went to extra time", "she ran a marathon", "our team lost the final",
              "he scored two goals", "the tennis serve was perfect"],
    "travel": ["our flight was delayed", "we booked a hotel by the sea", "the train to Rome was late",
               "packing for the trip", "the airport was crowded"],
    "health": ["the doctor prescribed rest", "I caught a cold", "my knee still hurts",
               "the vaccine appointment is tomorrow", "she is recovering in hospital"],
    "music": ["the concert was loud", "he plays the violin", "a new album came out",
              "we sang in the choir", "the band tuned their guitars"],
}
LABELS = list(TOPICS)
FREQ = np.array([0.5, 0.3, 0.15, 0.06, 0.025, 0.012])  # share of texts per topic


def make_texts(n, rng):
    texts, Y = [], np.zeros((n, len(LABELS)), dtype=int)
    for i in range(n):
        on = rng.random(len(LABELS)) < FREQ
        if not on.any():
            on[rng.choice(len(LABELS), p=FREQ / FREQ.sum())] = True
        parts = [TOPICS[LABELS[j]][rng.integers(5)] for j in np.flatnonzero(on)]
        rng.shuffle(parts)
        texts.append(", and ".join(parts) + ".")
        Y[i] = on
    return texts, Y


rng = np.random.default_rng(0)
X_train, Y_train = make_texts(400, rng)
X_test, Y_test = make_texts(300, rng)
print(X_train[0], Y_train[0])
print("training texts per label:", dict(zip(LABELS, Y_train.sum(axis=0).tolist())))

# %%
# BCE, weighted BCE, focal BCE and AFL
# ------------------------------------
# The same frozen-backbone classifier with five losses. ``loss`` takes a name (for multi-label
# data ``"ce"``, ``"weighted_ce"`` and ``"focal"`` mean their sigmoid versions) and its
# parameters are routed as ``loss__<name>``. AFL's cap ``max_gamma`` (default 10) bounds the
# focus on the rarest labels; the last variant halves the base ``gamma`` and the cap.
from skimb import TransformerClassifier
from skimb.metrics import multilabel_report

variants = {
    "bce": dict(loss="bce"),
    "weighted_bce": dict(loss="weighted_bce"),
    "focal": dict(loss="focal", loss__gamma=2.0),
    "afl": dict(loss="afl"),
    "afl, gamma=1, max 5": dict(loss="afl", loss__gamma=1.0, loss__max_gamma=5.0),
}
reports, models = {}, {}
for name, params in variants.items():
    models[name] = TransformerClassifier(finetune="head", lr=1e-2, max_epochs=4, random_state=0,
                                         **params)
    models[name].fit(X_train, Y_train)
    reports[name] = multilabel_report(Y_test, models[name].predict(X_test),
                                      Y_score=models[name].predict_proba(X_test),
                                      label_names=LABELS, train_Y=Y_train)
    r = reports[name]
    print(f"{name:20s} macro-F1 {r['macro_f1']:.3f}  micro-F1 {r['micro_f1']:.3f}  "
          f"macro ROC AUC {r['macro_roc_auc']:.3f}")

# %%
# AFL's per-label focusing parameter is a fitted attribute. Which loss is best depends on the
# data and the budget: with four epochs of a frozen backbone's head, the large ``gamma`` of the
# rarest labels also slows their learning, and the gentler setting does better. Compare them
# with :func:`~skimb.metrics.multilabel_report`'s per-label scores on your own data (or with
# ``skimb compare``).
for name in ("afl", "afl, gamma=1, max 5"):
    print(f"{name:20s} gamma_:", dict(zip(LABELS, np.round(models[name].gamma_, 2).tolist())))

# %%
# Per-label F1, most frequent label first
# ---------------------------------------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(9, 4))
width = 0.8 / len(reports)
for k, (loss, r) in enumerate(reports.items()):
    f1 = [r["per_label"][name]["f1"] for name in LABELS]
    ax.bar(np.arange(len(LABELS)) + k * width, f1, width, label=loss)
ax.set_xticks(np.arange(len(LABELS)) + 0.4 - width / 2, [f"{n}\n({c})" for n, c in zip(LABELS, Y_train.sum(0))])
ax.set_ylabel("F1 on the test texts")
ax.set_xlabel("label (training texts)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
