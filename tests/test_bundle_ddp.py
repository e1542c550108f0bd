"""The bundle's multi_gpu_train.json in two real ``torchrun`` processes (gloo on CPU) launched as two machines (two
launchers, one process each, a c10d rendezvous on localhost): both train, global rank 0 alone writes checkpoints, the
exported weights, the history and the MLflow run, although both processes have local rank 0."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from pipeline.bundle import load_weights
from pipeline.checkpoint import CheckpointStore, load_training_state
from pipeline.networks import create_unet
from torchrun import torchrun  # tests/torchrun.py

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "bundles" / "coronary_vessel_seg" / "configs"


def test_two_nodes_train_and_only_global_rank0_writes(tiny_dataset, tmp_path):
    root = tmp_path / "bundle"
    configs = json.dumps([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")])
    schedule = json.dumps({"warmup_epochs": 0, "epochs": 1})
    proc = torchrun(
        "-m", "monai.bundle", "run", "--config_file", configs, "--bundle_root", str(root), "--dataset_dir", str(tiny_dataset),
        "--epochs", "2", "--val_interval", "1", "--patch_size", "[32,32,32]", "--num_samples", "2",
        "--network_def#channels", "[8,16,32]", "--network_def#strides", "[2,2]", "--progress", "False",
        "--loss_preset", "vessel_skeleton_recall", "--loss_schedule_params", schedule, nodes=2,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # rank 0 alone logs the epoch line, with the loss averaged over both processes ...
    epochs = re.findall(r"pipeline\.train - INFO - epoch (\d)/2 +loss ([0-9.]+)", log)
    assert [e for e, _ in epochs] == ["1", "2"]
    # ... both processes trained every epoch with the same loss weights, while one process wrote one checkpoint per
    # epoch and one MLflow run
    assert len(re.findall(r"loss weights for epoch 2: dice=0\.5000 bce=0\.5000 skeleton_recall=0\.5000", log)) == 2
    assert len(re.findall(r"checkpoint unet_e\d+_i\d+\.pt saved", log)) == 2
    assert len(re.findall(r"MLflow run \w+ ended FINISHED", log)) == 1
    assert len(re.findall(r"network weights exported to", log)) == 1  # model.pt and the history: one writer
    assert [r["epoch"] for r in json.loads((root / "models" / "history.json").read_text())] == [1, 2]
    store = CheckpointStore(root / "models" / "checkpoints", "unet")
    assert [e.epoch for e in store.entries] == [1, 2]
    state = load_training_state(store.path(store.entries[-1]))
    assert not any(k.startswith("module.") for k in state["network"])  # unwrapped: loads with or without DDP
    assert len(state["rng"]["ranks"]) == 2  # the random state of both processes
    network = load_weights(create_unet(channels=(8, 16, 32), strides=(2, 2)), root / "models" / "model.pt")
    plain = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in plain) and plain.keys() == network.state_dict().keys()
