"""The coronary vessel bundle through MONAI's own ConfigWorkflow, as model-zoo bundle tests do: train (and resume),
evaluate and infer with tiny overrides; a copy of the bundle run with ``monai.bundle.run`` from inside it; MONAI's
ckpt_export, verify_net_in_out and verify_metadata (offline schema); set-up checks."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from pipeline.bundle import load_weights
from pipeline.checkpoint import CheckpointStore, load_training_state
from pipeline.cli import main
from pipeline.errors import CheckpointError, DatasetError, SettingsError
from pipeline.networks import create_unet
from pipeline.tracking import import_mlflow

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "coronary_vessel_seg"
CONFIGS = BUNDLE / "configs"
TRAIN, EVALUATE, INFER = (str(CONFIGS / f"{n}.json") for n in ("train", "evaluate", "inference"))
META = str(CONFIGS / "metadata.json")
SCHEMA = str(BUNDLE / "schema" / "meta_schema.json")
#: the schema file's SHA-256 (change it with the schema, on purpose)
SCHEMA_SHA256 = "38371387e0d485ae2a3b63293728d3f499403b8a56c2f3f5c15b8e45e7ff5314"

#: a tiny network and patch; the Skeleton Recall term faded in over the second epoch
NET = {"network_def#channels": [8, 16, 32], "network_def#strides": [2, 2]}
TINY = {
    **NET,
    "patch_size": [32, 32, 32],
    "num_samples": 2,
    "val_interval": 1,
    "progress": False,
    # the schedule machinery is exercised with the Skeleton Recall preset (the default preset has no schedule)
    "loss_preset": "vessel_skeleton_recall",
    "loss_schedule_params": {"warmup_epochs": 0, "epochs": 1},
}


def workflow(config, bundle_root: Path, workflow_type: str = "train", **override) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=config, meta_file=META, logging_file=False, workflow_type=workflow_type,
        bundle_root=str(bundle_root), **override,
    )


def run(wf: ConfigWorkflow) -> ConfigWorkflow:
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    wf = run(workflow(TRAIN, root, dataset_dir=str(tiny_dataset), epochs=2, **TINY))
    return root, wf


def test_train_writes_checkpoints_model_and_history(trained):
    root, wf = trained
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2
    metrics = wf.parser.get_parsed_content("validate#evaluator").state.metrics
    assert set(metrics) == {"val_mean_dice", "val_hd95_mm", "val_hd95_mm_worst_cases", "val_nsd"}
    assert 0.0 <= metrics["val_mean_dice"] <= 1.0 and 0.0 <= metrics["val_nsd"] <= 1.0
    # mm; a case with an empty prediction counts as the volume's diagonal, never inf, and is counted
    assert 0.0 <= metrics["val_hd95_mm"] < float("inf")
    assert metrics["val_hd95_mm_worst_cases"] in (0, 1, 2)
    store = CheckpointStore(root / "models" / "checkpoints", "unet")
    assert [e.epoch for e in store.entries][-1] == 2 and "final" in store.entries[-1].reasons
    state = load_training_state(store.path(store.entries[-1]))
    assert {"network", "optimizer", "lr_scheduler", "trainer", "loss_schedule_handler", "mlflow_tracker", "rng",
            "train_loader", "checkpointer"} <= set(state)
    assert state["mlflow_tracker"]["run_id"]
    model = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    best = load_training_state(wf.parser.get_parsed_content("checkpoint").best_checkpoint)["network"]
    assert model.keys() == best.keys() and all(torch.equal(model[k], best[k]) for k in model)
    history = json.loads((root / "models" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    # the preset's schedule: Skeleton Recall off in epoch 1, at its preset weight from epoch 2
    assert history[0]["weight_skeleton_recall"] == 0.0
    assert history[1]["weight_skeleton_recall"] == pytest.approx(0.5)


def test_properties_of_every_workflow(trained, tiny_dataset):
    """MONAI's required properties of a train and an inference workflow (checked once initialized)."""
    root, _ = trained
    for config, kind in ((TRAIN, "train"), (INFER, "infer"), ([TRAIN, EVALUATE], "eval")):
        wf = workflow(config, root, kind, dataset_dir=str(tiny_dataset), **TINY, **({"existing": "keep"} if kind == "train" else {}))
        wf.initialize()
        assert wf.check_properties() == [], config


