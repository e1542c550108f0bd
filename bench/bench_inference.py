"""Full-size inference: MONAI's plain ``sliding_window_inference`` against :class:`CandidateSlidingWindowInferer`.

Run: ``.venv/bin/python bench/bench_inference.py --train-full 8 --train-budget 1500 --methods plain,ours,ours-fp32``
(cases and the trained network are cached in ``--out`` and reused). Prints, as markdown, per case and method: wall and CPU seconds and their ratios to plain, Dice between
the method's binary prediction and plain's, Dice against the label, labelled vessel voxels outside the method's
candidate region, windows run, the resident memory peak during inference and its difference to plain's (each method
runs in its own process; the peak is reset with ``/proc/self/clear_refs`` after loading and read from ``VmHWM``).

Methods (all with the bundle's network, window, overlap and sliding-window batch, on the same preprocessed volume):

- ``plain``: MONAI's ``sliding_window_inference``, float32 (the baseline).
- ``plain-bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)`` (what bfloat16 alone gives).
- ``ours``: :class:`CandidateSlidingWindowInferer` with the bundle's settings (heart locator, ``precision="auto"``).
- ``ours-fp32``: the same in float32 (what skipping windows alone gives).
- ``ours-nolocator``: intensities only, float32 (the inferer before the heart locator).

Cases: full-size ``ccta`` phantoms (:func:`pipeline.phantoms.make_ccta_phantom` with ``CCTAConfig(shape, spacing)``,
no crop, at the bundle's spacing), preprocessed by the bundle's inference chain. The network: the bundle's
``train.json`` trained by :func:`pipeline.workflows.bundle.train_bundle` for ``--train-budget`` CPU seconds, on
``--train-full N`` other full-size ``ccta`` cases (patches from the whole body), or (``--train-full 0``) on generated
96x96x80 ``ccta`` crops around the heart; a network that says "background" where there is no vessel makes the
agreement between the methods over the whole volume mean something.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

CONFIG = json.loads((ROOT / "bundles" / "coronary_vessel_seg" / "configs" / "inference.json").read_text())
ROI, SW_BATCH, OVERLAP = tuple(CONFIG["patch_size"]), CONFIG["sw_batch_size"], CONFIG["overlap"]
PIXDIM, HU_WINDOW = tuple(CONFIG["pixdim"]), tuple(CONFIG["hu_window"])


def network_def() -> torch.nn.Module:
    from pipeline.networks import create_unet

    spec = {k: v for k, v in CONFIG["network_def"].items() if k != "_target_"}
    return create_unet(**spec)


def make_case(shape: tuple[int, int, int], seed: int, folder: Path) -> dict[str, str]:
    """Write one full-size ``ccta`` case (no crop) as NIfTI (unless there) and return its datalist entry."""
    from pipeline.phantoms import CCTAConfig, make_ccta_phantom, write_nifti

    image, label = folder / f"ccta_{seed:04d}_image.nii.gz", folder / f"ccta_{seed:04d}_label.nii.gz"
    if not label.exists():
        phantom = make_ccta_phantom(CCTAConfig(shape=shape, spacing=PIXDIM), np.random.default_rng(seed))
        write_nifti(phantom.image, phantom.affine, image)
        write_nifti(phantom.label, phantom.affine, label)
    return {"image": str(image), "label": str(label)}


def preprocess(item: dict[str, str], folder: Path) -> tuple[Path, Path]:
    """The bundle's preprocessing of image and label, saved as ``.npy`` (float32 image, uint8 label)."""
    from transforms import get_val_transforms

    name = Path(item["image"]).name.replace("_image.nii.gz", "")
    image_npy, label_npy = folder / f"{name}_input.npy", folder / f"{name}_label.npy"
    if not label_npy.exists():
        data = get_val_transforms(pixdim=PIXDIM, hu_window=HU_WINDOW)(item)
        np.save(image_npy, data["image"].numpy()[0].astype(np.float32))
        np.save(label_npy, (data["label"].numpy()[0] > 0.5).astype(np.uint8))
    return image_npy, label_npy


