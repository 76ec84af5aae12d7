"""FER2013 images: found as tarballs or folders, decoded to 48x48 uint8 in worker
processes, cached as one .npz; and their float32 [0, 1] model input form."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time

import numpy as np

from .constants import CACHE_VERSION, CLASSES, IMAGE_EXTS, IMAGE_SIZE, SPLITS
from .runtime import log


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


def to_float(x_u8):
    return (x_u8.astype(np.float32) * (1.0 / 255.0))[..., None]
