"""Accuracy per pass of a training recipe on FER2013 on this machine: the `cpu` profile's search.

  python -m bench.cpu_recipe --output-dir /tmp/ferout --arch vgg16 \\
      --set width=0.5 --set epochs=6 --set max_steps_per_epoch=300

Trains one architecture with the Trainer's own pieces (trainer.build_model, input_pipeline.input_fn
and augmenter, the learning-rate schedule, class weights) on the Transform output of an earlier
run (`fer-pipeline run --profile cpu --architectures none`), with the `cpu` profile's settings and
the `--set` overrides (`--set time_budget_s=900` trains to a time budget, as the Trainer does);
then scores the whole eval split (PublicTest) with the exported model's prediction function in
each test-time mode (none, flip, ten crops). No TFX components, no Evaluator: this measures the
recipe, the pipeline measures the pipeline. Prints one JSON line for
BENCHMARKS.md#training-time-budget and BENCHMARKS.md#cpu-recipe-width.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import components  # noqa: E402,F401  (TF_USE_LEGACY_KERAS=0 before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from tfx.components.trainer import fn_args_utils  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402

from bench.input_pipeline_bench import latest  # noqa: E402
from components import contract  # noqa: E402
from components.models import (  # noqa: E402
    export,
    input_pipeline,
    time_budget,
    trainer,
    training_config,
)
from pipeline import cli_options, configs, local_outputs  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR)
    parser.add_argument("--arch", default="vgg16", choices=contract.ARCHITECTURES)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--set", type=cli_options.parse_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="a training setting, as --training-setting")
    parser.add_argument("--save-probabilities", metavar="FILE.npz",
                        help="also save PublicTest's labels and probabilities (every "
                             "test-time mode)")
    args = parser.parse_args(argv)

    root = local_outputs.OutputLayout(args.output_dir).pipeline_root
    examples = standard_artifacts.Examples()
    examples.uri = latest(os.path.join(root, "Transform", "transformed_examples", "*"))
    examples.split_names = json.dumps(["train", "valid", "eval"])
    graph_uri = latest(os.path.join(root, "Transform", "transform_graph", "*"))
    graph = standard_artifacts.TransformGraph()
    graph.uri = graph_uri
    fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph]},
        {"train_args": '{"num_steps": 0, "splits": ["train"]}',
         "eval_args": '{"num_steps": 0, "splits": ["valid"]}'}, working_dir="/tmp")
    tf_transform_output = tft.TFTransformOutput(graph_uri)

    settings = {**configs.get_profile(args.profile).training_config(args.arch), **dict(args.set)}
    config = training_config.TrainConfig.from_custom_config(
        {"architecture": args.arch, "label_names": list(contract.DEFAULT_CLASSES), **settings})
    keras.utils.set_random_seed(config.seed)
    hparams = trainer.default_hyperparameters(config)
    counts = input_pipeline.count_labels(fn_args.train_files, config.num_classes)
    n_train = sum(counts)
    train = trainer._training_input(fn_args, tf_transform_output, config, counts,
                                    config.batch_size)
    validation = trainer._validation_input(fn_args, tf_transform_output, config,
                                           config.batch_size)
    model = trainer.build_model(config, hparams, input_pipeline.image_shape(tf_transform_output))
    steps = trainer._steps(n_train, config.batch_size, config.max_steps_per_epoch)
    monitor_mode = "min" if config.best_epoch_metric == "val_loss" else "max"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as plan_dir:
        # The Trainer's planner (None without a budget), its clock started here.
        budget = trainer._time_budget(config, time.monotonic(), plan_dir, steps,
                                      config.batch_size, n_train)
        history = model.fit(
            train, validation_data=validation, epochs=config.epochs, steps_per_epoch=steps,
            class_weight=input_pipeline.class_weights(counts, config.class_weighting), verbose=2,
            callbacks=[
                *([time_budget.BudgetCallback(budget, f"bench {args.arch}", config.batch_size,
                                              plan_dir)] if budget else []),
                trainer.learning_rate_schedule(config, float(hparams["learning_rate"]),
                                               trainer.budget_epochs(budget, config)),
                keras.callbacks.EarlyStopping(
                    monitor=config.best_epoch_metric, mode=monitor_mode,
                    patience=config.early_stopping_patience, restore_best_weights=True)])
    train_s = time.perf_counter() - start

    # PublicTest through the exported model's prediction (test-time views included).
    spec = tf_transform_output.transformed_feature_spec()
    files = glob.glob(os.path.join(examples.uri, "Split-eval", "*"))
    eval_data = (tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256)
                 .map(lambda b: tf.io.parse_example(b, spec)))
    if args.save_probabilities:  # the trained weights too, to score them again
        model.save_weights(args.save_probabilities + ".weights.h5")
    # Every test-time mode, from the same weights: whether the views pay is measured here.
    by_mode, eval_seconds = {}, {}
    for mode in training_config.TTA_MODES:
        # autograph=False: nothing to convert, and autograph reads the source files again,
        # which may have changed on disk since they were imported.
        predict = tf.function(lambda x, mode=mode: export.predict_probabilities(
            model, x, mode, config.tta_shift), autograph=False)
        labels, probabilities = [], []
        start = time.perf_counter()
        for batch in eval_data:
            probabilities.append(predict(batch[input_pipeline.IMAGE_XF]).numpy())
            labels.append(batch[input_pipeline.LABEL_XF].numpy().reshape(-1))
        eval_seconds[mode] = round(time.perf_counter() - start, 1)
        by_mode[mode] = np.concatenate(probabilities)
    labels = np.concatenate(labels)
    if args.save_probabilities:  # for ensembles of runs: bench/ensemble_of_runs.py
        np.savez(args.save_probabilities, labels=labels, **by_mode)
    predictions = np.argmax(by_mode[config.test_time_augmentation], axis=-1)
    epochs_run = len(history.history["loss"])
    print(json.dumps({
        "arch": args.arch, "settings": dict(args.set), "hyperparameters": hparams,
        "batch_size": config.batch_size, "steps_per_epoch": steps, "epochs_run": epochs_run,
        "passes": round(epochs_run * steps * config.batch_size / n_train, 2),
        "train_minutes": round(train_s / 60, 1),
        "train_images_per_s": round(epochs_run * steps * config.batch_size / train_s, 1),
        "val_accuracy": [round(v, 4) for v in history.history["val_accuracy"]],
        "public_test_n": int(labels.size),
        "public_test_accuracy": round(float(np.mean(labels == predictions)), 4),
        "public_test_macro_f1": round(float(f1_score(labels, predictions, average="macro")), 4),
        "per_class_f1": [round(float(v), 3) for v in f1_score(labels, predictions,
                                                               average=None)],
        "majority_class_share": round(float(np.max(np.bincount(labels)) / labels.size), 4),
        "accuracy_by_test_time_views": {
            mode: round(float(np.mean(labels == np.argmax(p, axis=-1))), 4)
            for mode, p in by_mode.items()},
        "macro_f1_by_test_time_views": {
            mode: round(float(f1_score(labels, np.argmax(p, axis=-1), average="macro")), 4)
            for mode, p in by_mode.items()},
        "time_plan": budget.plan.to_json() if budget else None,
        "eval_seconds": eval_seconds, "passes_per_hour": round(
            3600 * epochs_run * steps * config.batch_size / n_train / train_s, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
