"""MONAI transform chains for vessel CT segmentation."""

from transforms.chains import (
    DEFAULT_HU_WINDOW,
    AboveThreshold,
    get_binary_postprocessing,
    get_inference_transforms,
    get_post_transforms,
    get_preprocessing,
    get_train_transforms,
    get_val_transforms,
)
from transforms.intensity import check_hu_window, intensity_window, window_range
from transforms.label_dtype import BinaryToUint8d, ToFloat32d
from transforms.skeleton import TubedSkeleton, TubedSkeletond

__all__ = [
    "DEFAULT_HU_WINDOW",
    "AboveThreshold",
    "BinaryToUint8d",
    "TubedSkeleton",
    "ToFloat32d",
    "TubedSkeletond",
    "check_hu_window",
    "get_binary_postprocessing",
    "get_inference_transforms",
    "get_post_transforms",
    "get_preprocessing",
    "get_train_transforms",
    "get_val_transforms",
    "intensity_window",
    "window_range",
]
