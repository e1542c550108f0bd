"""Build any loss of the package from the seed's config dict or a preset name (also as a bundle ``_target_``)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.combined import CombinedLoss
from pipeline.losses.presets import LOSS_PRESETS, get_preset_loss_config
from pipeline.losses.registry import LOSS_TERMS

__all__ = ["LossManager", "create_loss_function", "LOSS_TYPES"]

logger = logging.getLogger(__name__)

#: values of a config's ``type``: ``combined`` or a single term
LOSS_TYPES = ("combined", *LOSS_TERMS)
#: keys of a config that belong to other parts of the pipeline (the loss-weight schedule)
_PASSED_ON_KEYS = ("scheduler",)


def _combined_from_config(config: Mapping[str, Any]) -> CombinedLoss:
    term_keys = {f"{n}_weight" for n in LOSS_TERMS} | {f"{n}_config" for n in LOSS_TERMS}
    unknown = sorted(set(config) - term_keys - {"type", *_PASSED_ON_KEYS})
    if unknown:
        valid = ["type", *_PASSED_ON_KEYS] + [f"{n}_weight / {n}_config" for n in LOSS_TERMS]
        raise SettingsError(f"unknown key(s) {unknown} in a 'combined' loss config; valid keys: {valid}.")
    terms: dict[str, Mapping[str, Any]] = {}
    weights: dict[str, float] = {}
    for name in LOSS_TERMS:
        if f"{name}_weight" in config:
            weights[name] = config[f"{name}_weight"]
            terms[name] = config.get(f"{name}_config") or {}
        elif f"{name}_config" in config:
            raise SettingsError(f"{name}_config is given without {name}_weight; add '{name}_weight': <number>.")
    if not terms:
        raise SettingsError(
            f"a 'combined' loss config needs at least one <term>_weight; terms: {list(LOSS_TERMS)}, got {dict(config)}."
        )
    for name, options in terms.items():
        if not isinstance(options, Mapping):
            raise SettingsError(f"{name}_config must be a dict of options, got {options!r}.")
    return CombinedLoss(terms, weights)


def create_loss_function(config: Mapping[str, Any] | str) -> CombinedLoss:
    """A loss from the seed's config format or a preset name.

    ``{"type": "combined", "dice_weight": 0.7, "bce_weight": 0.3, "dice_config": {...}, "bce_config": {...}}``
    gives a :class:`~pipeline.losses.combined.CombinedLoss` with one term per ``<term>_weight`` (terms: ``dice``,
    ``bce``, ``focal``, ``tversky``, ``cldice``, ``skeleton_recall``) configured by ``<term>_config``.
    ``{"type": "<term>", **options}`` gives a CombinedLoss of that one term with weight 1, so every loss made here
    reports its components. A ``scheduler`` entry is accepted and left to the loss-weight schedule.

    Args:
        config: the config dict, or the name of a preset (:func:`~pipeline.losses.presets.get_preset_loss_config`).

    Raises:
        ValueError: unknown type, preset, key, term option, or invalid weights.
    """
    if isinstance(config, str):
        config = get_preset_loss_config(config)
    if not isinstance(config, Mapping):
        raise SettingsError(f"a loss config must be a dict or a preset name {list(LOSS_PRESETS)}, got {config!r}.")
    loss_type = config.get("type", "combined")
    if loss_type not in LOSS_TYPES:
        raise SettingsError(f"unknown loss type {loss_type!r}; valid types: {list(LOSS_TYPES)}.")
    if "scheduler" in config:
        logger.debug("loss config has a 'scheduler' entry; it is built by the loss-weight schedule, not here.")
    if loss_type == "combined":
        return _combined_from_config(config)
    options = {k: v for k, v in config.items() if k not in ("type", *_PASSED_ON_KEYS)}
    return CombinedLoss({loss_type: options}, {loss_type: 1.0})


class LossManager:
    """The seed's entry point: ``LossManager.create_loss_function(config)`` and ``get_preset_loss_config(name)``."""

    create_loss_function = staticmethod(create_loss_function)
    get_preset_loss_config = staticmethod(get_preset_loss_config)