def train_network(folder: Path, crops: int, budget_s: float, full: int = 0, shape: tuple[int, int, int] = (512, 512, 224)) -> Path:
    """The network both methods run: the bundle's ``train.json`` run by :func:`pipeline.workflows.bundle.train_bundle`
    (the path ``train`` takes) for ``budget_s`` CPU seconds, validated on the 5 held-out of ``crops`` generated
    ``ccta`` crops (96x96x80 around the heart, ``make-phantoms --kind ccta --crop 96 96 80``, seed 500).

    Args:
        full: ``0``: trained on the other crops; ``N``: trained on ``N`` full-size ``ccta`` cases of ``shape`` (seeds
            100 to 100 + N - 1, never the benchmark's cases), so that it has seen lungs, spine and abdomen.

    Returns:
        path of the run's ``model.pt`` (cached: an existing one is reused).
    """
    run = folder / (f"network_full{full}_{budget_s:.0f}s" if full else f"network_ccta{crops}_{budget_s:.0f}s")
    if (run / "model.pt").exists():
        return run / "model.pt"
    from pipeline.io import write_json
    from pipeline.phantoms import CCTAConfig, write_phantom_dataset
    from pipeline.workflows.bundle import train_bundle

    data = crops_dir = folder / f"ccta_crops_{crops}"
    if not (crops_dir / "dataset.json").exists():
        print(f"generating {crops} ccta crops in {crops_dir}", file=sys.stderr, flush=True)
        write_phantom_dataset(crops_dir, crops, CCTAConfig(crop=(96, 96, 80)), seed=500)
    if full:
        validation = json.loads((crops_dir / "dataset.json").read_text())["validation"]
        data = folder / f"ccta_full_{full}"
        data.mkdir(parents=True, exist_ok=True)
        print(f"generating {full} full-size ccta cases in {data}", file=sys.stderr, flush=True)
        write_json(data / "dataset.json", {
            "training": [make_case(shape, 100 + i, data) for i in range(full)],
            "validation": [{k: str((crops_dir / v).resolve()) for k, v in e.items()} for e in validation],
        })
    print(f"training the bundle's network for {budget_s:.0f} CPU s into {run}", file=sys.stderr, flush=True)
    result = train_bundle(
        run, {"dataset_dir": str(data), "epochs": 1000, "mlflow": False, "existing": "replace"}, time_budget=budget_s
    )
    (run / "summary.txt").write_text(
        f"best validation Dice {result.best_metric:.4f} at epoch {result.best_epoch}, {result.seconds:.0f} s\n"
    )
    return run / "model.pt"


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident peak) of this process, from ``/proc/self/status``, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> None:
    """Start the resident peak (``VmHWM``) afresh at the current resident size (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


#: inferer settings of each method of ours (``plain`` and ``plain-bf16`` are MONAI's function)
OURS = {
    "ours": {"precision": CONFIG.get("precision", "auto")},
    "ours-fp32": {"precision": "float32"},
    "ours-nolocator": {"precision": "float32", "locator": None},
}


def our_inferer(method: str):
    from pipeline.inference import CandidateSlidingWindowInferer

    return CandidateSlidingWindowInferer(ROI, SW_BATCH, OVERLAP, hu_window=HU_WINDOW, spacing=PIXDIM, **OURS[method])


def worker(method: str, image_npy: Path, weights: Path, out: Path) -> None:
    """One inference in this process; prints a JSON line with the seconds, memory peaks and window counts."""
    from monai.inferers import sliding_window_inference

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    network = network_def()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval()
    image = torch.from_numpy(np.load(image_npy))[None, None]
    _reset_peak()
    before = _status_mb("VmRSS")
    stats = {}
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        if method == "plain":
            logits = sliding_window_inference(image, ROI, SW_BATCH, network, OVERLAP)
        elif method == "plain-bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = sliding_window_inference(image, ROI, SW_BATCH, network, OVERLAP)
        else:
            inferer = our_inferer(method)
            logits = inferer(image, network)
            stats = {"windows": inferer.stats.windows, "run": inferer.stats.run, "heart": inferer.stats.heart,
                     "precision": inferer.stats.precision}
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _status_mb("VmHWM")
    np.save(out, np.packbits(logits[0, 0].float().numpy() > 0))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak, "before_mb": before, **stats}))


def _run_worker(method: str, image_npy: Path, weights: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(image_npy), str(weights), str(out)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def _prediction(packed: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A binary prediction a worker saved (``np.packbits`` of the flattened mask)."""
    return np.unpackbits(np.load(packed))[: math.prod(shape)].reshape(shape).astype(bool)


def _region_mask(method: str, image: np.ndarray) -> np.ndarray:
    """Where ``method`` runs the network on the preprocessed ``image`` (its candidate region, at voxel resolution)."""
    region, _ = our_inferer(method).candidate_region(torch.from_numpy(image)[None, None])
    return region.voxel_mask((0, 0, 0), image.shape).numpy()


