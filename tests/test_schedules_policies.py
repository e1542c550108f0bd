"""The loss-weight schedules as pure policies: weight sequences against hand-computed values, bounds, the fixed sum,
state round trips under ``weights_only=True`` and bad configurations."""

from __future__ import annotations

import io
import math
import random

import pytest
import torch

from pipeline.errors import SettingsError
from pipeline.schedules import (
    AdaptiveSchedule,
    CosineSchedule,
    PerformanceSchedule,
    StepSchedule,
    create_schedule,
    rebalance,
)

INF = math.inf


def _sequence(schedule, epochs, losses=None, metrics=None):
    """The weights in force in epochs 1..epochs: the initial ones, then each epoch's answer."""
    seen = [dict(schedule.weights)]
    for e in range(1, epochs):
        schedule.epoch_completed(e, None if losses is None else losses[e - 1])
        if metrics is not None and metrics[e - 1] is not None:
            schedule.evaluation_completed(metrics[e - 1])
        seen.append(dict(schedule.weights))
    return seen


def _column(seq, name):
    return [round(w[name], 6) for w in seq]


# ---------------------------------------------------------------------------------------------------- rebalance
def test_rebalance_keeps_proportions_sum_and_bounds():
    assert rebalance({"a": 0.35, "b": 0.3}, 1.0, {"a": 0, "b": 0}, {"a": INF, "b": INF}) == pytest.approx({"a": 0.35 / 0.65, "b": 0.3 / 0.65})
    # a at its floor, b takes the rest
    assert rebalance({"a": 0.01, "b": 0.3}, 1.0, {"a": 0.2, "b": 0}, {"a": INF, "b": INF}) == pytest.approx({"a": 0.2, "b": 0.8})
    # a capped, c lifted to its floor, b (free) takes exactly what is left
    out = rebalance({"a": 0.6, "b": 0.3, "c": 0.1}, 1.0, {"a": 0, "b": 0, "c": 0.2}, {"a": 0.5, "b": INF, "c": INF})
    assert out == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})
    # the weighted term is capped: the unweighted one receives the rest
    assert rebalance({"a": 1.0, "b": 0.0}, 1.0, {"a": 0, "b": 0}, {"a": 0.8, "b": INF}) == pytest.approx({"a": 0.8, "b": 0.2})
    with pytest.raises(SettingsError, match="cannot give weights that sum to 1"):
        rebalance({"a": 1.0, "b": 1.0}, 1.0, {"a": 0.6, "b": 0.6}, {"a": INF, "b": INF})


# ---------------------------------------------------------------------------------------------------- cosine
def test_cosine_with_warmup_against_hand_computed_values():
    schedule = CosineSchedule({"dice": 1.0, "cldice": 0.0}, end_weights={"dice": 0.5, "cldice": 0.5}, epochs=4, warmup_epochs=2)
    seq = _sequence(schedule, 8)
    # t = (e - 2) / 4 after e completed epochs; keep = (1 + cos(pi t)) / 2 = 1, 1, 1, .853553, .5, .146447, 0, 0
    assert _column(seq, "dice") == [1.0, 1.0, 1.0, 0.926777, 0.75, 0.573223, 0.5, 0.5]
    assert _column(seq, "cldice") == [0.0, 0.0, 0.0, 0.073223, 0.25, 0.426777, 0.5, 0.5]


def test_cosine_defaults_end_equal_shares_and_normalize_rescales_end_values():
    schedule = CosineSchedule({"dice": 0.7, "bce": 0.3}, epochs=2)
    assert _column(_sequence(schedule, 4), "dice") == [0.7, 0.6, 0.5, 0.5]
    # end values summing to 1.5 give proportions (the sum stays 1) ...
    schedule = CosineSchedule({"dice": 1.0, "cldice": 0.0}, end_weights={"cldice": 0.5}, epochs=1)
    assert _sequence(schedule, 2)[1] == pytest.approx({"dice": 2 / 3, "cldice": 1 / 3})
    # ... unless normalize=False, which gives the values as configured
    schedule = CosineSchedule({"dice": 1.0, "cldice": 0.0}, end_weights={"cldice": 0.5}, epochs=1, normalize=False)
    assert _sequence(schedule, 2)[1] == pytest.approx({"dice": 1.0, "cldice": 0.5})


