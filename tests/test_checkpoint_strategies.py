"""Checkpoint strategies on scripted metric sequences: what each saves and what it keeps."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.checkpoint.strategies import (
    STRATEGIES,
    AdaptiveStrategy,
    AllStrategy,
    BestStrategy,
    CheckpointEvent,
    EpochStrategy,
    IntervalStrategy,
    KeptCheckpoint,
    PerformanceStrategy,
    TimeStrategy,
    create_strategy,
)
from pipeline.errors import SettingsError

NAN = float("nan")


def play(strategy, scores, monitor="dice", every_iteration=0):
    """Feed one epoch-end event per score (None = no validation that epoch); apply the strategy's retention.

    Returns:
        (epochs saved with their reasons, epochs still kept at the end)
    """
    saved, kept = [], []
    for epoch, score in enumerate(scores, start=1):
        metrics = None if score is None else {"other": 0.5, monitor: score}
        event = CheckpointEvent(epoch=epoch, iteration=epoch * 10, metrics=metrics, max_epochs=len(scores))
        decision = strategy.decide(event)
        if decision.save:
            saved.append((epoch, decision.reasons))
            score_value = strategy.score(event)
            kept.append(KeptCheckpoint(f"e{epoch}", epoch, epoch * 10, score_value, frozenset(decision.reasons)))
            keep = strategy.retain(kept)
            kept = [c for c in kept if c.key in keep]
    return saved, [c.epoch for c in kept]


def test_best_saves_on_strict_improvement_and_keeps_top_k():
    saved, kept = play(BestStrategy(max_checkpoints=2, monitor="dice"), [0.5, 0.7, 0.7, 0.6, 0.9, 0.8, 0.95])
    assert [e for e, _ in saved] == [1, 2, 5, 7]  # 0.7 tie at epoch 3 is no improvement
    assert kept == [5, 7]


def test_best_min_mode_and_min_delta():
    saved, _ = play(BestStrategy(monitor="loss", mode="min", min_delta=0.05), [1.0, 0.97, 0.9, 0.88, 0.8], "loss")
    assert [e for e, _ in saved] == [1, 3, 5]  # 0.97 and 0.88 improve by less than 0.05


def test_best_never_takes_nan_or_inf_as_best():
    strategy = BestStrategy(monitor="dice")
    saved, _ = play(strategy, [NAN, 0.3, NAN, float("inf"), 0.4])
    assert [e for e, _ in saved] == [2, 5]
    assert strategy.best == 0.4 and strategy.best_epoch == 5


def test_best_with_one_checkpoint_keeps_only_the_newest_best():
    saved, kept = play(BestStrategy(max_checkpoints=1, monitor="dice"), [0.1, 0.2, 0.15, 0.3])
    assert [e for e, _ in saved] == [1, 2, 4] and kept == [4]


def test_best_ignores_epochs_without_validation():
    saved, _ = play(BestStrategy(monitor="dice"), [None, 0.2, None, 0.1, None, 0.3])
    assert [e for e, _ in saved] == [2, 6]


def test_epoch_saves_every_epoch_and_keeps_newest():
    saved, kept = play(EpochStrategy(max_checkpoints=3), [None] * 7)
    assert [e for e, _ in saved] == list(range(1, 8)) and kept == [5, 6, 7]
    assert saved[0][1] == ("epoch",)


def test_interval_epochs_and_iterations():
    saved, kept = play(IntervalStrategy(every=3, max_checkpoints=2), [None] * 10)
    assert [e for e, _ in saved] == [3, 6, 9] and kept == [6, 9]
    per_iteration = IntervalStrategy(every=4, unit="iteration")
    assert per_iteration.levels == ("iteration",)
    hits = [i for i in range(1, 13) if per_iteration.decide(CheckpointEvent(1, i, level="iteration")).save]
    assert hits == [4, 8, 12]
    assert not per_iteration.decide(CheckpointEvent(1, 12, level="epoch")).save


def test_all_keeps_best_and_regular_with_separate_retention():
    saved, kept = play(AllStrategy(max_best=2, max_regular=2, monitor="dice"), [0.5, 0.9, 0.6, 0.7, 0.95, 0.1, 0.2])
    assert saved[1] == (2, ("best", "regular"))
    assert saved[2] == (3, ("regular",))
    # best: 0.95 (e5), 0.9 (e2); regular: e6, e7
    assert kept == [2, 5, 6, 7]


def test_adaptive_saves_every_improvement_then_thins_out_on_plateau():
    scores = [0.1, 0.2, 0.3] + [0.3] * 20 + [0.5]
    saved, _ = play(AdaptiveStrategy(max_checkpoints=None, monitor="dice", max_gap=8), scores)
    # improving: epochs 1-3 (best); plateau: gaps 1, 2, 4, 8, 8 -> epochs 4, 6, 10, 18; new best at 24 resets
    assert saved == [(1, ("best",)), (2, ("best",)), (3, ("best",)), (4, ("adaptive",)), (6, ("adaptive",)),
                     (10, ("adaptive",)), (18, ("adaptive",)), (24, ("best",))]
    strategy = AdaptiveStrategy(monitor="dice")
    play(strategy, [0.1, 0.2, 0.2, 0.2])
    assert strategy.gap == 2 and strategy.last_saved_epoch == 3


def test_performance_based_keeps_the_band_around_the_best():
    strategy = PerformanceStrategy(max_checkpoints=3, monitor="dice", threshold=0.05)
    saved, kept = play(strategy, [0.50, 0.52, 0.60, 0.58, 0.40, 0.62, 0.61, 0.66, NAN])
    # band after each best: 0.50/0.52 in; 0.60 evicts 0.50, 0.52; 0.58 in; 0.40 out; 0.62; 0.61; 0.66 drops < 0.61
    assert [e for e, _ in saved] == [1, 2, 3, 4, 6, 7, 8]
    assert kept == [6, 7, 8]  # 0.60 and 0.58 fell out of 0.66's band (>= 0.61)


def test_performance_based_relative_threshold_in_min_mode():
    strategy = PerformanceStrategy(max_checkpoints=None, monitor="loss", mode="min", threshold=0.1, relative=True)
    saved, kept = play(strategy, [1.0, 1.05, 0.5, 0.54, 0.56], "loss")
    assert [e for e, _ in saved] == [1, 2, 3, 4]  # 0.56 > 0.5 * 1.1
    assert kept == [3, 4]


def test_time_based_interval_and_milestones_with_resumed_clock():
    strategy = TimeStrategy(interval_seconds=10, milestones=(0.5, 1.0), max_checkpoints=2)
    reasons = []
    for epoch, elapsed in enumerate([4, 9, 11, 15, 22, 25, 33, 34], start=1):
        decision = strategy.decide(CheckpointEvent(epoch, epoch, elapsed=elapsed, max_epochs=8))
        reasons.append(decision.reasons)
    # every save restarts the interval, a milestone save included
    assert reasons == [(), (), ("time",), ("milestone",), (), ("time",), (), ("milestone",)]
    # the clock and the milestones reached are state: a fresh strategy loaded with it continues, not restarts
    resumed = TimeStrategy(interval_seconds=10, milestones=(0.5, 1.0))
    resumed.load_state_dict(torch.load(_roundtrip(strategy.state_dict()), weights_only=True))
    assert not resumed.decide(CheckpointEvent(4, 4, elapsed=36, max_epochs=8)).save
    assert resumed.decide(CheckpointEvent(5, 5, elapsed=44.5, max_epochs=8)).reasons == ("time",)


def test_time_based_checks_iterations_and_retains_milestones():
    strategy = TimeStrategy(interval_seconds=1.0, milestones=(0.5,), max_checkpoints=1)
    assert strategy.levels == ("epoch", "iteration")
    kept = [KeptCheckpoint("m", 2, 20, None, frozenset({"milestone"}))] + [
        KeptCheckpoint(f"t{i}", 3, 30 + i, None, frozenset({"time"})) for i in range(3)
    ]
    assert strategy.retain(kept) == {"m", "t2"}
    assert TimeStrategy(interval_seconds=None).levels == ("epoch",)


def _roundtrip(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_state_survives_weights_only_load(name):
    strategy = create_strategy(name, monitor="dice")
    play(strategy, [0.2, 0.5, NAN, 0.4, 0.6, None])
    clone = create_strategy(name, monitor="dice")
    clone.load_state_dict(torch.load(_roundtrip(strategy.state_dict()), weights_only=True))
    assert clone.state_dict() == strategy.state_dict()
    # and both take the same next decision
    event = CheckpointEvent(7, 70, {"dice": 0.61}, elapsed=1e6, max_epochs=8)
    assert clone.decide(event) == strategy.decide(event)


def test_missing_monitored_metric_names_the_available_ones():
    with pytest.raises(SettingsError, match=r"'val_dice' is not among the metrics produced: \['loss', 'val_mean_dice'\]"):
        BestStrategy(monitor="val_dice").decide(CheckpointEvent(1, 1, {"val_mean_dice": 0.5, "loss": 1.0}))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("newest", {}, r"unknown checkpoint strategy 'newest'; valid strategies: \['adaptive', 'all', 'best'"),
        ("best", {"mode": "maximum"}, r"mode must be one of \['max', 'min'\], got 'maximum'"),
        ("best", {"max_checkpoints": 0}, "max_checkpoints must be a whole number >= 1"),
        ("interval", {"every": 0}, "every must be a whole number >= 1"),
        ("interval", {"every": -2}, "every must be a whole number >= 1"),
        ("interval", {"unit": "step"}, r"unit must be one of \['epoch', 'iteration'\]"),
        ("interval", {"evry": 2}, r"unknown parameter\(s\) \['evry'\] for checkpoint strategy 'interval'; valid: \['every'"),
        ("best", {"min_delta": -0.1}, "min_delta must be a number >= 0"),
        ("adaptive", {"min_gap": 4, "max_gap": 2}, r"max_gap \(2\) must be >= min_gap \(4\)"),
        ("performance_based", {"threshold": -1}, "threshold must be a number >= 0"),
        ("time_based", {"interval_seconds": 0}, "interval_seconds must be a number > 0"),
        ("time_based", {"milestones": (0.5, 1.5)}, r"milestones must be fractions in \(0, 1\]"),
    ],
)
def test_bad_settings_name_the_problem_and_the_choices(name, params, message):
    with pytest.raises(ValueError, match=message):
        create_strategy(name, **params)


def test_metric_strategies_need_a_monitor_at_the_first_decision():
    with pytest.raises(SettingsError, match="needs a monitored metric"):
        BestStrategy().decide(CheckpointEvent(1, 1, {"dice": 0.5}))
    assert math.isnan(BestStrategy(monitor="dice").score(CheckpointEvent(1, 1, {"dice": NAN})))
