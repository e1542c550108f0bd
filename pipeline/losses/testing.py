"""Inputs for checking the losses against MONAI (used by the tests and ``bench/bench_losses.py``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.phantoms import PhantomConfig, TreeConfig, make_phantom

__all__ = ["assert_same_value_and_grad", "distinct_logits", "vessel_labels", "vessel_logits", "value_and_grad"]


def distinct_logits(shape: Sequence[int], seed: int = 0, scale: float = 4.0) -> torch.Tensor:
    """Logits in ``[-scale, scale]`` that are all different, also after the sigmoid in float32 (for small shapes).

    Min/max gradients are only unique without ties; MONAI's pools and this package's morphology may route a tie
    to different voxels, so comparisons of gradients use inputs without ties.
    """
    n = int(np.prod(shape))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).float()
    return ((order / max(n - 1, 1)) * 2 - 1).mul(scale).view(*shape)


def vessel_labels(
    shape: Sequence[int], batch: int = 2, seed: int = 0, radius: tuple[float, float] = (1.5, 2.5)
) -> torch.Tensor:
    """``batch, 1, *shape`` float {0, 1} labels of one synthetic vessel tree each (the project's phantom generator)."""
    labels = []
    for b in range(batch):
        tree = TreeConfig(root_radius_vox=radius)
        cfg = PhantomConfig(shape=tuple(shape), spacing=(0.5, 0.5, 0.5), n_trees=1, tree=tree)
        labels.append(make_phantom(cfg, np.random.default_rng(seed + b)).label)
    return torch.as_tensor(np.stack(labels)[:, None]).float()


def vessel_logits(labels: torch.Tensor, seed: int = 0, margin: float = 2.0) -> torch.Tensor:
    """Logits of a plausible, imperfect prediction of ``labels``: ``+-margin`` plus distinct noise of 3/4 that size."""
    return (2 * labels - 1) * margin + distinct_logits(labels.shape, seed, scale=0.75 * margin)


def value_and_grad(
    loss: torch.nn.Module, logits: torch.Tensor, *targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``loss(logits, *targets)`` and its gradient with respect to ``logits`` (a fresh leaf copy)."""
    x = logits.detach().clone().requires_grad_(True)
    value = loss(x, *targets)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def assert_same_value_and_grad(
    loss: torch.nn.Module, reference: torch.nn.Module, logits: torch.Tensor, *targets: torch.Tensor, atol: float = 1e-6
) -> None:
    """Assert that ``loss`` and ``reference`` agree within ``atol`` in value and in gradient, and that the gradient
    is not zero (a test that cannot fail proves nothing)."""
    value, grad = value_and_grad(loss, logits, *targets)
    ref_value, ref_grad = value_and_grad(reference, logits, *targets)
    assert value.shape == ref_value.shape, (value.shape, ref_value.shape)
    assert torch.allclose(value, ref_value, atol=atol, rtol=0), (value, ref_value)
    assert torch.allclose(grad, ref_grad, atol=atol, rtol=0), float((grad - ref_grad).abs().max())
    assert float(grad.abs().max()) > 0
