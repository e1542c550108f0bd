"""Kill -9 a training process at random moments while it checkpoints: a loadable checkpoint always survives."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

import checkpoint_kill_child  # tests/checkpoint_kill_child.py
from pipeline.checkpoint import CheckpointStore
from pipeline.io.atomic import TEMP_SUFFIX
from pipeline.checkpoint.storage.manifest import read_manifest

TRIALS = 20


class Child:
    """A training process (:func:`checkpoint_kill_child.main`) forked from a server that imported torch, Ignite and
    the checkpoint code once: a separate process killed for real, without paying those imports per trial."""

    _context = None

    def __init__(self, directory: Path, strategy: str) -> None:
        if Child._context is None:
            Child._context = multiprocessing.get_context("forkserver")
            Child._context.set_forkserver_preload(["torch", "ignite.engine", "checkpoint_kill_child"])
        self.process = Child._context.Process(target=checkpoint_kill_child.main, args=(str(directory), strategy))
        self.process.start()

    def poll(self) -> int | None:
        return self.process.exitcode

    def send_signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode


def _start(directory: Path, strategy: str) -> Child:
    return Child(directory, strategy)


def _wait_for_first_save(proc: Child, manifest: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not manifest.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early with code {proc.poll()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child wrote no checkpoint in time")
        time.sleep(0.01)


def _check_after_kill(directory: Path) -> None:
    manifest = directory / "model.manifest.json"
    # before any recovery: the manifest names at least one checkpoint, and it loads with its checksum verified
    entries = read_manifest(manifest)
    assert entries, "the manifest lists no checkpoint after the kill"
    store = CheckpointStore(directory, "model", recover=False)  # read-only view: no sweep yet
    assert [e.file for e in store.entries] == [e.file for e in entries]
    loaded = 0
    for entry in entries:
        if (directory / entry.file).exists():
            payload = store.load(entry)
            assert payload["meta"]["epoch"] == entry.epoch
            loaded += 1
    assert loaded >= 1
    # a restart sweeps the debris: afterwards the manifest and the folder agree exactly
    store = CheckpointStore(directory, "model")
    files = {p.name for p in directory.iterdir() if p.suffix == ".pt"}
    assert files == {e.file for e in store.entries}
    assert not [p for p in directory.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    for entry in store.entries:
        store.verify(entry)


@pytest.mark.parametrize("strategy", ["epoch", "best"])
def test_kill_during_saves_always_leaves_a_loadable_checkpoint(tmp_path, strategy):
    rng = random.Random(1234 if strategy == "epoch" else 4321)
    trials = TRIALS // 2
    # two children at a time (one per core); each is killed at a random moment after its first save
    for pair in range(0, trials, 2):
        runs = []
        for trial in (pair, pair + 1):
            directory = tmp_path / f"trial{trial}"
            runs.append((directory, _start(directory, strategy)))
        for directory, proc in runs:
            _wait_for_first_save(proc, directory / "model.manifest.json")
        for directory, proc in runs:
            time.sleep(rng.uniform(0.0, 0.8))
            proc.send_signal(signal.SIGKILL)
        for directory, proc in runs:
            assert proc.wait(timeout=30) == -signal.SIGKILL
            _check_after_kill(directory)


def test_a_killed_run_resumes_where_its_checkpoint_was(tmp_path):
    proc = _start(tmp_path, "epoch")
    _wait_for_first_save(proc, tmp_path / "model.manifest.json")
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = CheckpointStore(tmp_path, "model")
    newest = store.newest()
    epoch_before = newest.epoch
    # the restarted child resumes from that checkpoint and keeps counting epochs from there
    proc = _start(tmp_path, "epoch")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        entries = read_manifest(tmp_path / "model.manifest.json") or []
        if any(e.epoch > epoch_before for e in entries):
            break
    proc.kill()
    proc.wait(timeout=30)
    store = CheckpointStore(tmp_path, "model")
    epochs = sorted(e.epoch for e in store.entries)
    assert epochs[-1] > epoch_before
    payload = store.load(store.newest())
    assert payload["state"]["trainer"]["iteration"] == payload["meta"]["iteration"]
