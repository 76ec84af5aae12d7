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
import TensorFlow. Only mixup/cutmix (mix_batch, numpy on the host) lives here.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import sys
import tarfile
import time
import traceback
import warnings

import numpy as np

T_START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the project root: `components` lives there
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from components import class_metrics  # noqa: E402  (plain Python: no TensorFlow here)

# Keras' data adapter asks JAX for int64 label specs; harmless, once per compile.
warnings.filterwarnings("ignore", message="Explicitly requested dtype int64")

CLASSES = ("angry", "fear", "happy", "neutral", "sad", "surprise")  # sorted; no `disgust`
SPLITS = (("train", "Training"), ("public", "PublicTest"), ("private", "PrivateTest"))
IMAGE_SIZE = 48
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
ARCHS = ("vgg16", "resnet50")
CACHE_VERSION = 1


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


# --- Logging ----------------------------------------------------------------------------------

class Tee:
    def __init__(self, stream, path):
        self.stream, self.file = stream, open(path, "a", buffering=1)

    def write(self, s):
        self.stream.write(s)
        self.stream.flush()
        self.file.write(s)
        return len(s)

    def flush(self):
        self.stream.flush()
        self.file.flush()

    def isatty(self):
        return False

    def fileno(self):
        return self.stream.fileno()


def log(*a):
    print(*a, flush=True)


def gpu_present():
    import glob
    import shutil
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


class Clock:
    def __init__(self, t0):
        self.t0 = t0

    def __call__(self):
        return time.time() - self.t0


# --- Data -------------------------------------------------------------------------------------

def _find_split(data_dirs, split):
    for d in data_dirs:
        folder = os.path.join(d, split)
        if os.path.isdir(folder):
            return "dir", folder
        for ext in (".tar.gz", ".tgz", ".tar"):
            path = os.path.join(d, split + ext)
            if os.path.isfile(path):
                return "tar", path
    return None, None


def _class_and_name(path):
    parts = [q for q in path.replace("\\", "/").split("/") if q not in ("", ".")]
    if len(parts) < 2 or not parts[-1].lower().endswith(IMAGE_EXTS):
        return None, None
    return parts[-2], parts[-1]


def _read_items(kind, path):
    """[(class, filename, bytes)] for the six classes, in a fixed order."""
    items = []
    if kind == "tar":
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                cls, name = _class_and_name(m.name)
                if cls in CLASSES:
                    items.append((cls, name, tar.extractfile(m).read()))
    else:
        for cls in CLASSES:
            folder = os.path.join(path, cls)
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.lower().endswith(IMAGE_EXTS):
                    with open(os.path.join(folder, name), "rb") as f:
                        items.append((cls, name, f.read()))
    items.sort(key=lambda t: (t[0], t[1]))
    return items


def _decode(blob):
    from PIL import Image
    im = Image.open(io.BytesIO(blob))
    im = im.convert("L")
    if im.size != (IMAGE_SIZE, IMAGE_SIZE):
        im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _limit(items, k):
    if not k:
        return items
    kept, seen = [], {}
    for it in items:
        if seen.get(it[0], 0) < k:
            kept.append(it)
            seen[it[0]] = seen.get(it[0], 0) + 1
    return kept


