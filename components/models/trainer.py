"""Trainer and Tuner module for VGG16 and ResNet50: `run_fn`, `tuner_fn` and the search space.

One Keras everywhere: Keras 3 (`import keras`) for KerasTuner, training and export. tf.Transform
would otherwise switch `tf.keras` to Keras 2 (TF_USE_LEGACY_KERAS=1), which KerasTuner rejects;
`components/__init__.py` sets TF_USE_LEGACY_KERAS=0 before TensorFlow is imported.

Training settings come in each component's `custom_config` (training_config.TrainConfig); the
input pipeline, the exported model and the training summary are in input_pipeline.py, export.py
and training_summary.py.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx

from components.models import (
    backup_key,
    devices,
    export,
    input_pipeline,
    progress,
    resnet50,
    time_budget,
    training_config,
    training_metrics,
    training_summary,
    vgg16,
    warm_start,
)
from components.models.training_config import TrainConfig

BUILDERS = {"vgg16": vgg16.build, "resnet50": resnet50.build}
BACKUP_DIR_NAME = "training_backup"
TRAINING_MODEL_NAME = "augment_then_classify"


def default_hyperparameters(config: TrainConfig) -> Dict[str, Any]:
    """Used when tuning is off, and as the first point of every search."""
    return training_config.hyperparameters(config)


def search_space(hp: keras_tuner.HyperParameters, config: TrainConfig) -> Dict[str, Any]:
    """What KerasTuner searches per architecture; returns concrete hyperparameters."""
    defaults = default_hyperparameters(config)
    lr = float(defaults["learning_rate"])
    params = {
        # The range always holds the default (SGD recipes run at 0.01-0.05).
        "learning_rate": hp.Float("learning_rate", min(1e-4, lr), max(3e-3, lr), sampling="log",
                                  default=lr),
        "optimizer": hp.Choice("optimizer", ["adam", "sgd"], default=defaults["optimizer"]),
        "dropout": hp.Float("dropout", 0.1, 0.6, step=0.1, default=defaults["dropout"]),
        "head_units": hp.Choice("head_units", [0, 128, 256, 512], default=defaults["head_units"]),
    }
    if config.weights:  # fine-tuning depth matters only with pretrained weights
        params["trainable_base_layers"] = hp.Choice("trainable_base_layers", [-1, 4, 8, 16],
                                                    default=-1)
    return params


class DefaultsFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is the default hyperparameters (KerasTuner's random
    search draws every trial at random), so that a search never ends worse than no search on
    its own objective, and a one-trial search trains the defaults."""

    def populate_space(self, trial_id):
        if not self.trials:
            values = {hp.name: hp.default for hp in self.hyperparameters.space}
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
        return super().populate_space(trial_id)


def build_model(config: TrainConfig, hparams: Dict[str, Any], image_shape,
                replicas: int = 1) -> keras.Model:
    """A compiled classifier: softmax output, categorical cross-entropy (on one-hot labels
    when label smoothing is on, see `one_hot_classes`). With `replicas` > 1 the batch is
    `replicas` times larger and so is the learning rate (linear scaling). With
    `augment_in_model`, the augmentation layers come first (see `classifier`)."""
    model = BUILDERS[config.architecture](
        image_shape, config.num_classes, variant=config.variant, weights=config.weights,
        dropout=float(hparams["dropout"]), head_units=int(hparams["head_units"]),
        trainable_base_layers=int(hparams.get("trainable_base_layers", -1)), width=config.width)
    if config.augment and config.augment_in_model:
        inputs = keras.Input(shape=image_shape, name="image")
        augment = input_pipeline.augmenter(config.seed, config.zoom, config.crop_pad,
                                         config.erasing)
        model = keras.Model(inputs, model(augment(inputs)), name=TRAINING_MODEL_NAME)
    lr = float(hparams["learning_rate"]) * replicas
    weight_decay = config.weight_decay or None  # decoupled: var -= lr * weight_decay * var
    optimizer = (keras.optimizers.Adam(lr, weight_decay=weight_decay)
                 if hparams["optimizer"] == "adam"
                 else keras.optimizers.SGD(lr, momentum=0.9, nesterov=True,
                                           weight_decay=weight_decay))
    if one_hot_classes(config):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=[accuracy, *training_metrics.curve_metrics(config.num_classes)])
    return model