def test_cosine_start_weights_fade_a_term_in_and_reach_the_configured_weights():
    schedule = CosineSchedule({"dice": 0.5, "bce": 0.2, "cldice": 0.3}, start_weights={"dice": 0.7, "bce": 0.3, "cldice": 0.0},
                              warmup_epochs=2, epochs=2)
    seq = _sequence(schedule, 6)
    # keep = 1, 1, 1, .5, 0, 0: half-way is the mean of start and configured weights
    assert _column(seq, "cldice") == [0.0, 0.0, 0.0, 0.15, 0.3, 0.3]
    assert _column(seq, "dice") == [0.7, 0.7, 0.7, 0.6, 0.5, 0.5]
    with pytest.raises(SettingsError, match=r"start_weights: \['cl_dice'\] are not terms"):
        CosineSchedule({"dice": 0.5, "cldice": 0.5}, start_weights={"cl_dice": 0.0})
    with pytest.raises(SettingsError, match="at least one of the start_weights must be > 0"):
        CosineSchedule({"dice": 0.5, "cldice": 0.5}, start_weights={"dice": 0.0, "cldice": 0.0})


def test_cosine_run_length_comes_from_the_trainer_unless_given():
    schedule = CosineSchedule({"dice": 1.0, "bce": 0.0}, warmup_epochs=2)
    schedule.set_run_length(10)
    assert schedule.epochs == 7  # epochs 3..10 anneal: the 10th (9 completed) trains with the end weights
    assert schedule.weights_after(9) == {"dice": 0.5, "bce": 0.5}
    given = CosineSchedule({"dice": 1.0, "bce": 0.0}, epochs=3)
    given.set_run_length(10)
    assert given.epochs == 3
    with pytest.raises(SettingsError, match="leaves no epoch"):
        CosineSchedule({"dice": 1.0, "bce": 0.0}, warmup_epochs=5).set_run_length(6)


# ---------------------------------------------------------------------------------------------------- step
def test_step_halves_the_first_term_and_stops_at_its_floor():
    schedule = StepSchedule({"dice": 0.8, "bce": 0.2}, gamma=0.5, step_size=2, min_weight={"dice": 0.3})
    seq = _sequence(schedule, 10)
    # raw dice 0.8 * 0.5^n against bce 0.2, scaled to sum 1: .8, .6667, .5, .3333, then .2 -> floor .3
    assert _column(seq, "dice") == [0.8, 0.8, 0.666667, 0.666667, 0.5, 0.5, 0.333333, 0.333333, 0.3, 0.3]
    assert all(abs(sum(w.values()) - 1.0) < 1e-12 for w in seq)


def test_step_milestones_per_term_gamma_without_normalizing():
    schedule = StepSchedule({"dice": 0.8, "bce": 0.2}, gamma={"bce": 2.0}, milestones=[1, 3], max_weight=1.0, normalize=False)
    seq = _sequence(schedule, 7)
    assert _column(seq, "bce") == [0.2, 0.4, 0.4, 0.8, 0.8, 0.8, 0.8]
    assert _column(seq, "dice") == [0.8] * 7
    capped = StepSchedule({"dice": 0.8, "bce": 0.2}, gamma={"bce": 2.0}, step_size=1, max_weight=1.0, normalize=False)
    assert _column(_sequence(capped, 5), "bce") == [0.2, 0.4, 0.8, 1.0, 1.0]
    # very many steps of a factor > 1 do not overflow
    assert capped.weights_after(5000)["bce"] == 1.0


# ---------------------------------------------------------------------------------------------------- adaptive
LOSSES = [{"dice": 1.0, "bce": 0.5}, {"dice": 0.8, "bce": 0.45}, {"dice": 0.7, "bce": 0.36}]


def test_adaptive_is_dynamic_weight_averaging():
    seq = _sequence(AdaptiveSchedule({"dice": 0.7, "bce": 0.3}, temperature=2.0), 4, LOSSES)
    # epochs 1-2 initial; epoch 3: r = (.8, .9), exp(r/2) = (1.491825, 1.568312) -> (.487503, .512497)
    # epoch 4: r = (.875, .8), exp(r/2) = (1.548830, 1.491825) -> (.509374, .490626)
    assert _column(seq, "dice") == [0.7, 0.7, 0.487503, 0.509374]
    assert _column(seq, "bce") == [0.3, 0.3, 0.512497, 0.490626]


