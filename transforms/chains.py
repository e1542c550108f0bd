"""MONAI dictionary-transform chains for contrast-enhanced vessel CT.

Three chains share one deterministic preprocessing (load, channel-first, RAS orientation, resampling, CT window,
foreground crop): :func:`get_train_transforms` adds balanced random patches and augmentation,
:func:`get_val_transforms` stops there, and :func:`get_inference_transforms` works on images alone and is inverted
by :func:`get_post_transforms` to put predictions back on each input's original grid and affine.

The training and validation chains end their deterministic part (what MONAI's caching datasets keep) with the label
as ``uint8`` (:class:`~transforms.label_dtype.BinaryToUint8d`) and turn it back into ``float32`` after the cache
(:class:`~transforms.label_dtype.ToFloat32d`), so a cached volume takes 1 byte per label voxel instead of 4 and what
the chains return is unchanged.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    Invertd,
    LoadImaged,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SaveImaged,
    Spacingd,
    SpatialPadd,
)

from transforms.intensity import check_hu_window, intensity_window, window_range
from transforms.label_dtype import BinaryToUint8d, ToFloat32d
from transforms.skeleton import TubedSkeletond

__all__ = [
    "DEFAULT_HU_WINDOW",
    "AboveThreshold",
    "get_preprocessing",
    "get_train_transforms",
    "get_val_transforms",
    "get_inference_transforms",
    "get_binary_postprocessing",
    "get_post_transforms",
]

#: NIfTI's world axes (scanner RAS+), spelled out so the orientation does not depend on a changing MONAI default.
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))

#: CT window (HU) mapped to [0, 1]: from fat to well above contrast-enhanced lumen (300-450 HU).
DEFAULT_HU_WINDOW: tuple[float, float] = (-150.0, 650.0)


class AboveThreshold:
    """``select_fn`` for :class:`monai.transforms.CropForegroundd`: voxels above ``threshold`` (picklable for workers)."""

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        return x > self.threshold


def get_preprocessing(
    keys: Sequence[str] = ("image", "label"),
    pixdim: Sequence[float] | None = None,
    hu_window: Sequence[float] = DEFAULT_HU_WINDOW,
    crop_foreground: bool = True,
    foreground_threshold: float = 0.0,
    foreground_margin: int = 4,
) -> list:
    """Deterministic steps shared by every chain.

    Args:
        keys: ``"image"`` first, then any label keys (resampled with nearest neighbour).
        pixdim: target voxel spacing in mm (RAS order); ``None`` keeps each volume's own spacing.
        hu_window: (low, high) HU mapped linearly to [0, 1], values outside clipped; or (low, high, std): clipped to
            [low, high], then divided by std with low at 0 (see :mod:`transforms.intensity`).
        crop_foreground: crop to the bounding box of voxels above ``foreground_threshold`` (after windowing), which
            removes air around the body; invertible.
        foreground_threshold: where between the window's ``low`` (0.0) and ``high`` (1.0) a voxel counts as body.
        foreground_margin: voxels kept around that box.

    Returns:
        a list of MONAI transforms.
    """
    keys = list(keys)
    if not keys or keys[0] != "image":
        raise ValueError(f"keys must start with 'image', got {keys}.")
    check_hu_window(hu_window)
    label_keys = keys[1:]
    chain: list = [
        LoadImaged(keys=keys, image_only=True),
        EnsureChannelFirstd(keys=keys),
        Orientationd(keys=keys, axcodes="RAS", labels=RAS_LABELS),
    ]
    if pixdim is not None:
        if len(pixdim) != 3 or any(p <= 0 for p in pixdim):
            raise ValueError(f"pixdim must be three positive spacings in mm, got {tuple(pixdim)}.")
        chain.append(Spacingd(keys=keys, pixdim=tuple(pixdim), mode=["bilinear"] + ["nearest"] * len(label_keys)))
    chain.append(intensity_window("image", hu_window))
    if crop_foreground:
        top = window_range(hu_window)[1]
        chain.append(
            CropForegroundd(
                keys=keys,
                source_key="image",
                select_fn=AboveThreshold(foreground_threshold * top),
                margin=foreground_margin,
                allow_smaller=True,
            )
        )
    chain.append(EnsureTyped(keys=keys, dtype=torch.float32, track_meta=True))
    return chain


def get_train_transforms(
    patch_size: Sequence[int] = (64, 64, 32),
    num_samples: int = 4,
    pos: float = 1.0,
    neg: float = 1.0,
    augment: bool = True,
    pixdim: Sequence[float] | None = None,
    hu_window: Sequence[float] = DEFAULT_HU_WINDOW,
    crop_foreground: bool = True,
    skeleton: bool = False,
) -> Compose:
    """Training chain: preprocessing, padding to at least ``patch_size``, ``num_samples`` patches per volume centred
    on vessel/background voxels in the ratio ``pos:neg``, random flips on all axes, in-plane 90-degree rotations and
    intensity scale (±10 %) and shift (±5 % of the window's range).

    The label (with the skeleton channels) is ``uint8`` at the end of the deterministic part, which MONAI caches,
    and ``float32`` (0.0/1.0) again before the first random transform.

    Args:
        patch_size: patch size in voxels (after resampling).
        num_samples: patches drawn from each volume per epoch.
        pos: relative frequency of patches centred on a vessel voxel.
        neg: relative frequency of patches centred on a background voxel.
        augment: add the random flips, rotations and intensity changes.
        pixdim, hu_window, crop_foreground: see :func:`get_preprocessing`.
        skeleton: append the tubed skeleton to the label's channels (:class:`~transforms.skeleton.TubedSkeletond`,
            computed on the whole volume before cropping), for losses with a Skeleton Recall term.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    if pos < 0 or neg < 0 or pos + neg == 0:
        raise ValueError(f"pos and neg must be non-negative and not both zero, got pos={pos}, neg={neg}.")
    keys = ["image", "label"]
    chain = get_preprocessing(keys, pixdim, hu_window, crop_foreground)
    if skeleton:
        chain.append(TubedSkeletond(keys="label"))
    chain += [
        # a volume smaller than the patch is padded (with 0, the window floor), so every patch has patch_size
        SpatialPadd(keys=keys, spatial_size=tuple(patch_size)),
        BinaryToUint8d(keys="label"),  # last cached step: 1 byte per label voxel in the cache
        # float32 again before any random transform: MONAI's positive/negative sampling takes `~label` as the
        # background, which is every voxel of a uint8 label (bitwise not)
        ToFloat32d(keys="label"),
        RandCropByPosNegLabeld(
            keys=keys, label_key="label", spatial_size=tuple(patch_size), pos=pos, neg=neg, num_samples=num_samples
        ),
    ]
    if augment:
        chain += [
            RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=2),
            RandRotate90d(keys=keys, prob=0.5, max_k=3, spatial_axes=(0, 1)),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.05 * window_range(hu_window)[1], prob=0.5),
        ]
    return Compose(chain)


