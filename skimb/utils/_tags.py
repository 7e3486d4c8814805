"""scikit-learn tags shared by the estimators and the meta-estimators (free of the estimators' plumbing)."""

from __future__ import annotations

__all__ = ["apply_text_tags"]


def apply_text_tags(tags, *, multi_label: bool = False):
    """Tags of an estimator whose X is a sequence of strings."""
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True
    tags.target_tags.required = True
    if tags.classifier_tags is not None:
        tags.classifier_tags.multi_label = multi_label
    tags.non_deterministic = False
    return tags
