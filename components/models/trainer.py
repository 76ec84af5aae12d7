"""TFX Trainer and Tuner module for VGG16 and ResNet50: `run_fn`, `tuner_fn`.

One Keras everywhere: Keras 3 (`import keras`) for KerasTuner, training and export. tf.Transform
would otherwise switch `tf.keras` to Keras 2 (TF_USE_LEGACY_KERAS=1), which KerasTuner rejects;
`components/__init__.py` sets TF_USE_LEGACY_KERAS=0 before TensorFlow is imported.

The exported SavedModel embeds the Transform graph and has two signatures:
  serving_default(image_bytes: string[B]) -> probabilities float[B, C], classes string[B, C],
                                              predicted_class string[B], class_id int64[B]
  serving_examples(examples: string[B])   -> the same, from serialized tf.Examples (TFMA, batch)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Dict, List, Optional

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.models import resnet50, vgg16
from pipeline import configs

IMAGE_XF = configs.transformed_name(configs.IMAGE_KEY)
LABEL_XF = configs.transformed_name(configs.LABEL_KEY)
BUILDERS = {"vgg16": vgg16.build, "resnet50": resnet50.build}

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "serving_examples"
PROBABILITIES_KEY = "probabilities"
BACKUP_DIR_NAME = "training_backup"
# Memory for the training shuffle buffer (serialized transformed examples, ~4 bytes a value).
SHUFFLE_BUFFER_BYTES = 1 << 30
TRAINING_LOG = "training_log.csv"


@dataclasses.dataclass
class TrainConfig:
    """Training settings, from the Trainer's/Tuner's `custom_config` (see pipeline.py)."""

    architecture: str
    label_names: List[str]
    variant: str = "fer"
    weights: Optional[str] = None
    epochs: int = 10
    batch_size: int = 64
    max_steps_per_epoch: int = 0          # 0: a full pass over the training split
    early_stopping_patience: int = 3
    mixed_precision: bool = False
    augment: bool = True
    validation_examples: int = 0          # 0: validate on the whole validation split
    tuner_trials: int = 2
    tuner_epochs: int = 1
    tuner_steps_per_epoch: int = 0        # 0: a full pass
    seed: int = 42

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Dict[str, Any]]) -> "TrainConfig":
        custom_config = dict(custom_config or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(custom_config) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
        config = cls(**custom_config)
        if config.architecture not in BUILDERS:
            raise ValueError(f"architecture must be one of {sorted(BUILDERS)}, "
                             f"got {config.architecture!r}")
        return config

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def default_hyperparameters(architecture: str) -> Dict[str, Any]:
    """Used when tuning is off, and as the first point of every search."""
    return dict(configs.DEFAULT_HYPERPARAMETERS[architecture])


def search_space(hp: keras_tuner.HyperParameters, config: TrainConfig) -> Dict[str, Any]:
    """What KerasTuner searches per architecture; returns concrete hyperparameters."""
    defaults = default_hyperparameters(config.architecture)
    params = {
        "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log",
                                  default=defaults["learning_rate"]),
        "optimizer": hp.Choice("optimizer", ["adam", "sgd"], default=defaults["optimizer"]),
        "dropout": hp.Float("dropout", 0.1, 0.6, step=0.1, default=defaults["dropout"]),
        "head_units": hp.Choice("head_units", [0, 128, 256, 512], default=defaults["head_units"]),
    }
    if config.weights:  # fine-tuning depth matters only with pretrained weights
        params["trainable_base_layers"] = hp.Choice("trainable_base_layers", [-1, 4, 8, 16],
                                                    default=-1)
    return params


def build_model(config: TrainConfig, hparams: Dict[str, Any], image_shape) -> keras.Model:
    """A compiled classifier: softmax output, sparse categorical cross-entropy."""
    model = BUILDERS[config.architecture](
        image_shape, config.num_classes, variant=config.variant, weights=config.weights,
        dropout=float(hparams["dropout"]), head_units=int(hparams["head_units"]),
        trainable_base_layers=int(hparams.get("trainable_base_layers", -1)))
    lr = float(hparams["learning_rate"])
    optimizer = (keras.optimizers.Adam(lr) if hparams["optimizer"] == "adam"
                 else keras.optimizers.SGD(lr, momentum=0.9, nesterov=True))
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


# --- Input pipeline ---------------------------------------------------------------------------

def augmenter(seed: int) -> keras.Sequential:
    """Training-time augmentation (never in Transform or the exported model)."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
        keras.layers.RandomRotation(0.04, fill_mode="reflect", seed=seed),
        keras.layers.RandomContrast(0.2, seed=seed),
    ], name="augment")


