"""Training to a wall-clock budget: measure the throughput, plan the epochs, stop at the budget.

A Trainer with `time_budget_s` (training_config.TrainConfig) trains its first epoch at the
rate the schedule gives any first epoch (warm-up, or the top of the cosine: neither depends on
how many epochs follow), timing its steps after the first few (tracing, the shuffle buffer's
fill) and its validation pass. At the end of that epoch it plans how many epochs fit in what is
left of the budget, less a reserve for the export, and the learning-rate schedule runs over
that many: it ends when the budget does. Each later epoch plans again from the pace of the
latest ones (past a dead band: noise in the pace does not move it), so a machine that was busy
during the first epoch, or becomes busy, moves the end of the schedule back to the budget's
(the learning rate then follows the new count of epochs). The plan is logged on the console,
kept beside the Trainer's backup (a Trainer restarted after a kill keeps it, and counts the
time spent before the kill), and written to the training summary. If training runs slower
than planned, it stops at the budget, mid-epoch if need be; early stopping's best weights are
then kept as usual.

`TimeBudget` holds the logic and reads an injected clock (tests use fake ones);
`BudgetCallback` feeds it Keras' events.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

import keras
import tensorflow as tf

from components.models import progress, training_config

PLAN_FILE = "time_plan.json"   # beside the Trainer's backup: a restarted Trainer reads it
# Steps of the first epoch left out of the rate: the first traces the graph, and the first
# batches wait for the shuffle buffer to fill.
SKIPPED_STEPS = 5
# Kept back from the budget for what follows the last epoch: restoring the best weights, the
# export (tracing the serving signatures, with ten-crop views) and the warm-up records. About
# 20 s on the slower 2-core machines for the `cpu` profile's networks (BENCHMARKS.md).
FINISH_RESERVE_S = 60.0

# Later epochs re-plan from the mean wall time of this many of the latest (one alone is noisy).
REPLAN_WINDOW = 3
# A dead band against re-planning on noise: a later epoch keeps the plan while it would end
# within this fraction of the time left of the budget's end, plus one epoch short of it. Without
# it VGG16-fer's plan on FER2013 swung between 50 and 53 epochs 13 times, moving its learning
# rate back and forth (BENCHMARKS.md#fer2013-cpu-2h). The band narrows as the end nears, so the
# last epochs still end at the budget.
REPLAN_TOLERANCE = 0.03

# Why training ended (TimePlan.stopped_by).
STOPPED_BY_PLAN = "plan"          # the planned epochs ran
STOPPED_BY_BUDGET = "budget"      # the budget ran out before them
STOPPED_BY_OTHER = "early stopping or the epochs cap"


@dataclasses.dataclass
class TimePlan:
    """What the planner decided after the first epoch, and what then happened."""

    budget_s: float
    epochs_cap: int
    images_per_epoch: int
    images_per_second: float = 0.0    # training, measured in the first epoch
    validation_s: float = 0.0         # one validation pass, measured in the first epoch
    epoch_s: float = 0.0              # one epoch: training at that rate + validation
    planned_epochs: int = 0           # 0: not planned yet
    spent_before_plan_s: float = 0.0  # from the Trainer's start to the plan (first epoch too)
    planned_training_s: float = 0.0   # from the Trainer's start to the end of the last epoch
    spent_s: float = 0.0              # by the end of the last finished epoch (across restarts)
    epochs_run: int = 0
    stopped_by: str = ""
    restarts: int = 0
    replans: int = 0                  # times a later epoch's pace changed the plan

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TimePlan":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def epochs_that_fit(budget_s: float, spent_s: float, epoch_s: float, epochs_done: int,
                    finish_reserve_s: float = FINISH_RESERVE_S) -> float:
    """Epochs done plus the (fractional) epochs the time left holds before the budget."""
    left = budget_s - spent_s - finish_reserve_s
    return epochs_done + (max(0.0, left / epoch_s) if epoch_s > 0 else 0.0)


def plan_epochs(budget_s: float, spent_s: float, epoch_s: float, epochs_done: int,
                epochs_cap: int, finish_reserve_s: float = FINISH_RESERVE_S) -> int:
    """How many epochs in all (at least `epochs_done`, at most `epochs_cap`) end before the
    budget, given the time spent so far and what one epoch costs."""
    fit = epochs_that_fit(budget_s, spent_s, epoch_s, epochs_done, finish_reserve_s)
    return max(epochs_done, min(epochs_cap, math.floor(fit)))


def replan_epochs(planned: int, budget_s: float, spent_s: float, epoch_s: float,
                  epochs_done: int, epochs_cap: int,
                  finish_reserve_s: float = FINISH_RESERVE_S) -> int:
    """A later epoch's plan: `planned` kept while the epochs it has ahead are within
    REPLAN_TOLERANCE of the time left (and less than one epoch short of filling it), else
    planned afresh."""
    fit = epochs_that_fit(budget_s, spent_s, epoch_s, epochs_done, finish_reserve_s)
    ahead, room = planned - epochs_done, fit - epochs_done
    if (planned <= epochs_cap
            and room * (1 - REPLAN_TOLERANCE) - 1 < ahead <= room * (1 + REPLAN_TOLERANCE)):
        return planned
    return plan_epochs(budget_s, spent_s, epoch_s, epochs_done, epochs_cap, finish_reserve_s)


class TimeBudget:
    """The planner's state for one Trainer run: `clock` is time.monotonic or a fake."""

    def __init__(self, budget_s: float, epochs_cap: int, images_per_epoch: int,
                 clock: Callable[[], float] = time.monotonic, started: Optional[float] = None,
                 plan: Optional[TimePlan] = None,
                 finish_reserve_s: float = FINISH_RESERVE_S):
        """`started`: when the Trainer started, on `clock` (default: now); `plan`: the plan of
        a run that was killed, to take up."""
        if budget_s <= 0:
            raise ValueError(f"a time budget must be positive, got {budget_s}")
        self._clock = clock
        self._finish_reserve_s = finish_reserve_s
        if plan is None:
            plan = TimePlan(budget_s=budget_s, epochs_cap=epochs_cap,
                            images_per_epoch=images_per_epoch)
        else:  # a restart: the plan and the time already spent carry over
            plan.restarts += 1
        self.plan = plan
        # The budget counts the killed run's time too.
        self._started = (clock() if started is None else started) - plan.spent_s
        self._rate_start: Optional[float] = None
        self._rate_end: Optional[float] = None
        self._rate_steps = 0
        self._out_of_time = False
        self._recent_epoch_s: List[float] = []
        self._validation_start: Optional[float] = None
        self._validation_s = 0.0

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    @property
    def epochs(self) -> int:
        """The epochs the schedule runs over: the plan's, or the cap until there is one."""
        return self.plan.planned_epochs or self.plan.epochs_cap

    def out_of_time(self) -> bool:
        """True once training has eaten into the finish reserve."""
        return self.elapsed_s > self.plan.budget_s - self._finish_reserve_s

    # --- events, from BudgetCallback ----------------------------------------------------------

    def train_batch_end(self, epoch: int, step: int) -> bool:
        """Returns True when training must stop now (the budget is spent)."""
        if not self.plan.planned_epochs:
            if step + 1 == SKIPPED_STEPS:
                self._rate_start = self._clock()
            elif step + 1 > SKIPPED_STEPS:
                self._rate_end = self._clock()
                self._rate_steps = step + 1 - SKIPPED_STEPS
        self._out_of_time = self.out_of_time()
        return self._out_of_time

    def validation_begin(self) -> None:
        self._validation_start = self._clock()

    def validation_end(self) -> None:
        if self._validation_start is not None:
            self._validation_s = self._clock() - self._validation_start

    def epoch_end(self, epoch: int, batch_size: int) -> Optional[TimePlan]:
        """Records the epoch. At the end of the first, plans from the measured rate; at the end
        of each later one, plans again from the last REPLAN_WINDOW epochs' wall time, so that
        a machine busy during the first epoch, or later, moves the schedule's end back to the
        budget's. Returns the plan when it was made or changed now, else None."""
        plan = self.plan
        plan.epochs_run = epoch + 1
        now_spent = self.elapsed_s
        last_epoch_s, plan.spent_s = now_spent - plan.spent_s, now_spent
        if plan.planned_epochs:
            self._recent_epoch_s = (self._recent_epoch_s + [last_epoch_s])[-REPLAN_WINDOW:]
            epoch_s = sum(self._recent_epoch_s) / len(self._recent_epoch_s)
            planned = replan_epochs(plan.planned_epochs, plan.budget_s, plan.spent_s, epoch_s,
                                    epoch + 1, plan.epochs_cap, self._finish_reserve_s)
            if planned == plan.planned_epochs:
                return None
            plan.epoch_s, plan.planned_epochs = epoch_s, planned
            plan.replans += 1
        else:
            if self._rate_start is not None and self._rate_end is not None:
                rate = self._rate_steps * batch_size / (self._rate_end - self._rate_start)
            else:  # an epoch of SKIPPED_STEPS steps or fewer: its whole time, a lower bound
                rate = plan.images_per_epoch / max(plan.spent_s - self._validation_s, 1e-9)
            plan.images_per_second = rate
            plan.validation_s = self._validation_s
            plan.epoch_s = plan.images_per_epoch / rate + self._validation_s
            plan.spent_before_plan_s = plan.spent_s
            plan.planned_epochs = plan_epochs(plan.budget_s, plan.spent_s, plan.epoch_s,
                                              epoch + 1, plan.epochs_cap,
                                              self._finish_reserve_s)
        plan.planned_training_s = (plan.spent_s
                                   + (plan.planned_epochs - epoch - 1) * plan.epoch_s)
        return plan

    def finish(self) -> TimePlan:
        """At the end of training: why it stopped."""
        if self._out_of_time:
            self.plan.stopped_by = STOPPED_BY_BUDGET
        elif self.plan.epochs_run >= self.epochs:
            self.plan.stopped_by = STOPPED_BY_PLAN
        else:
            self.plan.stopped_by = STOPPED_BY_OTHER
        return self.plan


