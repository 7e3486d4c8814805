"""The methods ``skimb compare`` knows. Each new estimator option registers here."""

from __future__ import annotations

from ._registry import METHODS, TASKS, register_method

__all__ = []

_ALL_TASKS = TASKS
# CALoRA as every top-k method here configures it (top-2 routing, rank 8)
_CALORA_TOPK = {"head": "calora", "head__routing": "topk", "head__k": 2, "head__rank": 8}


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


# --- the composed recipe: the best loss + the tuned decision rule (multi-class) ---------------
@register_method("wce_tuned", description="weighted CE + per-class logit offsets tuned on a 10% validation split "
                 "for macro-F1 (threshold='tuned')", tasks=("multiclass",), default=True, family="recipes")
def _wce_tuned(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced", validation_fraction=0.1,
                       threshold="tuned")


@register_method("wce_calibrated", description="weighted CE + per-class logit offsets from a temperature and class "
                 "biases fitted on a 10% validation split, a quarter of the balanced shift (threshold='calibrated'); "
                 "shares wce_tuned's stage 1", tasks=("multiclass",), family="recipes")
def _wce_calibrated(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced", validation_fraction=0.1,
                       threshold="calibrated")


@register_method("drw_calibrated", description="CE, then class-balanced weights (beta=0.9999) from a third of "
                 "training (deferred re-weighting), + threshold='calibrated' on a 10% validation split; the best "
                 "single fit on the whole Cyclone-Idai split and 6,000 GoEmotions-Ekman texts, level with the best on "
                 "12,000 GoEmotions-28 texts, behind wce_calibrated at 1,200 texts (round 33)", tasks=("multiclass",), family="recipes")
def _drw_calibrated(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="class_balanced", loss__beta=0.9999, loss__drw_epoch=0.3,
                       validation_fraction=0.1, threshold="calibrated")


@register_method("drw_rdrop_calibrated", description="drw_calibrated trained with R-Drop (training='rdrop', alpha=1: "
                 "two dropout passes per step and the symmetric KL between them; twice the training time): the best "
                 "single fit on 6,000 GoEmotions-Ekman texts, +3.6 over plain CE (round 35)", tasks=("multiclass",), family="recipes")
def _drw_rdrop_calibrated(budget, seed, context):
    return _drw_calibrated(budget, seed, context).set_params(training="rdrop")


@register_method("wce_knn", description="weighted CE + a kNN memory of the training features mixed into the head "
                 "(head='knn', k=10, weight 0.5); shares weighted_ce's stage 1", tasks=("multiclass",), default=True,
                 family="recipes")