def test_adaptive_keep_ratios_weighs_by_the_initial_weights():
    seq = _sequence(AdaptiveSchedule({"dice": 0.7, "bce": 0.3}, keep_ratios=True), 3, LOSSES)
    # .7 * 1.491825 = 1.044277, .3 * 1.568312 = .470494 -> (.689396, .310604)
    assert _column(seq, "dice") == [0.7, 0.7, 0.689396]


def test_adaptive_leaves_zero_weighted_terms_and_bad_ratios_alone(caplog):
    schedule = AdaptiveSchedule({"dice": 0.7, "bce": 0.3, "cldice": 0.0}, temperature=1.0)
    seq = _sequence(schedule, 3, LOSSES)
    assert seq[2]["cldice"] == 0.0 and sum(seq[2].values()) == pytest.approx(1.0)
    before = dict(schedule.weights)
    with caplog.at_level("WARNING"):
        schedule.epoch_completed(3, {"dice": math.nan, "bce": 0.3})
    assert schedule.weights == before and "not all finite" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        schedule.epoch_completed(4, {"dice": 0.5})
    assert schedule.weights == before and "no loss of ['bce']" in caplog.text


def test_adaptive_temperature_trades_sharpness():
    sharp = _sequence(AdaptiveSchedule({"a": 0.5, "b": 0.5}, temperature=0.1), 3, [{"a": 1, "b": 1}, {"a": 0.5, "b": 1}])
    flat = _sequence(AdaptiveSchedule({"a": 0.5, "b": 0.5}, temperature=100.0), 3, [{"a": 1, "b": 1}, {"a": 0.5, "b": 1}])
    assert sharp[2]["b"] > 0.99 and flat[2]["b"] == pytest.approx(0.50125, abs=1e-5)


# ---------------------------------------------------------------------------------------------------- performance
METRICS = [0.5, 0.6, 0.6, 0.59, 0.58, 0.57, 0.56, 0.7]


def test_performance_shifts_towards_topology_terms_with_patience_and_cooldown():
    schedule = PerformanceSchedule({"dice": 0.5, "bce": 0.2, "cldice": 0.3}, patience=2, cooldown=1, threshold=0.0, shift=0.1)
    assert (schedule.from_terms, schedule.to_terms) == (["dice", "bce"], ["cldice"])
    seq = _sequence(schedule, 9, metrics=METRICS)
    # 0.6 twice not better -> shift after eval 4; eval 5 in cooldown; evals 6, 7 bad -> shift after eval 7
    assert _column(seq, "cldice") == [0.3, 0.3, 0.3, 0.3, 0.4, 0.4, 0.4, 0.5, 0.5]
    # the givers lose in proportion to their weight above the floor: .5:.2 stays 2.5:1
    assert _column(seq, "dice") == [0.5, 0.5, 0.5, 0.5, 0.428571, 0.428571, 0.428571, 0.357143, 0.357143]
    assert _column(seq, "bce") == [0.2, 0.2, 0.2, 0.2, 0.171429, 0.171429, 0.171429, 0.142857, 0.142857]
    assert (schedule.best, schedule.shifts) == (0.7, 2)


def test_performance_floors_limits_and_modes():
    floored = PerformanceSchedule({"dice": 0.5, "bce": 0.2, "cldice": 0.3}, patience=1, min_weight={"dice": 0.4}, max_shifts=1)
    seq = _sequence(floored, 4, metrics=[0.5, 0.4, 0.3])
    # room above the floors: dice .1, bce .2 -> dice loses 1/3 of .1
    assert seq[2] == pytest.approx({"dice": 0.466667, "bce": 0.133333, "cldice": 0.4}, abs=1e-6)
    assert seq[3] == seq[2]  # max_shifts=1
    lower = PerformanceSchedule({"dice": 0.6, "bce": 0.4}, mode="min", patience=1, threshold=0.1, threshold_mode="abs", shift=0.5)
    assert (lower.from_terms, lower.to_terms) == (["dice"], ["bce"])  # no topology term: the first gives to the rest
    seq = _sequence(lower, 4, metrics=[1.0, 0.95, 0.8])  # 0.95 is not 0.1 better; 0.8 is
    assert _column(seq, "bce") == [0.4, 0.4, 0.9, 0.9]  # half of the sum moved, bounded by dice's .6
    drained = _sequence(lower, 3, metrics=[0.9, 0.9])  # the last .1 of dice goes, then nothing is left to move
    assert drained[1:] == [{"dice": 0.0, "bce": 1.0}] * 2 and lower.shifts == 2


