"""Training: the skorch net with dynamic padding (standard loop) and HAMR (``training.hamr``)."""

from ._net import TransformerNet, WarmupLinearSchedule, weighted_mean_loss

__all__ = ["TransformerNet", "WarmupLinearSchedule", "weighted_mean_loss"]
