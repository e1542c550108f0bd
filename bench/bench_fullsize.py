"""Training on full-size ``ccta`` volumes through the bundle (``train.json`` with the dataset's ``plan.json``): set-up,
time per epoch (first and later), validation time and peak memory, for each ``cache`` asked for.

Each variant is one ``train_bundle`` run (what ``vessel-pipeline train`` runs) in its own process, on the first
``--train`` training and ``--val`` validation volumes of ``DATASET_DIR/dataset.json``, with a fresh run folder and an
empty disk cache. Printed as markdown:

- set-up: seconds to build the training dataset (``cache=ram`` preprocesses every volume here; ``auto`` measures one
  volume to decide) and the validation dataset (the bundle keeps its whole volumes in RAM);
- epoch 1 and the later epochs (mean): wall seconds of the training part (the epoch without its validation) and of
  each validation (sliding-window inference and metrics of the whole validation volumes);
- peak memory: the worker process's ``ru_maxrss`` (= ``VmHWM``) and the peak of the summed resident memory of the
  worker and its loader processes, sampled every 0.5 s (pages shared after ``fork`` are counted once per process,
  so the sum is an upper bound);
- the size of the disk cache, and the one line ``cache=auto`` logs to say what it chose and why.

Run (the data: ``vessel-pipeline make-phantoms --kind ccta --num 101 --split 100 1 0 --out D`` and
``vessel-pipeline plan --dataset-dir D``; see docs/benchmarks.md for the commands measured)::

    nice -n 10 .venv/bin/python bench/bench_fullsize.py --dataset-dir D --train 4 --val 1 --epochs 4 --val-interval 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]


def _make_case(folder: str, i: int, seed: int) -> None:
    """Case ``i`` exactly as ``make-phantoms --kind ccta --seed SEED`` writes it (drawn from ``default_rng([seed, i])``),
    each file written under a temporary name and renamed, the label last."""
    import numpy as np

    from pipeline.phantoms import CCTAConfig, make_ccta_phantom, write_nifti

    p = make_ccta_phantom(CCTAConfig(), np.random.default_rng([seed, i]))
    for key, array in (("image", p.image), ("label", p.label)):
        final = Path(folder) / f"coronary_{i:03d}_{key}.nii.gz"
        write_nifti(array, p.affine, final.with_name(f".tmp_{final.name}"))
        os.replace(final.with_name(f".tmp_{final.name}"), final)


def ensure_ccta_cases(folder: Path, n: int, seed: int = 0, jobs: int = 1) -> None:
    """``n`` full-size ``ccta`` cases in ``folder`` (the last one for validation), generating only the missing ones in
    ``jobs`` processes, so a rerun reuses them: the same files as ``make-phantoms --kind ccta --num N --split N-1 1 0
    --seed SEED``."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(n) if not (folder / f"coronary_{i:03d}_label.nii.gz").is_file()]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done, _ in enumerate(pool.map(_make_case, [str(folder)] * len(missing), missing, [seed] * len(missing))):
            print(f"generated {done + 1}/{len(missing)} missing cases", file=sys.stderr, flush=True)
    entries = [{"image": f"./coronary_{i:03d}_image.nii.gz", "label": f"./coronary_{i:03d}_label.nii.gz"} for i in range(n)]
    content = {"name": "SyntheticCoronary", "labels": {"0": "background", "1": "vessel"}, "modality": {"0": "CT"},
               "generator": {"kind": "ccta", "seed": seed}, "training": entries[:-1], "validation": entries[-1:], "test": []}
    (folder / "dataset.json").write_text(json.dumps(content, indent=1))


