"""Training: the skorch net with dynamic padding, the stage-1 cache, and the training strategies
the estimators compose (``training="standard"``, ``"hamr"`` from ``training.hamr``, ``"sequential"``, ``"sam"``, ``"rdrop"``;
:func:`register_training` for more)."""

from ._averaging import WeightAveraging, ema_step_weight
from ._net import TransformerNet, WarmupLinearSchedule, weighted_mean_loss
from ._selection import ValidationMacroF1
from ._stage_cache import StageCache, fingerprint, stage1_cache
from ._strategies import TRAININGS, StandardTraining, TrainingStrategy, register_training
from .hamr import HAMRTraining  # registers "hamr"
from ._sharpness import SharpnessAwareNet, SharpnessAwareTraining, minority_classes, sharpness_perturbation  # registers "sam"
from ._rdrop import RDropNet, RDropTraining, dropout_consistency  # registers "rdrop"
from ._sequential import SequentialFit, SequentialNet, SequentialTargetingTraining, sequential_subsets, stage_keys  # registers "sequential"

__all__ = ["StageCache", "TransformerNet", "WarmupLinearSchedule", "fingerprint", "stage1_cache", "weighted_mean_loss",
           "TrainingStrategy", "StandardTraining", "HAMRTraining", "TRAININGS", "register_training",
           "ValidationMacroF1", "SequentialTargetingTraining", "SequentialNet", "SequentialFit", "sequential_subsets", "stage_keys",
           "SharpnessAwareTraining", "SharpnessAwareNet", "sharpness_perturbation", "minority_classes",
           "RDropTraining", "RDropNet", "dropout_consistency", "WeightAveraging", "ema_step_weight"]
