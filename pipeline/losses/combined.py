"""A weighted sum of named loss terms that shares one sigmoid and reports every term."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import torch
from torch.nn.modules.loss import _Loss

from pipeline.errors import InputError, SettingsError
from pipeline.losses.logits_loss import LogitsLoss, as_tensor, check_binary, check_same_shape
from pipeline.losses.term_names import LOSS_TERMS, build_term, check_term_name
from pipeline.losses.weight_checks import check_weights

__all__ = ["CombinedLoss", "TOTAL_KEY", "component_key"]

#: key of the weighted sum in :meth:`CombinedLoss.get_loss_components` and :attr:`CombinedLoss.last_components`
TOTAL_KEY = "total_loss"
_WEIGHT_SUFFIX = "_weight"


def component_key(name: str) -> str:
    """The key under which a term is reported: ``"dice"`` -> ``"dice_loss"``."""
    return f"{name}_loss"


class CombinedLoss(_Loss):
    """``sum_k w_k L_k(sigmoid(logits), target)`` over named terms, each a :class:`~pipeline.losses.logits_loss.LogitsLoss`.

    One sigmoid and one round of input checks serve all terms. Terms whose weight is 0 are skipped in ``forward``
    (a scheduler can fade a costly term such as ``cldice`` in without paying for it before).

    Weights are plain floats that a schedule may change at any time, by name, through any of:
    ``loss.set_weights(dice=0.5, cldice=0.2)`` (checked as a whole), ``loss.set_weight("dice", 0.5)`` or the
    attribute ``loss.dice_weight = 0.5``; ``loss.weights`` is a read-only live view. A weight must be finite and
    >= 0, and not all of them may be 0. The weights are the module's extra state, so ``state_dict()`` holds
    ``{"_extra_state": {"weights": {...}}}`` (plain numbers, loads with ``torch.load(weights_only=True)``).

    Skeleton channels: when a term compares with the tubed skeleton (``skeleton_recall``), the skeleton either
    comes as ``forward(input, target, skeleton=...)`` or, for engines that call ``loss(y_pred, y)`` (MONAI's
    ``SupervisedTrainer``), as extra channels of the label: ``target`` then has ``2 C`` channels for ``C``
    prediction channels, the label first and the skeleton after, which is what
    :class:`transforms.skeleton.TubedSkeletond` produces by default.

    Args:
        terms: name -> term module, or name -> keyword arguments for the registered term of that name (see
            :data:`~pipeline.losses.term_names.LOSS_TERMS`). Names are ``dice``, ``bce``, ``focal``, ``tversky``,
            ``cldice``, ``skeleton_recall``.
        weights: name -> weight for the same names; default 1 for each term.

    Attributes:
        last_components: the terms and total of the last ``forward`` as floats (``dice_loss``, ..., ``total_loss``);
            empty before the first call. Built from tensors the forward already computed.
    """

    def __init__(
        self, terms: Mapping[str, LogitsLoss | Mapping[str, Any]], weights: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        if not terms:
            raise SettingsError("CombinedLoss needs at least one term, got none.")
        modules = {}
        for name, term in terms.items():
            check_term_name(name)
            if isinstance(term, Mapping):
                term = build_term(name, term)
            if not isinstance(term, LogitsLoss):
                raise SettingsError(
                    f"term {name!r} must be a pipeline.losses LogitsLoss or a dict of its options, got {type(term)}."
                )
            if term.reduction == "none":
                raise SettingsError(f"term {name!r} has reduction='none'; CombinedLoss needs 'mean' or 'sum'.")
            modules[name] = term
        self.terms = torch.nn.ModuleDict(modules)
        self._weights: dict[str, float] = {name: 1.0 for name in modules}
        self.set_weights(weights or {})
        self._last: dict[str, torch.Tensor] = {}

    @property
    def weights(self) -> Mapping[str, float]:
        """Read-only live view of the weights (name -> float)."""
        return MappingProxyType(self._weights)

    @property
    def has_skeleton_term(self) -> bool:
        """Whether a term compares with the tubed skeleton (then ``target`` may carry skeleton channels)."""
        return any(t.target_is_skeleton for t in self.terms.values())

    def set_weights(self, weights: Mapping[str, float] | None = None, **named: float) -> None:
        """Change several weights at once; the new set is checked as a whole before anything changes.

        Args:
            weights: name -> new weight.
            named: the same as keyword arguments.

        Raises:
            ValueError: unknown name, a weight that is negative, infinite or NaN, or all weights 0.
        """
        new = dict(self._weights)
        for name, value in {**dict(weights or {}), **named}.items():
            if name not in new:
                raise SettingsError(f"no loss term named {name!r} in this CombinedLoss; its terms: {list(new)}.")
            new[name] = value
        self._weights.update(check_weights(new, "loss weight"))

    def set_weight(self, name: str, value: float) -> None:
        """Change one weight (see :meth:`set_weights`)."""
        self.set_weights({name: value})

    def __getattr__(self, name: str) -> Any:
        weights = self.__dict__.get("_weights")
        if weights is not None and name.endswith(_WEIGHT_SUFFIX) and name[: -len(_WEIGHT_SUFFIX)] in weights:
            return weights[name[: -len(_WEIGHT_SUFFIX)]]
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        weights = self.__dict__.get("_weights")
        term = name[: -len(_WEIGHT_SUFFIX)] if name.endswith(_WEIGHT_SUFFIX) else None
        if weights is not None and term is not None and (term in weights or term in LOSS_TERMS):
            # a known term's weight: set it, or refuse it when this loss lacks the term (a scheduler's typo must
            # not silently create an attribute that changes nothing)
            self.set_weights({term: value})
        else:
            super().__setattr__(name, value)

    def get_extra_state(self) -> dict[str, dict[str, float]]:
        return {"weights": dict(self._weights)}

    def set_extra_state(self, state: Mapping[str, Any]) -> None:
        saved = dict(state.get("weights", {}))
        if set(saved) != set(self._weights):
            raise SettingsError(
                f"saved loss weights are for terms {sorted(saved)}, this loss has {sorted(self._weights)}."
            )
        self.set_weights(saved)

    def split_target(
        self, input: torch.Tensor, target: torch.Tensor, skeleton: torch.Tensor | None = None, every_term: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Separate the label from the skeleton channels (see the class docstring) and check both for the terms that
        will be computed (those weighted > 0, or all with ``every_term``).

        Returns:
            ``(label, skeleton)``; ``skeleton`` is ``None`` when this loss has no skeleton term or none was given.

        Raises:
            ValueError: shapes that fit neither convention, a missing skeleton for a skeleton term with a non-zero
                weight, or non-binary values where a term needs {0, 1}.
        """
        n_pred = input.shape[1] if input.ndim > 1 else 0
        if not self.has_skeleton_term:
            skeleton = None
        elif skeleton is None and target.ndim == input.ndim and target.shape[1] == 2 * n_pred:
            target, skeleton = target[:, :n_pred], target[:, n_pred:]
        check_same_shape(input, target)
        weighted = [t for n, t in self.terms.items() if self._weights[n] > 0]
        if skeleton is None and any(t.target_is_skeleton for t in weighted):
            raise InputError(
                f"the skeleton_recall term needs the tubed skeleton: pass skeleton=..., or give the target "
                f"{2 * n_pred} channels (label then skeleton, see transforms.skeleton.TubedSkeletond); got "
                f"prediction {tuple(input.shape)} and target {tuple(target.shape)}."
            )
        computed = list(self.terms.values()) if every_term else weighted
        if any(t.requires_binary_target and not t.target_is_skeleton for t in computed):
            check_binary(target)
        if skeleton is not None and any(t.target_is_skeleton for t in computed):
            skeleton = as_tensor(skeleton)
            check_same_shape(input, skeleton, "skeleton")
            check_binary(skeleton, "skeleton")
            if bool((skeleton > target).any()):
                raise InputError(
                    "the skeleton channels of the target are not inside its label channels: a one-hot "
                    f"[background, vessel] label (target {tuple(target.shape[:2])} + skeleton channels for a prediction "
                    f"with {n_pred} channel(s))? Give the label with as many channels as the prediction, then "
                    "TubedSkeletond's skeleton channels."
                )
        return target, skeleton

    def _terms(
        self, input: torch.Tensor, target: torch.Tensor, skeleton: torch.Tensor | None, every_term: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        input, target = as_tensor(input), as_tensor(target)
        target, skeleton = self.split_target(input, target, skeleton, every_term)
        probs = torch.sigmoid(input)
        total = input.new_zeros(())
        values: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            weight = self._weights[name]
            if (weight == 0 and not every_term) or (term.target_is_skeleton and skeleton is None):
                continue
            value = term.compute(input, probs, skeleton if term.target_is_skeleton else target)
            values[name] = value
            if weight > 0:
                total = total + weight * value
        return total, values

    def forward(self, input: torch.Tensor, target: torch.Tensor, skeleton: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: logits, ``B, C, *spatial``.
            target: binary label of the same shape, or label and skeleton channels (see the class docstring).
            skeleton: the tubed skeleton, when not packed into ``target``.

        Returns:
            the weighted sum (a scalar); the terms are kept, detached, for :attr:`last_components`.
        """
        total, values = self._terms(input, target, skeleton, every_term=False)
        last = {component_key(n): v.detach() for n, v in values.items()}
        last[TOTAL_KEY] = total.detach()
        self._last = last  # one assignment: a reader never sees one call's terms with another's total
        return total

    @property
    def last_component_tensors(self) -> dict[str, torch.Tensor]:
        """The terms and total of the last ``forward`` as detached 0-d tensors on the loss's device (reading them
        does not wait for the device, unlike :attr:`last_components`)."""
        return dict(self._last)

    @property
    def last_components(self) -> dict[str, float]:
        """The terms and total of the last ``forward`` as floats (empty before the first call)."""
        return {key: float(value) for key, value in self._last.items()}

    def get_loss_components(
        self, pred: torch.Tensor, target: torch.Tensor, skeleton: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Every term (also those weighted 0) and the weighted total, as floats, without gradient:
        ``{"dice_loss": ..., "bce_loss": ..., "total_loss": ...}``. A skeleton term needs the skeleton when its weight is
        > 0 (as in ``forward``); weighted 0 and without a skeleton, it is left out.

        Args:
            pred: logits.
            target: label (optionally with skeleton channels).
            skeleton: the tubed skeleton, when not packed into ``target``.
        """
        with torch.no_grad():
            total, values = self._terms(pred, target, skeleton, every_term=True)
        components = {component_key(n): float(v) for n, v in values.items()}
        components[TOTAL_KEY] = float(total)
        return components

    def extra_repr(self) -> str:
        return "weights=" + ", ".join(f"{n}={w:g}" for n, w in self._weights.items())
