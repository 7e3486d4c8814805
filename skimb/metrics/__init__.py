"""Evaluation metrics for class-imbalanced NLP: per-class and macro-averaged scores, as the survey
of Henning et al. (2023, §2.3) recommends.

* :func:`imbalance_report`, :func:`quartile_f1`: multi-class (single-label);
  :func:`real_class_f1_score`: macro-F1 without a catch-all class.
* :func:`multilabel_report`, :func:`tune_thresholds`: multi-label indicator matrices.
* :func:`get_entities`, :func:`span_report`, :func:`span_f1_score`: span-level NER
  metrics with seqeval strict semantics.
* :func:`format_report`: Markdown / plain-text tables of any of the reports.
* :func:`plot_per_class_f1`, :func:`plot_quartile_f1`, :func:`plot_gaps`: PNG bar charts.
* :func:`paired_bootstrap_gap`, :func:`example_counts`: is a macro-F1 difference real?
* :func:`tune_logit_offsets`: post-hoc logit adjustment on a validation split;
  :func:`calibrated_logit_offsets`: the same from a calibrated model with a fixed share of it;
  :func:`tune_span_offsets`, :func:`span_macro_f1_from_logits`: the same for IOB2 taggers.

Every report reports the mean F1 per label-frequency quartile (Q1 rarest ... Q4)
with the same rule; see :func:`quartile_f1`.
"""

from skimb.metrics._classification import imbalance_report, quartile_f1, real_class_f1_score
from skimb.metrics._bootstrap import example_counts, paired_bootstrap_gap
from skimb.metrics._decision import calibrated_logit_offsets, macro_f1_from_labels, tune_logit_offsets
from skimb.metrics._multilabel import multilabel_report, tune_thresholds
from skimb.metrics._plots import plot_gaps, plot_per_class_f1, plot_quartile_f1
from skimb.metrics._span_offsets import span_macro_f1_from_logits, tune_span_offsets
from skimb.metrics._spans import get_entities, span_f1_score, span_report
from skimb.metrics._tables import format_report

__all__ = [
    "imbalance_report",
    "quartile_f1",
    "real_class_f1_score",
    "multilabel_report",
    "tune_logit_offsets",
    "calibrated_logit_offsets",
    "example_counts",
    "paired_bootstrap_gap",
    "macro_f1_from_labels",
    "tune_thresholds",
    "get_entities",
    "span_report",
    "span_f1_score",
    "span_macro_f1_from_logits",
    "tune_span_offsets",
    "format_report",
    "plot_gaps",
    "plot_per_class_f1",
    "plot_quartile_f1",
]
