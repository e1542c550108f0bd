"""Bytes per cached item with labels in uint8 (the training chain) against float32 labels (the same chain without
the two label casts, as before), on one full-size volume, with and without the skeleton channel; then the plan of
``cache="auto"`` for a whole data set.

Run: ``nice -n 10 .venv/bin/python bench/bench_cached_label_bytes.py --dataset-dir D [--disk-entry] [--plan]`` (D
holds ``dataset.json`` and the ``plan.json`` of ``vessel-pipeline plan``). Each full-size volume preprocessed costs
about 15 CPU s and 5 GB of memory: 4 of them, 1 more with ``--disk-entry``, 2 more with ``--plan``. The uint8 sizes
are what ``cache="auto"`` measures (:func:`pipeline.data.caching.estimate_bytes` on the first training item); prints
a markdown table with the ratio to float32 labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--plan", action="store_true", help="also print cache=auto's plan for every training item")
    parser.add_argument("--disk-entry", action="store_true", help="also write the first item's disk cache entry")
    args = parser.parse_args()

    import torch
    from monai.transforms import Compose

    from pipeline.data import build_dataset, load_datalist, plan_cache
    from pipeline.data.caching import _nbytes, deterministic_transforms, estimate_bytes
    from transforms import BinaryToUint8d, ToFloat32d, get_train_transforms

    torch.set_num_threads(1)
    plan = json.loads((args.dataset_dir / "plan.json").read_text())
    items = load_datalist(args.dataset_dir, "training")
    settings = {"patch_size": plan["patch_size"], "pixdim": plan["pixdim"], "hu_window": plan["hu_window"]}
    print("| label channels | shape after preprocessing | float32 labels MB | uint8 labels MB | ratio | "
          "check + uint8 cast s (once, cached) | float32 cast s (every fetch) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for skeleton in (False, True):
        chain = get_train_transforms(skeleton=skeleton, **settings)
        uint8_bytes, _ = estimate_bytes(items[:1], chain)
        float_chain = Compose([t for t in chain.transforms if not isinstance(t, (BinaryToUint8d, ToFloat32d))])
        sample = Compose(deterministic_transforms(float_chain))(dict(items[0]))
        float_bytes = _nbytes(sample)
        start = time.perf_counter()
        cached = BinaryToUint8d()(sample)
        to_uint8 = time.perf_counter() - start
        start = time.perf_counter()
        ToFloat32d()(cached)
        to_float = time.perf_counter() - start
        channels = "label + skeleton" if skeleton else "label"
        shape = tuple(sample["image"].shape[1:])
        print(f"| {channels} | {shape} | {float_bytes / 1e6:.1f} | {uint8_bytes / 1e6:.1f} | "
              f"{uint8_bytes / float_bytes:.3f} | {to_uint8:.2f} | {to_float:.2f} |", flush=True)
    if args.disk_entry:
        with tempfile.TemporaryDirectory() as folder:
            build_dataset(items[:1], get_train_transforms(**settings), cache="disk", cache_dir=folder)[0]
            entry = sum(p.stat().st_size for p in Path(folder).rglob("*.pt"))
        print(f"\ndisk cache entry of the first item (label uint8, no skeleton): {entry / 1e6:.1f} MB", flush=True)
    if args.plan:
        chain = get_train_transforms(**settings)
        for budget in (None, 24.0):
            print(f"\n{plan_cache(items, chain, 'auto', memory_budget_gb=budget).reason}", flush=True)


if __name__ == "__main__":
    main()