def classifier(model: keras.Model) -> keras.Model:
    """The classifier to export: `model`, or the one inside a training model that augments."""
    return model.layers[-1] if model.name == TRAINING_MODEL_NAME else model


def one_hot_classes(config: TrainConfig) -> int:
    """How many classes the input pipeline one-hot encodes labels into (0: sparse labels)."""
    return config.num_classes if config.label_smoothing else 0


def distribution_strategy(mode: str) -> tf.distribute.Strategy:
    """training_config.DISTRIBUTE_MODES: MirroredStrategy over two or more GPUs ("auto"), over
    the GPUs or else the logical CPUs ("mirrored"), or the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if mode == "default" or (mode == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)


def learning_rate_schedule(config: TrainConfig, base_lr: float,
                           epochs: Callable[[], int]) -> keras.callbacks.Callback:
    """training_config.lr_at_epoch over `epochs()` epochs (`config.epochs`, or a time budget's
    plan, made after the first epoch), set at each epoch's start."""
    return keras.callbacks.LearningRateScheduler(
        lambda epoch: training_config.lr_at_epoch(epoch, epochs(), base_lr,
                                                  config.warmup_epochs, config.lr_floor))


# --- TFX entry points -------------------------------------------------------------------------

def _training_devices(config: TrainConfig, who: str) -> Dict[str, Any]:
    """What this Trainer or Tuner trains on, on the console and in the log; stops here when the
    settings require a GPU and there is none (devices.NoGpuError)."""
    hardware = devices.describe()
    devices.check(config.require_gpu, hardware, who)
    progress.log.info("%s: training on %s, TensorFlow %s", who, hardware["trained_on"],
                      hardware["tensorflow"])
    return hardware


def _set_precision(config: TrainConfig) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision
                                            else "float32")


def _steps(n_examples: int, batch_size: int, cap: int) -> int:
    steps = max(1, math.ceil(n_examples / batch_size))
    return min(steps, cap) if cap else steps


def _backup_dir(fn_args: tfx.components.FnArgs) -> str:
    """A directory that is the same when the Trainer is re-run on the same inputs.

    Each TFX execution gets new output URIs, so the backup lives beside them, keyed by what
    determines the training run (by content: backup_key.backup_key); a restarted Trainer finds
    the killed run's last epoch there, also when a re-run without the cache re-executed
    Transform.
    """
    key = backup_key.backup_key(fn_args.train_files, fn_args.eval_files, fn_args.base_model,
                                fn_args.hyperparameters, fn_args.custom_config)
    trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(trainer_root, BACKUP_DIR_NAME, key)


def _training_input(fn_args: tfx.components.FnArgs, tf_transform_output: tft.TFTransformOutput,
                    config: TrainConfig, counts, batch_size: int) -> tf.data.Dataset:
    augment = (input_pipeline.augmenter(config.seed, config.zoom, config.crop_pad, config.erasing)
               if config.augment and not config.augment_in_model else None)
    return input_pipeline.input_fn(
        fn_args.train_files, fn_args.data_accessor, tf_transform_output, batch_size,
        training=True, augment=augment, seed=config.seed, num_examples=sum(counts),
        one_hot_classes=one_hot_classes(config))


def _validation_input(fn_args: tfx.components.FnArgs,
                      tf_transform_output: tft.TFTransformOutput,
                      config: TrainConfig, batch_size: int) -> tf.data.Dataset:
    """The Trainer's eval split (`valid` when the pipeline has one), or a fixed subset of
    `config.validation_examples` of it."""
    num_examples = (sum(input_pipeline.count_labels(fn_args.eval_files, config.num_classes))
                    if config.validation_examples else 0)
    return input_pipeline.input_fn(
        fn_args.eval_files, fn_args.data_accessor, tf_transform_output, batch_size,
        training=False, seed=config.seed, num_examples=num_examples,
        max_examples=config.validation_examples, one_hot_classes=one_hot_classes(config))


