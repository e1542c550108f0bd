"""The checkpoint store on real files: durable saves, checksums, safe loading, recovery after interrupted saves."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from pipeline.checkpoint import CheckpointStore, load_checkpoint_file
from pipeline.io import atomic
from pipeline.errors import CheckpointError


def _state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"model": {"weight": torch.randn(64, 32, generator=g), "bias": torch.zeros(64)}, "step": seed}


def test_save_writes_file_and_manifest_with_checksums(tmp_path):
    store = CheckpointStore(tmp_path, "unet")
    entry = store.save(_state(1), epoch=3, iteration=30, reasons=["best", "last"], metrics={"val_dice": 0.8, "loss": float("nan"), "name": "x"}, score=0.8)
    assert entry.file == "unet_e0003_i00000030.pt"
    assert (tmp_path / entry.file).stat().st_size == entry.size
    manifest = json.loads((tmp_path / "unet.manifest.json").read_text())
    assert manifest["model_name"] == "unet"
    (record,) = manifest["checkpoints"]
    assert record["sha256"] == atomic.sha256_of((tmp_path / entry.file).read_bytes())
    assert record["reasons"] == ["best", "last"] and record["epoch"] == 3 and record["iteration"] == 30
    assert record["metrics"] == {"val_dice": 0.8, "loss": None}  # NaN as null (strict JSON), non-numbers dropped
    assert record["time"].endswith("+00:00")
    payload = store.load(entry)
    assert torch.equal(payload["state"]["model"]["weight"], _state(1)["model"]["weight"])
    assert payload["meta"]["reasons"] == ["best", "last"]
    # a second store over the same folder sees the same checkpoint
    assert [e.file for e in CheckpointStore(tmp_path, "unet").entries] == [entry.file]


def test_same_position_twice_gets_a_distinct_name(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    a = store.save(_state(), 1, 10, ["interval"])
    b = store.save(_state(), 1, 10, ["last"])
    assert (a.file, b.file) == ("m_e0001_i00000010.pt", "m_e0001_i00000010-1.pt")


def test_evict_removes_manifest_entry_then_file(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    entries = [store.save(_state(i), i, i, ["epoch"]) for i in range(1, 4)]
    assert store.evict([entries[0].file, "unknown.pt"]) == [entries[0].file]
    assert not (tmp_path / entries[0].file).exists()
    assert [e.file for e in CheckpointStore(tmp_path, "m").entries] == [e.file for e in entries[1:]]


def test_truncated_checkpoint_is_detected_and_named(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    entry = store.save(_state(), 1, 1, ["last"])
    path = tmp_path / entry.file
    path.write_bytes(path.read_bytes()[: entry.size // 2])
    with pytest.raises(CheckpointError, match=rf"{entry.file} is {entry.size // 2} bytes but was written with {entry.size} \(truncated"):
        store.load(entry)
    # a truncated file without a manifest to compare with is still not loaded
    with pytest.raises(CheckpointError, match=rf"{entry.file} is not a readable torch checkpoint"):
        load_checkpoint_file(path)


def test_bit_flip_is_detected_by_the_checksum(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    entry = store.save(_state(), 1, 1, ["last"])
    path = tmp_path / entry.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: torch alone would load it without noticing
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{entry.file} fails its SHA-256 check"):
        store.load(entry)
    with pytest.raises(CheckpointError, match="SHA-256"):
        store.verify(entry)


class _RunsCode:
    """An object whose unpickling would run code: it creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_and_its_code_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    store = CheckpointStore(tmp_path / "ckpt", "m")
    # even a file the manifest vouches for (an attacker can rewrite both) is refused
    entry = store.save({"model": {"w": torch.ones(2)}, "payload": _RunsCode(str(marker))}, 1, 1, ["last"])
    with pytest.raises(CheckpointError, match=rf"{entry.file} was refused: it holds objects other than tensors"):
        store.load(entry)
    assert not marker.exists()
    # a bare pickle.dumps file (no torch zip container) is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"x": _RunsCode(str(marker))}, protocol=2))
    with pytest.raises(CheckpointError, match="raw.pt"):
        load_checkpoint_file(raw)
    assert not marker.exists()