def test_start_weights_for_every_schedule_keep_the_configured_sum():
    configured = {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    # performance: no clDice until Dice stops improving; the start (.5, .2, 0) is scaled to the sum 1
    plateau = PerformanceSchedule(configured, start_weights={"cldice": 0.0}, patience=1, shift=0.1, threshold=0.0)
    seq = _sequence(plateau, 4, metrics=[0.5, 0.6, 0.6])
    assert seq[0] == pytest.approx({"dice": 0.5 / 0.7, "bce": 0.2 / 0.7, "cldice": 0.0})
    assert seq[3] == pytest.approx({"dice": 0.5 / 0.7 - 0.1 * 5 / 7, "bce": 0.2 / 0.7 - 0.1 * 2 / 7, "cldice": 0.1})
    # step: the factor applies to the start weights
    step = StepSchedule(configured, start_weights={"dice": 0.8, "bce": 0.2, "cldice": 0.0}, step_size=1, gamma=0.5)
    assert _sequence(step, 2)[1] == pytest.approx({"dice": 0.4 / 0.6, "bce": 0.2 / 0.6, "cldice": 0.0})
    # adaptive: a term that starts at 0 is not computed, so it does not take part
    adaptive = AdaptiveSchedule(configured, start_weights={"cldice": 0.0})
    assert adaptive.active == ["dice", "bce"]
    seq = _sequence(adaptive, 3, [{"dice": 1.0, "bce": 1.0}, {"dice": 0.5, "bce": 1.0}])
    assert seq[2]["cldice"] == 0.0 and sum(seq[2].values()) == pytest.approx(1.0) and seq[2]["bce"] > seq[2]["dice"]


def test_performance_relative_and_absolute_thresholds_differ_away_from_one():
    relative = PerformanceSchedule({"dice": 0.5, "bce": 0.5}, patience=1, threshold=0.1, mode="min")
    absolute = PerformanceSchedule({"dice": 0.5, "bce": 0.5}, patience=1, threshold=0.1, mode="min", threshold_mode="abs")
    for schedule in (relative, absolute):
        _sequence(schedule, 3, metrics=[2.0, 1.85])  # 0.15 better: more than 0.1, less than 0.1 * |2.0|
    assert (relative.shifts, absolute.shifts) == (1, 0)
    assert (relative.best, absolute.best) == (2.0, 1.85)


def test_policies_ignore_non_finite_metrics_themselves():
    schedule = PerformanceSchedule({"dice": 0.5, "bce": 0.5}, patience=1)
    for value in (math.nan, math.inf, -math.inf):
        schedule.evaluation_completed(value)
    assert (schedule.best, schedule.bad_evaluations, schedule.shifts) == (None, 0, 0)
    schedule.evaluation_completed(0.5)
    assert schedule.best == 0.5


# ---------------------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("name", ["adaptive", "cosine", "step", "performance"])
def test_weights_stay_finite_non_negative_bounded_and_sum_fixed(name):
    rng = random.Random(name)
    initial = {"dice": 0.4, "bce": 0.2, "cldice": 0.25, "skeleton_recall": 0.15}
    params = {"min_weight": {"bce": 0.05}, "max_weight": 0.6}
    extra = {"cosine": {"epochs": 7, "end_weights": {"dice": 0.0, "cldice": 1.0}}, "step": {"gamma": 0.7, "step_size": 1}, "performance": {"patience": 1}}
    schedule = create_schedule(name, initial, {**params, **extra.get(name, {})})
    for epoch in range(1, 60):
        losses = {t: rng.choice([rng.uniform(1e-6, 1.0), rng.uniform(1e3, 1e6), 1e-30]) for t in initial}
        w = schedule.epoch_completed(epoch, losses)
        w = schedule.evaluation_completed(rng.uniform(0, 1))
        assert all(math.isfinite(v) and v >= 0 for v in w.values()), w
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-9)
        assert w["bce"] >= 0.05 - 1e-12 and max(w.values()) <= 0.6 + 1e-12


