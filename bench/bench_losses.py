"""Forward+backward time, peak memory and agreement of our losses with MONAI's, on a (2, 1, 96, 96, 96) CPU batch.

Run: ``.venv/bin/python bench/bench_losses.py [--threads 1] [--repeats 5]`` (about a minute with one thread).

Cases, each against its baseline in the same run (the runs alternate so that load changes hit both):

1. ``CombinedLoss`` of the ``focal_segmentation`` preset (0.6 Dice + 0.4 focal, gamma 2, alpha 0.25) vs.
   ``monai.losses.DiceFocalLoss`` with the same weights and options (target: ratio <= 1.0);
2. our ``ClDiceLoss`` vs. ``monai.losses.SoftclDiceLoss(sigmoid=True)`` (target: >= 10x faster);
3. ``SkeletonRecallLoss`` (tubed skeleton precomputed, as in the data pipeline) vs. our Dice term.

Inputs: labels of two synthetic vessel trees (:func:`pipeline.losses.testing.vessel_labels`) and logits of an
imperfect prediction of them. Time is the median of ``--repeats`` timed calls after one warm-up. Peak memory is what
one forward+backward adds to the resident set at its highest (``VmHWM`` after, reset through ``/proc/self/clear_refs``,
minus ``VmRSS`` before; Linux), measured in a fresh subprocess per implementation that loads the same inputs from a
file, so nothing else ran in it. Max |diff| compares the loss values and the gradients with respect to the logits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai.losses import DiceFocalLoss, SoftclDiceLoss  # noqa: E402

from pipeline.losses import ClDiceLoss, EnhancedDiceLoss, SkeletonRecallLoss, create_loss_function  # noqa: E402
from pipeline.losses.testing import vessel_labels, vessel_logits  # noqa: E402
from transforms.skeleton import TubedSkeleton  # noqa: E402

SHAPE = (96, 96, 96)


def implementations() -> dict[str, tuple[torch.nn.Module, str]]:
    """name -> (loss, which target it takes)."""
    return {
        "CombinedLoss(Dice+Focal)": (create_loss_function("focal_segmentation"), "label"),
        "monai DiceFocalLoss": (
            DiceFocalLoss(sigmoid=True, gamma=2.0, alpha=0.25, lambda_dice=0.6, lambda_focal=0.4),
            "label",
        ),
        "ClDiceLoss": (ClDiceLoss(), "label"),
        "monai SoftclDiceLoss": (SoftclDiceLoss(sigmoid=True), "label"),
        "SkeletonRecallLoss": (SkeletonRecallLoss(), "skeleton"),
        "EnhancedDiceLoss": (EnhancedDiceLoss(), "label"),
    }


CASES = [
    ("CombinedLoss(Dice+Focal)", "monai DiceFocalLoss", "ratio <= 1.0"),
    ("ClDiceLoss", "monai SoftclDiceLoss", ">= 10x speed-up"),
    ("SkeletonRecallLoss", "EnhancedDiceLoss", "-"),
]


def make_inputs() -> dict[str, torch.Tensor]:
    labels = vessel_labels(SHAPE, batch=2, radius=(3.0, 4.0))
    skeleton = torch.stack([TubedSkeleton(2)(label) for label in labels])
    return {"logits": vessel_logits(labels), "label": labels, "skeleton": skeleton}


def forward_backward(
    loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor
) -> tuple[float, torch.Tensor, float]:
    x = logits.detach().clone().requires_grad_(True)
    start = time.perf_counter()
    value = loss(x, target)
    value.backward()
    return float(value.detach()), x.grad, time.perf_counter() - start


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_memory_child(name: str, inputs_file: str, threads: int) -> None:
    """Run in a fresh process: print the peak resident memory (MiB) that one forward+backward of ``name`` adds to
    what the process holds before it (Linux: the high-water mark is reset through ``/proc/self/clear_refs``)."""
    torch.set_num_threads(threads)
    inputs = torch.load(inputs_file, weights_only=True)
    loss, target = implementations()[name]
    logits = inputs["logits"].clone().requires_grad_(True)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    loss(logits, inputs[target]).backward()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - before) / 1024}))


def peak_memory(name: str, inputs_file: str, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--inputs", inputs_file, "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation (median reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        peak_memory_child(args.child, args.inputs, args.threads)
        return

    torch.set_num_threads(args.threads)
    inputs = make_inputs()
    losses = implementations()
    print(
        f"# (2, 1, {', '.join(map(str, SHAPE))}) forward+backward on CPU, torch {torch.__version__}, "
        f"{args.threads} thread(s), median of {args.repeats}; vessel fraction {float(inputs['label'].mean()):.4f}, "
        f"skeleton fraction {float(inputs['skeleton'].mean()):.4f}\n"
    )
    print(
        "| ours | baseline | ours s | baseline s | time ratio ours/baseline | speed-up | target | ours peak MiB "
        "| baseline peak MiB | max abs diff value | max abs diff grad |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = str(Path(tmp) / "inputs.pt")
        torch.save(inputs, inputs_file)
        for ours, base, target in CASES:
            times: dict[str, list[float]] = {ours: [], base: []}
            results = {}
            for name in (ours, base):
                loss, key = losses[name]
                value, grad, _ = forward_backward(loss, inputs["logits"], inputs[key])
                results[name] = (value, grad)
            for _ in range(args.repeats):
                for name in (ours, base):
                    loss, key = losses[name]
                    times[name].append(forward_backward(loss, inputs["logits"], inputs[key])[2])
            t_ours, t_base = statistics.median(times[ours]), statistics.median(times[base])
            same_target = losses[ours][1] == losses[base][1]
            diff_value = abs(results[ours][0] - results[base][0]) if same_target else float("nan")
            diff_grad = float((results[ours][1] - results[base][1]).abs().max()) if same_target else float("nan")
            mem_ours = peak_memory(ours, inputs_file, args.threads)
            mem_base = peak_memory(base, inputs_file, args.threads)
            diffs = f"{diff_value:.2e} | {diff_grad:.2e}" if same_target else "n/a (different targets) | n/a"
            print(
                f"| {ours} | {base} | {t_ours:.3f} | {t_base:.3f} | {t_ours / t_base:.2f} | {t_base / t_ours:.1f}x "
                f"| {target} "
                f"| {mem_ours:.0f} | {mem_base:.0f} | {diffs} |"
            )


if __name__ == "__main__":
    main()