def get_val_transforms(
    pixdim: Sequence[float] | None = None,
    hu_window: Sequence[float] = DEFAULT_HU_WINDOW,
    crop_foreground: bool = True,
) -> Compose:
    """Validation chain for image/label pairs: the deterministic preprocessing only (whole volumes), the label cached
    as ``uint8`` and returned as ``float32``."""
    chain = get_preprocessing(["image", "label"], pixdim, hu_window, crop_foreground)
    return Compose(chain + [BinaryToUint8d(keys="label"), ToFloat32d(keys="label")])


def get_inference_transforms(
    pixdim: Sequence[float] | None = None,
    hu_window: Sequence[float] = DEFAULT_HU_WINDOW,
    crop_foreground: bool = True,
) -> Compose:
    """Inference chain for images alone; every step is invertible (see :func:`get_post_transforms`)."""
    return Compose(get_preprocessing(["image"], pixdim, hu_window, crop_foreground))


def get_binary_postprocessing(threshold: float = 0.5) -> list:
    """Logits in ``"pred"`` to a binary mask: sigmoid, then ``> threshold``."""
    return [Activationsd(keys="pred", sigmoid=True), AsDiscreted(keys="pred", threshold=threshold)]


def get_post_transforms(
    inference_transforms: Compose,
    threshold: float = 0.5,
    output_dir: str | None = None,
    output_postfix: str = "pred",
    output_dtype: Any = np.uint8,
) -> Compose:
    """Turn network logits in ``"pred"`` into a binary mask on the original grid of ``"image"``.

    Sigmoid, threshold, then :class:`monai.transforms.Invertd` undoes cropping, resampling and re-orientation
    (nearest-neighbour), so the mask has the input's shape and affine. With ``output_dir`` the masks are also written
    as ``<input name>_<output_postfix>.nii.gz`` (``output_dtype``, uint8 by default).
    """
    chain = get_binary_postprocessing(threshold) + [
        Invertd(keys="pred", transform=inference_transforms, orig_keys="image", nearest_interp=True, to_tensor=True),
    ]
    if output_dir is not None:
        chain.append(
            SaveImaged(
                keys="pred",
                output_dir=output_dir,
                output_postfix=output_postfix,
                output_dtype=output_dtype,
                resample=False,
                separate_folder=False,
                print_log=False,
            )
        )
    return Compose(chain)
