"""Caching of the deterministic preprocessing: ``build_dataset(cache=...)`` against MONAI's ``Dataset`` and
``CacheDataset``, then the plan ``cache=auto`` makes for 100 full-size volumes.

Run: ``nice -n 10 .venv/bin/python bench/bench_caching.py`` (about 10 minutes on a loaded 2-core machine). Prints, as
markdown:

1. seconds of the first and of the later epochs (mean of ``--epochs`` - 1) over ``--cases`` thorax-like volumes
   (``bench/thorax_volumes.py``, resampled by the bundle's training chain, 4 random patches each), and the peak
   resident memory, each variant in its own process: MONAI ``Dataset`` (nothing cached), MONAI ``CacheDataset``
   (all in RAM), ``cache="ram"``, ``cache="disk"`` with an empty cache folder, and ``cache="disk"`` again (a second
   run sharing the folder);
2. the plan of ``cache="auto"`` for 100 full-size (512x512x``--depth``) volumes, one measured and the others named
   by symbolic links to it (the estimate reads only their headers): with the default budget and with a 24 GB one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

CONFIG = json.loads((ROOT / "bundles" / "coronary_vessel_seg" / "configs" / "train.json").read_text())
PATCH, PIXDIM, HU_WINDOW = tuple(CONFIG["patch_size"]), tuple(CONFIG["pixdim"]), tuple(CONFIG["hu_window"])
VARIANTS = ("monai-Dataset", "monai-CacheDataset", "cache=ram", "cache=disk (empty)", "cache=disk (shared, 2nd run)")


def chain():
    from transforms import get_train_transforms

    return get_train_transforms(PATCH, num_samples=4, pixdim=PIXDIM, hu_window=HU_WINDOW)


def make_cases(folder: Path, n: int, shape: tuple[int, int, int]) -> list[dict[str, str]]:
    """``n`` thorax-like cases written as NIfTI (kept between runs); their datalist items."""
    from pipeline.phantoms import write_nifti
    from thorax_volumes import make_thorax_case

    items = []
    for seed in range(n):
        image, label = folder / f"case_{seed:03d}_image.nii.gz", folder / f"case_{seed:03d}_label.nii.gz"
        if not label.exists():
            img, lab, affine = make_thorax_case(shape=shape, spacing=PIXDIM, seed=seed)
            write_nifti(img, affine, image)
            write_nifti(lab, affine, label)
        items.append({"image": str(image), "label": str(label)})
    return items


def worker(variant: str, items_json: Path, cache_dir: Path, epochs: int) -> None:
    """Epochs over a DataLoader of ``variant`` in this process; prints a JSON line."""
    import torch
    from monai.data import CacheDataset, DataLoader, Dataset

    from pipeline.data import build_dataset

    torch.set_num_threads(2)
    items = json.loads(items_json.read_text())
    start = time.perf_counter()
    if variant == "monai-Dataset":
        dataset = Dataset(items, chain())
    elif variant == "monai-CacheDataset":
        dataset = CacheDataset(items, chain(), cache_rate=1.0, progress=False)
    else:
        dataset = build_dataset(items, chain(), cache=variant.split()[0].split("=")[1], cache_dir=cache_dir)
    built = time.perf_counter() - start
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in DataLoader(dataset, batch_size=2, shuffle=True, num_workers=0):
            assert batch["image"].shape[2:] == PATCH
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"built": built, "epochs": times, "peak_mb": peak}))


def plan_for_100(folder: Path, depth: int) -> None:
    """The plan for 100 full-size volumes (one real case, 99 links to it)."""
    from pipeline.data import plan_cache

    full = folder / "full"
    full.mkdir(exist_ok=True)
    base = make_cases(full, 1, (512, 512, depth))[0]
    items = []
    for i in range(100):
        entry = {}
        for key, path in base.items():
            link = full / f"linked_{i:03d}_{key}.nii.gz"
            if not link.exists():
                link.symlink_to(Path(path).name)
            entry[key] = str(link)
        items.append(entry)
    print(f"\n### cache=auto for 100 volumes of 512x512x{depth}\n")
    print("| budget | estimate GB | budget GB | chosen | reason |\n| --- | ---: | ---: | --- | --- |")
    for label, budget in (("default (50% of available)", None), ("24 GB", 24.0)):
        start = time.perf_counter()
        plan = plan_cache(items, chain(), "auto", memory_budget_gb=budget)
        print(f"| {label} | {plan.estimated_bytes / 1e9:.1f} | {plan.budget_bytes / 1e9:.1f} | {plan.mode} | "
              f"{plan.reason} (planned in {time.perf_counter() - start:.1f} s) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--shape", type=int, nargs=3, default=[256, 256, 160])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--depth", type=int, default=224, help="slices of the full-size volumes of the plan")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_caching"))
    args = parser.parse_args()
    folder = args.out / f"cases_{'x'.join(map(str, args.shape))}"
    folder.mkdir(parents=True, exist_ok=True)
    items = make_cases(folder, args.cases, tuple(args.shape))
    items_json = args.out / "items.json"
    items_json.write_text(json.dumps(items))
    cache_dir = args.out / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)

    print(f"{args.cases} volumes of {'x'.join(map(str, args.shape))}, training chain (pixdim {PIXDIM}, 4 patches of "
          f"{PATCH}), batch 2, no loader workers, load average before: {os.getloadavg()[0]:.1f}\n")
    print("| variant | build s | first epoch s (with build) | later epochs s (mean) | peak RSS MB |\n| --- | ---: | ---: | ---: | ---: |")
    for variant in VARIANTS:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", variant, str(items_json), str(cache_dir), str(args.epochs)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        later = sum(r["epochs"][1:]) / max(len(r["epochs"]) - 1, 1)
        print(f"| {variant} | {r['built']:.1f} | {r['built'] + r['epochs'][0]:.1f} | {later:.1f} | {r['peak_mb']:.0f} |", flush=True)
    plan_for_100(args.out, args.depth)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