def test_opening_a_store_sweeps_interrupted_saves(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    kept = store.save(_state(1), 1, 1, ["epoch"])
    gone = store.save(_state(2), 2, 2, ["epoch"])
    evicted = store.save(_state(3), 3, 3, ["epoch"])
    evicted_bytes = (tmp_path / evicted.file).read_bytes()
    store.evict([evicted.file])
    manifest_before = (tmp_path / "m.manifest.json").read_bytes()
    orphan = store.save(_state(4), 4, 4, ["epoch", "last"], {"val_dice": 0.5}, 0.5)
    # debris of kills: the manifest update of the last save never happened; an evicted file was not deleted yet; a
    # temp file mid-write; a listed file that disappeared; a user's file and another model's temp files
    (tmp_path / "m.manifest.json").write_bytes(manifest_before)
    (tmp_path / evicted.file).write_bytes(evicted_bytes)
    (tmp_path / f".m_e0005_i00000005.pt.{os.getpid()}.tmp").write_bytes(b"partial")
    (tmp_path / f".m.manifest.json.{os.getpid()}.tmp").write_bytes(b"{")
    (tmp_path / gone.file).unlink()
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".other_e0001_i00000001.pt.1.tmp").write_text("not ours")
    (tmp_path / ".m2_e0001_i00000001.pt.1.tmp").write_text("not ours either")
    recovered = CheckpointStore(tmp_path, "m")
    assert [e.file for e in recovered.entries] == [kept.file, orphan.file]
    adopted = recovered.entries[-1]
    assert adopted.reasons == ["epoch", "last"] and adopted.score == 0.5 and adopted.metrics == {"val_dice": 0.5}
    assert adopted.seq == 4
    recovered.verify(adopted)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([".m2_e0001_i00000001.pt.1.tmp", ".other_e0001_i00000001.pt.1.tmp", "m.manifest.json",
                            "notes.txt", kept.file, orphan.file])


def test_a_damaged_orphan_is_quarantined_and_a_lost_manifest_rebuilt(tmp_path):
    store = CheckpointStore(tmp_path, "m")
    a = store.save(_state(1), 1, 1, ["epoch"])
    b = store.save(_state(2), 2, 2, ["best"], {"val_dice": 0.7}, 0.7)
    (tmp_path / "m.manifest.json").write_text("{ not json")
    (tmp_path / "m_e0009_i00000009.pt").write_bytes(b"garbage")
    rebuilt = CheckpointStore(tmp_path, "m")
    assert [(e.file, e.reasons, e.sha256) for e in rebuilt.entries] == [(a.file, a.reasons, a.sha256), (b.file, b.reasons, b.sha256)]
    assert (tmp_path / "m_e0009_i00000009.pt.corrupt").exists()
    assert json.loads((tmp_path / "m.manifest.json").read_text())["checkpoints"][1]["score"] == 0.7


def test_bad_model_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="model_name must start with a letter or digit"):
        CheckpointStore(tmp_path, "../escape")


def test_reading_a_checkpoint_folder_or_file_from_outside_the_run(tmp_path):
    from pipeline.checkpoint import CheckpointManager, load_training_state, resolve_checkpoint

    model = torch.nn.Linear(2, 1)
    manager = CheckpointManager(tmp_path / "run", "unet", "epoch", max_checkpoints=5, monitor_metric="val_loss", mode="min")
    for epoch, loss in enumerate([0.9, 0.4, 0.6], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        manager.save_checkpoint(model, None, None, epoch, {"val_loss": loss})
    manifest = json.loads((tmp_path / "run" / "unet.manifest.json").read_text())
    assert (manifest["monitor"], manifest["mode"]) == ("val_loss", "min")
    # a folder means its best checkpoint (lowest loss here), or its newest with which="last"
    assert resolve_checkpoint(tmp_path / "run").name == "unet_e0002_i00000002.pt"
    assert resolve_checkpoint(tmp_path / "run", "last").name == "unet_e0003_i00000003.pt"
    assert load_training_state(tmp_path / "run")["model"]["weight"].unique().item() == 2.0
    # a file listed in the manifest is verified against it
    best = resolve_checkpoint(tmp_path / "run")
    data = bytearray(best.read_bytes())
    data[-100] ^= 0x01
    best.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its SHA-256 check"):
        load_training_state(best)
    # a plain state dict (e.g. MONAI's CheckpointSaver) loads as it is
    torch.save({"network": model.state_dict()}, tmp_path / "plain.pt")
    assert set(load_training_state(tmp_path / "plain.pt")) == {"network"}
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nowhere")
    CheckpointStore(tmp_path / "run", "other")._write_manifest()
    with pytest.raises(CheckpointError, match=r"must hold exactly one \*\.manifest\.json, found \['other.manifest.json', 'unet.manifest.json'\]"):
        resolve_checkpoint(tmp_path / "run")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs the kernel's full device /dev/full")
@pytest.mark.parametrize("floats", [16, 100_000])  # small: the disk refuses the bytes at the flush; large: inside torch.save
def test_a_full_disk_keeps_earlier_checkpoints_and_says_what_did_not_fit(tmp_path, floats):
    store = CheckpointStore(tmp_path, "m", fsync=False)
    first = store.save(_state(1), 1, 1, ["last"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # the save's temp file leads to /dev/full, whose every write fails with ENOSPC as a full disk's does
    atomic.temp_path(store.path(store.file_name(2, 2))).symlink_to("/dev/full")
    with pytest.raises(CheckpointError) as caught:
        store.save({"w": torch.zeros(floats)}, 2, 2, ["last"])
    message = str(caught.value)
    assert "m_e0002_i00000002.pt: No space left on device: the disk is full" in message
    assert f"needs about {4 * floats:,} bytes" in message
    assert f"bytes are free in {tmp_path}" in message and "the manifest are intact (m_e0001_i00000001.pt)" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing left behind, nothing changed
    assert store.entries == [first] and CheckpointStore(tmp_path, "m").entries == [first]