def agreement(cases: list[tuple[Path, Path]], methods: list[str], folder: Path) -> None:
    """Print, from the predictions an earlier run saved, per case: Dice between each of our methods and plain inside
    our region, and plain's positives outside it (how many, their share of plain's positives, the share above 500 HU
    and below 100 HU on the inference window, and the labelled voxels there)."""
    ours = [m for m in methods if m in OURS]
    print("| case | " + " | ".join(f"Dice vs plain inside the region, {m}" for m in ours)
          + " | plain's positives outside the region (share) | of those > 500 HU / < 100 HU | label voxels there |")
    print("| --- |" + " --- |" * len(ours) + " ---: | --- | ---: |")
    for image_npy, label_npy in cases:
        image, label = np.load(image_npy), np.load(label_npy).astype(bool)
        preds = {}
        for method in ["plain", *ours]:
            packed = folder / f"{image_npy.stem}_{method}.npy"
            if not packed.exists():
                raise SystemExit(f"no saved prediction {packed}: run the benchmark with --methods {','.join(methods)} first")
            preds[method] = _prediction(packed, label.shape)
        inside = _region_mask(ours[0], image)
        outside = preds["plain"] & ~inside
        hu = HU_WINDOW[0] + image[outside] * (HU_WINDOW[1] - HU_WINDOW[0])
        dice = " | ".join(f"{_dice(preds[m] & inside, preds['plain'] & inside):.4f}" for m in ours)
        print(f"| {image_npy.stem.replace('_input', '')} | {dice} | {int(outside.sum()):,} "
              f"({outside.sum() / max(preds['plain'].sum(), 1):.0%}) | {(hu > 500).mean():.0%} / {(hu < 100).mean():.0%} | "
              f"{int((label & ~inside).sum())} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 224])
    parser.add_argument("--crops", type=int, default=24, help="generated ccta crops the network is trained on")
    parser.add_argument("--train-budget", type=float, default=600.0, help="CPU seconds of bundle training")
    parser.add_argument(
        "--train-full", type=int, default=0,
        help="train the network on this many full-size ccta cases instead of the crops (0: the crops)",
    )
    parser.add_argument(
        "--methods", default="plain,ours",
        help="comma-separated: plain, ours (default settings), ours-nolocator (intensities only), "
        "ours-largest (keep_largest=True)",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_inference"))
    parser.add_argument("--prepare", action="store_true", help="only make the cases and the network")
    parser.add_argument(
        "--agreement", action="store_true",
        help="from the predictions a run saved: where ours and plain differ (inside the region, plain's positives outside)",
    )
    args = parser.parse_args()
    folder = args.out / f"ccta_{'x'.join(map(str, args.shape))}"
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)

    weights = train_network(args.out, args.crops, args.train_budget, args.train_full, shape)
    print(f"making {args.cases} cases ({shape}) in {folder}", file=sys.stderr, flush=True)
    cases = [preprocess(make_case(shape, i, folder), folder) for i in range(args.cases)]
    if args.prepare:
        return

    methods = args.methods.split(",")
    if methods[0] != "plain" or any(m not in ("plain", "plain-bf16", *OURS) for m in methods):
        raise SystemExit(f"--methods must begin with plain; choices: plain, plain-bf16, {', '.join(OURS)}")
    if args.agreement:
        agreement(cases, methods, folder)
        return
    print(f"\nnetwork: the bundle's {CONFIG['network_def']['channels']} UNet trained on "
          f"{f'{args.train_full} full-size ccta cases' if args.train_full else f'{args.crops} ccta crops'} "
          f"({(weights.parent / 'summary.txt').read_text().strip()}); window {ROI}, overlap {OVERLAP}, sw_batch_size "
          f"{SW_BATCH}, {os.environ.get('BENCH_THREADS', '2')} threads; load average before: "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print("| case | method | wall s | wall speed-up | CPU s | CPU speed-up | Dice vs plain | Dice vs label | "
          "label voxels outside region | windows run | peak RSS MB | peak minus plain's MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows: dict[str, list[tuple[float, float, float, float, int]]] = {}
    for image_npy, label_npy in cases:
        label = np.load(label_npy).astype(bool)
        results, preds = {}, {}
        for method in methods:
            out = folder / f"{image_npy.stem}_{method}.npy"
            results[method] = _run_worker(method, image_npy, weights, out)
            preds[method] = _prediction(out, label.shape)
        plain = results["plain"]
        for method in methods:
            r = results[method]
            wall, cpu = plain["seconds"] / r["seconds"], plain["cpu_seconds"] / r["cpu_seconds"]
            agree, memory = _dice(preds[method], preds["plain"]), r["peak_mb"] - plain["peak_mb"]
            lost, windows = "", "all"
            if method in OURS:
                lost = int((label & ~_region_mask(method, np.load(image_npy))).sum())
                windows = f"{r['run']}/{r['windows']}"
            if method != "plain":
                rows.setdefault(method, []).append((wall, cpu, agree, memory, lost or 0))
            print(f"| {image_npy.stem.replace('_input', '')} | {method} | {r['seconds']:.1f} | {wall:.2f} | "
                  f"{r['cpu_seconds']:.1f} | {cpu:.2f} | {agree:.4f} | {_dice(preds[method], label):.3f} | {lost} | "
                  f"{windows} | {r['peak_mb']:.0f} | {memory:+.0f} |", flush=True)
    print(f"\nload average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    for method, values in rows.items():
        wall, cpu, agree, memory, lost = (np.asarray(v) for v in zip(*values))
        print(f"**{method}: {wall.min():.2f}-{wall.max():.2f}x faster in wall time, {cpu.min():.2f}-{cpu.max():.2f}x in "
              f"CPU time; Dice with plain >= {agree.min():.4f}; peak memory {memory.max():+.0f} MB vs plain's at most; "
              f"label voxels outside the region: {int(lost.max())} at most**  ")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
