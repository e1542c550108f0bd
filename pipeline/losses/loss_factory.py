"""Build any loss of the package from the original API's config dict or a preset name (also as a bundle
``_target_``)."""

from __future__ import annotations

from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.combined import CombinedLoss
from pipeline.losses.loss_presets import LOSS_PRESETS, get_preset_loss_config
from pipeline.losses.term_names import LOSS_TERMS

__all__ = ["create_loss_function", "LOSS_TYPES", "PASSED_ON_KEYS"]

#: values of a config's ``type``: ``combined`` or a single term
LOSS_TYPES = ("combined", *LOSS_TERMS)
#: keys of a config that belong to other parts of the pipeline (the loss-weight schedule, which
#: :func:`pipeline.schedules.loss_manager.create_loss_scheduler` builds and checks)
PASSED_ON_KEYS = ("scheduler",)


def _combined_from_config(config: Mapping[str, Any]) -> CombinedLoss:
    term_keys = {f"{n}_weight" for n in LOSS_TERMS} | {f"{n}_config" for n in LOSS_TERMS}
    unknown = sorted(set(config) - term_keys - {"type", *PASSED_ON_KEYS})
    if unknown:
        valid = ["type", *PASSED_ON_KEYS] + [f"{n}_weight / {n}_config" for n in LOSS_TERMS]
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
    """A loss from the original API's config format or a preset name.

    ``{"type": "combined", "dice_weight": 0.7, "bce_weight": 0.3, "dice_config": {...}, "bce_config": {...}}``
    gives a :class:`~pipeline.losses.combined.CombinedLoss` with one term per ``<term>_weight`` (terms: ``dice``,
    ``bce``, ``focal``, ``tversky``, ``cldice``, ``skeleton_recall``) configured by ``<term>_config``.
    ``{"type": "<term>", **options}`` gives a CombinedLoss of that one term with weight 1, so every loss made here
    reports its components. A ``scheduler`` entry (``{"type": ..., "params": {...}}``) is left to the loss-weight
    schedules: :meth:`pipeline.schedules.LossManager.create_loss_function` checks it against the built loss, so a bad
    schedule fails before training, and :func:`pipeline.schedules.create_loss_scheduler` builds it.

    Args:
        config: the config dict, or the name of a preset (:func:`~pipeline.losses.loss_presets.get_preset_loss_config`).

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
    if loss_type == "combined":
        loss = _combined_from_config(config)
    else:
        options = {k: v for k, v in config.items() if k not in ("type", *PASSED_ON_KEYS)}
        loss = CombinedLoss({loss_type: options}, {loss_type: 1.0})
    return loss
