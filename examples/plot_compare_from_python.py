"""
==========================================
``skimb compare`` from Python, with plots
==========================================

``skimb compare`` runs imbalance methods side by side with the same budget (backbone, epochs,
batch size, length, learning rate) and the same seeds, and writes a report: Markdown, CSV, JSON
and three PNG figures. From Python, :func:`skimb.compare.main` takes the command line's
arguments as a list and returns its exit status.

To build fast, this example compares four frozen-embedding baselines (the bundled MiniLM's
sentence embeddings + a logistic regression, with and without imbalanced-learn's samplers) on
600 training and 400 test texts of the bundled GoEmotions-Ekman data, over two seeds.
``skimb compare --list-methods`` lists the fine-tuning methods (``weighted_ce``, ``afl``,
``hamr``, ``calora_topk``, ...) that the default run adds.
"""

# %%
# Run the comparison
# ------------------
# ``--baseline`` names the method every other method's macro-F1 gap is measured against, with a
# 95% paired-bootstrap interval over the test texts and the seeds.
import tempfile
from pathlib import Path

from skimb.compare import main

out = Path(tempfile.mkdtemp()) / "skimb-report"
status = main(["--dataset", "goemotions_ekman", "--train-size", "600", "--test-size", "400",
               "--methods", "embed_lr,embed_lr_balanced,embed_ros,embed_smote",
               "--baseline", "embed_lr", "--seeds", "0,1", "--out", str(out), "--no-progress"])
print("exit status", status)
print(sorted(p.name for p in out.iterdir()))

# %%
# The three figures of the report
# -------------------------------
# ``gaps.png``: each method's macro-F1 gap to the baseline with its interval (an interval that
# lies entirely above 0 is a reliable gain); ``per_class_f1.png``: per-class F1, rarest class
# first; ``quartile_f1.png``: the mean F1 per label-frequency quartile (Q1 = the rarest labels).
import matplotlib.pyplot as plt

# sphinx_gallery_multi_image = "single"

for name in ("gaps.png", "per_class_f1.png", "quartile_f1.png"):
    image = plt.imread(out / name)
    fig, ax = plt.subplots(figsize=(9, 9 * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    ax.set_axis_off()
    fig.tight_layout()
plt.show()

# %%
# The summary CSV has one row per method (means and standard deviations over the seeds):
import csv

with open(out / "summary.csv") as f:
    for row in csv.DictReader(f):
        print(f"{row['method']:18s} macro-F1 {float(row['macro_f1_mean']):.3f} "
              f"+- {float(row['macro_f1_std']):.3f}   Q1 F1 {float(row['Q1_f1']):.3f}")