def load_data(args, clock):
    """{'train': (x uint8 [N,48,48], y int32 [N]), 'public': ..., 'private': ...} (cached)."""
    data_dirs = [d for d in args.data.split(",") if d]
    found = {key: _find_split(data_dirs, split) for key, split in SPLITS}
    for key, split in SPLITS:
        log(f"[data] {split}: {found[key][0] or 'MISSING'} {found[key][1] or ''}")
    if found["train"][0] is None:
        raise SystemExit(f"Training split not found under {data_dirs}")
    sig = {"v": CACHE_VERSION, "limit": args.limit_per_class, "classes": CLASSES}
    for key, (kind, path) in found.items():
        if kind == "tar":
            st = os.stat(path)
            sig[key] = [os.path.abspath(path), st.st_size, int(st.st_mtime)]
        elif kind == "dir":
            sig[key] = [os.path.abspath(path), int(os.stat(path).st_mtime)]
    digest = hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:16]
    cache = os.path.join(args.cache_dir, f"gpuprobe_fer6_{digest}.npz")
    if os.path.isfile(cache):
        try:
            with np.load(cache) as z:
                data = {k: (z[f"{k}_x"], z[f"{k}_y"]) for k, _ in SPLITS if f"{k}_x" in z}
            log(f"[data] loaded cache {cache} ({clock():.1f}s)")
            return data, {"cache": cache, "cache_hit": True}
        except Exception as e:  # a truncated cache: decode again
            log(f"[data] cache unreadable ({e!r}); decoding again")
    import multiprocessing as mp
    workers = max(1, min(args.workers, os.cpu_count() or 1))
    data = {}
    with mp.get_context("fork").Pool(workers) as pool:
        for key, split in SPLITS:
            kind, path = found[key]
            if kind is None:
                continue
            t = time.time()
            items = _limit(_read_items(kind, path), args.limit_per_class)
            t_read = time.time() - t
            blobs = [b for _, _, b in items]
            imgs = pool.map(_decode, blobs, chunksize=max(1, len(blobs) // (workers * 8) or 1))
            x = (np.stack(imgs) if imgs else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
            y = np.array([CLASSES.index(c) for c, _, _ in items], dtype=np.int32)
            data[key] = (x, y)
            log(f"[data] {split}: {len(y)} images, per class "
                f"{np.bincount(y, minlength=len(CLASSES)).tolist()} "
                f"(read {t_read:.1f}s, decode {time.time() - t - t_read:.1f}s, {workers} procs)")
    try:
        tmp = cache + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, **{f"{k}_{a}": v for k, (x, y) in data.items()
                         for a, v in (("x", x), ("y", y))})
        os.replace(tmp, cache)
    except OSError as e:
        log(f"[data] cache not written: {e!r}")
    return data, {"cache": cache, "cache_hit": False}


def stratified_split(y, frac, batch, seed=0):
    """(train_idx, val_idx): a stratified `frac` of y held out; its size a multiple of `batch`
    when that is at least one batch, so that validation compiles one batch shape only."""
    n = len(y)
    target = frac * n
    n_val = int(round(target / batch)) * batch if target >= batch else max(1, int(round(target)))
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    quota = counts * n_val / n
    take = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - take), kind="stable")[: n_val - take.sum()]:
        take[c] += 1
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(y == c))
        va.append(idx[: take[c]])
        tr.append(idx[take[c]:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


def lr_for(arch, spec):
    """--lr: '0.01' or 'vgg16=0.01,resnet50=0.02' (0 / absent: the project default)."""
    spec = str(spec).strip()
    if "=" not in spec:
        return float(spec or 0)
    for part in spec.split(","):
        k, _, v = part.partition("=")
        if k.strip() == arch:
            return float(v)
    return 0.0


def recipe_of(args):
    """The recipe flags that differ between runs (recorded per architecture)."""
    keys = ("optimizer", "momentum", "weight_decay", "lr_schedule", "warmup_epochs", "lr_floor",
            "plateau_factor", "plateau_patience", "aug", "crop_pad", "crop_fill", "erasing",
            "label_smoothing", "mixup", "cutmix", "mix_prob", "class_weights", "batch",
            "epochs", "tta_shifts", "patience")
    return {k: getattr(args, k) for k in keys}


def to_float(x_u8):
    return (x_u8.astype(np.float32) * (1.0 / 255.0))[..., None]


# --- Metrics ----------------------------------------------------------------------------------

def confusion(y, pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def f1_from_cm(cm):
    """Per-class F1 of a confusion matrix (rows actual), the project's arithmetic."""
    return np.array([class_metrics.f1(cm[c, c], cm[c].sum(), cm[:, c].sum())
                     for c in range(len(cm))], dtype=np.float64)


def score(y, probs, probs_flip=None, crop_views=None):
    k = len(CLASSES)
    nonfinite = float((~np.isfinite(probs)).any(-1).mean()) if len(probs) else 0.0
    pred = probs.argmax(-1)
    cm = confusion(y, pred, k)
    try:
        from sklearn.metrics import f1_score
        per_class = f1_score(y, pred, labels=list(range(k)), average=None, zero_division=0)
        f1_source = "sklearn"
    except Exception:
        per_class = f1_from_cm(cm)
        f1_source = "numpy"
    out = {"n": int(len(y)), "accuracy": float((pred == y).mean()) if len(y) else None,
           "macro_f1": float(np.mean(per_class)),
           "per_class_f1": {c: float(v) for c, v in zip(CLASSES, per_class, strict=True)},
           "confusion_matrix": cm.tolist(), "f1_source": f1_source,
           "nonfinite_fraction": nonfinite}
    if probs_flip is not None:
        pred_t = ((probs + probs_flip) / 2).argmax(-1)
        out["tta_flip_accuracy"] = float((pred_t == y).mean()) if len(y) else None
        out["tta_flip_macro_f1"] = float(np.mean(f1_from_cm(confusion(y, pred_t, k))))
    for s, views in (crop_views or {}).items():
        # views: 10 probability arrays [center, 4 corners, their mirrors] (tta_views).
        for name, sel in ((f"tta_crop{s}", views[:5]), (f"tta_tencrop{s}", views)):
            pred_t = np.mean(sel, axis=0).argmax(-1)
            cm_t = confusion(y, pred_t, k)
            out[f"{name}_accuracy"] = float((pred_t == y).mean()) if len(y) else None
            out[f"{name}_macro_f1"] = float(np.mean(f1_from_cm(cm_t)))
            if name.startswith("tta_tencrop"):
                out[f"{name}_per_class_f1"] = {
                    c: float(v) for c, v in zip(CLASSES, f1_from_cm(cm_t), strict=True)}
    return out


# --- Results file -----------------------------------------------------------------------------

class Results:
    def __init__(self, path, meta):
        self.path = path
        self.doc = {"meta": meta, "archs": {}}

    def write(self):
        self.doc["meta"]["elapsed_s"] = round(time.time() - self.doc["meta"]["t0"], 2)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1, default=_json_default)
        os.replace(tmp, self.path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --- Training ---------------------------------------------------------------------------------

def _sha256_16(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def build_models(keras, arch, args):
    from components.models import resnet50, vgg16
    from components.models.augmentation import RandomErase, RandomPadCrop, augmentation_layers
    from components.models.training_config import DEFAULT_HYPERPARAMETERS
    builders = {"vgg16": vgg16.build, "resnet50": resnet50.build}
    hp = dict(DEFAULT_HYPERPARAMETERS[arch])  # a copy: the learning rate is overridden below
    base = builders[arch]((IMAGE_SIZE, IMAGE_SIZE, 1), len(CLASSES), variant="fer",
                          dropout=hp["dropout"], head_units=hp["head_units"], width=args.width)
    s = args.seed
    # Pad-crop (seed + 1) and erasing (seed + 2), after the other layers; all in float32 under
    # the bf16 policy, plain keras.ops, jit-safe on every backend.
    crop_and_erase = []
    if args.crop_pad:
        crop_and_erase.append(RandomPadCrop(args.crop_pad, fill_mode=args.crop_fill, seed=s + 1,
                                            dtype="float32", name="random_pad_crop"))
    if args.erasing:
        crop_and_erase.append(RandomErase(args.erasing, seed=s + 2, dtype="float32",
                                          name="random_erase"))
    if args.aug in ("project", "zoom"):
        # The project's augmentation: flip, translation 0.08, rotation 0.04, contrast 0.2
        # (clipped to [0, 1]), then zoom 0.1 (--aug zoom), pad-crop and erasing. It pads only by
        # reflection: with --crop-fill constant the last two are built here instead.
        own = args.crop_fill == "reflect"
        aug_layers = augmentation_layers(s, zoom=0.1 if args.aug == "zoom" else 0.0,
                                         crop_pad=args.crop_pad if own else 0,
                                         erasing=args.erasing if own else 0.0)
        if keras.backend.backend() == "jax":
            # RandomTranslation/Rotation/Zoom declare supports_jit=False because TensorFlow's
            # projective-transform op has no XLA kernel; with them in a model Keras silently
            # drops jit_compile and JAX runs every op eagerly (on the 2-core CPU test: 55 s vs
            # 31 s per VGG16 step; far worse on a GPU). Under JAX they are
            # plain keras.ops (affine_transform = jax.scipy.ndimage.map_coordinates) and
            # SeedGenerator state, both fine under jit.
            for layer in aug_layers:
                layer.supports_jit = True
        if not own:
            aug_layers += crop_and_erase
    else:
        aug_layers = ([keras.layers.RandomFlip("horizontal", seed=s, dtype="float32")]
                      if args.aug == "flip" else [])
        aug_layers += crop_and_erase
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image", dtype="float32")
    x = inputs
    if aug_layers:
        x = keras.Sequential(aug_layers, name="augment")(x)  # active only when training=True
    train_model = keras.Model(inputs, base(x), name=f"{arch}_train")
    return base, train_model, hp


# --- Batch mixing (host side) -----------------------------------------------------------------

def mix_batch(x, y_soft, w, rng, mixup_alpha=0.0, cutmix_alpha=0.0, prob=1.0):
    """mixup or cutmix of a batch with a permutation of itself (numpy; per batch one lambda).
    x (B, H, W, C) float, y_soft (B, K) float, w (B,) sample weights (mixed like the labels).
    When both alphas are set, each batch picks one of the two at random. Returns (x, y, w, kind)."""
    if (mixup_alpha <= 0 and cutmix_alpha <= 0) or rng.random() >= prob:
        return x, y_soft, w, None
    kinds = [k for k, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    kind = kinds[rng.integers(len(kinds))]
    perm = rng.permutation(len(x))
    if kind == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        x = lam * x + (1 - lam) * x[perm]
    else:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        h, w_px = x.shape[1], x.shape[2]
        ch, cw = int(round(h * math.sqrt(1 - lam))), int(round(w_px * math.sqrt(1 - lam)))
        cy, cx = rng.integers(h), rng.integers(w_px)
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w_px)
        x = x.copy()
        x[:, y0:y1, x0:x1, :] = x[perm, y0:y1, x0:x1, :]
        lam = 1 - (y1 - y0) * (x1 - x0) / float(h * w_px)  # the area actually kept
    y_soft = lam * y_soft + (1 - lam) * y_soft[perm]
    w = lam * w + (1 - lam) * w[perm]
    return x.astype(np.float32), y_soft.astype(np.float32), w.astype(np.float32), kind


def make_train_seq(keras, x_u8, y, cw, batch, seed, one_hot=False, mixup=0.0, cutmix=0.0,
                   mix_prob=1.0):
    class TrainSeq(keras.utils.PyDataset):
        """Shuffled full batches (drop remainder: one compiled batch shape), with class-weight
        sample weights, converted to float32 [0, 1] per batch on the host; one-hot labels
        (and mixup/cutmix, mixed on the host before the model's augmentation) when asked."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.x, self.y, self.w = x_u8, y, np.asarray(cw, np.float32)
            self.batch = min(batch, len(y))
            self.epoch = 0
            self._shuffle()

        def _shuffle(self):
            self.order = np.random.default_rng(seed + self.epoch).permutation(len(self.y))

        def __len__(self):
            return max(1, len(self.y) // self.batch)

        def __getitem__(self, i):
            idx = self.order[i * self.batch:(i + 1) * self.batch]
            yb = self.y[idx]
            if not one_hot:
                return to_float(self.x[idx]), yb, self.w[yb]
            xb, wb = to_float(self.x[idx]), self.w[yb]
            yh = np.eye(len(CLASSES), dtype=np.float32)[yb]
            if mixup or cutmix:
                rng = np.random.default_rng((seed, self.epoch, i))
                xb, yh, wb, _ = mix_batch(xb, yh, wb, rng, mixup, cutmix, mix_prob)
            return xb, yh, wb

        def on_epoch_end(self):
            self.epoch += 1
            self._shuffle()

    return TrainSeq()


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


def predict_probs(model, x_f32, batch):
    """Probabilities, batched at one fixed shape (padding the tail: no recompile)."""
    n = len(x_f32)
    if n == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    pad = (-n) % batch
    if pad:
        x_f32 = np.concatenate([x_f32, np.zeros((pad,) + x_f32.shape[1:], x_f32.dtype)])
    return np.asarray(model.predict(x_f32, batch_size=batch, verbose=0), np.float32)[:n]


def evaluate_split(model, x_u8, y, batch, tta_shifts=(), fill_mode="reflect"):
    x = to_float(x_u8)
    both = predict_probs(model, np.concatenate([x, x[:, :, ::-1, :]]), batch)
    crop_views = {}
    if tta_shifts and len(x):
        import keras

        from components.models.augmentation import tta_views
        for s in tta_shifts:
            views = [np.asarray(keras.ops.convert_to_numpy(v), np.float32)
                     for v in tta_views(x, s, fill_mode)]
            # the center and its mirror were predicted above: reuse them
            probs = {0: both[: len(x)], 5: both[len(x):]}
            rest = [i for i in range(10) if i not in probs]
            out = predict_probs(model, np.concatenate([views[i] for i in rest]), batch)
            for j, i in enumerate(rest):
                probs[i] = out[j * len(x):(j + 1) * len(x)]
            crop_views[s] = [probs[i] for i in range(10)]
    return score(y, both[: len(x)], both[len(x):], crop_views)


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


def bf16_selfcheck(batch):
    """Jitted bf16 vs float32, forward and gradient, of (a) VGG16's first block (conv, BN in
    inference form, ReLU, twice, then 2x2 max pool) and (b) a ResNet-style stride-2 3x3 conv
    and strided 1x1 shortcut. XLA:CPU in jaxlib 0.11.2 miscompiles (a) in bf16: a varying
    fraction of non-finite or garbage outputs from run to run.
    Returns (non-finite fraction, max abs diff, that relative to max |fp32|, error or None)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32))
    ws = [jnp.asarray(rng.standard_normal(shape).astype(np.float32) * scale) for shape, scale in
          (((3, 3, 1, 64), 0.3), ((3, 3, 64, 64), 0.05), ((3, 3, 1, 64), 0.3),
           ((1, 1, 64, 128), 0.1))]

    def conv(h, w, stride, dtype):
        return lax.conv_general_dilated(h, w.astype(dtype), (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def bn_relu(h, dtype):
        return jnp.maximum((h.astype(jnp.float32) * lax.rsqrt(jnp.float32(1.001))).astype(dtype), 0)

    def vgg_block(ws, x, dtype):
        h = bn_relu(conv(x.astype(dtype), ws[0], 1, dtype), dtype)
        h = bn_relu(conv(h, ws[1], 1, dtype), dtype)
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                 "VALID").astype(jnp.float32)  # as keras' JAX max_pool

    def resnet_part(ws, x, dtype):
        r = bn_relu(conv(x.astype(dtype), ws[2], 2, dtype), dtype)  # stem: 3x3, stride 2
        return conv(r, ws[3], 2, dtype).astype(jnp.float32)          # strided 1x1 shortcut

    outs = {"bf16": [], "fp32": []}
    try:
        for name, dtype in (("bf16", jnp.bfloat16), ("fp32", jnp.float32)):
            for fn in (vgg_block, resnet_part):
                # Inference on its own (as predict/evaluate), then the gradient (as training):
                # in one jit, the backward pass would change what XLA fuses.
                f = lambda ws, x, fn=fn, d=dtype: fn(ws, x, d)  # noqa: E731
                outs[name].append(np.asarray(jax.jit(f)(ws, x)))
                g = jax.jit(jax.grad(lambda ws, x, f=f: jnp.mean(f(ws, x) ** 2)))(ws, x)
                outs[name] += [np.asarray(t, np.float32) for t in g]
    except Exception as e:  # e.g. no cuDNN algorithm for a bf16 convolution
        return 1.0, float("inf"), float("inf"), f"{type(e).__name__}: {e}"[:2000]
    bad, rel, diff = 0.0, 0.0, 0.0
    for lo, hi in zip(outs["bf16"], outs["fp32"], strict=True):
        fin = np.isfinite(lo)
        bad = max(bad, float((~fin).mean()))
        d = float(np.abs(np.where(fin, lo, 0) - hi).max())
        diff = max(diff, d)
        rel = max(rel, d / max(float(np.abs(hi).max()), 1e-12))
    return bad, diff, rel, None


# --- Main -------------------------------------------------------------------------------------

def summary(res):
    lines = ["", "=" * 100,
             f"SUMMARY  backend={res.doc['meta'].get('backend')} "
             f"precision={res.doc['meta'].get('precision')} "
             f"device={res.doc['meta'].get('device')}  total {res.doc['meta'].get('elapsed_s')}s",
             f"{'arch':<9} {'ep run/plan/req':>15} {'best':>4} {'val':>6} | "
             f"{'pub acc':>7} {'pub F1':>6} {'pubTTA':>6} | {'prv acc':>7} {'prv F1':>6} "
             f"{'prvTTA':>6} | {'1st ep':>6} {'s/ep':>5} {'img/s':>7} | "
             f"{'train acc':>9} {'10-crop pub acc/F1 per shift'}"]
    for arch, a in res.doc["archs"].items():
        if a.get("status") != "ok":
            hist = a.get("history") or []
            lines.append(f"{arch:<9} status={a.get('status')} epochs={len(hist)} "
                         f"best_val_acc={a.get('best_val_accuracy')} "
                         f"error={(a.get('error') or '').strip().splitlines()[-1:]}")
            continue
        t = a.get("test", {})

        def g(key, field, t=t):
            v = t.get(key, {}).get(field)
            return f"{v:.4f}" if v is not None else "   -  "
        lines.append(
            f"{arch:<9} {a['epochs_run']:>5}/{a['epochs_planned']}/{a['epochs_requested']:<5} "
            f"{a['best_epoch']:>4} {a['best_val_accuracy']:.4f} | "
            f"{g('public', 'accuracy'):>7} {g('public', 'macro_f1')[:6]:>6} "
            f"{g('public', 'tta_flip_accuracy')[:6]:>6} | "
            f"{g('private', 'accuracy'):>7} {g('private', 'macro_f1')[:6]:>6} "
            f"{g('private', 'tta_flip_accuracy')[:6]:>6} | "
            f"{a['first_epoch_s']:6.1f} "
            f"{(a['epoch_s_median_after_first'] or float('nan')):5.2f} "
            f"{(a['train_images_per_s_median_after_first'] or float('nan')):7.0f} | "
            f"{(a['history'][-1].get('accuracy') or float('nan')):9.4f} "
            + " ".join(f"s{k[len('tta_tencrop'):-len('_accuracy')]}: {v:.4f}/"
                       f"{t['public'][k.replace('_accuracy', '_macro_f1')]:.4f}"
                       for k, v in t.get("public", {}).items()
                       if k.startswith("tta_tencrop") and k.endswith("_accuracy"))
            + (f"  (scored in {a['eval_precision']}: bf16 gave non-finite outputs)"
               if a.get("eval_nonfinite_bf16") else "")
            + (f"  ({a['precision']})" if a.get("precision") else ""))
    lines.append("=" * 100)
    return "\n".join(lines)


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
