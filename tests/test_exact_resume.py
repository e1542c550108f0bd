"""A training killed with SIGKILL and resumed ends with the same weights, bit for bit, as one never stopped.

The training (tests/exact_resume_child.py) is a MONAI UNet with dropout, random crops and flips of shuffled
volumes, an LR scheduler, an adaptive loss-weight schedule and validation, checkpointed by a CheckpointHandler given
no list of objects. Each run is a separate process, as after a real crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from torchrun import torchrun  # tests/torchrun.py

CHILD = Path(__file__).with_name("exact_resume_child.py")
ROOT = CHILD.parents[1]
EPOCHS = 4
KILL = "3:1"  # after the first iteration of epoch 3: epoch 2's checkpoint is the newest


def _run(*args: str, two_nodes: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if two_nodes:
        return torchrun(str(CHILD), *args, "--ddp", env=env, nodes=2)
    return subprocess.run([sys.executable, str(CHILD), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _result(out: Path, name: str = "result.json") -> dict:
    return json.loads((out / name).read_text())


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("straight")
    done = _run(str(out), str(EPOCHS))
    assert done.returncode == 0, done.stderr[-3000:]
    return _result(out)


def test_sigkill_then_resume_with_background_saves_gives_the_same_weights_bit_for_bit(tmp_path, straight):
    """With ``async_save`` (the synchronous case is tests/test_cli.py's, through ``vessel-pipeline train``)."""
    extra = ["--async"]
    killed = _run(str(tmp_path), str(EPOCHS), "--kill", KILL, *extra)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "result.json").exists()
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert saved[-1] == "model_e0002_i00000004.pt"  # nothing of epoch 3 was saved

    resumed = _run(str(tmp_path), str(EPOCHS), "--resume", *extra)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = _result(tmp_path)
    assert (straight["resumed_from"], result["resumed_from"]) == (None, "model_e0002_i00000004.pt")
    assert result["hash"] == straight["hash"]
    # the same losses, loss weights, learning rates and validation scores in epochs 3 and 4, the same best metric
    # (restored, not recomputed) and the same checkpoints kept
    assert result["records"] == straight["records"][2:]
    assert result["best"] == straight["best"]
    assert result["checkpoints"] == straight["checkpoints"]


def test_a_resume_from_the_middle_of_an_epoch_is_exact_too(tmp_path):
    """A checkpoint after every iteration; killed after iteration 3 of epoch 3, the newest checkpoint is from after
    iteration 2 of that epoch: the resumed run draws the epoch's first two batches again (untrained) to continue."""
    straight = _run(str(tmp_path / "straight"), str(EPOCHS), "--every-iteration")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run(str(tmp_path / "split"), str(EPOCHS), "--every-iteration", "--kill", "3:3")
    assert killed.returncode == -signal.SIGKILL
    resumed = _run(str(tmp_path / "split"), str(EPOCHS), "--every-iteration", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, result = _result(tmp_path / "straight"), _result(tmp_path / "split")
    assert result["resumed_from"] == "model_e0003_i00000010.pt"  # 4 iterations per epoch: 2 of epoch 3 done
    assert result["hash"] == expected["hash"]
    assert result["records"] == expected["records"][2:]  # the adaptive weights too: the partial term sums were saved


def test_two_torchrun_nodes_killed_and_resumed_match_the_uninterrupted_run(tmp_path):
    """Two launchers with one process each, joined by a c10d rendezvous, stand for two machines: both processes have
    local rank 0, and only global rank 0 writes checkpoints."""
    straight = _run(str(tmp_path / "straight"), "3", two_nodes=True)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run(str(tmp_path / "split"), "3", "--kill", "2:1", two_nodes=True)
    assert killed.returncode != 0
    files = sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir())
    assert files == ["model.manifest.json", "model_e0001_i00000001.pt"]  # one writer: no second copy, no temp file
    resumed = _run(str(tmp_path / "split"), "3", "--resume", two_nodes=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        expected, got = _result(tmp_path / "straight", f"result{rank}.json"), _result(tmp_path / "split", f"result{rank}.json")
        assert (got["world_size"], got["resumed_from"]) == (2, "model_e0001_i00000001.pt")
        assert got["hash"] == expected["hash"]
        assert got["records"] == expected["records"][1:]
    # DistributedDataParallel keeps the ranks' weights equal; the records differ (each rank has its own data)
    assert _result(tmp_path / "split", "result0.json")["hash"] == _result(tmp_path / "split", "result1.json")["hash"]
    assert _result(tmp_path / "split", "result0.json")["records"] != _result(tmp_path / "split", "result1.json")["records"]