def _wce_knn(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced", head="knn")


@register_method("wce_calora", description="weighted CE + CALoRA (class-routed LoRA on the head, top-2 routing, "
                 "rank 8, a uniform stage 2 since stage 1 balances the classes): the paper method on top of the best "
                 "loss; shares weighted_ce's stage 1",
                 tasks=("multiclass",), default=True, family="recipes")
def _wce_calora(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced", **_CALORA_TOPK)


@register_method("ce_prototype", description="plain CE + class prototypes (mean training features) mixed into the "
                 "head (head='prototype', scale 20, weight 0.5); shares calora_topk's stage 1", tasks=("multiclass",),
                 default=True, family="recipes")
def _ce_prototype(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", head="prototype")


def _catch_all(context, method):
    if context.get("catch_all") is None:
        raise ValueError(f"{method} needs the catch-all class: pass --catch-all LABEL (e.g. other_relevant_information).")
    return context["catch_all"]


@register_method("ce_prototype_catch_all", description="plain CE + class prototypes, the catch-all class "
                 "(--catch-all; NER: O) scored by a learned similarity threshold instead of a prototype "
                 "(ProtoBERT); shares calora_topk's stage 1", tasks=("multiclass", "token"), family="recipes")
def _ce_prototype_catch_all(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", head="prototype",
                       head__catch_all=_catch_all(context, "ce_prototype_catch_all"))


@register_method("wce_catch_all", description="class-weighted CE over the real classes only, the catch-all class "
                 "(--catch-all) at weight 1 (Hu et al. 2022)", tasks=("multiclass",))
def _wce_catch_all(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="weighted_ce", loss__catch_all=_catch_all(context, "wce_catch_all"))


@register_method("ranking", description="the ranking loss of dos Santos et al. (2015): margins for the real classes, "
                 "the catch-all class (--catch-all) only pushes the best wrong score down", tasks=("multiclass",))
def _ranking(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ranking", loss__catch_all=_catch_all(context, "ranking"))


@register_method("vote_ce_wce", description="soft vote (mean probabilities) of CE and weighted-CE fine-tuning "
                 "(scikit-learn's VotingClassifier); reuses the stage 1s of calora_topk and wce_knn when they run "
                 "too", tasks=("multiclass",), default=True, family="recipes")
def _vote_ce_wce(budget, seed, context):
    from sklearn.ensemble import VotingClassifier

    return VotingClassifier([("ce", _fine_tuned(budget, seed, context, loss="ce")),
                             ("weighted_ce", _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced"))],
                            voting="soft")


@register_method("vote_wce_hamr_tuned", description="soft vote of weighted-CE and HAMR fine-tuning with per-class "
                 "logit offsets tuned for macro-F1 on the members' shared 10% validation split, HAMR's meta set "
                 "(TunedOffsetsClassifier(validation='estimator') around a VotingClassifier): the recipe for many "
                 "classes and extreme imbalance", tasks=("multiclass",), default=True, family="recipes",
                 requires=("faiss",))
def _vote_wce_hamr_tuned(budget, seed, context):
    from sklearn.ensemble import VotingClassifier

    from ..model_selection import TunedOffsetsClassifier

    held_out = dict(validation_fraction=0.1)  # the same split in both members (same seed): HAMR's meta set
    vote = VotingClassifier([("weighted_ce", _fine_tuned(budget, seed, context, loss="ce", class_weight="balanced",
                                                         **held_out)),
                             ("hamr", _fine_tuned(budget, seed, context, training="hamr", **held_out))],
                            voting="soft")
    return TunedOffsetsClassifier(vote, validation="estimator", random_state=seed)


# --- other libraries (skimb.baselines) -------------------------------------------------------
@register_method("setfit", description="SetFit: contrastive pairs with class-balanced anchors, as many body passes "
                 "as fine-tuning gets (epochs x N texts), then a class-weighted logistic regression",
                 family="baselines", requires=("setfit",))
def _setfit(budget, seed, context):
    from ..baselines import SetFitClassifier

    # two texts a pair: epochs x N text passes, the budget of the fine-tuned methods
    steps = -(-budget.max_epochs * context.get("n_train", 0) // (2 * budget.batch_size)) or None
    return SetFitClassifier(budget.backbone, max_length=budget.max_length, batch_size=budget.batch_size,
                            max_steps=steps, device=budget.device, random_state=seed)


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


@register_method("embed_smote", description="frozen embeddings + imblearn SMOTE + LogisticRegression (a class "
                 "with a single training text is left as it is: SMOTE needs two to interpolate)",
                 default=True, family="embeddings")
def _embed_smote(budget, seed, context):
    from imblearn.over_sampling import SMOTE

    counts = context.get("class_counts")
    strategy, smallest = _smote_strategy(counts) if counts else ("not majority", context["min_class_count"])
    sampler = None if not strategy else SMOTE(sampling_strategy=strategy, k_neighbors=max(1, min(5, smallest - 1)),
                                              random_state=seed)
    return _embedding_pipeline(budget, seed, context, sampler=sampler)


def _smote_strategy(class_counts):
    """``(sampling_strategy, smallest count SMOTE sees)``: every class up to the largest, but
    classes with a single text (no neighbour to interpolate with) stay as they are."""
    if min(class_counts.values()) >= 2:
        return "not majority", min(class_counts.values())
    largest = max(class_counts.values())
    grown = {c: largest for c, n in class_counts.items() if 2 <= n < largest}
    return grown, min((class_counts[c] for c in grown), default=2)


# --- imbalance losses (skimb.losses) -------------------------------------------
def _register_loss(name, loss, tasks, description, default=False, **extra):
    @register_method(name, description=description, tasks=tasks, family="losses", default=default)
    def build(budget, seed, context):
        return _fine_tuned(budget, seed, context, loss=loss, **extra)

    return build


# focal loss as every method here uses it: focal_calora shares focal's stage 1 only while they agree
_FOCAL = {"loss": "focal", "loss__gamma": 2.0}

# a default for NER: the better baseline where data are few or entities sparse (round 18)
_register_loss("focal", "focal", _ALL_TASKS, "fine-tuning with focal loss (gamma=2)", default=("token",),
               loss__gamma=_FOCAL["loss__gamma"])
# R-Drop on the two NER baselines: the best single taggers measured on the whole MIT-Restaurant split (CE,
# +0.7) and on TweetNER7 (focal, +1.3, up on every seed), at 1.7 to 1.9 times the training time (round 36);
# level at 900 MIT-Restaurant sentences, so not defaults
_register_loss("ce_rdrop", "ce", ("token",), "fine-tuning with cross-entropy trained with R-Drop (training='rdrop', "
               "alpha=1: two dropout passes per step and the symmetric KL between their predictions per labelled "
               "token; twice the training time)", training="rdrop")
_register_loss("focal_rdrop", "focal", ("token",), "fine-tuning with focal loss (gamma=2) trained with R-Drop",
               loss__gamma=_FOCAL["loss__gamma"], training="rdrop")
# a linear-chain CRF on the tagger's head (round 42): the best single tagger on the whole MIT-Restaurant split
# and on TweetNER7, at cross-entropy's training time (0.99 times, benchmarks/crf_cost.py)
_register_loss("crf", "ce", ("token",), "fine-tuning with a linear-chain CRF on the head (decoding='crf': learned "
               "tag transitions, trained by the sequence likelihood; Viterbi at prediction)", default=("token",),
               decoding="crf")
_register_loss("crf_rdrop", "ce", ("token",), "fine-tuning with a linear-chain CRF on the head, trained with "
               "R-Drop (1.4 to 2.1 times the training time)", decoding="crf", training="rdrop")
# with each word's case as its token type (round 46): the best tagger measured on TweetNER7, whose tweets are
# cased and MiniLM's tokenizer lowercases (+0.8 over crf_rdrop); the same as crf_rdrop on lowercase text
_register_loss("crf_rdrop_case", "ce", ("token",), "the CRF tagger with R-Drop, fed each word's case as its token "
               "type (mark_case=True: for an uncased backbone such as MiniLM on cased text; needs two token types)",
               decoding="crf", training="rdrop", mark_case=True)
_register_loss("afl", "afl", ("multiclass", "multilabel"),
               "fine-tuning with AFL, the adaptive focal loss (per-class gamma = 2 * n_max / n_c, capped at 10)",
               default=True)
# multi-class AFL gives the rarest classes the largest gamma, which under softmax silences them; the
# inverse-frequency alpha undoes that (docs/losses.md; level with or above class weighting, round 5, 13)
_register_loss("afl_balanced", "afl", ("multiclass",),
               "fine-tuning with AFL and class-balanced alpha (inverse class frequency): AFL's variant for "
               "single-label data", default=True, loss__alpha="balanced")
_register_loss("class_balanced", "class_balanced", ("multiclass",),
               "fine-tuning with class-balanced CE (effective number, beta=0.999)")
_register_loss("ldam", "ldam", ("multiclass",), "fine-tuning with LDAM (margins ~ n_c^-1/4) and deferred re-weighting",
               loss__s=1.0, loss__drw_epoch=0.5)
_register_loss("ldam_cosine", "ldam", ("multiclass",), "fine-tuning with LDAM (s=30) and deferred re-weighting on a "
               "cosine head (head='cosine', the normalised classifier LDAM's scale assumes)",
               loss__drw_epoch=0.5, head="cosine")
_register_loss("ce_drw", "class_balanced", ("multiclass",),
               "fine-tuning with CE, then class-balanced weights (beta=0.9999) from 80% of training, rounded to an "
               "epoch: deferred re-weighting (CE-DRW)", loss__beta=0.9999, loss__drw_epoch=0.8)
# a default: the softer weights (about half the inverse-frequency spread on GoEmotions-Ekman) from a third of
# training, the best loss at argmax on three imbalanced full-size sets, level on SST-5 (round 34)
_SOFT_DRW = {"loss__beta": 0.999, "loss__drw_epoch": 0.3}
_register_loss("ce_soft_drw", "class_balanced", ("multiclass",),
               "fine-tuning with CE, then class-balanced weights (beta=0.999, softer than CE-DRW's) from a third of "
               "training, rounded to an epoch: deferred re-weighting toward, not onto, balance", default=True,
               **_SOFT_DRW)
# a default: the same loss trained with R-Drop, +1.4 at 1,200 GoEmotions-Ekman texts (every seed), +0.7 at 1,200
# Cyclone-Idai texts, at 2.4 times the training time (round 35)
_ce_soft_drw_rdrop = _register_loss(
    "ce_soft_drw_rdrop", "class_balanced", ("multiclass",),
    "ce_soft_drw trained with R-Drop (training='rdrop', alpha=1: two dropout passes per step and the symmetric KL "
    "between their predictions; twice the training time)", default=True, **_SOFT_DRW, training="rdrop")
_register_loss("logit_adjusted", "logit_adjusted", ("multiclass",), "fine-tuning with logit-adjusted CE (tau=1)")
_register_loss("dice", "dice", ("multiclass", "token"), "fine-tuning with Dice loss")
_register_loss("self_adjusting_dice", "self_adjusting_dice", ("multiclass", "token"),
               "fine-tuning with self-adjusting Dice loss")
# a default for multi-label data: the class-weighting baseline (positives weighted up to 3x, round 26)
_register_loss("weighted_bce", "weighted_bce", ("multilabel",),
               "fine-tuning with positive-weighted BCE (each label's positives weighted by its negatives/positives "
               "ratio, at most 3)", default=True)
# a default for multi-label data: the best multi-label loss measured (GoEmotions, rounds 4 and 24)
_register_loss("distribution_balanced", "distribution_balanced", ("multilabel",),
               "fine-tuning with the distribution-balanced loss", default=True)


# --- CALoRA (skimb.heads) ---------------------------------------------------------
@register_method("calora_topk", description="CALoRA: class-routed LoRA on the head, top-2 routing, rank 8, "
                 "a stage 2 weighted by the inverse square root of the class frequencies (single-label texts; "
                 "multi-label: inverse frequency; NER: unweighted) on a cross-entropy stage 1", tasks=_ALL_TASKS,
                 default=True, family="CALoRA")
def _calora_topk(budget, seed, context):
    return _fine_tuned(budget, seed, context, **_CALORA_TOPK)


@register_method("focal_calora", description="CALoRA (top-2 routing, rank 8, unbalanced stage 2) on a focal-loss "
                 "stage 1: the paper method on top of the NER baseline where sentences are few or most carry no "
                 "entity; shares focal's stage 1", tasks=("token",), default=("token",), family="CALoRA")
def _focal_calora(budget, seed, context):
    return _fine_tuned(budget, seed, context, **_FOCAL, **_CALORA_TOPK)


@register_method("soft_drw_rdrop_calora", description="CALoRA (top-2 routing, rank 8, a uniform stage 2 since the loss "
                 "re-balances) on ce_soft_drw_rdrop's stage 1: the paper method on top of the best recipe; shares its "
                 "stage 1; 1.2 below it on the main job's data (3 seeds, round 36)", tasks=("multiclass",),
                 family="CALoRA")
def _soft_drw_rdrop_calora(budget, seed, context):
    return _ce_soft_drw_rdrop(budget, seed, context).set_params(**_CALORA_TOPK)


@register_method("calora_last_block", description="CALoRA with class-routed adapters on the last transformer block's "
                 "linear layers too (head__layers='last'): calora_topk's head adapters, then one epoch of the "
                 "block's adapters on the texts; shares calora_topk's stage 1", tasks=("multiclass", "multilabel"),
                 family="CALoRA")
def _calora_last_block(budget, seed, context):
    return _fine_tuned(budget, seed, context, **_CALORA_TOPK, head__layers="last")


@register_method("calora_pseudo", description="CALoRA with pseudo-label (top-1) routing, rank 8 (staged)",
                 tasks=_ALL_TASKS, family="CALoRA")
def _calora_pseudo(budget, seed, context):
    return _fine_tuned(budget, seed, context, head="calora", head__routing="pseudo", head__rank=8)


# --- samplers (skimb.samplers) ------------------------------------------------------
def _register_embedding_sampler(name, make_sampler, description):
    @register_method(name, description=description, family="samplers")
    def build(budget, seed, context):
        return _embedding_pipeline(budget, seed, context, sampler=make_sampler(seed, context))

    return build


def _text_sampler_pipeline(sampler, final):
    from imblearn.pipeline import make_pipeline

    return make_pipeline(sampler, final)


def _samplers():
    from .. import samplers

    return samplers


_register_embedding_sampler("embed_textcut", lambda seed, ctx: _samplers().TextCutOverSampler(random_state=seed),
                            "frozen embeddings + TextCut hidden-space over-sampling + LogisticRegression")
_register_embedding_sampler("embed_ge3", lambda seed, ctx: _samplers().GE3OverSampler(random_state=seed),
                            "frozen embeddings + GE3 hidden-space over-sampling + LogisticRegression")
_register_embedding_sampler("embed_reprint", lambda seed, ctx: _samplers().REPRINTOverSampler(random_state=seed),
                            "frozen embeddings + REPRINT hidden-space over-sampling + LogisticRegression")
_register_embedding_sampler("embed_lnr", lambda seed, ctx: _samplers().LabelNoiseRebalancer(random_state=seed,
                                                                                          cv=min(5, max(2, ctx["min_class_count"]))),
                            "frozen embeddings + label-noise rebalancing (LNR) + LogisticRegression")


@register_method("class_aware_lr", description="class-aware (balanced) text sampling + frozen embeddings + LogisticRegression",
                 family="samplers")
def _class_aware_lr(budget, seed, context):
    from imblearn.pipeline import make_pipeline

    return make_pipeline(_samplers().ClassAwareSampler(random_state=seed), _embedder(budget), _logistic(seed, context))


@register_method("eda_lr", description="EDA text augmentation of minority classes + frozen embeddings + LogisticRegression",
                 family="samplers")
def _eda_lr(budget, seed, context):
    from imblearn.pipeline import make_pipeline

    return make_pipeline(_samplers().EDAOverSampler(random_state=seed), _embedder(budget), _logistic(seed, context))


@register_method("ros_ce", description="random text over-sampling in front of CE fine-tuning", family="samplers")
def _ros_ce(budget, seed, context):
    return _text_sampler_pipeline(_samplers().RandomTextOverSampler(random_state=seed),
                                  _fine_tuned(budget, seed, context, loss="ce"))


@register_method("class_aware_ce", description="class-aware text sampling (temperature 2) in front of CE fine-tuning",
                 family="samplers")
def _class_aware_ce(budget, seed, context):
    return _text_sampler_pipeline(_samplers().ClassAwareSampler(temperature=2.0, random_state=seed),
                                  _fine_tuned(budget, seed, context, loss="ce"))


@register_method("eda_ce", description="EDA augmentation of minority classes in front of CE fine-tuning",
                 family="samplers")
def _eda_ce(budget, seed, context):
    return _text_sampler_pipeline(_samplers().EDAOverSampler(random_state=seed),
                                  _fine_tuned(budget, seed, context, loss="ce"))
_register_embedding_sampler("embed_hardness", lambda seed, ctx: _samplers().HardnessNeighborhoodSampler(
    random_state=seed, cv=min(5, max(2, ctx["min_class_count"]))),
    "frozen embeddings + HAMR hardness-neighbourhood resampling + LogisticRegression")


# --- HAMR (skimb.training.hamr): the paper's Table 3 ablations -------------------------------
# HAMR needs a meta set: each variant holds out validation_fraction=0.1 (stratified), which
# becomes the base of the balanced meta set (and gives the validation loss); hamr_none holds it
# out too, so that every HAMR method trains on the same share of the data.
def _register_hamr(name, description, default=False, tasks=_ALL_TASKS, base=None, **switches):
    # base: the estimator's own parameters (the loss HAMR trains on); switches: HAMRTraining's
    requires = ("faiss",) if switches.get("resampling", True) and switches.get("knn", True) else ()

    @register_method(name, description=description, tasks=tasks, family="HAMR", default=default,
                     requires=requires)
    def build(budget, seed, context):
        routed = {f"training__{k}": v for k, v in switches.items()}
        return _fine_tuned(budget, seed, context, training="hamr", validation_fraction=0.1, **(base or {}), **routed)

    return build


_register_hamr("hamr", "HAMR: meta-learned sample weights + hardness/kNN resampling (NER: below 750 training "
               "sentences with sparse entities; validation 10% -> meta set)", default=True)
# the ablations pin resampling on ("auto" turns it off for NER from 750 training sentences or dense entities)
_register_hamr("hamr_no_weighting", "HAMR without adaptive weighting (WNet still drives the hardness)",
               meta_weighting=False, resampling=True)
_register_hamr("hamr_no_resampling", "HAMR without hardness-aware resampling (nor kNN)", resampling=False, knn=False)
_register_hamr("hamr_no_knn", "HAMR without the kNN neighbourhood boost", resampling=True, knn=False)
_register_hamr("hamr_none", "HAMR with every module off: plain fine-tuning on the same 90% split",
               meta_weighting=False, resampling=False, knn=False)
_register_hamr("focal_hamr", "HAMR on a focal-loss base (gamma=2): HAMR on top of the NER baseline where sentences "
               "are few or most carry no entity", default=("token",), tasks=("token",), base=_FOCAL)
# HAMR on the best recipe: ce_soft_drw_rdrop's loss, R-Drop on HAMR's update (round 37)
_register_hamr("soft_drw_rdrop_hamr", "HAMR on ce_soft_drw_rdrop's loss and R-Drop (training__rdrop_alpha=1: both "
               "dropout passes weighted by WNet): the paper method on top of the best recipe", tasks=("multiclass",),
               base={"loss": "class_balanced", **_SOFT_DRW}, rdrop_alpha=1.0)
# HAMR on the CRF tagger (round 43): windows weighed by their likelihood, the CRF's likelihood as the meta objective
_register_hamr("crf_hamr", "HAMR on the CRF tagger (decoding='crf': windows weighed by their sequence likelihood)",
               tasks=("token",), base={"decoding": "crf"})
_register_hamr("crf_rdrop_hamr", "HAMR on the CRF tagger with R-Drop (training__rdrop_alpha=1): the paper method on "
               "top of the best tagger", tasks=("token",), base={"decoding": "crf"}, rdrop_alpha=1.0)
_register_hamr("hamr_gbc", "HAMR with GBC's meta set: representatives of clusters of per-example head gradients, "
               "per class (training__meta_selection='gbc'), in place of the validation split's",
               tasks=("multiclass",), meta_selection="gbc")


@register_method("vote_focal_calora_hamr", description="soft vote of focal_calora and focal_hamr (VotingTagger: the "
                 "mean of their word tag probabilities): the recipe for taggers where most sentences hold no entity; "
                 "loads both members' fits when those methods run too", tasks=("token",), default=("token",),
                 family="recipes", requires=("faiss",))
def _vote_focal_calora_hamr(budget, seed, context):
    from ..ensemble import VotingTagger

    return VotingTagger([("focal_calora", METHODS["focal_calora"].build(budget, seed, context)),
                         ("focal_hamr", METHODS["focal_hamr"].build(budget, seed, context))])


# --- sequential targeting (skimb.training.SequentialTargetingTraining) -------------------------
@register_method("sequential", description="sequential targeting: 3 stages from the original class distribution "
                 "to a balanced one, a learning-rate schedule per stage (CE)", tasks=_ALL_TASKS, family="training")
def _sequential(budget, seed, context):
    return _fine_tuned(budget, seed, context, loss="ce", training="sequential")

