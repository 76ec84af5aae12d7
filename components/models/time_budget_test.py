"""The time-budget planner on fake clocks: throughput -> epochs, budget spent, stop at the
budget, a restart keeps the plan; and the callback inside a real (tiny) Keras fit."""
import logging

import keras
import numpy as np
import pytest

from components import contract
from components.models import progress, time_budget


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_first_epoch(budget: time_budget.TimeBudget, clock: FakeClock, steps: int,
                    step_s: float, first_step_s: float, validation_s: float,
                    batch_size: int) -> time_budget.TimePlan:
    """Drives `budget` through epoch 0: a slow first step (tracing), then steady steps, then
    validation."""
    for step in range(steps):
        clock.now += first_step_s if step == 0 else step_s
        assert not budget.train_batch_end(0, step)
    budget.validation_begin()
    clock.now += validation_s
    budget.validation_end()
    return budget.epoch_end(0, batch_size)


def test_plan_epochs_fills_the_budget_and_respects_the_bounds():
    # 100 s of budget, 10 spent, 10 kept for the export: 80 s at 20 s an epoch = 4 more epochs.
    assert time_budget.plan_epochs(100, 10, epoch_s=20, epochs_done=1, epochs_cap=50,
                                   finish_reserve_s=10) == 5
    assert time_budget.plan_epochs(100, 10, 20, epochs_done=1, epochs_cap=3,
                                   finish_reserve_s=10) == 3          # the cap
    assert time_budget.plan_epochs(100, 95, 20, epochs_done=1, epochs_cap=50,
                                   finish_reserve_s=10) == 1          # nothing left: no more


