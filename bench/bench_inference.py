"""Full-size inference: MONAI's plain ``sliding_window_inference`` against :class:`CandidateSlidingWindowInferer`.

Run: ``nice -n 10 .venv/bin/python bench/bench_inference.py`` (about 15 minutes on a loaded 2-core machine; cases and
the trained network are cached in ``--out`` and reused). Prints, as markdown, per case: seconds of each, the ratio,
Dice between the two binary predictions, each one's Dice against the label, the label voxels outside the candidate
region, windows run, and the resident memory of each before and at its peak during inference (separate
processes; the peak is reset with ``/proc/self/clear_refs`` after loading and read from ``VmHWM``).

Both use the bundle's network (``inference.json``'s ``network_def``), window, overlap and sliding-window batch, on the
same preprocessed volume (the bundle's inference chain: RAS, spacing, HU window, body crop); each runs in its own
process, so memory peaks are not shared. The network is trained here for a few hundred steps on two other cases of
the same kind (it must say "background" where there is no vessel for the comparison to mean anything).

Cases: ``--kind ccta`` (:func:`pipeline.phantoms.make_ccta_phantom`, full-size anatomy at the bundle's spacing) or
``--kind thorax`` (``bench/thorax_volumes.py``: body, lungs, heart, aorta, spine and coronary-like trees).
"""

from __future__ import annotations

import argparse
import json
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


def make_case(kind: str, shape: tuple[int, int, int], seed: int, folder: Path) -> dict[str, str]:
    """Write one case as NIfTI (unless there) and return its datalist entry."""
    from pipeline.phantoms import write_nifti

    image, label = folder / f"{kind}_{seed:04d}_image.nii.gz", folder / f"{kind}_{seed:04d}_label.nii.gz"
    if not label.exists():
        if kind == "ccta":
            from pipeline.phantoms import CCTAConfig, make_ccta_phantom

            phantom = make_ccta_phantom(CCTAConfig(shape=shape, spacing=PIXDIM), np.random.default_rng(seed))
            img, lab, affine = phantom.image, phantom.label, phantom.affine
        else:
            from thorax_volumes import make_thorax_case

            img, lab, affine = make_thorax_case(shape=shape, spacing=PIXDIM, seed=seed)
        write_nifti(img, affine, image)
        write_nifti(lab, affine, label)
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


