"""The phantom kinds and how command-line settings become each kind's configuration."""

from __future__ import annotations

from typing import Sequence

from pipeline.errors import SettingsError
from pipeline.phantoms.ccta import CCTAConfig
from pipeline.phantoms.volume import PhantomConfig

__all__ = ["PHANTOM_KINDS", "phantom_config"]

#: kind -> its configuration class
PHANTOM_KINDS = {"tubes": PhantomConfig, "ccta": CCTAConfig}


def phantom_config(
    kind: str,
    shape: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    trees: int = 2,
    crop: Sequence[int] | None = None,
) -> PhantomConfig | CCTAConfig:
    """The configuration of ``kind`` for the given settings (``None``: the kind's default).

    ``tubes`` defaults to 96x96x64 voxels of 0.4x0.4x0.6 mm and uses ``trees``; ``ccta`` draws a 512x512x(224-288)
    grid and its spacing per case unless ``shape``/``spacing`` fix them, and renders only a ``crop`` around the heart
    when one is given.
    """
    if kind not in PHANTOM_KINDS:
        raise SettingsError(f"kind must be one of {sorted(PHANTOM_KINDS)}, got {kind!r}.")
    if kind == "tubes":
        if crop is not None:
            raise SettingsError("crop applies to kind 'ccta' only; for kind 'tubes' give the shape.")
        return PhantomConfig(
            shape=tuple(shape) if shape else (96, 96, 64), spacing=tuple(spacing) if spacing else (0.4, 0.4, 0.6),
            n_trees=trees,
        )
    return CCTAConfig(
        shape=tuple(shape) if shape else None, spacing=tuple(spacing) if spacing else None,
        crop=tuple(crop) if crop else None,
    )