def describe_replan(label: str, plan: TimePlan) -> str:
    """'Trainer vgg16: 75 s an epoch lately -> 28 epochs, ending at 51m05s'."""
    return (f"{label}: {plan.epoch_s:.0f} s an epoch lately -> {plan.planned_epochs} epochs, "
            f"ending at {training_config.format_duration(plan.planned_training_s)}")


def describe(label: str, plan: TimePlan) -> str:
    """The console line, e.g. 'Trainer vgg16: 612 images/s -> 23 epochs of 25,430 images in
    48m10s (budget 52m30s)'."""
    return (f"{label}: {plan.images_per_second:,.0f} images/s -> {plan.planned_epochs} epochs "
            f"of {plan.images_per_epoch:,} images in "
            f"{training_config.format_duration(plan.planned_training_s)} "
            f"(budget {training_config.format_duration(plan.budget_s)}"
            + (", the epochs cap" if plan.planned_epochs == plan.epochs_cap else "") + ")")


def describe_outcome(plan: Dict[str, Any]) -> str:
    """A training summary's `time_plan` in words, for the model card: '52m30s: 612 images/s in
    the first epoch -> 23 epochs planned, ending at 51m05s; 23 run (the plan)'."""
    fmt = training_config.format_duration
    if not plan.get("planned_epochs"):
        return f"{fmt(plan['budget_s'])}: stopped before the first epoch ended"
    return (f"{fmt(plan['budget_s'])}: {plan['images_per_second']:,.0f} images/s in the first "
            f"epoch -> {plan['planned_epochs']} epochs planned"
            + (f" ({plan['replans']} changes on later epochs' pace)" if plan.get("replans")
               else "")
            + f", ending at {fmt(plan['planned_training_s'])}; {plan['epochs_run']} run in "
            f"{fmt(plan['spent_s'])} ({plan['stopped_by']})")


