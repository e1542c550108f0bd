"""Network factories (the small MONAI 3-D UNet used by default)."""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.nets import UNet

from pipeline.errors import SettingsError

__all__ = ["create_unet"]


def create_unet(
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] = (2, 2, 2),
    num_res_units: int = 1,
    dropout: float = 0.0,
    norm: str = "INSTANCE",
    in_channels: int = 1,
    out_channels: int = 1,
) -> torch.nn.Module:
    """A MONAI 3-D :class:`~monai.networks.nets.UNet` producing one logit channel for binary vessel segmentation.

    Args:
        channels: feature channels per level (one more level than ``strides``).
        strides: down-sampling factor between levels; the patch size must be divisible by their product.
        num_res_units: residual units per block.
        dropout: dropout probability inside the blocks.
        norm: normalisation layer name.
        in_channels: image channels.
        out_channels: output channels (logits).
    """
    if len(channels) != len(strides) + 1:
        raise SettingsError(f"channels needs one entry more than strides, got channels={channels}, strides={strides}.")
    return UNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=tuple(strides),
        num_res_units=num_res_units,
        dropout=dropout,
        norm=norm,
    )
