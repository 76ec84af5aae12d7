"""The versions of one model on disk, loaded and swapped the way TF Serving does it.

`<base_path>/<version>/saved_model.pb`: a version is a directory named by an integer (the Pusher
writes Unix times). The store serves the newest `num_latest` versions plus any pinned ones still
on disk. A new version is loaded completely and its warm-up requests replayed before it takes
traffic; then it becomes the default and versions the policy no longer wants are dropped.
Requests already running on an old version hold a reference to it and finish there. A version
that fails to load (or to warm up) is logged and reported in the model status; the versions
serving before keep serving, and that version is not retried until its files change.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components import warmup
from serving import errors, images, prediction

log = logging.getLogger("fer_serve")

# ModelVersionStatus.State names (TF Serving's model status API).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class LoadedVersion:
    model_name: str
    version: int
    path: str
    signatures: Dict[str, Callable]
    signature_defs: Dict[str, object]   # name -> tensorflow.SignatureDef
    saved_model: object = field(repr=False, default=None)  # keeps the functions' resources alive
    load_seconds: float = 0.0
    warmup_requests: int = 0
    warmup_seconds: float = 0.0


@dataclass
class VersionStatus:
    version: int
    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


def version_dirs(base_path: str) -> Dict[int, str]:
    """Complete versions on disk: integer-named directories holding a saved_model.pb (the
    Pusher's hidden staging directories and anything else are ignored)."""
    found = {}
    try:
        names = tf.io.gfile.listdir(base_path)
    except tf.errors.NotFoundError:
        return found
    for name in names:
        name = name.rstrip("/")
        if name.isdigit():
            path = os.path.join(base_path, name)
            if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
                found[int(name)] = path
    return found


def read_signature_defs(path: str) -> Dict[str, object]:
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    # `__saved_model_init_op` and the like are not callable signatures: not shown to clients.
    return {name: signature_def for name, signature_def
            in saved_model.meta_graphs[0].signature_def.items() if not name.startswith("__")}


def load_version(model_name: str, version: int, path: str, replay_warmup: bool = True
                 ) -> LoadedVersion:
    """Loads one version and replays its warm-up requests; raises on any failure."""
    started = time.perf_counter()
    saved_model = tf.saved_model.load(path)
    loaded = LoadedVersion(model_name=model_name, version=version, path=path,
                           signatures=dict(saved_model.signatures),
                           signature_defs=read_signature_defs(path), saved_model=saved_model)
    loaded.load_seconds = time.perf_counter() - started
    if replay_warmup:
        started = time.perf_counter()
        for request in warmup.read_warmup_requests(path):
            prediction.predict_request(loaded, request)
            loaded.warmup_requests += 1
        loaded.warmup_seconds = time.perf_counter() - started
    return loaded


def _fingerprint(path: str) -> float:
    return tf.io.gfile.stat(os.path.join(path, "saved_model.pb")).mtime_nsec


class ModelStore:
    """Versions of one model: which are wanted, loaded and served. Thread-safe."""

    def __init__(self, model_name: str, base_path: str, num_latest: int = 1,
                 pinned_versions: Sequence[int] = (), version_labels: Mapping[str, int] = (),
                 replay_warmup: bool = True, metrics=None):
        if num_latest < 1:
            raise ValueError("num_latest must be at least 1")
        self.model_name = model_name
        self.base_path = base_path
        self.num_latest = num_latest
        self.pinned_versions = set(pinned_versions)
        self.version_labels = dict(version_labels)
        self.replay_warmup = replay_warmup
        self.metrics = metrics
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._loaded: Dict[int, LoadedVersion] = {}
        self._status: Dict[int, VersionStatus] = {}
        self._failed: Dict[int, float] = {}  # version -> fingerprint of the files that failed
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # --- what clients see ---

    def get(self, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        with self._lock:
            if label:
                if label not in self.version_labels:
                    raise errors.not_found(f"model '{self.model_name}' has no version label "
                                           f"'{label}'; labels: {sorted(self.version_labels)}")
                version = self.version_labels[label]
            if version is None:
                if not self._loaded:
                    raise errors.ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        f"model '{self.model_name}' has no loaded version yet "
                        f"(watching {self.base_path})")
                return self._loaded[max(self._loaded)]
            if version not in self._loaded:
                raise errors.not_found(f"version {version} of model '{self.model_name}' is not "
                                       f"available; available: {sorted(self._loaded)}")
            return self._loaded[version]

    def available_versions(self) -> List[int]:
        with self._lock:
            return sorted(self._loaded)

    def status(self, version: Optional[int] = None) -> List[VersionStatus]:
        with self._lock:
            if version is not None:
                if version not in self._status:
                    raise errors.not_found(f"model '{self.model_name}' has no version {version}")
                return [self._status[version]]
            return [self._status[v] for v in sorted(self._status, reverse=True)]

    # --- keeping up with the directory ---

    def wanted_versions(self, loadable: Sequence[int]) -> List[int]:
        newest = sorted(loadable, reverse=True)[:self.num_latest]
        return sorted(set(newest) | (self.pinned_versions & set(loadable)), reverse=True)

    def refresh(self) -> None:
        """One pass: load wanted versions not yet loaded (newest first), then drop the rest.
        A version that failed to load is passed over: the newest loadable ones are wanted."""
        with self._refresh_lock:
            on_disk = version_dirs(self.base_path)
            while True:
                loadable = [v for v, path in on_disk.items()
                            if self._failed.get(v) != _fingerprint(path)]
                wanted = self.wanted_versions(loadable)
                missing = [v for v in wanted if v not in self._loaded]
                if not missing:
                    break
                version = missing[0]
                self._load(version, on_disk[version], _fingerprint(on_disk[version]))
            with self._lock:
                loaded_wanted = [v for v in wanted if v in self._loaded]
                # Never drop the last serving version unless a wanted one replaced it.
                keep = set(loaded_wanted) if loaded_wanted else set(self._loaded)
                for version in sorted(set(self._loaded) - keep):
                    self._status[version] = VersionStatus(version, UNLOADING)
                    del self._loaded[version]  # in-flight requests still hold a reference
                    self._status[version] = VersionStatus(version, END)
                    log.info("model %s: version %d unloaded", self.model_name, version)
            if self.metrics:
                self.metrics.set_versions(self.model_name, self.available_versions())

    def _load(self, version: int, path: str, fingerprint: float) -> None:
        with self._lock:
            self._status[version] = VersionStatus(version, LOADING)
        log.info("model %s: loading version %d from %s", self.model_name, version, path)
        try:
            loaded = load_version(self.model_name, version, path, self.replay_warmup)
        except Exception as e:  # any failure: keep serving what we have
            message = f"{type(e).__name__}: {images.tf_error_text(e)}"
            log.error("model %s: version %d failed to load; still serving %s. %s",
                      self.model_name, version, self.available_versions() or "nothing", message)
            self._failed[version] = fingerprint
            with self._lock:
                self._status[version] = VersionStatus(version, END, grpc.StatusCode.UNKNOWN,
                                                      message)
            if self.metrics:
                self.metrics.load_finished(self.model_name, ok=False)
            return
        with self._lock:
            self._loaded[version] = loaded
            self._status[version] = VersionStatus(version, AVAILABLE)
        log.info("model %s: version %d available (load %.1f s, %d warm-up requests %.1f s)",
                 self.model_name, version, loaded.load_seconds, loaded.warmup_requests,
                 loaded.warmup_seconds)
        if self.metrics:
            self.metrics.load_finished(self.model_name, ok=True)

    def start_polling(self, interval_s: float) -> None:
        def loop():
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # a file system hiccup must not stop the watcher
                    log.exception("model %s: refresh failed", self.model_name)

        self._thread = threading.Thread(target=loop, name="fer-serve-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
