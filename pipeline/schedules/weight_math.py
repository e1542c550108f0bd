"""Checks and arithmetic on named loss weights that every schedule shares: bounds, and keeping the sum fixed."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from pipeline.errors import SettingsError
from pipeline.losses.weight_checks import check_weight

__all__ = ["check_names", "per_term", "rebalance", "reachable", "clip"]


#: a raw weight this small next to the largest one is taken as 0 by :func:`rebalance`
_NEGLIGIBLE = 1e-200
#: relative rounding allowed when bounds must add up to a sum
_TOLERANCE = 1e-12


def reachable(total: float, lower: Sequence[float], upper: Sequence[float]) -> bool:
    """Whether weights within the bounds can sum to ``total`` (within rounding)."""
    slack = _TOLERANCE * max(abs(total), 1.0)
    return sum(lower) <= total + slack and sum(upper) >= total - slack


def check_names(given: Sequence[str] | Mapping[str, Any], terms: Sequence[str], what: str) -> list[str]:
    """The names of ``given`` after checking that each is one of ``terms``.

    Raises:
        ValueError: a name that is not a term, with the valid ones.
    """
    if isinstance(given, str):
        given = [given]
    if not isinstance(given, (Sequence, Mapping)):
        raise SettingsError(f"{what} must be a list of term names, got {given!r}.")
    names = list(given)
    unknown = [n for n in names if n not in terms]
    if unknown:
        raise SettingsError(f"{what}: {unknown} are not terms of this loss; its terms: {list(terms)}.")
    return names


def per_term(value: float | Mapping[str, float] | None, terms: Sequence[str], default: float, what: str) -> dict[str, float]:
    """A bound or factor given once for all terms, or per term (terms not named take ``default``)."""
    if value is None:
        return dict.fromkeys(terms, default)
    if isinstance(value, Mapping):
        check_names(value, terms, what)
        return {t: check_weight(f"{what}[{t!r}]", value[t]) if t in value else default for t in terms}
    number = check_weight(what, value)
    return dict.fromkeys(terms, number)


def clip(weights: Mapping[str, float], lower: Mapping[str, float], upper: Mapping[str, float]) -> dict[str, float]:
    """Each weight clipped into ``[lower, upper]``."""
    return {k: min(max(w, lower[k]), upper[k]) for k, w in weights.items()}


def _scaled_sum(lam: float, raw: Mapping[str, float], lower: Mapping[str, float], upper: Mapping[str, float]) -> float:
    return sum(min(max(lam * r, lower[k]), upper[k]) for k, r in raw.items())


def rebalance(
    raw: Mapping[str, float], total: float, lower: Mapping[str, float], upper: Mapping[str, float]
) -> dict[str, float]:
    """Weights proportional to ``raw`` that sum to ``total`` and lie within the bounds.

    Solves ``sum_k clip(lambda * raw_k, lower_k, upper_k) = total`` for the scale ``lambda`` exactly: the left side is
    piecewise linear and non-decreasing in ``lambda``, with kinks at ``lower_k / raw_k`` and ``upper_k / raw_k``. Terms
    whose raw weight is 0 stay at their lower bound, unless the others cannot reach ``total`` even at their upper
    bounds; the rest is then shared equally among them (within their bounds).

    Raises:
        ValueError: the bounds make ``total`` unreachable (``sum(lower) > total`` or ``sum(upper) < total``).
    """
    names = list(raw)
    if not reachable(total, [lower[k] for k in names], [upper[k] for k in names]):
        raise SettingsError(
            f"weight bounds {dict(lower)} .. {dict(upper)} cannot give weights that sum to {total:g} for terms {names}."
        )
    # only proportions matter: relative to the largest, and a term below 1e-200 of it counts as unweighted, so no
    # bound / raw below overflows whatever the magnitudes (a factor < 1 applied for hundreds of steps)
    top = max(raw.values(), default=0.0)
    positive = {k: r / top for k, r in raw.items() if r > 0 and r / top >= _NEGLIGIBLE} if top > 0 else {}
    zero = [k for k in names if k not in positive]
    raw = {k: positive.get(k, 0.0) for k in names}
    reach = sum(upper[k] for k in positive) + sum(lower[k] for k in zero)
    if zero and reach < total - _TOLERANCE * max(total, 1.0):
        # even at their upper bounds the weighted terms leave some of the total: the unweighted ones share it
        fixed = {k: upper[k] for k in positive}
        rest = rebalance(dict.fromkeys(zero, 1.0), total - sum(fixed.values()), lower, upper)
        return {k: fixed.get(k, rest.get(k, 0.0)) for k in names}
    kinks = sorted({0.0} | {b / r for k, r in positive.items() for b in (lower[k], upper[k]) if math.isfinite(b / r)})
    below, at_below = 0.0, _scaled_sum(0.0, raw, lower, upper)
    for kink in kinks:
        at_kink = _scaled_sum(kink, raw, lower, upper)
        if at_kink >= total:
            lam = kink if at_kink == at_below else below + (total - at_below) * (kink - below) / (at_kink - at_below)
            break
        below, at_below = kink, at_kink
    else:
        # past the last kink only the terms without an upper bound still grow, linearly (none: every term is at its
        # cap, which is the total within rounding)
        slope = sum(r for k, r in positive.items() if math.isinf(upper[k]))
        lam = below + (total - at_below) / slope if slope > 0 else below
    return {k: min(max(lam * raw[k], lower[k]), upper[k]) for k in names}