@pytest.mark.parametrize(
    "name,params",
    [
        ("adaptive", {"temperature": 0.5}),
        ("cosine", {"epochs": 5, "warmup_epochs": 1}),
        ("step", {"milestones": [2, 4]}),
        ("performance", {"patience": 1, "cooldown": 2}),
    ],
)
def test_state_round_trip_under_weights_only_continues_the_same_sequence(name, params):
    initial = {"dice": 0.5, "bce": 0.2, "cldice": 0.3}
    rng = random.Random(0)
    losses = [{t: rng.uniform(0.1, 1.0) for t in initial} for _ in range(12)]
    metrics = [rng.uniform(0.4, 0.6) for _ in range(12)]
    straight = create_schedule(name, initial, params)
    expected = _sequence(straight, 12, losses, metrics)

    first = create_schedule(name, initial, params)
    head = _sequence(first, 6, losses, metrics)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = create_schedule(name, initial, params)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    tail = []
    for e in range(6, 12):
        second.epoch_completed(e, losses[e - 1])
        second.evaluation_completed(metrics[e - 1])
        tail.append(dict(second.weights))
    assert head + tail == expected


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "name,params,message",
    [
        ("cosin", {}, r"unknown loss-weight schedule 'cosin'; valid types: \['adaptive', 'cosine', 'step', 'performance', 'constant'\]"),
        ("cosine", {"epoch": 3}, r"unknown parameter\(s\) \['epoch'\].*valid: \['start_weights', 'end_weights', 'epochs'"),
        ("cosine", {"end_weights": {"dcie": 1.0}}, r"end_weights: \['dcie'\] are not terms of this loss; its terms: \['dice', 'bce'\]"),
        ("cosine", {"epochs": 0}, "epochs must be a whole number >= 1"),
        ("step", {"gamma": 0}, "gamma must be > 0"),
        ("step", {"gamma": -1}, "gamma must be finite and >= 0"),
        ("step", {"step_size": 2, "milestones": [3]}, "either step_size or milestones"),
        ("step", {"milestones": [3, 2]}, "increasing"),
        ("step", {"terms": ["cldice"]}, r"terms: \['cldice'\] are not terms"),
        ("adaptive", {"temperature": 0}, "temperature must be a number > 0"),
        ("adaptive", {"min_weight": 0.6}, "make that impossible"),
        ("adaptive", {"min_weight": {"dice": 0.5}, "max_weight": {"dice": 0.4}}, "min_weight exceeds max_weight"),
        ("performance", {"mode": "maximum"}, r"mode must be one of \['max', 'min'\]"),
        ("performance", {"patience": 0}, "patience must be a whole number >= 1"),
        ("performance", {"shift": 1.5}, r"shift must be a fraction in \(0, 1\]"),
        ("performance", {"threshold_mode": "relative"}, r"threshold_mode must be one of \['rel', 'abs'\]"),
        ("performance", {"from_terms": ["dice"], "to_terms": ["dice"]}, "must be non-empty groups of different terms"),
        ("performance", {"min_weight": "high"}, "min_weight must be a number"),
    ],
)
def test_bad_configs_say_what_is_valid(name, params, message):
    with pytest.raises(ValueError, match=message):
        create_schedule(name, {"dice": 0.7, "bce": 0.3}, params)


def test_performance_needs_two_terms_and_initial_weights_are_checked():
    with pytest.raises(SettingsError, match="only \\['dice'\\]"):
        create_schedule("performance", {"dice": 1.0})
    with pytest.raises(SettingsError, match="at least one initial loss weight must be > 0"):
        create_schedule("cosine", {"dice": 0.0, "bce": 0.0})
    with pytest.raises(SettingsError, match="must be finite and >= 0"):
        create_schedule("cosine", {"dice": math.nan, "bce": 1.0})
    schedule = create_schedule("step", {"dice": 0.7, "bce": 0.3})
    with pytest.raises(SettingsError, match="saved schedule weights are for terms"):
        schedule.load_state_dict({"epoch": 1, "weights": {"dice": 1.0}})


