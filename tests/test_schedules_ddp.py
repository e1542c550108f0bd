"""The adaptive schedule in two real ``torchrun`` processes (gloo on CPU): both compute the same weights, from the
term losses of both."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from torchrun import torchrun  # tests/torchrun.py

REPO = Path(__file__).resolve().parent.parent


def test_two_processes_share_one_weight_sequence_from_all_their_losses(tmp_path):
    proc = torchrun(str(REPO / "tests" / "schedules_ddp_child.py"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["history"] == ranks[1]["history"]
    history = ranks[0]["history"]
    for record in history:
        epoch = str(record["epoch"])
        # the epoch mean over the 2 + 3 training calls of both processes
        count = sum(r["counts"][epoch] for r in ranks)
        assert count == 5
        for term in ("dice", "bce"):
            expected = sum(r["sums"][epoch][term] for r in ranks) / count
            assert record["losses"][term] == pytest.approx(expected, rel=1e-6)
            own = ranks[0]["sums"][epoch][term] / ranks[0]["counts"][epoch]
            assert record["losses"][term] != pytest.approx(own, rel=1e-3)  # not rank 0's own mean
    for epoch in (3, 4):  # DWA from the shared means of the two epochs before
        before, last = history[epoch - 3]["losses"], history[epoch - 2]["losses"]
        z = {t: math.exp(last[t] / before[t] / 0.5) for t in ("dice", "bce")}
        assert history[epoch - 1]["weights"] == pytest.approx({t: z[t] / sum(z.values()) for t in z}, rel=1e-9)
