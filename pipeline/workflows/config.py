"""Settings of a training run, saved next to its checkpoints so evaluation can rebuild the same network."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline.checkpoint.strategies import STRATEGIES
from pipeline.errors import SettingsError
from transforms import DEFAULT_HU_WINDOW

__all__ = ["TrainingConfig", "CONFIG_NAME", "DEFAULT_DATA", "resolve_device"]

CONFIG_NAME = "config.json"

#: the repository's sample data, whatever the current folder
DEFAULT_DATA = str(Path(__file__).resolve().parents[2] / "data_samples")

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _check_device_name(name: str) -> None:
    if not _DEVICE.match(name):
        raise SettingsError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}.")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; ``"cuda[:N]"`` must be available.

    Raises:
        SettingsError: a name other than ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or CUDA asked for without a GPU.
    """
    _check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        index = int(name.split(":")[1]) if ":" in name else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise SettingsError(f"device {name!r} asked for, but this torch sees {torch.cuda.device_count()} CUDA devices.")
    return torch.device(name)


@dataclass
class TrainingConfig:
    """Everything a training run needs.

    Args:
        dataset_dir: folder of the data and its ``dataset.json``.
        datalist: datalist file (default ``dataset_dir/dataset.json``).
        output_dir: where checkpoints, ``config.json`` and ``history.json`` go.
        epochs: training epochs.
        val_interval: validate every this many epochs (and after the last).
        batch_size: volumes per batch; each yields ``num_samples`` patches.
        num_samples: random patches per volume and epoch.
        patch_size: patch (and sliding-window) size in voxels.
        pixdim: target spacing in mm, or ``None`` to keep each volume's own.
        hu_window: CT window mapped to [0, 1].
        learning_rate: initial Adam learning rate (cosine-annealed to 1% over the run).
        weight_decay: Adam weight decay.
        channels, strides, num_res_units, dropout: the MONAI UNet (see :func:`pipeline.networks.create_unet`).
        seed: seed of every random generator (MONAI's ``set_determinism``).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        num_workers: DataLoader worker processes.
        progress_bar: show Ignite's tqdm progress bar.
        checkpoint_strategy: a strategy of :mod:`pipeline.checkpoint` (``best``, ``epoch``, ``interval``, ``all``,
            ``adaptive``, ``performance_based``, ``time_based``), monitoring the validation mean Dice.
        max_checkpoints: how many checkpoints the strategy keeps (the newest and the best are kept regardless).
        loss: ``None`` for MONAI's ``DiceFocalLoss``, or a loss preset of :mod:`pipeline.losses` (``vessel_cldice``,
            ``vessel_skeleton_recall``, ``vessel_topology``, ``default_segmentation``, ...); a preset with Skeleton
            Recall adds the tubed skeleton to the training labels.
        loss_schedule: a loss-weight schedule (``adaptive``, ``cosine``, ``step``, ``performance``) for a ``loss``
            preset; ``performance`` follows the validation mean Dice.
        loss_schedule_params: the schedule's parameters (see :mod:`pipeline.schedules`).
    """

    dataset_dir: str = DEFAULT_DATA
    datalist: str | None = None
    output_dir: str = "runs/demo"
    epochs: int = 40
    val_interval: int = 2
    batch_size: int = 2
    num_samples: int = 4
    patch_size: tuple[int, int, int] = (64, 64, 32)
    pixdim: tuple[float, float, float] | None = (0.4, 0.4, 0.6)
    hu_window: tuple[float, float] = DEFAULT_HU_WINDOW
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = 1
    dropout: float = 0.0
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    progress_bar: bool = True
    checkpoint_strategy: str = "best"
    max_checkpoints: int = 2
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None
    loss_schedule: str | None = None
    loss_schedule_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "val_interval", "batch_size", "num_samples"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if len(self.patch_size) != 3 or any(p < 1 for p in self.patch_size):
            raise SettingsError(f"patch_size must be three positive sizes, got {self.patch_size}.")
        factor = 1
        for s in self.strides:
            factor *= s
        if any(p % factor for p in self.patch_size):
            raise SettingsError(f"patch_size {tuple(self.patch_size)} must be divisible by {factor} (product of strides).")
        _check_device_name(self.device)
        if self.learning_rate <= 0:
            raise SettingsError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.checkpoint_strategy not in STRATEGIES:
            raise SettingsError(
                f"unknown checkpoint_strategy {self.checkpoint_strategy!r}; valid strategies: {sorted(STRATEGIES)}"
            )
        if self.max_checkpoints < 1:
            raise SettingsError(f"max_checkpoints must be >= 1, got {self.max_checkpoints}.")
        if self.loss_schedule_params is None:
            self.loss_schedule_params = {}
        if self.loss is not None or self.loss_schedule is not None or self.loss_schedule_params:
            self.loss_config()  # unknown preset, schedule or parameter: fail before any training

    def loss_config(self) -> dict[str, Any] | None:
        """The seed-style config of ``loss`` with ``loss_schedule`` as its ``scheduler`` entry (None: MONAI's
        ``DiceFocalLoss``), checked by building it once.

        Raises:
            SettingsError: unknown preset, schedule or schedule parameter, a schedule without a ``loss`` preset,
                parameters without a schedule, or a schedule that does not fit into ``epochs``.
        """
        if self.loss_schedule is None and self.loss_schedule_params:
            raise SettingsError(
                f"loss_schedule_params {self.loss_schedule_params} are given without a loss_schedule to take them."
            )
        if self.loss is None:
            if self.loss_schedule is not None:
                raise SettingsError(
                    f"loss_schedule {self.loss_schedule!r} changes the weights of a loss preset's terms: choose a loss "
                    "preset as well (e.g. loss='vessel_cldice')."
                )
            return None
        from pipeline.losses import create_loss_function, get_preset_loss_config
        from pipeline.schedules import create_schedule

        config = get_preset_loss_config(self.loss)
        loss = create_loss_function(config)
        if self.loss_schedule is not None:
            if not isinstance(self.loss_schedule_params, dict):
                raise SettingsError(f"loss_schedule_params must be a dict, got {self.loss_schedule_params!r}.")
            config["scheduler"] = {"type": self.loss_schedule, "params": dict(self.loss_schedule_params)}
            schedule = create_schedule(self.loss_schedule, loss.weights, self.loss_schedule_params)
            if hasattr(schedule, "set_run_length"):
                schedule.set_run_length(self.epochs)  # a warm-up longer than the run fails here, not at epoch 1
        return config

    def network_args(self) -> dict[str, Any]:
        """Keyword arguments of :func:`pipeline.networks.create_unet`."""
        return {
            "channels": list(self.channels),
            "strides": list(self.strides),
            "num_res_units": self.num_res_units,
            "dropout": self.dropout,
            **self.network_kwargs,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TrainingConfig":
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown keys {unknown} in '{path}'; valid keys: {sorted(known)}.")
        for key in ("patch_size", "pixdim", "hu_window", "channels", "strides"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)
