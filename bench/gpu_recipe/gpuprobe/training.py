"""One architecture end to end: build, compile, fit under the guard, score the best
weights (re-scored in float32 when bf16 gives non-finite outputs)."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from components import class_metrics  # plain Python: no TensorFlow here

from .constants import CLASSES
from .data import to_float
from .evaluation import evaluate_split
from .models import build_models
from .monitor import make_monitor
from .recipe import lr_for, recipe_of
from .runtime import log
from .train_batches import make_train_seq


def _sha256_16(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def train_arch(keras, arch, args, data, split_idx, budget_s, res, backend, clock):
    info = res.doc["archs"].setdefault(arch, {})
    info.update({"status": "building", "budget_s": round(budget_s, 1)})
    keras.utils.set_random_seed(args.seed)
    base, train_model, hp = build_models(keras, arch, args)
    from components.models import augmentation, common, resnet50, training_config, vgg16
    info["builder_files"] = {
        os.path.relpath(m.__file__, os.getcwd()): _sha256_16(m.__file__)
        for m in (vgg16, resnet50, common, augmentation, training_config)}
    info.update({"hyperparameters": hp, "params": int(base.count_params()),
                 "variant": "fer", "width": args.width, "augmentation": args.aug,
                 "recipe": recipe_of(args),
                 "augment_layers": [layer.name for layer in train_model.layers
                                    if isinstance(layer, keras.Sequential)
                                    for layer in layer.layers]})
    x_all, y_all = data["train"]
    tr, va = split_idx
    counts = np.bincount(y_all[tr], minlength=len(CLASSES)).tolist()
    cw = class_metrics.class_weights(counts, args.class_weights)
    one_hot = bool(args.label_smoothing or args.mixup or args.cutmix)
    seq = make_train_seq(keras, x_all[tr], y_all[tr], cw, args.batch, args.seed, one_hot,
                         args.mixup, args.cutmix, args.mix_prob)
    steps = len(seq)
    x_val, y_val = to_float(x_all[va]), y_all[va]
    if one_hot:
        y_val = np.eye(len(CLASSES), dtype=np.float32)[y_val]
    info.update({"train_images": int(len(tr)), "val_images": int(len(va)),
                 "steps_per_epoch": steps, "train_images_per_epoch": steps * seq.batch,
                 "class_weights": dict(zip(CLASSES, [round(w, 4) for w in cw], strict=True)),
                 "epochs_requested": args.epochs})
    if lr_for(arch, args.lr):
        hp["learning_rate"] = lr_for(arch, args.lr)
    hp["optimizer"] = args.optimizer
    wd = args.weight_decay or None
    opt = (keras.optimizers.SGD(hp["learning_rate"], momentum=args.momentum, nesterov=True,
                                weight_decay=wd)
           if args.optimizer == "sgd"
           else keras.optimizers.Adam(hp["learning_rate"], weight_decay=wd))
    info["hyperparameters"] = dict(hp, weight_decay=args.weight_decay)
    if one_hot:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
        acc = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:  # the project's loss
        loss = keras.losses.SparseCategoricalCrossentropy()
        acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    info["loss"] = loss.name + (f" (label_smoothing {args.label_smoothing})"
                                if args.label_smoothing else "")
    train_model.compile(optimizer=opt, loss=loss, metrics=[acc],
                        jit_compile=(backend == "jax"))
    info["jit_compile"] = bool(train_model.jit_compile)
    res.write()
    if backend == "jax" and not train_model.jit_compile:
        log(f"[{arch}] WARNING: Keras turned jit_compile off; JAX will run op by op (slow)")

    def on_epoch(mon):
        info.update({"status": "training", "history": mon.history,
                     "first_step_s": mon.first_step_s,
                     "epochs_planned": mon.planned, "best_epoch": mon.best_epoch,
                     "best_val_accuracy": mon.best_acc})
        res.write()

    mon = make_monitor(keras, base, args, args.epochs, budget_s, hp["learning_rate"],
                       steps * seq.batch, steps, on_epoch)
    callbacks = [mon]
    if args.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", mode="min",
                                                       patience=args.patience))
    log(f"[{arch}] {info['params']:,} params; {len(tr)} train ({steps} steps x {seq.batch}), "
        f"{len(va)} val; budget {budget_s:.0f}s; {args.epochs} epochs requested; "
        f"class weights {[round(w, 2) for w in cw]}")
    t = time.perf_counter()
    info["status"] = "training"
    train_model.fit(seq, validation_data=(x_val, y_val), validation_batch_size=args.batch,
                    epochs=args.epochs, callbacks=callbacks, verbose=0)
    fit_s = time.perf_counter() - t
    hist = mon.history
    clean = [h for h in hist[1:]]
    info.update({
        "history": hist, "epochs_run": len(hist), "epochs_planned": mon.planned,
        "stopped_by_budget": mon.stopped_by_budget, "fit_s": fit_s,
        "first_epoch_s": hist[0]["epoch_s"] if hist else None,
        "first_step_s": mon.first_step_s,
        "epoch_s_median_after_first": (float(np.median([h["epoch_s"] for h in clean]))
                                       if clean else None),
        "train_images_per_s_median_after_first": (
            float(np.median([h["train_images_per_s"] for h in clean])) if clean else None),
        "best_epoch": mon.best_epoch, "best_val_accuracy": mon.best_acc,
    })
    log(f"[{arch}] fit {fit_s:.1f}s, {len(hist)} epochs (first {info['first_epoch_s']:.1f}s); "
        f"best epoch {mon.best_epoch} val_acc {mon.best_acc:.4f}")
    # Evaluation with the best-validation weights.
    info["status"] = "evaluating"
    res.write()
    if mon.best_weights is not None:
        base.set_weights(mon.best_weights)
    t = time.perf_counter()

    shifts = [int(s) for s in str(args.tta_shifts).split(",") if s.strip()]

    def evaluate_all(model):
        info["val"] = evaluate_split(model, x_all[va], y_all[va], args.batch, shifts,
                                     args.crop_fill)
        info["test"] = {k: evaluate_split(model, data[k][0], data[k][1], args.batch, shifts,
                                          args.crop_fill)
                        for k in ("public", "private") if k in data}

    info["eval_precision"] = keras.mixed_precision.global_policy().name
    evaluate_all(base)
    bad = {k: v["nonfinite_fraction"] for k, v in [("val", info["val"])] + list(
        info["test"].items()) if v["nonfinite_fraction"]}
    if bad and info["eval_precision"] != "float32":
        # A bf16 miscompile (seen on XLA:CPU, jaxlib 0.11.2): score the same weights in fp32.
        log(f"[{arch}] non-finite {info['eval_precision']} predictions {bad}; "
            "re-scoring the same weights in float32")
        info["eval_nonfinite_bf16"] = bad
        policy = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy("float32")
        try:
            base32 = build_models(keras, arch, args)[0]
            base32.set_weights(base.get_weights())
            evaluate_all(base32)
            info["eval_precision"] = "float32"
        finally:
            keras.mixed_precision.set_global_policy(policy)
    info["eval_s"] = time.perf_counter() - t
    info["status"] = "ok"
    res.write()
    log(f"[{arch}] eval {info['eval_s']:.1f}s: " + "; ".join(
        f"{k} acc {v['accuracy']:.4f} F1 {v['macro_f1']:.4f} TTA {v['tta_flip_accuracy']:.4f}"
        + "".join(f" 10crop{s} {v[f'tta_tencrop{s}_accuracy']:.4f}" for s in shifts
                  if f"tta_tencrop{s}_accuracy" in v)
        for k, v in [("val", info["val"])] + list(info["test"].items())) + f"  t={clock():.1f}s")
    return info
