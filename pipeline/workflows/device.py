"""The ``--device`` option: a device name checked and resolved."""

from __future__ import annotations

import re

import torch

from pipeline.errors import SettingsError

__all__ = ["resolve_device"]

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; ``"cuda[:N]"`` must be available.

    Raises:
        SettingsError: a name other than ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or CUDA asked for without a GPU.
    """
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise SettingsError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        index = int(name.split(":")[1]) if ":" in name else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise SettingsError(f"device {name!r} asked for, but this torch sees {torch.cuda.device_count()} CUDA devices.")
    return torch.device(name)