def warm_start_settings(config: TrainConfig, hparams: Dict[str, Any]
                        ) -> Tuple[TrainConfig, Dict[str, Any]]:
    """What a warm-started Trainer trains with: `warm_start_epochs` epochs (a cap, with a time
    budget) from `warm_start_lr_scale` of the rate, and no warm-up: warm-up is for random
    weights, and a schedule of a few epochs that began with two of warm-up would end at its
    top rate."""
    config = dataclasses.replace(config, epochs=config.warm_start_epochs or config.epochs,
                                 warmup_epochs=0)
    return config, {**hparams, "learning_rate": hparams["learning_rate"]
                    * config.warm_start_lr_scale}


def _time_budget(config: TrainConfig, started: float, backup_root: str, steps_per_epoch: int,
                 batch_size: int, num_examples: int) -> Optional[time_budget.TimeBudget]:
    """The planner of a Trainer with a time budget (None without one); a restarted Trainer
    takes up the plan of the run that was killed (kept beside its backup)."""
    if not config.time_budget_s:
        return None
    return time_budget.TimeBudget(
        config.time_budget_s, epochs_cap=config.epochs,
        images_per_epoch=min(steps_per_epoch * batch_size, num_examples), started=started,
        plan=time_budget.read_plan(backup_root))


def budget_epochs(budget: Optional[time_budget.TimeBudget],
                  config: TrainConfig) -> Callable[[], int]:
    """The epochs the learning-rate schedule spans: the budget's plan, or `config.epochs`."""
    return (lambda: budget.epochs) if budget else (lambda: config.epochs)