def subset_datalist(dataset_dir: Path, n_train: int, n_val: int, out: Path) -> Path:
    """A datalist of the first ``n_train`` training and ``n_val`` validation items of ``dataset.json`` (absolute
    paths)."""
    content = json.loads((dataset_dir / "dataset.json").read_text())
    lists = {}
    for split, n in (("training", n_train), ("validation", n_val)):
        items = content[split][:n]
        if len(items) < n:
            raise SystemExit(f"{dataset_dir}/dataset.json has {len(items)} {split} items, {n} asked for")
        lists[split] = [{k: str((dataset_dir / v).resolve()) for k, v in item.items()} for item in items]
    path = out / f"datalist_{n_train}_{n_val}.json"
    path.write_text(json.dumps(lists, indent=1))
    return path


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (loader workers end with each epoch)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _now() -> tuple[float, float]:
    return time.perf_counter(), _cpu()


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def worker(spec: dict) -> None:
    """One training run through the bundle, timed by Ignite handlers; prints a JSON line."""
    from ignite.engine import Events
    from monai.engines.utils import IterationEvents

    from pipeline.workflows import train_bundle

    reasons: list[str] = []

    class Reasons(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reasons.append(record.getMessage())

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("ignite", "monai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("pipeline.data.caching").addHandler(Reasons())
    r: dict = {"epoch_starts": [], "validations": [], "inference": []}

    def attach(workflow) -> None:
        get = workflow.parser.get_parsed_content
        start = _now()
        get("train#dataset")
        middle = _now()
        get("validate#dataset")
        end = _now()
        r["setup_train"] = [b - a for a, b in zip(start, middle)]
        r["setup_val"] = [b - a for a, b in zip(middle, end)]
        trainer, evaluator = get("train#trainer"), get("validate#evaluator")
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: r["epoch_starts"].append(_now()))
        trainer.add_event_handler(Events.COMPLETED, lambda e: r.__setitem__("end", _now()))
        trainer.add_event_handler(Events.STARTED, lambda e: r.__setitem__("steps_per_epoch", e.state.epoch_length))
        if spec.get("max_steps"):
            trainer.add_event_handler(Events.ITERATION_COMPLETED(once=spec["max_steps"]), lambda e: e.terminate())
        evaluator.add_event_handler(Events.STARTED, lambda e: r["validations"].append([_now(), None]))
        evaluator.add_event_handler(Events.COMPLETED, lambda e: r["validations"][-1].__setitem__(1, _now()))
        # the sliding-window inference alone: from a loaded batch to MONAI's FORWARD_COMPLETED
        evaluator.add_event_handler(Events.GET_BATCH_COMPLETED, lambda e: r.__setitem__("batch", _now()))
        evaluator.add_event_handler(IterationEvents.FORWARD_COMPLETED, lambda e: r["inference"].append(
            [b - a for a, b in zip(r["batch"], _now())]))

    try:
        best = train_bundle(spec["out"], spec["overrides"], before_run=attach).best_metric
    except TypeError:  # a run ended by --max-steps before its first checkpoint has no weights to report
        if not spec.get("max_steps") or "end" not in r:
            raise
        best = float("nan")
    bounds = r["epoch_starts"] + [r["end"]]
    epochs = []
    for a, b in zip(bounds, bounds[1:]):
        val = [sum(e[k] - s[k] for s, e in r["validations"] if a[0] <= s[0] < b[0]) for k in (0, 1)]
        epochs.append({"train_s": b[0] - a[0] - val[0], "val_s": val[0], "train_cpu": b[1] - a[1] - val[1], "val_cpu": val[1]})
    print(json.dumps({
        "setup_train": r["setup_train"], "setup_val": r["setup_val"], "epochs": epochs,
        "steps_per_epoch": r.get("steps_per_epoch"), "inference": r["inference"], "reasons": reasons, "best_dice": best,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "vm_hwm": _vm_hwm(),
        "children_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }))


def run_variant(spec: dict, log: Path) -> dict:
    """Run :func:`worker` in a child process, sampling its process tree's resident memory."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], stdout=subprocess.PIPE,
                                stderr=err, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        peak = [0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                time.sleep(0.5)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        out, _ = proc.communicate()
        thread.join()
    if proc.returncode:
        raise RuntimeError(f"{spec['cache']} failed, see {log}:\n" + log.read_text()[-3000:])
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak"] = peak[0]
    return result


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f}"


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True, help="full-size ccta volumes with dataset.json and plan.json")
    parser.add_argument("--train", type=int, default=4, help="training volumes (the first of the training list)")
    parser.add_argument("--val", type=int, default=1, help="validation volumes")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--val-interval", type=int, default=2, help="more than --epochs: no validation")
    parser.add_argument("--cache", nargs="+", default=["auto"], choices=("auto", "ram", "disk", "none"))
    parser.add_argument("--cache-memory-gb", type=float, default=None, help="the budget of cache=auto (default: half the available memory)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--num-samples", type=int, default=None, help="patches per volume per epoch (default: the plan's)")
    parser.add_argument("--loss", default=None, help="loss preset (default: the bundle's)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_fullsize"))
    parser.add_argument("--max-steps", type=int, default=None,
                        help="end the run after this many training steps (a part of the first epoch: its cost per step)")
    parser.add_argument("--keep-cache", action="store_true", help="keep the disk cache of an earlier run (a second run sharing it)")
    parser.add_argument("--make", type=int, default=None, metavar="N",
                        help="first make sure DATASET_DIR holds N ccta cases (N-1 training, 1 validation; only the "
                        "missing ones are generated) and exit")
    parser.add_argument("--jobs", type=int, default=2, help="processes that generate cases (--make)")
    args = parser.parse_args()
    dataset = args.dataset_dir.resolve()
    if args.make is not None:
        ensure_ccta_cases(dataset, args.make, jobs=args.jobs)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    datalist = subset_datalist(dataset, args.train, args.val, args.out)
    plan = json.loads((dataset / "plan.json").read_text()) if (dataset / "plan.json").is_file() else {}
    shapes = [json.loads(datalist.read_text())["training"][0]["image"]]
    import nibabel as nib

    shape = "x".join(map(str, nib.load(shapes[0]).shape))
    print(f"{args.train} training + {args.val} validation volumes of {dataset} (first: {shape}); plan: patch "
          f"{plan.get('patch_size')}, batch {plan.get('batch_size')}, {args.num_samples or plan.get('num_samples')} "
          f"patches per volume, pixdim {plan.get('pixdim')}; {args.epochs} epochs, validation every "
          f"{args.val_interval}, {args.workers} loader workers, loss {args.loss or 'the bundle default'}; "
          f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.1f}\n")
    rows, notes = [], []
    for cache in args.cache:
        run_dir, cache_dir = args.out / f"run_{cache}", args.out / "cache"
        shutil.rmtree(run_dir, ignore_errors=True)
        if not args.keep_cache:
            shutil.rmtree(cache_dir, ignore_errors=True)
        overrides = {
            "dataset_dir": str(dataset), "datalist": str(datalist), "epochs": args.epochs,
            "val_interval": args.val_interval, "cache": cache, "cache_dir": str(cache_dir), "num_workers": args.workers,
            "mlflow": False, "progress": False, "device": "$torch.device('cpu')",
        }
        if args.cache_memory_gb is not None:
            overrides["cache_memory_gb"] = args.cache_memory_gb
        if args.num_samples is not None:
            overrides["num_samples"] = args.num_samples
        if args.loss is not None:
            overrides["loss_preset"] = args.loss
        load = os.getloadavg()[0]
        spec = {"cache": cache, "out": str(run_dir), "overrides": overrides, "max_steps": args.max_steps}
        r = run_variant(spec, args.out / f"run_{cache}{'_again' if args.keep_cache else ''}.log")
        epochs = r["epochs"]
        later = epochs[1:] or epochs
        vals = [(e["val_s"], e["val_cpu"]) for e in epochs if e["val_s"] > 0]
        chosen = next((line.split(": ")[-1] for line in r["reasons"] if line.startswith("cache=")), cache)

        def pair(wall: float, cpu: float) -> str:
            return f"{wall:.0f} ({cpu:.0f})"

        rows.append(
            f"| {cache} | {chosen.split(' in /')[0]} | {pair(*r['setup_train'])} / {pair(*r['setup_val'])} | "
            f"{pair(epochs[0]['train_s'], epochs[0]['train_cpu'])} | "
            f"{pair(*[sum(e[k] for e in later) / len(later) for k in ('train_s', 'train_cpu')])} | "
            f"{r['steps_per_epoch']} | {pair(*[sum(v[k] for v in vals) / len(vals) for k in (0, 1)]) if vals else '-'} | "
            f"{_gb(r['vm_hwm'])} | {_gb(r['tree_peak'])} | {_gb(_du(cache_dir))} | {load:.1f} |"
        )
        notes += [f"- {cache}: {line}" for line in r["reasons"]]
        notes.append(f"- {cache}: epochs, wall (CPU) seconds of training / validation: "
                     + ", ".join(f"{pair(e['train_s'], e['train_cpu'])} / {pair(e['val_s'], e['val_cpu'])}" for e in epochs)
                     + f"; of each validation, sliding-window inference of the volumes: "
                     + ", ".join(pair(*i) for i in r["inference"]) + f"; best validation Dice {r['best_dice']:.3f}")
        if args.max_steps:
            notes.append(f"- {cache}: ended after {args.max_steps} of the first epoch's {r['steps_per_epoch']} steps: "
                         f"{pair(epochs[0]['train_s'] / args.max_steps, epochs[0]['train_cpu'] / args.max_steps)} s per step")
        print(f"done {cache}", file=sys.stderr, flush=True)
    print("Seconds are wall (CPU: the worker's and its finished loader workers')\n")
    print("| cache | chosen | set-up s (training / validation data) | epoch 1 training s | later epochs training s "
          "(mean) | steps per epoch | validation s (mean) | peak RSS GB (VmHWM) | peak RSS GB (with loader workers) | "
          "disk cache GB | load average |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print()
    print("\n".join(notes))
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        main()
