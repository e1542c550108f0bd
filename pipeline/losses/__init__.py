"""Loss functions for vessel segmentation: MONAI's Dice/Focal/Tversky behind one logits interface, a fast clDice,
Skeleton Recall, a weighted :class:`CombinedLoss` that reports its terms, and the original API's loss factory and
presets (its ``LossManager``, which also builds loss-weight schedules, is :class:`pipeline.schedules.LossManager`)."""

from pipeline.losses.logits_loss import LogitsLoss
from pipeline.losses.cldice import ClDiceLoss
from pipeline.losses.combined import TOTAL_KEY, CombinedLoss, component_key
from pipeline.losses.dice import EnhancedDiceLoss
from pipeline.losses.loss_factory import LOSS_TYPES, create_loss_function
from pipeline.losses.focal import EnhancedBCELoss
from pipeline.losses.morphology import soft_dilate, soft_erode, soft_skeleton
from pipeline.losses.loss_presets import LOSS_PRESETS, get_preset_loss_config, list_loss_presets
from pipeline.losses.term_names import LOSS_TERMS, build_term
from pipeline.losses.skeleton_recall import SkeletonRecallLoss
from pipeline.losses.tversky import EnhancedTverskyLoss

__all__ = [
    "ClDiceLoss",
    "CombinedLoss",
    "EnhancedBCELoss",
    "EnhancedDiceLoss",
    "EnhancedTverskyLoss",
    "LOSS_PRESETS",
    "LOSS_TERMS",
    "LOSS_TYPES",
    "LogitsLoss",
    "SkeletonRecallLoss",
    "TOTAL_KEY",
    "build_term",
    "component_key",
    "create_loss_function",
    "get_preset_loss_config",
    "list_loss_presets",
    "soft_dilate",
    "soft_erode",
    "soft_skeleton",
]
