"""A real (tiny) training run through MONAI's engines, its checkpoints, and scoring on the original grid."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from pipeline.checkpoint import CheckpointStore, load_training_state
from pipeline.data import load_datalist
from pipeline.errors import CheckpointError
from pipeline.networks import create_unet
from pipeline.workflows import TrainingConfig, format_case_table, load_network, predict_and_score, run_training


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainingConfig(
        dataset_dir=str(tiny_dataset),
        output_dir=str(out),
        epochs=2,
        val_interval=1,
        num_samples=6,
        patch_size=(32, 32, 32),
        channels=(8, 16, 32),
        strides=(2, 2),
        progress_bar=False,
        device="cpu",
    )
    return run_training(config), config


def test_loss_decreases(trained):
    result, _ = trained
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.history[1]["loss"] < result.history[0]["loss"]
    assert all(0.0 <= h["val_mean_dice"] <= 1.0 for h in result.history)
    assert result.best_metric == max(h["val_mean_dice"] for h in result.history)


def test_checkpoints_exist_and_load_weights_only(trained):
    result, _ = trained
    for path in (result.best_checkpoint, result.final_checkpoint):
        assert path.is_file()
        state = torch.load(path, map_location="cpu", weights_only=True)["state"]
        assert {"network", "optimizer", "lr_scheduler", "trainer", "checkpointer"} <= set(state)
    assert "final" in CheckpointStore(result.final_checkpoint.parent, "unet").find(result.final_checkpoint.name).reasons
    network, config = load_network(result.final_checkpoint)
    assert config.channels == (8, 16, 32)
    final = load_training_state(result.final_checkpoint)["network"]
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, final[name]), name


def test_history_and_config_written(trained):
    result, config = trained
    assert (result.output_dir / "history.json").is_file()
    assert TrainingConfig.load(result.output_dir / "config.json") == config


def test_predictions_on_original_grid(trained, tiny_dataset, tmp_path):
    result, _ = trained
    items = load_datalist(tiny_dataset, "test")
    network, config = load_network(result.best_checkpoint)
    scores = predict_and_score(network, config, items, "cpu", tmp_path)
    assert len(scores) == len(items) == 1
    source = nib.load(items[0]["image"])
    saved = nib.load(scores[0].prediction)
    assert saved.shape == source.shape
    np.testing.assert_allclose(saved.affine, source.affine, atol=1e-5)
    mask = np.asarray(saved.dataobj)
    assert set(np.unique(mask)) <= {0, 1}
    label = np.asarray(nib.load(items[0]["label"]).dataobj) > 0
    inter = np.logical_and(mask > 0, label).sum()
    expected = 2 * inter / (mask.sum() + label.sum()) if mask.sum() + label.sum() else 1.0
    assert scores[0].dice == pytest.approx(expected, abs=1e-6)
    table = format_case_table(scores)
    assert scores[0].case in table and "mean" in table


def test_training_curves_png(trained):
    result, _ = trained
    png = result.output_dir / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 600 and im.size[1] > 200


def test_history_json_matches_the_run(trained):
    result, config = trained
    saved = json.loads((result.output_dir / "history.json").read_text())
    assert saved == result.history
    assert [h["epoch"] for h in saved if "val_mean_dice" in h] == [1, 2]  # val_interval=1


def _weights_digest(path: Path) -> str:
    state = load_training_state(path)["network"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    return digest.hexdigest()


def test_same_seed_same_weights(trained, tmp_path):
    """A seeded run repeats to the last bit (shuffling, patches, augmentation and initialisation all seeded)."""
    result, config = trained
    again = run_training(dataclasses.replace(config, output_dir=str(tmp_path / "again")))
    def without_time(history):
        return [{k: v for k, v in h.items() if k != "time_s"} for h in history]

    assert without_time(again.history) == without_time(result.history)  # exact floats, not approximately
    assert _weights_digest(again.final_checkpoint) == _weights_digest(result.final_checkpoint)


class _RunsCode:
    """Unpickling this runs ``os.system`` — what a crafted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_problems_are_reported_not_loaded(trained, tmp_path):
    result, config = trained
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    shutil.copy(result.output_dir / "config.json", tmp_path / "config.json")

    random_bytes = ckpt_dir / "random.pt"
    random_bytes.write_bytes(os.urandom(512))
    with pytest.raises(CheckpointError, match="random.pt is not a readable torch checkpoint"):
        load_network(random_bytes)

    bare = ckpt_dir / "bare.pt"
    torch.save(torch.zeros(3), bare)
    with pytest.raises(CheckpointError, match="bare.pt holds a Tensor, not a dict of states"):
        load_network(bare)

    other = ckpt_dir / "other.pt"
    torch.save({"network": create_unet(channels=(4, 8), strides=(2,)).state_dict()}, other)
    with pytest.raises(CheckpointError, match="other.pt' does not fit the network of its config"):
        load_network(other)

    marker = tmp_path / "pwned"
    crafted = ckpt_dir / "crafted.pt"
    with open(crafted, "wb") as f:
        pickle.dump({"network": _RunsCode(marker)}, f)
    with pytest.raises(CheckpointError, match="crafted.pt (was refused|is not a readable torch checkpoint)"):
        load_network(crafted)
    assert not marker.exists(), "the crafted pickle's code must not run"