def train_network(cases: list[tuple[Path, Path]], steps: int, path: Path) -> None:
    """A few hundred Adam steps (cosine-annealed) on patches centred on vessel, on bright non-vessel and on random
    voxels, 4 per step."""
    if path.exists():
        return
    from pipeline.losses import create_loss_function

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    network, loss_fn = network_def(), create_loss_function("default_segmentation")
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    volumes = [(np.load(i), np.load(lab)) for i, lab in cases]
    pools = [(np.argwhere(lab > 0), np.argwhere(img > 0.55)) for img, lab in volumes]
    half = np.asarray(ROI) // 2
    for step in range(steps):
        xs, ys = [], []
        for b in range(4):
            c = rng.integers(len(volumes))
            img, lab = volumes[c]
            kind = b % 3
            if kind == 2:
                centre = np.asarray([rng.integers(s) for s in img.shape])
            else:
                pool = pools[c][kind]
                centre = pool[rng.integers(len(pool))]
            lo = np.clip(centre - half, 0, np.asarray(img.shape) - ROI)
            box = tuple(slice(a, a + r) for a, r in zip(lo, ROI))
            xs.append(img[box])
            ys.append(lab[box])
        x = torch.from_numpy(np.stack(xs)[:, None])
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32))
        loss = loss_fn(network(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0:
            print(f"  training step {step}: loss {loss.item():.3f}", file=sys.stderr, flush=True)
    torch.save(network.state_dict(), path)


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident peak) of this process, from ``/proc/self/status``, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> None:
    """Start the resident peak (``VmHWM``) afresh at the current resident size (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def worker(method: str, image_npy: Path, weights: Path, out: Path) -> None:
    """One inference in this process; prints a JSON line with the seconds, memory peaks and window counts."""
    from monai.inferers import sliding_window_inference

    from pipeline.inference import CandidateSlidingWindowInferer

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
        else:
            inferer = CandidateSlidingWindowInferer(
                ROI, SW_BATCH, OVERLAP, hu_window=HU_WINDOW, keep_largest="largest" in method
            )
            if "bf16" in method:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = inferer(image, network)
            else:
                logits = inferer(image, network)
            stats = {"windows": inferer.stats.windows, "run": inferer.stats.run, "region": inferer.stats.region_fraction}
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.save(out, np.packbits(logits[0, 0].float().numpy() > 0))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mb": _status_mb("VmHWM"), "before_mb": before, **stats}))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["thorax", "ccta"], default="ccta")
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 224])
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument(
        "--methods", default="plain,ours,ours-largest",
        help="comma-separated: plain, ours (default settings), ours-largest (keep_largest=True), "
        "ours-bf16 / ours-largest-bf16 (under CPU autocast to bfloat16)",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_inference"))
    args = parser.parse_args()
    folder = args.out / f"{args.kind}_{'x'.join(map(str, args.shape))}"
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)

    print(f"making {args.cases} + 2 cases ({args.kind}, {shape}) in {folder}", file=sys.stderr, flush=True)
    train = [preprocess(make_case(args.kind, shape, 1000 + i, folder), folder) for i in range(2)]
    weights = folder / f"network_{args.train_steps}.pt"
    train_network(train, args.train_steps, weights)
    cases = [preprocess(make_case(args.kind, shape, i, folder), folder) for i in range(args.cases)]

    methods = args.methods.split(",")
    if methods[0] != "plain":
        raise SystemExit("--methods must begin with plain (the baseline)")
    print(f"\nwindow {ROI}, overlap {OVERLAP}, sw_batch_size {SW_BATCH}, network {CONFIG['network_def']['channels']}, "
          f"{os.environ.get('BENCH_THREADS', '2')} threads, load average before: {os.getloadavg()[0]:.1f}\n")
    print("| case | input shape | method | wall s | wall ratio | CPU s | CPU ratio | Dice vs plain | Dice vs plain in region | "
          "Dice vs label | lumen outside region | windows run | RSS before MB | peak RSS during inference MB |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    from pipeline.inference import CandidateRegion, CandidateSlidingWindowInferer

    summary: dict[str, list[tuple[float, float, float, float]]] = {}
    for image_npy, label_npy in cases:
        label = np.load(label_npy).astype(bool)
        results, preds = {}, {}
        for method in methods:
            out = folder / f"{image_npy.stem}_{method}.npy"
            results[method] = _run_worker(method, image_npy, weights, out)
            preds[method] = np.unpackbits(np.load(out))[: label.size].reshape(label.shape).astype(bool)
        lost, inside = "", ""
        for method in methods:
            r = results[method]
            ratio = results["plain"]["seconds"] / r["seconds"]
            cpu_ratio = results["plain"]["cpu_seconds"] / r["cpu_seconds"]
            agree = _dice(preds[method], preds["plain"])
            if method != "plain":
                growth = (r["peak_mb"] - r["before_mb"]) - (results["plain"]["peak_mb"] - results["plain"]["before_mb"])
                summary.setdefault(method, []).append((ratio, cpu_ratio, agree, growth))
                ours = CandidateSlidingWindowInferer(ROI, hu_window=HU_WINDOW, keep_largest="largest" in method)
                region = CandidateRegion.from_image(
                    torch.from_numpy(np.load(image_npy)), ours.low, ours.high, ours.margin, ours.block, ours.keep_largest
                ).voxel_mask((0, 0, 0), label.shape).numpy()
                lost = str(int((label & ~region).sum()))
                inside = f"{_dice(preds[method] & region, preds['plain'] & region):.4f}"
            windows = f"{r['run']}/{r['windows']}" if "run" in r else "all"
            print(f"| {image_npy.stem.replace('_input', '')} | {'x'.join(map(str, label.shape))} | {method} | "
                  f"{r['seconds']:.1f} | {ratio:.2f} | {r['cpu_seconds']:.1f} | {cpu_ratio:.2f} | {agree:.4f} | {inside} | "
                  f"{_dice(preds[method], label):.3f} | {lost} | {windows} | {r['before_mb']:.0f} | {r['peak_mb']:.0f} |", flush=True)
    print()
    for method, rows in summary.items():
        wall, cpu, agree, memory = (np.asarray(v) for v in zip(*rows))
        print(f"**{method}: {wall.min():.2f}-{wall.max():.2f}x faster in wall time (CPU time {cpu.min():.2f}-"
              f"{cpu.max():.2f}x), Dice with plain >= {agree.min():.4f}, memory growth during inference minus "
              f"plain's {memory.max():+.0f} MB at most**  ")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
