"""Build any loss of the package from the seed's config dict or a preset name (also as a bundle ``_target_``)."""

from __future__ import annotations

from typing import Any, Mapping

from pipeline.errors import SettingsError
from pipeline.losses.combined import CombinedLoss
from pipeline.losses.loss_presets import LOSS_PRESETS, get_preset_loss_config
from pipeline.losses.term_names import LOSS_TERMS

__all__ = ["LossManager", "create_loss_function", "create_loss_scheduler", "LOSS_TYPES"]

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
    reports its components. A ``scheduler`` entry (``{"type": ..., "params": {...}}``) is checked against the built
    loss here, so a bad schedule fails before training, and built by :func:`create_loss_scheduler`.

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
        options = {k: v for k, v in config.items() if k not in ("type", *_PASSED_ON_KEYS)}
        loss = CombinedLoss({loss_type: options}, {loss_type: 1.0})
    if config.get("scheduler") is not None:
        from pipeline.schedules.schedule_names import create_schedule

        schedule, params = _schedule_type_and_params(config["scheduler"])
        create_schedule(schedule, loss.weights, params)
    return loss


def _schedule_type_and_params(config: Mapping[str, Any] | str) -> tuple[str, Mapping[str, Any] | None]:
    if isinstance(config, str):
        return config, None
    if not isinstance(config, Mapping):
        raise SettingsError(f"a loss scheduler config must be a dict like {{'type': 'adaptive', 'params': {{}}}}, got {config!r}.")
    unknown = sorted(set(config) - {"type", "params"})
    if unknown or "type" not in config:
        raise SettingsError(
            f"a loss scheduler config takes 'type' (required) and 'params'; got keys {sorted(config)}."
        )
    return config["type"], config.get("params")


def create_loss_scheduler(loss_function: CombinedLoss, config: Mapping[str, Any] | str) -> Any:
    """The seed's loss scheduler: ``{"type": "adaptive" | "cosine" | "step" | "performance", "params": {...}}`` (or just
    the type name) applied to ``loss_function``; returns a :class:`~pipeline.schedules.scheduler.LossScheduler` whose
    ``step(epoch, val_metrics)`` sets the next epoch's weights.

    Raises:
        ValueError: unknown type or parameter (the valid ones are listed), or a loss that is not a CombinedLoss.
    """
    from pipeline.schedules.scheduler import LossScheduler

    schedule, params = _schedule_type_and_params(config)
    return LossScheduler(loss_function, schedule, params)


class LossManager:
    """The seed's entry point: ``LossManager.create_loss_function(config)``,
    ``LossManager.create_loss_scheduler(loss, config)`` and ``get_preset_loss_config(name)``."""

    create_loss_function = staticmethod(create_loss_function)
    create_loss_scheduler = staticmethod(create_loss_scheduler)
    get_preset_loss_config = staticmethod(get_preset_loss_config)
