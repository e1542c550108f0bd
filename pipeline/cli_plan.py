"""``vessel-pipeline plan``: fingerprint a dataset and write its training plan (``DATASET_DIR/plan.json``)."""

from __future__ import annotations

import argparse

__all__ = ["add_plan_parser", "run_plan"]


def add_plan_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``plan`` command on the CLI's sub-parsers."""
    p = sub.add_parser(
        "plan",
        help="fingerprint a dataset and write DATASET_DIR/plan.json (spacing, normalisation, patch, batch, lr, epochs)",
        description="Analyse the labelled cases (training and validation lists) with MONAI's DataAnalyzer and the "
        "labels' distance transform, derive the training settings from them and write DATASET_DIR/plan.json, which "
        "train, demo and the bundle then use (an explicit option still wins).",
    )
    p.add_argument("--dataset-dir", required=True, help="folder with the volumes and dataset.json")
    p.add_argument("--datalist", default=None, help="datalist JSON (default: DATASET_DIR/dataset.json)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="the device training will use: its memory sizes patch and batch (default: auto)")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="memory one training step may use (default: half the GPU's, a quarter of the RAM)")
    p.add_argument("--target-steps", type=int, default=None, help="optimiser steps the epochs are sized for")
    return p


def run_plan(args: argparse.Namespace):
    """Make and write the plan; print where and why."""
    import torch

    from pipeline.data.plan import PlanSettings, plan_dataset
    from pipeline.errors import SettingsError

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SettingsError("--device cuda asked for, but this torch sees no CUDA device; use --device cpu.")
    if args.memory_gb is not None and not args.memory_gb > 0:
        raise SettingsError(f"--memory-gb must be > 0, got {args.memory_gb}.")
    options = {"device": device}
    if args.memory_gb is not None:
        options["memory_bytes"] = int(args.memory_gb * 2**30)
    if args.target_steps is not None:
        options["target_steps"] = args.target_steps
    plan, path = plan_dataset(args.dataset_dir, args.datalist, PlanSettings(**options))
    print(f"wrote {path}")
    for reason in plan.reasons:
        print(f"  - {reason}")
    return plan