def read_plan(directory: str) -> Optional[TimePlan]:
    path = os.path.join(directory, PLAN_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return TimePlan.from_json(json.load(f))


def write_plan(directory: str, plan: TimePlan) -> None:
    with tf.io.gfile.GFile(os.path.join(directory, PLAN_FILE), "w") as f:
        json.dump(plan.to_json(), f, indent=1)


class BudgetCallback(keras.callbacks.Callback):
    """Feeds `budget` Keras' events, stops training at the budget, logs the plan when it is
    made and keeps it in `plan_dir` (written at every epoch's end, for a restart).

    Put it before progress.EpochProgress, which it tells the planned epochs, and before the
    learning-rate schedule, which reads `budget.epochs`.
    """

    def __init__(self, budget: TimeBudget, label: str, batch_size: int, plan_dir: str,
                 epoch_progress: Optional[progress.EpochProgress] = None):
        super().__init__()
        self.budget, self._label, self._batch_size = budget, label, batch_size
        self._plan_dir, self._progress = plan_dir, epoch_progress
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.budget.train_batch_end(self._epoch, batch):
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self.budget.validation_begin()

    def on_test_end(self, logs=None):
        self.budget.validation_end()

    def on_epoch_end(self, epoch, logs=None):
        plan = self.budget.epoch_end(epoch, self._batch_size)
        if plan is not None:
            progress.log.info("%s", describe_replan(self._label, plan) if plan.replans
                              else describe(self._label, plan))
            if self._progress is not None:
                self._progress.epochs = plan.planned_epochs
        if epoch + 1 >= self.budget.epochs:
            self.model.stop_training = True
        write_plan(self._plan_dir, self.budget.plan)

    def on_train_end(self, logs=None):
        write_plan(self._plan_dir, self.budget.finish())
