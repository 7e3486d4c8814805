"""Training: the skorch net with dynamic padding (standard loop) and HAMR (``training.hamr``)."""

from ._net import TransformerNet, WarmupLinearSchedule, weighted_mean_loss
from ._stage_cache import StageCache, fingerprint, stage1_cache

__all__ = ["StageCache", "TransformerNet", "WarmupLinearSchedule", "fingerprint", "stage1_cache", "weighted_mean_loss"]