def _hyperparameters(fn_args: tfx.components.FnArgs, config: TrainConfig) -> Dict[str, Any]:
    hparams = default_hyperparameters(config)
    if fn_args.hyperparameters:  # from the Tuner: a KerasTuner HyperParameters config
        tuned = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values
        hparams.update(tuned)
    return hparams


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains with the tuned (or default) hyperparameters and exports the serving model."""
    started = time.monotonic()  # a time budget counts from here
    config = TrainConfig.from_custom_config(fn_args.custom_config)
    hardware = _training_devices(config, f"Trainer {config.architecture}")
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)
    strategy = distribution_strategy(config.distribute)
    replicas = strategy.num_replicas_in_sync
    batch_size = config.batch_size * replicas  # config.batch_size is per replica
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    hparams = _hyperparameters(fn_args, config)
    counts = input_pipeline.count_labels(fn_args.train_files, config.num_classes)
    logging.info("Training %s (%s, width %s) on %s examples per class with %s on %d replica(s)",
                 config.architecture, config.variant, config.width,
                 dict(zip(config.label_names, counts, strict=True)), hparams, replicas)

    image_shape = input_pipeline.image_shape(tf_transform_output)
    # A warm start keeps the base model's head: the weights fix its shape.
    hparams.update(warm_start.base_shape_hyperparameters(fn_args.base_model))
    with strategy.scope():
        model = build_model(config, hparams, image_shape, replicas)
        # From the last pushed model of this architecture when there is one (the pipeline's
        # base_model); the restarted run of a killed Trainer restores its own epochs on top.
        start = warm_start.load(model, config, image_shape, hparams, fn_args.base_model)
    if start["warm"]:
        config, hparams = warm_start_settings(config, hparams)
    start["initial_weights_sha256"] = warm_start.weights_digest(model)
    logging.info("Training %s %s: %s", config.architecture,
                 "warm" if start["warm"] else "cold", start["reason"] or start["base_model"])
    train = _training_input(fn_args, tf_transform_output, config, counts, batch_size)
    evaluation = _validation_input(fn_args, tf_transform_output, config, batch_size)

    backup_root = _backup_dir(fn_args)
    training_log = os.path.join(backup_root, training_summary.TRAINING_LOG)
    tf.io.gfile.makedirs(backup_root)
    steps_per_epoch = _steps(sum(counts), batch_size, config.max_steps_per_epoch)
    label = f"Trainer {config.architecture}"
    epoch_progress = progress.EpochProgress(label, config.epochs,
                                            min(steps_per_epoch * batch_size, sum(counts)))
    budget = _time_budget(config, started, backup_root, steps_per_epoch, batch_size,
                          sum(counts))
    monitor_mode = "min" if config.best_epoch_metric == "val_loss" else "max"
    callbacks = [
        # Saves weights, optimizer state and epoch at each epoch end; a restarted run resumes.
        keras.callbacks.BackupAndRestore(os.path.join(backup_root, "checkpoint"),
                                         delete_checkpoint=True),
        keras.callbacks.CSVLogger(training_log, append=True),
        # Before the schedule and the progress line, which read its plan.
        *([time_budget.BudgetCallback(budget, label, batch_size, backup_root, epoch_progress)]
          if budget else []),
        learning_rate_schedule(config, float(hparams["learning_rate"]) * replicas,
                               budget_epochs(budget, config)),
        # val_loss by default, not val_accuracy: in early epochs batch-norm statistics lag the
        # weights and validation accuracy can sit at chance while the loss already falls, and
        # accuracy moves in steps of 1/N besides. Long label-smoothed runs pick on accuracy.
        keras.callbacks.EarlyStopping(monitor=config.best_epoch_metric, mode=monitor_mode,
                                      patience=config.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
    ]
    callbacks.append(epoch_progress)
    history = model.fit(
        train, validation_data=evaluation, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
        # No validation_steps: with it, Keras 3 reuses one exhausted iterator and validates only
        # every other epoch. The eval dataset is finite, so each epoch reads all of it.
        class_weight=input_pipeline.class_weights(counts, config.class_weighting),
        callbacks=callbacks, verbose=2)
    summary = {"architecture": config.architecture, "variant": config.variant,
               "width": config.width, "hyperparameters": hparams,
               "epochs_run": len(history.history.get("loss", [])),
               "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
               "replicas": replicas, "devices": hardware,
               "train_examples_per_class": dict(zip(config.label_names, counts, strict=True)),
               # Which split early stopping watched (`valid` unless the pipeline has none).
               "validation_files": list(fn_args.eval_files),
               "validation_examples": config.validation_examples or "all",
               "test_time_augmentation": config.test_time_augmentation,
               "start": start,
               # The time budget's plan and what happened (None: epochs alone decided).
               "time_plan": budget.plan.to_json() if budget else None,
               "settings": dataclasses.asdict(config),
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    training_summary.write_training_summary(fn_args.model_run_dir, summary)
    warm_start.save(model, config, image_shape, hparams, fn_args.serving_model_dir)
    export.export_model(classifier(model), tf_transform_output, config.label_names,
                              fn_args.serving_model_dir, config.test_time_augmentation,
                              config.tta_shift)
    # The log spans restarts; keep it with the run, then drop the backup of a finished run.
    if tf.io.gfile.exists(training_log):  # absent when epochs=0
        tf.io.gfile.copy(training_log,
                         os.path.join(fn_args.model_run_dir, training_summary.TRAINING_LOG),
                         overwrite=True)
    tf.io.gfile.rmtree(backup_root)


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A KerasTuner random search over `search_space` for one architecture, defaults first."""
    config = TrainConfig.from_custom_config(fn_args.custom_config)
    _training_devices(config, f"Tuner {config.architecture}")
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)
    strategy = distribution_strategy(config.distribute)
    replicas = strategy.num_replicas_in_sync
    batch_size = config.batch_size * replicas
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    image_shape = input_pipeline.image_shape(tf_transform_output)
    counts = input_pipeline.count_labels(fn_args.train_files, config.num_classes)

    tuner = keras_tuner.Tuner(
        oracle=DefaultsFirstOracle(
            # val_loss, as early stopping: short trials rarely move accuracy off chance.
            objective=keras_tuner.Objective("val_loss", "min"),
            max_trials=config.tuner_trials, seed=config.seed),
        hypermodel=lambda hp: build_model(config, search_space(hp, config), image_shape,
                                          replicas),
        distribution_strategy=strategy if replicas > 1 else None,
        directory=fn_args.working_dir,
        project_name=f"{config.architecture}_search",
    )
    train = _training_input(fn_args, tf_transform_output, config, counts, batch_size)
    evaluation = _validation_input(fn_args, tf_transform_output, config, batch_size)
    steps_per_epoch = _steps(sum(counts), batch_size, config.tuner_steps_per_epoch)
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train,
        "validation_data": evaluation,
        "epochs": config.tuner_epochs,
        "steps_per_epoch": steps_per_epoch,
        "class_weight": input_pipeline.class_weights(counts, config.class_weighting),
        "callbacks": [progress.EpochProgress(f"Tuner {config.architecture} trial",
                                             config.tuner_epochs,
                                             min(steps_per_epoch * batch_size, sum(counts)))],
        "verbose": 2,
    })