def test_throughput_after_the_first_steps_plans_epochs_that_end_with_the_budget():
    clock = FakeClock()
    started = clock.now
    clock.now += 30.0    # building the model and reading the data, before fit
    budget = time_budget.TimeBudget(budget_s=3600, epochs_cap=500, images_per_epoch=6400,
                                    clock=clock, started=started, finish_reserve_s=60)
    assert budget.epochs == 500          # the cap, until the plan
    # 100 steps of 64 images: the first takes 20 s (tracing), then 0.1 s a step = 640 images/s.
    plan = run_first_epoch(budget, clock, steps=100, step_s=0.1, first_step_s=20.0,
                           validation_s=2.0, batch_size=64)
    assert plan is not None
    assert plan.images_per_second == pytest.approx(640.0)  # the tracing steps left out
    assert plan.epoch_s == pytest.approx(6400 / 640 + 2.0)
    spent = 30.0 + 20.0 + 99 * 0.1 + 2.0
    assert plan.spent_s == pytest.approx(spent)
    assert plan.planned_epochs == 1 + int((3600 - spent - 60) // 12.0)
    assert budget.epochs == plan.planned_epochs
    # The plan uses the budget: its last epoch ends within one epoch of budget - reserve.
    assert 3600 - 60 - 12.0 < plan.planned_training_s <= 3600 - 60
    clock.now += 12.0
    assert budget.epoch_end(1, 64) is None   # at the planned pace: the plan stands


def test_a_busy_first_epoch_is_made_up_for_by_later_epochs_pace():
    """Planned while the machine was busy (30 s an epoch), trained at 10 s an epoch: the plan
    follows the later pace, and the last epoch ends within one epoch of the budget."""
    clock = FakeClock()
    budget = time_budget.TimeBudget(budget_s=1000, epochs_cap=500, images_per_epoch=640,
                                    clock=clock, finish_reserve_s=50)
    plan = run_first_epoch(budget, clock, steps=10, step_s=3.0, first_step_s=3.0,
                           validation_s=0.0, batch_size=64)
    first_plan = plan.planned_epochs
    assert first_plan == 1 + int((1000 - 30 - 50) // 30)
    epoch = 1
    while epoch < budget.epochs:
        clock.now += 10.0
        budget.epoch_end(epoch, 64)
        epoch += 1
    assert budget.plan.planned_epochs > 2 * first_plan and budget.plan.replans >= 1
    # The last epoch ends within about an epoch of budget - reserve (the dead band's margin).
    assert 1000 - 50 - 12.0 < clock.now - 1000.0 <= 1000 - 50 + 1.0
    assert budget.finish().stopped_by == time_budget.STOPPED_BY_PLAN


def test_pace_noise_around_an_epoch_boundary_does_not_swing_the_plan():
    """Epochs of 9.8 and 10.2 s in turn: the plan is shortened when it no longer fits and not
    lengthened again for a fraction of an epoch; the run still ends within the budget."""
    clock = FakeClock()
    budget = time_budget.TimeBudget(budget_s=1000, epochs_cap=500, images_per_epoch=640,
                                    clock=clock, finish_reserve_s=50)
    run_first_epoch(budget, clock, steps=10, step_s=1.0, first_step_s=1.0,
                    validation_s=0.0, batch_size=64)
    plans, epoch = [budget.epochs], 1
    while epoch < budget.epochs:
        clock.now += 9.8 if epoch % 2 else 10.2
        budget.epoch_end(epoch, 64)
        plans.append(budget.epochs)
        epoch += 1
    swings = sum(1 for a, b, c in zip(plans, plans[1:], plans[2:], strict=False)
                 if (b - a) * (c - b) < 0)
    assert swings == 0, plans
    assert budget.plan.replans <= 2, plans
    assert clock.now - 1000.0 <= 1000 - 50
    assert budget.finish().stopped_by == time_budget.STOPPED_BY_PLAN


def test_replan_epochs_keeps_a_plan_within_the_dead_band():
    args = dict(budget_s=1000, spent_s=500, epoch_s=10, epochs_done=50, epochs_cap=500,
                finish_reserve_s=0)          # 50 more epochs fit: 100 in all
    assert time_budget.REPLAN_TOLERANCE == 0.03      # 1.5 epochs of 50 (+ 1 below)
    assert time_budget.replan_epochs(100, **args) == 100
    assert time_budget.replan_epochs(101, **args) == 101    # 1 over, within 3% of 50
    assert time_budget.replan_epochs(98, **args) == 98      # 2 short: within the band
    assert time_budget.replan_epochs(97, **args) == 100     # 3 short: lengthened
    assert time_budget.replan_epochs(102, **args) == 100    # 2 over: shortened
    assert time_budget.replan_epochs(99, **{**args, "epochs_cap": 60}) == 60
    near_the_end = {**args, "spent_s": 960}  # 4 epochs left: no room to overrun
    assert time_budget.replan_epochs(55, **near_the_end) == 54


def test_training_stops_at_the_budget_when_it_runs_slower_than_planned():
    clock = FakeClock()
    budget = time_budget.TimeBudget(budget_s=600, epochs_cap=100, images_per_epoch=640,
                                    clock=clock, finish_reserve_s=30)
    plan = run_first_epoch(budget, clock, steps=10, step_s=1.0, first_step_s=1.0,
                           validation_s=0.0, batch_size=64)
    planned = plan.planned_epochs
    assert planned > 2
    # Then the machine gets three times slower: the stop comes from the budget, mid-epoch.
    stopped_at = None
    for epoch in range(1, planned):
        for step in range(10):
            clock.now += 3.0
            if budget.train_batch_end(epoch, step):
                stopped_at = clock.now
                break
        budget.epoch_end(epoch, 64)
        if stopped_at:
            break
    assert stopped_at is not None and budget.plan.epochs_run < planned
    assert 600 - 30 < stopped_at - 1000.0 <= 600 - 30 + 3.0   # within one step of the budget
    assert budget.finish().stopped_by == time_budget.STOPPED_BY_BUDGET


def test_a_restart_keeps_the_plan_and_counts_the_time_spent_before_the_kill(tmp_path):
    clock = FakeClock()
    first = time_budget.TimeBudget(budget_s=1000, epochs_cap=100, images_per_epoch=640,
                                   clock=clock, finish_reserve_s=0)
    plan = run_first_epoch(first, clock, steps=10, step_s=1.0, first_step_s=1.0,
                           validation_s=0.0, batch_size=64)
    for epoch in (1, 2):
        clock.now += 10.0
        first.epoch_end(epoch, 64)
    time_budget.write_plan(str(tmp_path), first.plan)
    spent = first.plan.spent_s
    # Killed; restarted an hour later on a machine twice as fast: the plan stays as it was.
    clock.now += 3600.0
    restarted = time_budget.TimeBudget(budget_s=1000, epochs_cap=100, images_per_epoch=640,
                                       clock=clock, plan=time_budget.read_plan(str(tmp_path)),
                                       finish_reserve_s=0)
    assert restarted.epochs == plan.planned_epochs
    assert restarted.plan.restarts == 1
    assert restarted.elapsed_s == pytest.approx(spent)   # the hour away does not count
    for step in range(10):
        clock.now += 1.0
        restarted.train_batch_end(3, step)
    assert restarted.epoch_end(3, 64) is None   # the same pace: no new measurement, no change
    assert restarted.epochs == plan.planned_epochs
    assert restarted.plan.images_per_second == plan.images_per_second


def test_the_plan_line_on_the_console():
    plan = time_budget.TimePlan(budget_s=3150, epochs_cap=100, images_per_epoch=25430,
                                images_per_second=612.4, planned_epochs=23,
                                planned_training_s=2890)
    assert time_budget.describe("Trainer vgg16", plan) == (
        "Trainer vgg16: 612 images/s -> 23 epochs of 25,430 images in 48m10s "
        "(budget 52m30s)")


def test_callback_in_fit_plans_sets_the_schedule_and_stops_at_the_plan(tmp_path, caplog):
    """A tiny model trained by Keras' fit with the budget's callback and a fake clock in which
    every step takes 1 s: the plan is made after the first epoch, the progress line and the
    schedule follow it, training stops when the plan says, and the plan file says why."""
    clock = FakeClock()
    budget = time_budget.TimeBudget(budget_s=80, epochs_cap=50, images_per_epoch=80,
                                    clock=clock, finish_reserve_s=10)

    class Tick(keras.callbacks.Callback):   # the fake clock's time passing: 1 s a step
        def on_train_batch_begin(self, batch, logs=None):
            clock.now += 1.0

    epoch_progress = progress.EpochProgress("Trainer tiny", 50, 80, clock=clock)
    planned_epochs_seen = []
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch: planned_epochs_seen.append(budget.epochs) or 0.01)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.random.rand(80, 4).astype("float32"), np.random.randint(0, 2, 80)
    with caplog.at_level(logging.INFO, logger=contract.PROGRESS_LOGGER):
        history = model.fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[
            Tick(),
            time_budget.BudgetCallback(budget, "Trainer tiny", 8, str(tmp_path), epoch_progress),
            schedule, epoch_progress])
    # 10 steps an epoch at 1 s: epoch 0 spends 10 s, (80 - 10 - 10) / 10 = 6 more epochs.
    assert budget.plan.planned_epochs == 7
    assert len(history.history["loss"]) == 7
    assert planned_epochs_seen[0] == 50 and set(planned_epochs_seen[1:]) == {7}
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("Trainer tiny: 8 images/s -> 7 epochs of 80 images")
    assert lines[1].startswith("Trainer tiny: epoch 1/7 ")
    saved = time_budget.read_plan(str(tmp_path))
    assert saved.planned_epochs == 7 and saved.epochs_run == 7
    assert saved.stopped_by == time_budget.STOPPED_BY_PLAN
