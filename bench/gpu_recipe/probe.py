#!/usr/bin/env python3
"""GPU probe: FER2013 (six classes) accuracy of the project's VGG16 / ResNet50 builders.

Trains `components.models.{vgg16,resnet50}.build(..., variant="fer")` with Keras 3 (JAX backend
by default, bf16 mixed precision), mirroring components/models/trainer.py: Adam at the default
learning rate, sparse categorical cross-entropy, inverse-frequency class weights, the project's
augmenter (flip, translation 0.08, rotation 0.04, contrast 0.2) in front of the model, and the
project's per-epoch cosine LR (floor 5% of the base rate) over the planned epochs.

Validation = a stratified 10% of Training (seed 0) for best-epoch selection; PublicTest and
PrivateTest are scored once, at the end, with the best-validation-accuracy weights.

A wall-clock guard per architecture (--budget-s) and for the whole run (--deadline-s) shrinks
the planned epochs (the cosine schedule follows the new plan), stops after the current epoch
when the next one would not fit, and cuts an epoch short once the budget is spent.
results.json is rewritten after every epoch.

Fallbacks: a bf16 self-check (jitted conv/BN/ReLU/max-pool and strided convs vs float32) that
switches to float32 when bf16 fails or gives non-finite values; one float32 retry of an
architecture whose bf16 build fails before its first epoch; float32 re-scoring when bf16
predictions come out non-finite; and a re-run under KERAS_BACKEND=torch when JAX cannot start
or fails before the first epoch (or sees no GPU on a machine that has one).

Nothing here assumes a GPU: on CPU it runs as is (use --precision fp32 there).

Recipe options added for issue 10 (all off by default, so the default run is unchanged apart
from extra crop-TTA fields in the scores): --warmup-epochs/--lr-floor (per-epoch warm-up +
cosine), --lr-schedule plateau, --label-smoothing (one-hot CCE), --crop-pad (pad + random crop),
--erasing (random erasing), --mixup/--cutmix (host side), --class-weights, --momentum,
per-architecture --lr, --width (the builders' filter multiplier), and crop TTA (--tta-shifts:
5 crops and 10 crops = 5 crops + mirrors, reported next to flip TTA).

The project's own code is imported from the working tree (the project root, two folders above
this file, goes first on sys.path): the builders (components/models/{vgg16,resnet50}.py), the
augmentation layers and TTA views (components/models/augmentation.py), and the learning-rate
schedule and default hyperparameters (components/models/training_config.py). None of these
import TensorFlow. Only mixup/cutmix (mix_batch, numpy on the host) lives in this harness
(gpuprobe/mixing.py).

This file is the entry point: the arguments, main, and the re-run under torch. The parts are the
gpuprobe package beside it, one job per module (see bench/gpu_recipe/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings

import numpy as np

T_START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the project root: `components` lives there
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The package beside this file, found from the project root like `components`.
from bench.gpu_recipe.gpuprobe.bf16_check import bf16_selfcheck  # noqa: E402
from bench.gpu_recipe.gpuprobe.constants import ARCHS, CLASSES  # noqa: E402
from bench.gpu_recipe.gpuprobe.data import load_data  # noqa: E402
from bench.gpu_recipe.gpuprobe.results import Results, summary  # noqa: E402
from bench.gpu_recipe.gpuprobe.runtime import Clock, Tee, gpu_present, log  # noqa: E402
from bench.gpu_recipe.gpuprobe.splits import stratified_split  # noqa: E402
from bench.gpu_recipe.gpuprobe.training import train_arch  # noqa: E402

# Keras' data adapter asks JAX for int64 label specs; harmless, once per compile.
warnings.filterwarnings("ignore", message="Explicitly requested dtype int64")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="shared/datasets/fer2013,holdout/fer2013",
                   help="comma-separated folders holding Training/PublicTest/PrivateTest as "
                        ".tar.gz or as extracted folders (first match wins)")
    p.add_argument("--out", default=os.environ.get("OUT", "gpuprobe_out"))
    p.add_argument("--epochs", type=int, default=30, help="requested epochs per architecture")
    p.add_argument("--archs", default="vgg16,resnet50")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--limit-per-class", type=int, default=0, help="0 = all (smoke tests: 30)")
    p.add_argument("--budget-s", type=float, default=100.0,
                   help="wall-clock seconds for one architecture's fit (compile included)")
    p.add_argument("--deadline-s", type=float, default=240.0,
                   help="wall-clock seconds for the whole run from process start; "
                        "per-architecture budgets shrink to fit it")
    p.add_argument("--eval-reserve-s", type=float, default=20.0,
                   help="seconds kept per architecture for the final evaluation")
    p.add_argument("--backend", choices=("jax", "torch"), default="jax")
    p.add_argument("--no-fallback", action="store_true",
                   help="do not re-run under torch when JAX fails before the first epoch")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="sgd: momentum 0.9, Nesterov")
    p.add_argument("--lr", default="0",
                   help="base learning rate (0: project default); one value, or per "
                        "architecture: vgg16=0.01,resnet50=0.02")
    p.add_argument("--momentum", type=float, default=0.9, help="sgd momentum (Nesterov)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay as Keras applies it (var -= lr*wd*var each "
                        "step); with momentum 0.9 torch's coupled SGD weight_decay=w is about "
                        "Keras' 10*w")
    p.add_argument("--aug", choices=("project", "zoom", "flip", "none"), default="project",
                   help="project: trainer.augmenter; zoom: that plus RandomZoom(0.1); "
                        "flip: RandomFlip only")
    p.add_argument("--width", type=float, default=1.0,
                   help="filter multiplier of the fer builders (build(..., width=W)); 1.0 = the "
                        "full networks")
    p.add_argument("--crop-pad", type=int, default=0,
                   help="random crop after padding: pad N px per side, crop back to 48 "
                        "(an integer shift in [-N, N]); 0 = off")
    p.add_argument("--crop-fill", choices=("reflect", "constant"), default="reflect",
                   help="padding of --crop-pad and of the crop TTA views")
    p.add_argument("--erasing", type=float, default=0.0,
                   help="random erasing probability per image (area 2-33%%, aspect 0.3-3.3, "
                        "uniform noise); 0 = off")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="categorical cross-entropy label smoothing (one-hot labels); 0 = the "
                        "project's sparse cross-entropy")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup Beta alpha; 0 = off")
    p.add_argument("--cutmix", type=float, default=0.0, help="cutmix Beta alpha; 0 = off")
    p.add_argument("--mix-prob", type=float, default=1.0,
                   help="fraction of batches mixed when --mixup/--cutmix is on")
    p.add_argument("--class-weights", choices=("balanced", "sqrt", "none"), default="balanced",
                   help="balanced: the project's inverse frequency; sqrt: its square root "
                        "(renormalised to mean 1); none: unweighted")
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="linear LR warm-up epochs before the cosine (per-epoch schedule)")
    p.add_argument("--lr-floor", type=float, default=0.05,
                   help="cosine end point as a fraction of the base LR (project: 0.05)")
    p.add_argument("--plateau-factor", type=float, default=0.75,
                   help="--lr-schedule plateau: LR factor (Khaireddin & Chen: 0.75)")
    p.add_argument("--plateau-patience", type=int, default=5,
                   help="--lr-schedule plateau: epochs without a val-accuracy gain")
    p.add_argument("--tta-shifts", default="2,4",
                   help="comma-separated px shifts for crop TTA (ten views each: center + 4 "
                        "corners, and their mirrors); '' = flip TTA only")
    p.add_argument("--patience", type=int, default=0,
                   help="early stopping on val_loss (as the project); 0 = off")
    p.add_argument("--lr-schedule", choices=("cosine", "constant", "plateau"),
                   default="cosine",
                   help="cosine: trainer.py's per-epoch cosine (floor --lr-floor) over the "
                        "planned epochs, after --warmup-epochs; constant: the base rate "
                        "throughout; plateau: base rate times --plateau-factor after "
                        "--plateau-patience epochs without a val-accuracy gain")
    p.add_argument("--val-frac", type=float, default=0.1)
    p.add_argument("--sync-every", type=int, default=25,
                   help="wait for the device every N train steps so that the wall-clock guard "
                        "can stop mid-epoch (0 = never)")
    p.add_argument("--seed", type=int, default=42, help="training seed (the project's)")
    p.add_argument("--workers", type=int, default=16, help="image decoding processes")
    p.add_argument("--cache-dir", default="/tmp")
    p.add_argument("--jax-cache", default="/tmp/gpuprobe_jax_cache",
                   help="JAX persistent compilation cache ('' = off): a rerun on the same "
                        "machine skips most compile time")
    p.add_argument("--allow-cpu", action="store_true",
                   help="go on with JAX on CPU even where an NVIDIA device is present")
    p.add_argument("--summarize", metavar="RESULTS_JSON",
                   help="only print the summary of an existing results.json")
    p.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def reexec_torch(args, out, err_text):
    with open(os.path.join(out, "jax_error.txt"), "w") as f:
        f.write(err_text)
    log("[backend] JAX failed before the first epoch; re-running this probe under "
        "KERAS_BACKEND=torch")
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:] + [
        "--backend", "torch", "--no-fallback", "--t0", repr(args.t0)]
    os.execv(sys.executable, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.summarize:
        res = Results(args.summarize, {})
        with open(args.summarize) as f:
            res.doc = json.load(f)
        print(summary(res), flush=True)
        return
    if args.t0 is None:
        args.t0 = T_START
    clock = Clock(args.t0)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    sys.stdout = Tee(sys.__stdout__, os.path.join(out, "probe.log"))
    sys.stderr = Tee(sys.__stderr__, os.path.join(out, "probe.log"))
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    for a in archs:
        if a not in ARCHS:
            raise SystemExit(f"unknown arch {a!r}; known: {sorted(ARCHS)}")
    log(f"[probe] {' '.join(sys.argv)}")
    log(f"[probe] python {platform.python_version()} on {platform.node()}, "
        f"{os.cpu_count()} CPUs; backend {args.backend}; precision {args.precision}")

    # Data first: the decoding pool forks before JAX/torch start any threads.
    data, data_meta = load_data(args, clock)
    split_idx = stratified_split(data["train"][1], args.val_frac, args.batch, seed=0)
    log(f"[data] ready at t={clock():.1f}s; val {len(split_idx[1])} "
        f"({np.bincount(data['train'][1][split_idx[1]], minlength=len(CLASSES)).tolist()})")

    meta = {"t0": args.t0, "args": vars(args), "backend": args.backend,
            "precision": args.precision, "classes": list(CLASSES), "data": data_meta,
            "split_sizes": {k: int(len(v[1])) for k, v in data.items()},
            "split_class_counts": {k: np.bincount(v[1], minlength=len(CLASSES)).tolist()
                                   for k, v in data.items()},
            "val_split": {"seed": 0, "frac": args.val_frac, "size": int(len(split_idx[1]))},
            "notes": ["train accuracy in history is class-weighted (sample weights), "
                      "as Keras' class_weight does; val/test accuracy is not",
                      "tta_flip: mean of probabilities on x and its horizontal mirror"]}
    jerr = os.path.join(out, "jax_error.txt")
    if args.backend == "torch" and os.path.isfile(jerr):
        meta["fell_back_from_jax"] = open(jerr).read()[-4000:]
    res = Results(os.path.join(out, "results.json"), meta)
    res.write()

    # Backend.
    os.environ["KERAS_BACKEND"] = args.backend
    try:
        if os.environ.get("GPUPROBE_SIMULATE_JAX_FAILURE") == "import" and args.backend == "jax":
            raise ImportError("simulated JAX import failure (GPUPROBE_SIMULATE_JAX_FAILURE)")
        import keras
        if keras.backend.backend() != args.backend:
            raise RuntimeError(f"keras loaded backend {keras.backend.backend()!r}, wanted "
                               f"{args.backend!r} (was keras imported before KERAS_BACKEND?)")
        versions = {"keras": keras.__version__, "numpy": np.__version__}
        if args.backend == "jax":
            import jax
            import jaxlib
            if args.jax_cache:
                os.makedirs(args.jax_cache, exist_ok=True)
                meta["jax_cache"] = {"dir": args.jax_cache,
                                     "entries_before": len(os.listdir(args.jax_cache))}
                jax.config.update("jax_compilation_cache_dir", args.jax_cache)
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)
                log(f"[backend] JAX compilation cache {args.jax_cache} "
                    f"({meta['jax_cache']['entries_before']} entries before this run)")
            devs = jax.devices()
            versions.update({"jax": jax.__version__, "jaxlib": jaxlib.__version__})
            device = f"{devs[0].platform}:{getattr(devs[0], 'device_kind', devs[0])}"
            meta["devices"] = [str(d) for d in devs]
            on_accel = devs[0].platform != "cpu"
            if not on_accel and gpu_present() and not args.allow_cpu:
                raise RuntimeError("JAX found no GPU although this machine has an NVIDIA "
                                   "device (CUDA plugin not loaded?); --allow-cpu to go on")
        else:
            import torch
            versions["torch"] = torch.__version__
            on_accel = torch.cuda.is_available()
            device = (f"cuda:{torch.cuda.get_device_name(0)}" if on_accel else "cpu")
            meta["devices"] = [device]
            if on_accel:
                torch.backends.cudnn.benchmark = True
        meta.update({"versions": versions, "device": device, "accelerator": on_accel})
        log(f"[backend] {args.backend}: {versions}; device {device}; all {meta['devices']}")
        precision = args.precision
        if precision == "bf16" and not on_accel:
            log("[backend] note: bf16 on CPU is slow and rarely native; use --precision fp32")
        if precision == "bf16" and args.backend == "jax":
            t = time.perf_counter()
            bad, diff, rel, err = bf16_selfcheck(args.batch if on_accel else 16)
            meta["bf16_selfcheck"] = {"nonfinite_fraction": bad, "max_abs_diff_vs_fp32": diff,
                                      "max_diff_rel_to_max": rel, "error": err,
                                      "seconds": time.perf_counter() - t}
            log(f"[backend] bf16 self-check (conv/BN/ReLU/max-pool, strided convs; forward and "
                f"gradient, jitted): non-finite {bad:.4f}, max |bf16 - fp32| {diff:.3g} "
                f"({rel:.3g} of max |fp32|) ({time.perf_counter() - t:.1f}s)"
                + (f"\n[backend] self-check error: {err}" if err else ""))
            if os.environ.get("GPUPROBE_SKIP_BF16_SELFCHECK"):  # test hook: eval fallback
                bad = rel = 0
            if bad > 0 or rel > 0.05:
                log("[backend] WARNING: bf16 convolutions fail or miscompile on this XLA "
                    "backend; training in float32 instead")
                precision = "fp32"
        meta["precision"] = precision
        keras.mixed_precision.set_global_policy(
            "mixed_bfloat16" if precision == "bf16" else "float32")
    except Exception:
        err = traceback.format_exc()
        log(f"[backend] {args.backend} unavailable:\n{err}")
        meta["backend_error"] = err
        res.write()
        if args.backend == "jax" and not args.no_fallback:
            reexec_torch(args, out, err)
        raise SystemExit(2) from None
    res.write()

    # Architectures, one after another, each within its share of the remaining time.
    for i, arch in enumerate(archs):
        left = len(archs) - i
        remaining = args.deadline_s - clock() - args.eval_reserve_s * left
        budget = max(1.0, min(args.budget_s, remaining / left))
        log(f"\n[{arch}] start at t={clock():.1f}s; budget {budget:.0f}s "
            f"(deadline {args.deadline_s:.0f}s)")
        t_arch = clock()
        try:
            try:
                if (os.environ.get("GPUPROBE_SIMULATE_JAX_FAILURE") == "step"
                        and args.backend == "jax"):
                    raise RuntimeError("simulated JAX first-step failure")
                if (os.environ.get("GPUPROBE_SIMULATE_BF16_FAILURE") == arch
                        and keras.mixed_precision.global_policy().name == "mixed_bfloat16"):
                    raise RuntimeError(f"simulated bf16 failure for {arch}")
                train_arch(keras, arch, args, data, split_idx, budget, res, args.backend, clock)
            except Exception:
                info = res.doc["archs"].get(arch, {})
                policy = keras.mixed_precision.global_policy().name
                if info.get("history") or policy != "mixed_bfloat16":
                    raise
                # bf16 failed before any epoch (e.g. no cuDNN algorithm for a bf16 conv):
                # this architecture once more in float32, in what is left of its budget.
                err = traceback.format_exc()
                log(f"[{arch}] failed in bf16 before the first epoch; retrying in float32:\n"
                    f"{err}")
                keras.backend.clear_session()
                keras.mixed_precision.set_global_policy("float32")
                try:
                    left_s = max(1.0, budget - (clock() - t_arch))
                    res.doc["archs"][arch] = {"bf16_error": err[-4000:]}
                    train_arch(keras, arch, args, data, split_idx, left_s, res, args.backend,
                               clock)
                    res.doc["archs"][arch]["precision"] = "float32 (bf16 failed)"
                finally:
                    keras.mixed_precision.set_global_policy(policy)
        except Exception:
            err = traceback.format_exc()
            log(f"[{arch}] FAILED:\n{err}")
            info = res.doc["archs"].setdefault(arch, {})
            info.update({"status": "error", "error": err[-4000:]})
            res.write()
            first_failed_early = (i == 0 and not info.get("history"))
            if args.backend == "jax" and not args.no_fallback and first_failed_early:
                reexec_torch(args, out, err)
        finally:
            try:
                keras.backend.clear_session()
            except Exception:
                pass
    res.write()
    log(summary(res))
    log(f"[probe] results: {res.path}")


if __name__ == "__main__":
    main()
