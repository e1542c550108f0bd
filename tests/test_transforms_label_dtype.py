"""Labels cached as uint8, handed to the loss as float32: the same values, patches and losses as float32 labels."""

from __future__ import annotations

import pytest
import torch
from monai.data import CacheDataset, DataLoader
from monai.transforms import Compose
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from monai.utils import set_determinism

from pipeline.data import load_datalist
from pipeline.data.caching import deterministic_transforms
from pipeline.engines import create_trainer
from pipeline.errors import InputError
from pipeline.losses import create_loss_function
from pipeline.networks import create_unet
from transforms import BinaryToUint8d, ToFloat32d, get_train_transforms, get_val_transforms

PATCH = (16, 16, 16)


def _float_labels(chain: Compose) -> Compose:
    """The chain without the two casts: labels float32 throughout, as before the uint8 cache (give it a chain of its
    own: the two share their transforms and hence their random states)."""
    return Compose([t for t in chain.transforms if not isinstance(t, (BinaryToUint8d, ToFloat32d))])


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(torch.as_tensor(a), torch.as_tensor(b))


@pytest.mark.parametrize("skeleton", [False, True])
def test_cached_label_is_uint8_and_the_patches_are_those_of_float_labels(tiny_dataset, skeleton):
    item = load_datalist(tiny_dataset, "training")[0]
    chain = get_train_transforms(PATCH, num_samples=4, skeleton=skeleton)
    reference = _float_labels(get_train_transforms(PATCH, num_samples=4, skeleton=skeleton))
    cached = Compose(deterministic_transforms(chain))(dict(item))
    cached_before = Compose(deterministic_transforms(reference))(dict(item))
    assert cached["label"].dtype == torch.uint8 and cached["label"].shape[0] == (2 if skeleton else 1)
    assert _equal(cached["label"].float(), cached_before["label"]) and _equal(cached["image"], cached_before["image"])
    assert set(cached["label"].unique().tolist()) == {0, 1}
    chain.set_random_state(seed=3)
    reference.set_random_state(seed=3)
    for patch, before in zip(chain(dict(item)), reference(dict(item)), strict=True):
        assert patch["label"].dtype == torch.float32
        assert _equal(patch["label"], before["label"]) and _equal(patch["image"], before["image"])


def test_validation_chain_caches_uint8_and_returns_float32(tiny_dataset):
    item = load_datalist(tiny_dataset, "validation")[0]
    chain = get_val_transforms()
    assert deterministic_transforms(chain)[-1] is chain.transforms[-2]  # the float32 cast runs after the cache
    assert Compose(deterministic_transforms(chain))(dict(item))["label"].dtype == torch.uint8
    out, before = chain(dict(item)), _float_labels(get_val_transforms())(dict(item))
    assert _equal(out["label"], before["label"]) and out["label"].affine.equal(before["label"].affine)


def test_a_label_that_is_not_binary_is_an_error_not_truncated():
    label = torch.tensor([[[[0.0, 1.0], [0.5, 2.0]]]])
    message = r"'label' must hold only 0 and 1 to be cached as uint8, but has values such as \[0.5, 2.0\]"
    with pytest.raises(InputError, match=message):
        BinaryToUint8d()({"label": label})
    assert BinaryToUint8d()({"label": label.numpy().clip(0, 1).round()})["label"].dtype.name == "uint8"


def _losses(items: list, chain: Compose) -> list[tuple[float, torch.dtype, float]]:
    """Loss, label dtype and label sum of each iteration of one seeded epoch of the project's trainer, with the
    Skeleton Recall loss (label and skeleton channels)."""
    set_determinism(seed=0)
    dataset = CacheDataset(items, chain, progress=False)
    loader = DataLoader(dataset, batch_size=1, shuffle=True, generator=torch.Generator().manual_seed(0))
    network = create_unet(channels=(4, 8), strides=(2,), num_res_units=0)
    trainer = create_trainer(
        network, loader, create_loss_function("vessel_skeleton_recall"), torch.optim.Adam(network.parameters(), 1e-2),
        device="cpu", max_epochs=1, progress_bar=False,
    )
    seen = []

    @trainer.on(IterationEvents.LOSS_COMPLETED)  # MONAI fires it with the label the loss was given
    def _record(engine) -> None:
        label = engine.state.output[Keys.LABEL]
        seen.append((engine.state.output[Keys.LOSS].item(), label.dtype, label.sum().item()))

    trainer.run()
    set_determinism(seed=None)
    return seen


def test_training_steps_give_the_losses_of_float_labels(tiny_dataset):
    items = load_datalist(tiny_dataset, "training")[:2]
    uint8_cached = _losses(items, get_train_transforms(PATCH, num_samples=2, skeleton=True))
    float_cached = _losses(items, _float_labels(get_train_transforms(PATCH, num_samples=2, skeleton=True)))
    assert len(uint8_cached) == 2 and all(dtype == torch.float32 for _, dtype, _ in uint8_cached)
    assert sum(ones for _, _, ones in uint8_cached) > 0
    assert uint8_cached == float_cached
