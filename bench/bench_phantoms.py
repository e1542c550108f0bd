"""Benchmark and realism report of the phantom generators: speed at full size, amounts and tree statistics against
published ranges, and how far a single global HU threshold gets on each kind.

Run: ``nice .venv/bin/python bench/bench_phantoms.py`` (about 3 minutes on a free 2-core machine). Prints, as markdown:

1. speed: seconds to render one full-size ``ccta`` case (512x512x224-288, one process; median of 3), the seconds to
   write it as ``.nii.gz``, and MONAI's ``create_test_image_3d`` (spheres and noise) on the same grid in the same run
   as the baseline, with the ratio; the load average is printed so a loaded machine is visible;
2. amounts: the lumen share of the full volume (voxels counted on the rendered cases, and from the centrelines of 20
   drawn cases), against 0.03-0.3 %;
3. trees over 20 cases: proximal diameters of LM/LAD/LCX/RCA (Dodge et al. 1992), distal diameters, lengths, number
   of branches, dominance;
4. the best global threshold Dice (searched on the label) on full-size ``ccta`` cases, on 20 ``ccta`` crops
   (96x96x80, the kind of ``data_samples/``) and on 20 ``tubes`` cases (96x96x64, the old ``data_samples/``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.phantoms import (  # noqa: E402
    CCTAConfig,
    PhantomConfig,
    best_threshold_dice,
    make_ccta_phantom,
    make_phantom,
    write_nifti,
)
from pipeline.phantoms.ccta import draw_ccta_case  # noqa: E402

#: published means +- SD (mm) of the proximal lumen diameter, Dodge et al. 1992 (right-dominant men)
DODGE = {"LM": (4.5, 0.5), "LAD": (3.7, 0.4), "LCX": (3.4, 0.5), "RCA": (3.9, 0.6)}


def _summary(values, digits: int = 2) -> str:
    v = np.asarray(list(values), float)
    f = f".{digits}f"
    return f"{np.mean(v):{f}} ± {np.std(v):{f}} (min {np.min(v):{f}}, max {np.max(v):{f}}, n={len(v)})"


def speed(repeats: int) -> list:
    from monai.data import create_test_image_3d

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    cases, seconds, cpu = [], [], []
    for i in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        p = make_ccta_phantom(CCTAConfig(), np.random.default_rng([2026, i]))
        seconds.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        cases.append(p)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_nifti(cases[0].image, cases[0].affine, Path(tmp) / "image.nii.gz")
        write_nifti(cases[0].label, cases[0].affine, Path(tmp) / "label.nii.gz")
        write_s = time.perf_counter() - t
    shape = cases[0].image.shape
    base, base_cpu = [], []
    for i in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        create_test_image_3d(*shape, num_objs=12, rad_max=60, noise_max=0.2, random_state=np.random.RandomState(i))
        base.append(time.perf_counter() - t)
        base_cpu.append(time.process_time() - c)
    med, med_base = statistics.median(seconds), statistics.median(base)
    print("| step (one process) | wall seconds, median of %d | CPU seconds, median |" % repeats)
    print("| --- | --- | --- |")
    print(f"| `make_ccta_phantom`, full size {shape} | {med:.1f} (all: {', '.join(f'{s:.1f}' for s in seconds)}) "
          f"| {statistics.median(cpu):.1f} |")
    print(f"| write image + label `.nii.gz` (one case) | {write_s:.1f} | |")
    print(f"| MONAI `create_test_image_3d` on the same grid (baseline) | {med_base:.1f} | {statistics.median(base_cpu):.1f} |")
    print(f"\nratio ccta / MONAI baseline (wall): {med / med_base:.2f}; load average after: {os.getloadavg()[0]:.2f}\n")
    return cases


def amounts(cases: list, n_cases: int) -> list:
    print("| lumen share of the full volume | value |")
    print("| --- | --- |")
    for p in cases:
        print(f"| rendered {p.image.shape}, spacing {p.meta['spacing']} | {100 * p.label.mean():.3f} % "
              f"({int(p.label.sum())} voxels) |")
    drawn = [draw_ccta_case(CCTAConfig(), np.random.default_rng([2027, i])) for i in range(n_cases)]
    shares = [100 * c.lumen_volume_mm3() / float(np.prod(np.asarray(c.shape) * np.asarray(c.spacing))) for c in drawn]
    below = sum(x < 0.03 for x in shares)
    print(f"| {n_cases} drawn cases, from the centrelines | {_summary(shares, 3)} %; {below} below 0.03 % |")
    print("| published range asked for | 0.03-0.3 % |\n")
    return drawn


def _tree_of(vessel, arteries) -> str:
    """Name of the ostial artery (LM or RCA) a vessel descends from."""
    by = {v.name: v for v in arteries}
    while vessel.parent is not None:
        vessel = by[vessel.parent]
    return vessel.name


def trees(drawn: list) -> None:
    print("| measure (mm) | this generator | published |")
    print("| --- | --- | --- |")
    for name, (mean, sd) in DODGE.items():
        d = [2 * next(v for v in c.arteries if v.name == name).radii[0] for c in drawn]
        print(f"| proximal diameter {name} | {_summary(d)} | {mean} ± {sd} (Dodge 1992) |")
    distal = [2 * v.radii[-1] for c in drawn for v in c.arteries if v.name not in ("LM", "LCX", "RCA")]
    print(f"| distal diameter (ends of all branches) | {_summary(distal)} | < 1 (CT-visible ends) |")
    lm = [next(v for v in c.arteries if v.name == "LM").length for c in drawn]
    print(f"| LM length | {_summary(lm)} | 10.5 ± 5.3 (Medrano-Gracia 2016) |")
    for name in ("LAD", "LCX", "RCA"):
        print(f"| {name} length | {_summary(next(v for v in c.arteries if v.name == name).length for c in drawn)} | |")
    left = [sum(v.length for v in c.arteries if _tree_of(v, c.arteries) == "LM") for c in drawn]
    right = [sum(v.length for v in c.arteries if _tree_of(v, c.arteries) == "RCA") for c in drawn]
    print(f"| left tree total length | {_summary(left)} | |")
    print(f"| right tree total length | {_summary(right)} | |")
    print(f"| arteries (named branches) per case | {_summary(len(c.arteries) for c in drawn)} | |")
    print(f"| lesions per case | {_summary(sum(les.grade >= 0.25 for les in c.lesions) for c in drawn)} | |")
    dominance = Counter(c.info["dominance"] for c in drawn)
    print(f"| dominance right/left/co | {dominance['right']}/{dominance['left']}/{dominance['co']} | 80-85 / 7-10 / 7-10 % |\n")


def thresholds(cases: list, n_cases: int) -> None:
    print("| data | best global threshold Dice, per case |")
    print("| --- | --- |")
    print(f"| ccta full size | {_summary(best_threshold_dice(p.image, p.label)[0] for p in cases)} |")
    crops = (make_ccta_phantom(CCTAConfig(crop=(96, 96, 80)), np.random.default_rng([2028, i])) for i in range(n_cases))
    print(f"| ccta crops 96x96x80 | {_summary(best_threshold_dice(p.image, p.label)[0] for p in crops)} |")
    tubes = (make_phantom(PhantomConfig(), np.random.default_rng([2029, i])) for i in range(n_cases))
    print(f"| tubes 96x96x64 | {_summary(best_threshold_dice(p.image, p.label)[0] for p in tubes)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="full-size cases rendered (median of their times)")
    parser.add_argument("--cases", type=int, default=20, help="cases drawn for the statistics")
    parser.add_argument("--speed-only", action="store_true", help="only part 1")
    args = parser.parse_args()
    cases = speed(args.repeats)
    if args.speed_only:
        return
    drawn = amounts(cases, args.cases)
    trees(drawn)
    thresholds(cases, args.cases)


if __name__ == "__main__":
    main()