# ---------------------------------------------------------------------------------------------------- extremes
def test_rebalance_holds_at_extreme_magnitudes():
    rng = random.Random(1)
    for _ in range(3000):
        names = ["a", "b", "c", "d"][: rng.randint(1, 4)]
        raw = {n: rng.choice([0.0, 10 ** rng.uniform(-320, 300), rng.uniform(0, 1)]) for n in names}
        if not any(v > 0 for v in raw.values()):
            continue
        lower = {n: rng.choice([0.0, 0.05]) for n in names}
        upper = {n: rng.choice([INF, 0.6, 1.0]) for n in names}
        if sum(lower.values()) > 1.0 or sum(upper.values()) < 1.0:
            continue
        out = rebalance(raw, 1.0, lower, upper)
        assert all(math.isfinite(v) and lower[n] - 1e-12 <= v <= upper[n] + 1e-12 for n, v in out.items()), (raw, out)
        assert sum(out.values()) == pytest.approx(1.0, abs=1e-9), (raw, lower, upper, out)


def test_caps_that_add_up_to_the_sum_within_rounding():
    # every weighted term ends at its cap; the caps sum to 1 only within float rounding
    schedule = create_schedule("step", {"dice": 0.5, "bce": 0.2, "cldice": 0.3},
                               {"gamma": 0.9, "step_size": 1, "max_weight": {"dice": 0.2, "bce": 0.45, "cldice": 0.35}})
    for epoch in (1, 2, 3, 4):
        weights = schedule.epoch_completed(epoch)
    assert weights == pytest.approx({"dice": 0.2, "bce": 0.45, "cldice": 0.35})
    tight = create_schedule("step", {"dice": 0.2, "bce": 0.7, "cldice": 0.1}, {"max_weight": {"dice": 0.2, "bce": 0.7, "cldice": 0.1}})
    assert sum(tight.weights.values()) == pytest.approx(1.0)
    assert rebalance({"a": 1.0, "b": 0.0}, 1.0, {"a": 0.0, "b": 0.0}, {"a": 1.0 - 1e-16, "b": INF})["b"] == pytest.approx(0.0, abs=1e-12)


def test_step_after_hundreds_of_steps_stays_finite():
    assert StepSchedule({"dice": 1.0, "cldice": 0.0}, gamma=0.1, step_size=1).weights_after(309) == {"dice": 1.0, "cldice": 0.0}
    capped = StepSchedule({"dice": 0.5, "bce": 0.5}, gamma=0.1, step_size=1, max_weight=0.6)
    assert capped.weights_after(309) == pytest.approx({"dice": 0.4, "bce": 0.6})


def test_adaptive_never_drops_a_term_to_exactly_zero():
    schedule = AdaptiveSchedule({"dice": 0.5, "bce": 0.5}, temperature=2.0, max_weight=0.9)
    schedule.epoch_completed(1, {"dice": 0.5, "bce": 1e-4})
    weights = schedule.epoch_completed(2, {"dice": 0.5, "bce": 0.3})  # r_bce = 3000: exp(-1500) would be 0
    assert weights["dice"] >= 0.1 - 1e-12 and weights["bce"] == pytest.approx(0.9)
    free = AdaptiveSchedule({"dice": 0.5, "bce": 0.5}, temperature=2.0)
    free.epoch_completed(1, {"dice": 0.5, "bce": 1e-4})
    weights = free.epoch_completed(2, {"dice": 0.5, "bce": 0.3})
    assert 0.0 < weights["dice"] < 1e-20  # still computed next epoch, so it can come back
    # and it does: r = (1, .001) -> exp(.5) / (exp(.5) + exp(.0005)) = .622342
    assert free.epoch_completed(3, {"dice": 0.5, "bce": 0.0003})["dice"] == pytest.approx(0.622342, abs=1e-6)


def test_state_of_another_schedule_type_is_refused():
    state = create_schedule("performance", {"dice": 0.7, "bce": 0.3}).state_dict()
    with pytest.raises(SettingsError, match="state is of type 'performance', this schedule is 'cosine'"):
        create_schedule("cosine", {"dice": 0.7, "bce": 0.3}).load_state_dict(state)


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("step", {"milestones": 5}, "milestones must be a list of epochs"),
        ("step", {"terms": 5}, "terms must be a list of term names"),
        ("performance", {"from_terms": 3}, "from_terms must be a list of term names"),
        ("adaptive", {"keep_ratios": "false"}, "keep_ratios must be True or False"),
        ("cosine", {"normalize": "no"}, "normalize must be True or False"),
    ],
)
def test_wrongly_typed_params_are_value_errors(name, params, message):
    with pytest.raises(ValueError, match=message):
        create_schedule(name, {"dice": 0.7, "bce": 0.3}, params)