def shuffle_buffer_size(num_examples: int, image_shape) -> int:
    """The whole split when it fits in SHUFFLE_BUFFER_BYTES (FER2013 at 48 px: ~260 MB).

    The examples arrive grouped by class (ExampleGen lists one class folder after another and
    the local Beam runner keeps that order), so a buffer much smaller than the split would feed
    batches drawn from one or two classes at a time. Larger datasets should be written in
    many shards; the buffer is capped by memory.
    """
    per_example = 4 * math.prod(int(d) for d in image_shape) + 256
    return max(1, min(int(num_examples), SHUFFLE_BUFFER_BYTES // per_example))


def input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
             tf_transform_output: tft.TFTransformOutput, batch_size: int, training: bool,
             augment: bool = False, seed: int = 42, num_examples: int = 0,
             max_examples: int = 0) -> tf.data.Dataset:
    """(image [B, H, W, C] float32, label [B] int64) batches from transformed examples.

    Training batches are shuffled across the whole split (`num_examples`; see
    `shuffle_buffer_size`) and repeat forever; evaluation reads the split once, in order, or,
    with `max_examples`, the same random subset of that many examples on every pass.
    """
    buffer = shuffle_buffer_size(num_examples or 10_000, _image_shape(tf_transform_output))
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_XF,
                                       shuffle=training, shuffle_seed=seed if training else None,
                                       shuffle_buffer_size=buffer,
                                       num_epochs=None if training else 1),
        tf_transform_output.transformed_metadata.schema)
    dataset = dataset.map(lambda features, label: (features[IMAGE_XF], tf.reshape(label, [-1])),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        aug = augmenter(seed)
        dataset = dataset.map(lambda x, y: (aug(x, training=True), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if not training and max_examples:
        # Sampled across the whole split (it arrives sorted by class), fixed across epochs so
        # that epochs compare on the same examples, and cached: each epoch reads it from memory.
        dataset = (dataset.unbatch()
                   .shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
                   .take(max_examples).batch(batch_size).cache())
    return dataset.prefetch(tf.data.AUTOTUNE)


def count_labels(file_pattern: List[str], num_classes: int) -> List[int]:
    """Examples per class in transformed TFRecords (reads only the label)."""
    files = [f for p in file_pattern for f in tf.io.gfile.glob(p)]
    spec = {LABEL_XF: tf.io.FixedLenFeature([], tf.int64)}
    counts = tf.zeros([num_classes], tf.int64)
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        labels = tf.io.parse_example(batch, spec)[LABEL_XF]
        counts += tf.math.bincount(labels, minlength=num_classes, maxlength=num_classes,
                                   dtype=tf.int64)
    return [int(c) for c in counts.numpy()]


def class_weights(counts: List[int]) -> Dict[int, float]:
    """Inverse-frequency weights with mean 1 over examples ('balanced')."""
    total, present = sum(counts), sum(1 for c in counts if c)
    return {i: (total / (present * c) if c else 0.0) for i, c in enumerate(counts)}


def _image_shape(tf_transform_output: tft.TFTransformOutput):
    return tuple(tf_transform_output.transformed_feature_spec()[IMAGE_XF].shape)


# --- Export -----------------------------------------------------------------------------------

class ExportModule(tf.Module):
    """The served model: Transform graph + Keras model + class names."""

    def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                 label_names: List[str]):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.class_names = tf.constant(label_names)
        self._image_spec = tf_transform_output.raw_feature_spec()[configs.IMAGE_KEY]

    def _predict(self, image_bytes):
        transformed = self.tft_layer({configs.IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})
        probabilities = tf.cast(self.model(transformed[IMAGE_XF], training=False), tf.float32)
        class_id = tf.argmax(probabilities, axis=-1)
        batch = tf.shape(probabilities)[0]
        return {
            PROBABILITIES_KEY: probabilities,
            "classes": tf.tile(self.class_names[None, :], [batch, 1]),
            "class_id": class_id,
            "predicted_class": tf.gather(self.class_names, class_id),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_images(self, image_bytes):
        return self._predict(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, {configs.IMAGE_KEY: self._image_spec})
        return self._predict(tf.reshape(parsed[configs.IMAGE_KEY], [-1]))


def export_model(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                 label_names: List[str], export_dir: str) -> None:
    module = ExportModule(model, tf_transform_output, label_names)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SIGNATURE: module.serve_images.get_concrete_function(),
        EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
    })


# --- TFX entry points -------------------------------------------------------------------------

def _set_precision(config: TrainConfig) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision
                                            else "float32")


def _steps(n_examples: int, batch_size: int, cap: int) -> int:
    steps = max(1, math.ceil(n_examples / batch_size))
    return min(steps, cap) if cap else steps


def _backup_dir(fn_args: tfx.components.FnArgs) -> str:
    """A directory that is the same when the Trainer is re-run on the same inputs.

    Each TFX execution gets new output URIs, so the backup lives beside them, keyed by what
    determines the training run; a restarted Trainer finds the killed run's last epoch there.
    """
    key = json.dumps({"train": sorted(fn_args.train_files), "eval": sorted(fn_args.eval_files),
                      "transform": fn_args.transform_graph_path,
                      "hparams": fn_args.hyperparameters, "config": fn_args.custom_config},
                     sort_keys=True, default=str)
    trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(trainer_root, BACKUP_DIR_NAME,
                        hashlib.sha256(key.encode()).hexdigest()[:16])


