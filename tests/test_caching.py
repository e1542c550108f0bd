"""cache=auto|ram|disk|none: where the deterministic preprocessing is kept, on real NIfTI files."""

from __future__ import annotations

import logging
import os

import pytest
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.transforms import Compose

from pipeline.data import build_dataset, load_datalist, plan_cache
from pipeline.data.caching import check_cache_settings, deterministic_transforms, preprocessing_hash
from pipeline.errors import SettingsError
from transforms import BinaryToUint8d, get_train_transforms, get_val_transforms


def _nbytes(sample: dict) -> int:
    return sum(v.nbytes for v in sample.values() if isinstance(v, torch.Tensor))


def test_auto_keeps_what_fits_in_ram_and_puts_the_rest_on_disk(tiny_dataset, tmp_path, caplog):
    items = load_datalist(tiny_dataset, "training")
    chain = get_train_transforms((32, 32, 32), num_samples=2)
    # the estimate is measured: one item preprocessed, scaled by the others' voxel counts (foreground crops differ)
    plan = plan_cache(items, chain, memory_budget_gb=1.0)
    with caplog.at_level(logging.INFO, logger="pipeline.data.caching"):
        in_ram = build_dataset(items, chain, cache="auto", memory_budget_gb=1.0, cache_dir=tmp_path)
        on_disk = build_dataset(items, chain, cache="auto", memory_budget_gb=plan.estimated_bytes / 2e9, cache_dir=tmp_path)
    assert type(in_ram) is CacheDataset and type(on_disk) is PersistentDataset
    # what the RAM cache holds: float32 image and uint8 label, 5 bytes per voxel; the estimate measured the same
    actual = sum(_nbytes(item) for item in in_ram._cache)
    for item in in_ram._cache:
        assert item["label"].dtype == torch.uint8 and _nbytes(item) == 5 * item["label"].numel()
    assert (plan.mode, plan.budget_bytes) == ("ram", 10**9) and abs(plan.estimated_bytes - actual) < 0.25 * actual
    assert "within the memory budget of 1.00 GB (given): kept in RAM" in caplog.text
    assert "above the memory budget" in caplog.text and "cached on disk in" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == [preprocessing_hash(chain)[:16]]  # RAM touched no disk
    assert isinstance(build_dataset(items, chain, cache="none"), Dataset)


def test_the_disk_cache_is_shared_by_runs_and_invalidated_by_changes(tiny_dataset, tmp_path, caplog):
    items = load_datalist(tiny_dataset, "validation") + load_datalist(tiny_dataset, "test")
    first = build_dataset(items, get_val_transforms(), cache="disk", cache_dir=tmp_path)
    values = [first[i] for i in range(len(items))]
    folder = tmp_path / preprocessing_hash(get_val_transforms())[:16]
    entries = sorted(p.name for p in folder.glob("*.pt"))
    assert len(entries) == 2 and (folder / "preprocessing.json").is_file()
    # the entries hold the label as uint8; what the dataset returns is float32, as the uncached chain's
    assert torch.load(folder / entries[0], weights_only=True)["label"].dtype == torch.uint8
    assert all(v["label"].dtype == torch.float32 for v in values)
    torch.testing.assert_close(values[0]["label"], get_val_transforms()(dict(items[0]))["label"], rtol=0, atol=0)
    # another run with the same preprocessing (new objects) reads the same files and gets the same tensors
    again = build_dataset(items, get_val_transforms(), cache="disk", cache_dir=tmp_path)
    for i, expected in enumerate(values):
        for key in ("image", "label"):
            torch.testing.assert_close(again[i][key], expected[key], rtol=0, atol=0)
    assert sorted(p.name for p in folder.glob("*.pt")) == entries
    # a different preprocessing parameter: another folder; a replaced file: another entry
    build_dataset(items, get_val_transforms(hu_window=(-100.0, 600.0)), cache="disk", cache_dir=tmp_path)[0]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    os.utime(items[0]["image"], ns=(1, 1))
    again[0]
    assert len(list(folder.glob("*.pt"))) == 3


def test_random_transforms_are_not_cached_and_do_not_change_the_hash():
    chain = get_train_transforms((32, 32, 32), num_samples=2)
    assert not any("Rand" in type(t).__name__ for t in deterministic_transforms(chain))
    assert preprocessing_hash(chain) == preprocessing_hash(get_train_transforms((32, 32, 32), num_samples=4, pos=2.0))
    assert preprocessing_hash(chain) != preprocessing_hash(get_train_transforms((32, 32, 32), pixdim=(0.5, 0.5, 0.5)))
    # the uint8 label cast is part of the hash: a folder of float32 entries (written before it) is never read
    assert isinstance(deterministic_transforms(chain)[-1], BinaryToUint8d)
    float_labels = Compose([t for t in chain.transforms if not isinstance(t, BinaryToUint8d)])
    assert preprocessing_hash(chain) != preprocessing_hash(float_labels)


def test_bad_cache_settings_raise_one_clear_error_and_write_nothing(tiny_dataset, tmp_path):
    items = load_datalist(tiny_dataset, "validation")
    with pytest.raises(SettingsError, match="cache must be one of auto, ram, disk, none, got 'memory'"):
        build_dataset(items, get_val_transforms(), cache="memory")
    with pytest.raises(SettingsError, match="memory_budget_gb must be > 0"):
        build_dataset(items, get_val_transforms(), memory_budget_gb=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match=r"cache_dir '.*a_file/cache' cannot be written .*valid: auto, ram, disk, none"):
        build_dataset(items, get_val_transforms(), cache="disk", cache_dir=blocker / "cache")
    # the set-up check of the bundle: the same errors before anything is built; a folder given to auto is checked
    with pytest.raises(SettingsError, match=r"cache_dir '.*a_file/cache' cannot be written \('.*a_file' is not a folder\)"):
        check_cache_settings("auto", blocker / "cache")
    with pytest.raises(SettingsError, match="cache must be one of auto, ram, disk, none, got 'RAM'"):
        check_cache_settings("RAM")
    with pytest.raises(SettingsError, match="memory_budget_gb must be > 0, got -1"):
        check_cache_settings("auto", memory_budget_gb=-1)
    check_cache_settings("disk", tmp_path / "new" / "cache")  # creatable: fine, and nothing is created yet
    check_cache_settings("ram", blocker / "cache")  # RAM never uses the folder
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]
