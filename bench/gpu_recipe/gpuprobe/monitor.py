"""The per-epoch callback: learning-rate schedule, timing, best weights and the
wall-clock guard."""

from __future__ import annotations

import os
import time

import numpy as np

from .runtime import log


def make_monitor(keras, base, args, requested, budget_s, base_lr, n_train_per_epoch,
                 steps_per_epoch, on_epoch):
    class Monitor(keras.callbacks.Callback):
        """Per-epoch cosine LR over the planned epochs, timing, best-val-accuracy weights in
        memory, and the wall-clock guard."""

        def __init__(self):
            super().__init__()
            self.planned = requested
            self.history = []
            self.best_acc, self.best_epoch, self.best_weights = -1.0, None, None
            self.stopped_by_budget = False
            self.t_fit = None
            self.t_train_end = None
            self.first_step_s = None
            self.plateau_lr, self.plateau_best, self.plateau_wait = base_lr, -1.0, 0

        def lr(self, epoch):
            from components.models.training_config import lr_at_epoch
            if args.warmup_epochs and epoch < args.warmup_epochs:
                return lr_at_epoch(epoch, self.planned, base_lr, args.warmup_epochs)
            if args.lr_schedule == "constant":
                return base_lr
            if args.lr_schedule == "plateau":
                return self.plateau_lr
            # warmup 0, floor 0.05: trainer.py's schedule, unchanged
            return lr_at_epoch(epoch, self.planned, base_lr, args.warmup_epochs, args.lr_floor)

        def _plateau_step(self, epoch, val_acc):
            """ReduceLROnPlateau(mode=max) on validation accuracy, after the warm-up."""
            if args.lr_schedule != "plateau" or epoch + 1 < args.warmup_epochs:
                return
            if val_acc > self.plateau_best:
                self.plateau_best, self.plateau_wait = val_acc, 0
                return
            self.plateau_wait += 1
            if self.plateau_wait >= args.plateau_patience:
                self.plateau_lr *= args.plateau_factor
                self.plateau_wait = 0
                log(f"  [plateau] lr -> {self.plateau_lr:.3e}")

        def on_train_begin(self, logs=None):
            self.t_fit = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.cur_lr = self.lr(epoch)
            self.model.optimizer.learning_rate = self.cur_lr
            self.t_epoch = time.perf_counter()
            self.t_train_end = None
            self.steps_done = 0
            self.epoch_idx = epoch
            self.cut_mid_epoch = False

        def on_train_batch_begin(self, batch, logs=None):
            # Hard guard for an epoch far slower than planned (e.g. no accelerator): stop
            # mid-epoch once the budget is spent; Keras still validates and we still score.
            # (Batch-begin hooks keep Keras' asynchronous dispatch; batch-end ones would not.)
            self.steps_done += 1
            if args.sync_every and self.steps_done % args.sync_every == 0:
                self._wait_for_device()
            if self.epoch_idx == 0 and self.steps_done == 2:
                # The first train_function call returns once compiled and dispatched.
                self.first_step_s = time.perf_counter() - self.t_fit
                log(f"  (first train step compiled and dispatched after {self.first_step_s:.1f}s)")
            if os.environ.get("GPUPROBE_DEBUG_STEPS"):
                log(f"    step {self.steps_done} begins at {time.perf_counter() - self.t_fit:.2f}s")
            if time.perf_counter() - self.t_fit > budget_s and not self.cut_mid_epoch:
                self.cut_mid_epoch = True
                self.model.stop_training = True

        def _wait_for_device(self):
            """Block until the latest dispatched train step is done: without it the host
            dispatches a whole epoch ahead and the time check above sees nothing."""
            state = getattr(self.model, "_jax_state", None)  # JAX trainer: latest step's state
            if state:
                import jax
                # Keras keeps these in TrackedLists, which jax.tree does not descend into.
                for group in ("metrics_variables", "trainable_variables"):
                    leaves = list(state.get(group) or [])
                    if leaves:
                        jax.block_until_ready(leaves)
                        break
            elif keras.backend.backend() != "jax":
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)

        def on_test_begin(self, logs=None):
            if self.t_train_end is None and self.t_fit is not None:
                # Wait for the epoch's last train step (JAX dispatches asynchronously).
                np.asarray(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
                self.t_train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            logs = dict(logs or {})
            t_train_end = self.t_train_end or now
            rec = {"epoch": epoch + 1, "lr": self.cur_lr,
                   "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
                   "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"),
                   "epoch_s": now - self.t_epoch, "train_s": t_train_end - self.t_epoch,
                   "val_s": now - t_train_end, "elapsed_s": now - self.t_fit}
            rec["steps"] = self.steps_done
            rec["train_images_per_s"] = (n_train_per_epoch * self.steps_done / steps_per_epoch
                                         / max(rec["train_s"], 1e-9))
            if self.cut_mid_epoch:
                rec["cut_mid_epoch"] = True
            rec = {k: (float(v) if isinstance(v, (np.generic, float)) else v)
                   for k, v in rec.items()}
            va = rec["val_accuracy"] if rec["val_accuracy"] is not None else -rec["val_loss"]
            improved = va > self.best_acc
            self._plateau_step(epoch, va)
            if improved:
                self.best_acc, self.best_epoch = va, epoch + 1
                self.best_weights = base.get_weights()
            self.history.append(rec)
            # Guard: plan only from compile-free epochs (the first includes compilation).
            elapsed = rec["elapsed_s"]
            clean = [h["epoch_s"] for h in self.history[1:]]
            est = clean[-1] if clean else 0.0
            if len(clean) >= 2:
                est = max(clean[-1], float(np.median(clean[-3:])))
            old_plan = self.planned
            if est > 0:
                fits = int(max(0.0, budget_s - elapsed) // (est * 1.05))
                self.planned = max(epoch + 1, min(self.planned, epoch + 1 + fits))
            if elapsed >= budget_s or self.cut_mid_epoch:
                self.planned = epoch + 1
            if self.planned <= epoch + 1 and epoch + 1 < requested:
                self.stopped_by_budget = True
            if epoch + 1 >= self.planned:
                self.model.stop_training = True
            log(f"  {rec['epoch']:>3}/{self.planned:<3} lr {rec['lr']:.2e}  "
                f"loss {rec['loss']:.4f} acc {rec['accuracy']:.4f}  "
                f"val_loss {rec['val_loss']:.4f} val_acc {rec['val_accuracy']:.4f}"
                f"{' *' if improved else '  '} | {rec['epoch_s']:6.2f}s "
                f"(train {rec['train_s']:.2f} + val {rec['val_s']:.2f}) "
                f"{rec['train_images_per_s']:8.0f} img/s  t={elapsed:6.1f}s"
                + (f"  [cut after {self.steps_done}/{steps_per_epoch} steps: budget spent]"
                   if self.cut_mid_epoch else ""))
            if self.planned != old_plan:
                log(f"  [guard] plan {old_plan} -> {self.planned} epochs (compile-free epoch "
                    f"{'~%.2fs' % est if est else 'not measured yet'}, budget {budget_s:.0f}s, "
                    f"used {elapsed:.1f}s)")
            on_epoch(self)

    return Monitor()
