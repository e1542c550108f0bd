"""What the three examples share: their command line, the data of ``data_samples/`` and a small MONAI UNet.

Every example runs as it is (``python examples/quick_start.py``) on the phantoms in ``data_samples/``; ``--epochs``
(or the environment variable ``VESSEL_EXAMPLE_EPOCHS``) and the other options make it shorter or longer.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch
from monai.utils import set_determinism

from pipeline.data import load_datalist, make_loader
from pipeline.networks import create_unet
from pipeline.workflows import resolve_device
from transforms import get_train_transforms, get_val_transforms

REPO = Path(__file__).resolve().parents[1]
EPOCHS_ENV = "VESSEL_EXAMPLE_EPOCHS"


def parse_args(name: str, description: str) -> argparse.Namespace:
    """The examples' options; ``--out`` defaults to ``runs/examples/<name>``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data_samples", help="folder with dataset.json")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "examples" / name, help="model_dir")
    parser.add_argument("--epochs", type=int, default=int(os.environ.get(EPOCHS_ENV, 10)), help=f"default ${EPOCHS_ENV} or 10")
    parser.add_argument("--patch", type=int, nargs=3, default=(64, 64, 32), help="training patch = sliding window")
    parser.add_argument("--channels", type=int, nargs="+", default=(16, 32, 64), help="UNet channels per level")
    parser.add_argument("--max-cases", type=int, default=None, help="use only the first N training cases")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("ignite.engine.engine.SupervisedTrainer", "ignite.engine.engine.SupervisedEvaluator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return args


def data_loaders(args: argparse.Namespace) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Training patches (2 per volume, batches of 1 volume) and whole validation volumes of ``args.data_dir``."""
    set_determinism(seed=0)
    train_items = load_datalist(args.data_dir, "training")[: args.max_cases]
    val_items = load_datalist(args.data_dir, "validation")
    train = make_loader(train_items, get_train_transforms(args.patch, num_samples=2), shuffle=True, seed=0)
    val = make_loader(val_items, get_val_transforms())
    return train, val


def model_and_optimizer(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.device]:
    """A MONAI UNet with ``args.channels`` and AdamW, on the chosen device."""
    device = resolve_device(args.device)
    channels = tuple(args.channels)
    model = create_unet(channels=channels, strides=(2,) * (len(channels) - 1)).to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-5), device