def _validation_input(fn_args: tfx.components.FnArgs,
                      tf_transform_output: tft.TFTransformOutput,
                      config: TrainConfig) -> tf.data.Dataset:
    """The Trainer's eval split (`valid` when the pipeline has one), or a fixed subset of
    `config.validation_examples` of it."""
    num_examples = (sum(count_labels(fn_args.eval_files, config.num_classes))
                    if config.validation_examples else 0)
    return input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                    config.batch_size, training=False, seed=config.seed,
                    num_examples=num_examples, max_examples=config.validation_examples)


def _hyperparameters(fn_args: tfx.components.FnArgs, config: TrainConfig) -> Dict[str, Any]:
    hparams = default_hyperparameters(config.architecture)
    if fn_args.hyperparameters:  # from the Tuner: a KerasTuner HyperParameters config
        tuned = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values
        hparams.update(tuned)
    return hparams


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains with the tuned (or default) hyperparameters and exports the serving model."""
    config = TrainConfig.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    hparams = _hyperparameters(fn_args, config)
    counts = count_labels(fn_args.train_files, config.num_classes)
    logging.info("Training %s (%s) on %s examples per class with %s", config.architecture,
                 config.variant, dict(zip(config.label_names, counts)), hparams)

    train = input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                     config.batch_size, training=True, augment=config.augment, seed=config.seed,
                     num_examples=sum(counts))
    evaluation = _validation_input(fn_args, tf_transform_output, config)
    model = build_model(config, hparams, _image_shape(tf_transform_output))

    backup_root = _backup_dir(fn_args)
    training_log = os.path.join(backup_root, TRAINING_LOG)
    tf.io.gfile.makedirs(backup_root)
    base_lr = float(hparams["learning_rate"])
    epochs = config.epochs
    callbacks = [
        # Saves weights, optimizer state and epoch at each epoch end; a restarted run resumes.
        keras.callbacks.BackupAndRestore(os.path.join(backup_root, "checkpoint"),
                                         delete_checkpoint=True),
        keras.callbacks.CSVLogger(training_log, append=True),
        # Stateless cosine schedule: the same LR for an epoch whether or not the run resumed.
        keras.callbacks.LearningRateScheduler(
            lambda epoch: base_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))),
        # On val_loss, not val_accuracy: in early epochs batch-norm statistics lag the weights
        # and validation accuracy can sit at chance while the loss already falls (demo runs:
        # val_loss 7.1 -> 2.2 at accuracy 1/6), and accuracy moves in steps of 1/N besides.
        keras.callbacks.EarlyStopping(monitor="val_loss", mode="min",
                                      patience=config.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
    ]
    steps_per_epoch = _steps(sum(counts), config.batch_size, config.max_steps_per_epoch)
    history = model.fit(
        train, validation_data=evaluation, epochs=epochs, steps_per_epoch=steps_per_epoch,
        # No validation_steps: with it, Keras 3 reuses one exhausted iterator and validates only
        # every other epoch. The eval dataset is finite, so each epoch reads all of it.
        class_weight=class_weights(counts), callbacks=callbacks, verbose=2)
    summary = {"architecture": config.architecture, "variant": config.variant,
               "hyperparameters": hparams, "epochs_run": len(history.history.get("loss", [])),
               "steps_per_epoch": steps_per_epoch, "batch_size": config.batch_size,
               "train_examples_per_class": dict(zip(config.label_names, counts)),
               # Which split early stopping watched (`valid` unless the pipeline has none).
               "validation_files": list(fn_args.eval_files),
               "validation_examples": config.validation_examples or "all",
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    export_model(model, tf_transform_output, config.label_names, fn_args.serving_model_dir)
    # The log spans restarts; keep it with the run, then drop the backup of a finished run.
    if tf.io.gfile.exists(training_log):  # absent when epochs=0
        tf.io.gfile.copy(training_log, os.path.join(fn_args.model_run_dir, TRAINING_LOG),
                         overwrite=True)
    tf.io.gfile.rmtree(backup_root)


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A KerasTuner random search over `search_space` for one architecture."""
    config = TrainConfig.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(config.seed)
    _set_precision(config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    image_shape = _image_shape(tf_transform_output)
    counts = count_labels(fn_args.train_files, config.num_classes)

    tuner = keras_tuner.RandomSearch(
        hypermodel=lambda hp: build_model(config, search_space(hp, config), image_shape),
        # val_loss, as early stopping: short trials rarely move accuracy off chance.
        objective=keras_tuner.Objective("val_loss", "min"),
        max_trials=config.tuner_trials,
        seed=config.seed,
        directory=fn_args.working_dir,
        project_name=f"{config.architecture}_search",
    )
    train = input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                     config.batch_size, training=True, augment=config.augment, seed=config.seed,
                     num_examples=sum(counts))
    evaluation = _validation_input(fn_args, tf_transform_output, config)
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train,
        "validation_data": evaluation,
        "epochs": config.tuner_epochs,
        "steps_per_epoch": _steps(sum(counts), config.batch_size, config.tuner_steps_per_epoch),
        "class_weight": class_weights(counts),
        "verbose": 2,
    })
