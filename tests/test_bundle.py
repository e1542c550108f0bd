"""The coronary vessel bundle through MONAI's own ConfigWorkflow, as model-zoo bundle tests do: train (and resume),
evaluate and infer with tiny overrides; MONAI's ckpt_export, verify_net_in_out and verify_metadata (offline schema)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from pipeline.bundle_support import load_weights
from pipeline.checkpoint import CheckpointStore, load_training_state
from pipeline.errors import DatasetError, SettingsError
from pipeline.networks import create_unet

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
    "loss_schedule_params": {"start_weights": {"skeleton_recall": 0.0}, "warmup_epochs": 0, "epochs": 1},
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
    assert set(metrics) == {"val_mean_dice", "val_hd95_mm", "val_nsd"}
    assert 0.0 <= metrics["val_mean_dice"] <= 1.0 and 0.0 <= metrics["val_nsd"] <= 1.0
    assert metrics["val_hd95_mm"] >= 0.0  # mm, or inf when the prediction is empty
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
    # the measured recipe: Skeleton Recall off in epoch 1, at its preset weight from epoch 2
    assert history[0]["weight_skeleton_recall"] == 0.0
    assert history[1]["weight_skeleton_recall"] == pytest.approx(0.5)


def test_properties_of_every_workflow(trained, tiny_dataset):
    """MONAI's required properties of a train and an inference workflow (checked once initialized)."""
    root, _ = trained
    for config, kind in ((TRAIN, "train"), (INFER, "infer"), ([TRAIN, EVALUATE], "eval")):
        wf = workflow(config, root, kind, dataset_dir=str(tiny_dataset), **TINY)
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
    verify_net_in_out("network_def", meta_file=META, config_file=TRAIN, device="cpu", n=2, **NET)


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
    wf = workflow(TRAIN, tmp_path, **TINY, **override)
    with pytest.raises(RuntimeError) as info:
        wf.initialize()
    assert not list(tmp_path.rglob("*.pt")), "nothing may be trained or saved"
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
