"""Shared fixtures: a tiny synthetic dataset written as real NIfTI files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pipeline.phantoms import PhantomConfig, write_phantom_dataset

TINY_SHAPE = (48, 48, 32)


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """The CI machine has two cores; more threads only add contention."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Five 48x48x32 phantoms (3 training, 1 validation, 1 test) with a dataset.json. Do not modify: copy it."""
    out = tmp_path_factory.mktemp("tiny_dataset")
    write_phantom_dataset(out, n_cases=5, config=PhantomConfig(shape=TINY_SHAPE), seed=7)
    return out


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(tiny_dataset, dst)
    return dst
