"""The methods ``skimb compare`` knows. Each new estimator option registers here."""

from __future__ import annotations

from ._registry import register_method

__all__ = []

_ALL_TASKS = ("multiclass", "multilabel", "token")


def _fine_tuned(budget, seed, context, **params):
    if context["task"] == "token":
        from .. import TransformerTokenClassifier as cls
    else:
        from .. import TransformerClassifier as cls
    return cls(**budget.finetune_params(seed), **params)


def _embedder(budget):
    from .. import TransformerEmbedder

    return TransformerEmbedder(budget.backbone, max_length=budget.max_length, device=budget.device)


def _logistic(seed, context, **params):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(max_iter=2000, random_state=seed, **params)
    if context["task"] == "multilabel":
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(lr)
    return lr


def _embedding_pipeline(budget, seed, context, sampler=None, **lr_params):
    from imblearn.pipeline import make_pipeline

    steps = [_embedder(budget)] + ([sampler] if sampler is not None else []) + [_logistic(seed, context, **lr_params)]
    return make_pipeline(*steps)


# --- fine-tuning -------------------------------------------------------------
@register_method("ce", description="fine-tuning with cross-entropy (BCE for multi-label)",
                 tasks=_ALL_TASKS, default=True, family="fine-tuning")
def _ce(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce")


@register_method("weighted_ce", description="fine-tuning with class-weighted cross-entropy (balanced weights)",
                 tasks=("multiclass", "token"), default=True, family="fine-tuning")
def _weighted_ce(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced")


# --- frozen embeddings + linear models -----------------------------------------
@register_method("embed_lr", description="frozen backbone embeddings + LogisticRegression",
                 tasks=("multiclass", "multilabel"), default=True, family="embeddings")
def _embed_lr(budget, seed, context):
    return _embedding_pipeline(budget, seed, context)


@register_method("embed_lr_balanced", description="frozen embeddings + LogisticRegression(class_weight='balanced')",
                 default=True, family="embeddings")
def _embed_lr_balanced(budget, seed, context):
    return _embedding_pipeline(budget, seed, context, class_weight="balanced")


@register_method("embed_ros", description="frozen embeddings + imblearn RandomOverSampler + LogisticRegression",
                 default=True, family="embeddings")
def _embed_ros(budget, seed, context):
    from imblearn.over_sampling import RandomOverSampler

    return _embedding_pipeline(budget, seed, context, sampler=RandomOverSampler(random_state=seed))


@register_method("embed_smote", description="frozen embeddings + imblearn SMOTE + LogisticRegression",
                 default=True, family="embeddings")
def _embed_smote(budget, seed, context):
    from imblearn.over_sampling import SMOTE

    k = max(1, min(5, context["min_class_count"] - 1))
    return _embedding_pipeline(budget, seed, context, sampler=SMOTE(k_neighbors=k, random_state=seed))
