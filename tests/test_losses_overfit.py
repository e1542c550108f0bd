"""Every preset trains a tiny network to segment a synthetic vessel patch (the losses pull the right way)."""

from __future__ import annotations

import pytest
import torch

from pipeline.losses import create_loss_function, list_loss_presets
from pipeline.losses.testing import vessel_labels
from transforms.skeleton import TubedSkeleton

STEPS = 40


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """16^3 tensors gain nothing from a second thread, and on a shared 2-core machine its barriers can cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dice(logits: torch.Tensor, labels: torch.Tensor) -> float:
    pred = (logits > 0).float()
    return float(2 * (pred * labels).sum() / (pred.sum() + labels.sum()))


@pytest.fixture(scope="module")
def patch():
    labels = vessel_labels((16, 16, 16), batch=2, seed=3)
    noise = torch.randn(labels.shape, generator=torch.Generator().manual_seed(3))
    image = 0.8 * labels + 0.25 * noise
    skeleton = torch.stack([TubedSkeleton(1)(label) for label in labels])
    return image, labels, torch.cat([labels, skeleton], 1)


@pytest.mark.parametrize("preset", list_loss_presets())
def test_preset_fits_a_vessel_patch(preset, patch):
    image, labels, target = patch
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv3d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv3d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv3d(8, 1, 1),
    )
    optimizer = torch.optim.Adam(network.parameters(), lr=0.05)
    loss_function = create_loss_function(preset)
    target = target if loss_function.has_skeleton_term else labels
    with torch.no_grad():
        first_dice = _dice(network(image), labels)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = loss_function(network(image), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        final_dice = _dice(network(image), labels)
    assert final_dice > 0.85, (preset, first_dice, final_dice)
    assert final_dice > first_dice + 0.3
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])
