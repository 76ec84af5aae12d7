"""How fast a model learns the demo faces: validation accuracy per epoch for a training setup.

  python -m bench.demo_learning --arch vgg16 --size 32 --batch 32 --no-augment --epochs 8
  python -m bench.demo_learning --arch resnet50 --set width=0.25 --set optimizer=sgd \
      --learning-rate 0.05 --set warmup_epochs=1

Trains one model (the Trainer's own builder, compile and augmenter) in memory on the demo
dataset the README's `make run` generates (60 training and 20 eval faces per class), validating
on the eval faces after each epoch. No pipeline, no Transform: the images are resized and scaled
to [0, 1] here as Transform does. Prints one JSON line for BENCHMARKS.md. Used to choose the
`demo` profile's budget (BENCHMARKS.md#demo-profile).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import components  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS=0 before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components import contract  # noqa: E402
from components.models import input_pipeline, trainer, training_config  # noqa: E402
from pipeline import configs, demo_data  # noqa: E402


def demo_faces(split: str, per_class: int, size: int):
    """The images write_demo_dataset draws for `split` (same generator seeds), as arrays."""
    images, labels = [], []
    for label, name in enumerate(contract.DEFAULT_CLASSES):
        rng = np.random.default_rng(
            [configs.DEMO_SEED, zlib.crc32(name.encode()), zlib.crc32(split.encode())])
        for _ in range(per_class):
            images.append(demo_data.draw_face(name, rng, 48))
            labels.append(label)
    pixels = np.stack(images)[..., None].astype("float32")
    return tf.image.resize(pixels, (size, size)).numpy() / 255.0, np.array(labels)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vgg16", choices=contract.ARCHITECTURES)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a training setting (training_config.TrainConfig) or the "
                             "hyperparameter optimizer/dropout/head_units; VALUE is JSON or text")
    args = parser.parse_args(argv)

    per_class = configs.DEMO_IMAGES_PER_CLASS
    x_train, y_train = demo_faces(contract.TRAIN_SPLIT, per_class[contract.TRAIN_SPLIT], args.size)
    x_eval, y_eval = demo_faces(contract.EVAL_SPLIT, per_class[contract.EVAL_SPLIT], args.size)
    keras.utils.set_random_seed(42)
    settings, hparam_overrides = {}, {"learning_rate": args.learning_rate}
    for item in args.set:
        name, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        target = hparam_overrides if name in training_config.HYPERPARAMETER_NAMES else settings
        target[name] = value
    config = training_config.TrainConfig.from_custom_config({
        "architecture": args.arch, "label_names": list(contract.DEFAULT_CLASSES),
        "epochs": args.epochs, "batch_size": args.batch, "augment": args.augment, **settings})
    hparams = {**trainer.default_hyperparameters(config), **hparam_overrides}
    model = trainer.build_model(config, hparams, (args.size, args.size, 1))
    classes = trainer.one_hot_classes(config)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
             .shuffle(len(y_train), seed=1).repeat().batch(args.batch))
    if args.augment:
        augment = input_pipeline.augmenter(42, config.zoom, config.crop_pad, config.erasing)
        train = train.map(lambda x, y: (augment(x, training=True), y))
    evaluation = tf.data.Dataset.from_tensor_slices((x_eval, y_eval)).batch(args.batch)
    if classes:
        train, evaluation = (d.map(lambda x, y: (x, tf.one_hot(y, classes)))
                             for d in (train, evaluation))
    start = time.perf_counter()
    history = model.fit(train, validation_data=evaluation, epochs=args.epochs,
                        steps_per_epoch=-(-len(y_train) // args.batch), verbose=0,
                        callbacks=[trainer.learning_rate_schedule(
                            config, float(hparams["learning_rate"]))]).history
    print(json.dumps({
        "arch": args.arch, "size": args.size, "batch": args.batch, "augment": args.augment,
        "hyperparameters": hparams, "settings": settings,
        "seconds": round(time.perf_counter() - start),
        "train_accuracy": [round(v, 2) for v in history["accuracy"]],
        "val_accuracy": [round(v, 2) for v in history["val_accuracy"]],
        "val_loss": [round(v, 2) for v in history["val_loss"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