def test_resume_auto_continues_the_run(trained, tiny_dataset, tmp_path):
    root, _ = trained
    shutil.copytree(root / "models", tmp_path / "models")
    wf = run(workflow(TRAIN, tmp_path, dataset_dir=str(tiny_dataset), epochs=3, resume="auto", **TINY))
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == 3
    history = json.loads((tmp_path / "models" / "history.json").read_text())
    before = json.loads((root / "models" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[:2] == before  # 1 and 2 restored, not retrained
    assert history[2]["weight_skeleton_recall"] == pytest.approx(0.5)  # the schedule went on, not from its start
    store = CheckpointStore(tmp_path / "models" / "checkpoints", "unet")
    run_ids = [load_training_state(store.path(e))["mlflow_tracker"]["run_id"] for e in store.entries]
    assert len(set(run_ids)) == 1  # the same MLflow run, continued
    assert store.entries[-1].epoch == 3 and "final" in store.entries[-1].reasons


def test_evaluate_scores_each_case_on_its_grid(trained, tiny_dataset):
    root, _ = trained
    wf = run(workflow([TRAIN, EVALUATE], root, "eval", dataset_dir=str(tiny_dataset), print_table=False, **NET,
                      patch_size=[32, 32, 32]))
    metrics = wf.parser.get_parsed_content("evaluator").state.metrics
    assert 0.0 <= metrics["Dice"] <= 1.0 and 0.0 <= metrics["NSD"] <= 1.0
    out = root / "eval" / "test"
    summary = json.loads((out / "summary.json").read_text())
    assert [c["case"] for c in summary["metric_per_case"]] == ["coronary_004_image"]
    assert summary["metric_per_case"][0]["metrics"]["1"]["Dice"] == pytest.approx(metrics["Dice"])
    assert (out / "cases.csv").read_text().splitlines()[0].startswith("case,")
    pred = nib.load(out / "predictions" / "coronary_004_image_pred.nii.gz")
    image = nib.load(tiny_dataset / "coronary_004_image.nii.gz")
    assert pred.shape == image.shape
    np.testing.assert_allclose(pred.affine, image.affine, atol=1e-5)


def test_inference_writes_predictions_with_the_input_affine(trained, tiny_dataset, tmp_path):
    root, _ = trained
    images = tmp_path / "images"
    images.mkdir()
    for case in ("coronary_003", "coronary_004"):
        shutil.copy(tiny_dataset / f"{case}_image.nii.gz", images)
    out = tmp_path / "preds"
    run(workflow(INFER, root, "infer", dataset_dir=str(images), output_dir=str(out), **NET, patch_size=[32, 32, 32]))
    for case in ("coronary_003", "coronary_004"):
        pred, image = nib.load(out / f"{case}_image_pred.nii.gz"), nib.load(images / f"{case}_image.nii.gz")
        assert pred.shape == image.shape
        np.testing.assert_allclose(pred.affine, image.affine, atol=1e-5)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1}


# MONAI's ckpt_export writes TorchScript, which torch 2.13 deprecates
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.(save|load)` is deprecated:DeprecationWarning")
def test_ckpt_export_and_verify_net_in_out(trained, tmp_path):
    root, _ = trained
    ts = tmp_path / "model.ts"
    ckpt_export("network_def", filepath=str(ts), ckpt_file=str(root / "models" / "model.pt"), meta_file=META,
                config_file=TRAIN, key_in_ckpt="", bundle_root=str(root), **NET)
    exported = torch.jit.load(str(ts))
    network = load_weights(create_unet(channels=(8, 16, 32), strides=(2, 2)), root / "models" / "model.pt").eval()
    x = torch.rand(1, 1, 32, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), network(x))
    verify_net_in_out("network_def", meta_file=META, config_file=TRAIN, device="cpu", n=1)  # the metadata's defaults


def test_metadata_versions_are_the_installed_ones():
    """The versions metadata.json declares are those this project installs (the bundle's dependency included)."""
    meta = json.loads(Path(META).read_text())
    declared = {"monai": meta["monai_version"], "torch": meta["pytorch_version"], "numpy": meta["numpy_version"],
                **meta["required_packages_version"]}
    installed = {name: importlib.metadata.version(name).split("+")[0] for name in declared}
    assert declared == installed


def test_metadata_against_the_schema_in_the_repository(tmp_path):
    verify_metadata(meta_file=META, filepath=SCHEMA, hash_val=SCHEMA_SHA256, hash_type="sha256")  # no download
    broken = json.loads(Path(META).read_text())
    del broken["version"]
    broken["network_data_format"]["inputs"]["image"]["num_channels"] = 0
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(ValueError):
        verify_metadata(meta_file=str(bad), filepath=SCHEMA, hash_val=SCHEMA_SHA256, hash_type="sha256")


def _fails_at_initialize(tmp_path, **override) -> BaseException:
    wf = workflow(TRAIN, tmp_path, **{**TINY, **override})
    with pytest.raises(RuntimeError) as info:
        wf.initialize()
    assert not (tmp_path / "models").exists(), "nothing may be trained or written"
    return info.value.__cause__


def test_bad_input_is_reported_before_training(tiny_dataset, dataset_copy, tmp_path):
    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tmp_path / "nowhere"))
    assert isinstance(cause, DatasetError) and f"dataset folder '{tmp_path / 'nowhere'}' does not exist" in str(cause)

    datalist = json.loads((dataset_copy / "dataset.json").read_text())
    (dataset_copy / "dataset.json").write_text(json.dumps({**datalist, "training": []}))
    cause = _fails_at_initialize(tmp_path, dataset_dir=str(dataset_copy))
    assert isinstance(cause, DatasetError) and "the 'training' list" in str(cause) and "is empty" in str(cause)

    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), loss_preset="vessel_clDice")
    assert isinstance(cause, SettingsError) and "unknown loss preset 'vessel_clDice'" in str(cause)
    assert "vessel_cldice" in str(cause)  # the valid names are listed

    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), checkpoint_strategy="bestest")
    assert isinstance(cause, SettingsError) and "bestest" in str(cause) and "performance_based" in str(cause)

    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), loss_schedule="cosinus")
    assert isinstance(cause, SettingsError) and "cosinus" in str(cause)

    # what the CLI checks is checked here too, at set-up: one check for both
    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), patch_size=[34, 32, 32])
    assert isinstance(cause, SettingsError) and "divisible by 4 (the product of the network's strides [2, 2])" in str(cause)
    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), resume="lats")
    assert isinstance(cause, SettingsError) and "got 'lats'" in str(cause)
    cause = _fails_at_initialize(tmp_path, dataset_dir=str(tiny_dataset), epoch=2)
    assert isinstance(cause, SettingsError) and "unknown bundle key(s) ['epoch']" in str(cause)


def test_each_preset_alone_trains_with_its_own_default_schedule(tiny_dataset, tmp_path):
    """Changing the preset is one override: its default schedule fades in its own topology terms; the shipped preset
    (Dice + BCE, the learning benchmark's choice) has none and keeps its weights."""
    for preset, faded in (("vessel_cldice", {"cldice": 0.0}), ("vessel_topology", {"cldice": 0.0, "skeleton_recall": 0.0}),
                          ("vessel_skeleton_recall", {"skeleton_recall": 0.0}), (None, None)):
        chosen = {"loss_preset": preset} if preset else {}
        wf = workflow(TRAIN, tmp_path / str(preset), dataset_dir=str(tiny_dataset), epochs=8, **chosen)
        wf.initialize()
        name, params = wf.parser.get_parsed_content("loss_weight_schedule")
        assert (name, params.get("start_weights")) == (("cosine", faded) if faded else ("constant", None))
        assert params.get("warmup_epochs", 3) == 3 and params.get("epochs", 2) == 2  # 3/8 and 1/4 of 8 epochs


def test_an_earlier_run_is_kept_unless_replaced_loudly(trained, tiny_dataset, tmp_path, caplog):
    root, _ = trained
    shutil.copytree(root / "models" / "checkpoints", tmp_path / "models" / "checkpoints")
    before = sorted(p.name for p in (tmp_path / "models" / "checkpoints").iterdir())
    wf = workflow(TRAIN, tmp_path, dataset_dir=str(tiny_dataset), **TINY)
    with pytest.raises(RuntimeError) as info:
        wf.initialize()
    assert "resume='auto'" in str(info.value.__cause__) and "existing='replace'" in str(info.value.__cause__)
    assert sorted(p.name for p in (tmp_path / "models" / "checkpoints").iterdir()) == before
    wf = workflow(TRAIN, tmp_path, dataset_dir=str(tiny_dataset), existing="replace", **TINY)
    wf.initialize()
    assert "are DELETED once this run's first checkpoint is saved" in caplog.text


# monai.bundle.run warns that a config file runs code (ours is trusted)
@pytest.mark.filterwarnings("ignore:parsing config_file:UserWarning")
def test_a_copied_bundle_trains_and_infers_from_where_it_lies(tiny_dataset, tmp_path, monkeypatch):
    """A copy of the bundle folder, run with ``monai.bundle.run`` (what ``python -m monai.bundle run`` calls) from
    inside it: the run goes to the copy's models/, with MONAI's ``--tracking mlflow`` as the bundle's own tracker (one
    MLflow run, in the run folder); its inference.json predicts with it; ``vessel-pipeline infer`` and ``evaluate
    --checkpoint`` read the run folder (its network from config.json)."""
    from monai.bundle import run as bundle_run

    copy = tmp_path / "elsewhere" / "my_bundle"
    shutil.copytree(BUNDLE, copy)
    monkeypatch.chdir(copy)
    tiny = {"network_def#channels": [4, 8], "network_def#strides": [2], "dataset_dir": str(tiny_dataset),
            "patch_size": [16, 16, 16], "logging_file": False}
    bundle_run(config_file="configs/train.json", epochs=1, num_samples=1, progress=False, tracking="mlflow", **tiny)
    models = copy / "models"
    assert {"model.pt", "config.json", "history.json", "mlflow.db"} <= {p.name for p in models.iterdir()}
    assert not list(models.glob("config_*.json"))  # MONAI's executed-config copy is off: config.json is the one
    assert json.loads((models / "config.json").read_text())["network_def"]["channels"] == [4, 8]
    client = import_mlflow().MlflowClient(f"sqlite:///{models / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("coronary_vessel_seg").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "my_bundle" and "val_mean_dice" in run.data.metrics
    assert not [p.name for p in copy.iterdir() if p.name not in (".gitignore", "LICENSE", "configs", "docs", "schema", "models")]  # no second store

    bundle_run(config_file="configs/inference.json", image_pattern="coronary_004_image.nii.gz", **tiny)
    assert [p.name for p in (copy / "eval" / "inference").iterdir()] == ["coronary_004_image_pred.nii.gz"]
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "infer", "--checkpoint", str(models), "--input", str(tiny_dataset / "coronary_004_image.nii.gz"),
                 "--out", str(tmp_path / "preds"), "--device", "cpu"]) == 0
    cli = nib.load(tmp_path / "preds" / "coronary_004_image_pred.nii.gz")
    bundle = nib.load(copy / "eval" / "inference" / "coronary_004_image_pred.nii.gz")
    assert np.array_equal(np.asarray(cli.dataobj), np.asarray(bundle.dataobj))
    assert main(["-q", "evaluate", "--checkpoint", str(models / "checkpoints"), "--dataset-dir", str(tiny_dataset),
                 "--device", "cpu"]) == 0
    assert (models / "evaluation" / "test" / "summary.json").is_file()


class _RunsCode:
    """Unpickling this runs ``os.system`` — what a crafted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_problems_are_reported_not_loaded(tmp_path):
    network = create_unet(channels=(8, 16, 32), strides=(2, 2))
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(512))
    with pytest.raises(CheckpointError, match="random.pt is not a readable torch checkpoint"):
        load_weights(network, random_bytes)
    bare = tmp_path / "bare.pt"
    torch.save(torch.zeros(3), bare)
    with pytest.raises(CheckpointError, match="bare.pt holds a Tensor, not a dict of states"):
        load_weights(network, bare)
    other = tmp_path / "other.pt"
    torch.save({"network": create_unet(channels=(4, 8), strides=(2,)).state_dict()}, other)
    with pytest.raises(CheckpointError, match="other.pt' does not fit the bundle's network_def"):
        load_weights(network, other)
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.pt"
    with open(crafted, "wb") as f:
        pickle.dump({"network": _RunsCode(marker)}, f)
    with pytest.raises(CheckpointError, match="crafted.pt (was refused|is not a readable torch checkpoint)"):
        load_weights(network, crafted)
    assert not marker.exists(), "the crafted pickle's code must not run"
