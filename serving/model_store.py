"""The versions of one model on disk, loaded and swapped the way TF Serving does it.

`<base_path>/<version>/saved_model.pb`: a version is a directory named by a decimal integer
(ASCII digits only, at most 2**63 - 1, TF Serving's int64; the Pusher writes Unix times). Any
other entry (the Pusher's hidden staging directories, `²`, a 20-digit name) is logged once and
ignored. The version policy is TF Serving's: `latest` serves the newest `num_latest` versions;
with pinned versions it is `specific`: exactly the pinned versions that are on disk and load
(num_latest is then ignored), as deploy.py's models.config says for TF Serving.

A new version is loaded completely and its warm-up requests replayed before it takes traffic;
then it becomes the default and versions the policy no longer wants are dropped, but the last
serving version only once a wanted one has replaced it. Requests already running on an old
version hold a reference to it and finish there. A version that fails to load (or to warm up) is
logged and reported END with its error in the model status; the versions serving before keep
serving. It is retried like TF Serving does (`--max_num_load_retries`,
`--load_retry_interval_micros`): up to `max_load_retries` times, on the first poll at least
`load_retry_interval_s` after the last failure (the poll never waits for it); changed files
(saved_model.pb's mtime) start the count afresh, and after the last retry it stays END until its
files change. Status entries are dropped once a version is neither on disk nor loaded.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components import warmup
from serving import errors, images, prediction
from serving.config import LOAD_RETRY_INTERVAL_S, MAX_LOAD_RETRIES

log = logging.getLogger("fer_serve")

# ModelVersionStatus.State names (TF Serving's model status API).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"

MAX_VERSION = 2 ** 63 - 1  # versions are int64 in TF Serving's protos
_VERSION_NAME = re.compile(r"[0-9]+")


@dataclass
class LoadedVersion:
    """One version in memory: its `signatures` (name -> concrete function) and `signature_defs`
    (what metadata shows), loaded from `path`; the load and warm-up replay times in seconds and
    the number of warm-up requests replayed."""

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
    """A version's entry in the model status: `state` is one of START, LOADING, AVAILABLE,
    UNLOADING, END; a failed load is END with `error_code` UNKNOWN and the error in
    `error_message`."""

    version: int
    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


def version_dirs(base_path: str, reported: Optional[Set[str]] = None) -> Dict[int, str]:
    """Complete versions on disk: directories named by a decimal ASCII integer up to 2**63 - 1
    holding a saved_model.pb. Other entries are logged and ignored; with `reported` (a set kept
    by the caller between calls) each name is logged once while it stays there."""
    found: Dict[int, str] = {}
    try:
        names = [name.rstrip("/") for name in tf.io.gfile.listdir(base_path)]
    except tf.errors.NotFoundError:
        return found
    if reported is not None:
        reported &= set(names)  # a name that went away is logged again if it comes back
    for name in sorted(names, key=lambda n: (len(n), n)):  # "7" before "007"
        version = int(name) if _VERSION_NAME.fullmatch(name) else None
        if version is None or version > MAX_VERSION or version in found:
            why = ("not a version directory (named by decimal digits 0-9 only)" if version is None
                   else f"version above {MAX_VERSION} (int64)" if version > MAX_VERSION
                   else f"a second directory of version {version}")
            _report_ignored(base_path, name, why, reported)
            continue
        path = os.path.join(base_path, name)
        if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
            found[version] = path
    return found


def _report_ignored(base_path: str, name: str, why: str, reported: Optional[Set[str]]) -> None:
    if reported is not None:
        if name in reported:
            return
        reported.add(name)
    # The Pusher's hidden staging directories come and go with every push: not worth a warning.
    level = logging.DEBUG if name.startswith(".") else logging.WARNING
    log.log(level, "ignoring %s in %s: %s", name, base_path, why)


def read_signature_defs(path: str) -> Dict[str, object]:
    """Name -> SignatureDef of the SavedModel in directory `path` (its first MetaGraph), from
    saved_model.pb; internal ones (`__saved_model_init_op`...) left out."""
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


@dataclass
class _Failure:
    fingerprint: float  # of the files that failed
    failures: int       # failed loads of these files: the first one, then the retries
    at: float           # time.monotonic() of the last one


class ModelStore:
    """Versions of one model: which are wanted, loaded and served. Thread-safe."""

    def __init__(self, model_name: str, base_path: str, num_latest: int = 1,
                 pinned_versions: Sequence[int] = (), version_labels: Mapping[str, int] = (),
                 replay_warmup: bool = True, metrics=None,
                 max_load_retries: int = MAX_LOAD_RETRIES,
                 load_retry_interval_s: float = LOAD_RETRY_INTERVAL_S):
        if num_latest < 1:
            raise ValueError("num_latest must be at least 1")
        if max_load_retries < 0:
            raise ValueError("max_load_retries must not be negative")
        if load_retry_interval_s < 0:
            raise ValueError("load_retry_interval_s must not be negative")
        self.model_name = model_name
        self.base_path = base_path
        self.num_latest = num_latest
        self.pinned_versions = set(pinned_versions)
        self.version_labels = dict(version_labels)
        self.replay_warmup = replay_warmup
        self.metrics = metrics
        self.max_load_retries = max_load_retries
        self.load_retry_interval_s = load_retry_interval_s
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._loaded: Dict[int, LoadedVersion] = {}
        self._status: Dict[int, VersionStatus] = {}
        self._failed: Dict[int, _Failure] = {}
        self._ignored_names: Set[str] = set()  # base-path entries already logged as ignored
        self._missing_pins: Set[int] = set()   # pinned versions already logged as not on disk
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # --- what clients see ---

    def get(self, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The version a request names, TF Serving's way: an unknown label is INVALID_ARGUMENT,
        a version (or the latest one) that is not loaded is NOT_FOUND."""
        with self._lock:
            if label:
                if label not in self.version_labels:
                    raise errors.invalid(f"Unrecognized servable version label: {label} (model "
                                         f"'{self.model_name}' has labels "
                                         f"{sorted(self.version_labels)})")
                version = self.version_labels[label]
            if version is None:
                if not self._loaded:
                    raise errors.not_found(
                        f"Servable not found for request: Latest({self.model_name}): no version "
                        f"of model '{self.model_name}' is loaded (watching {self.base_path})")
                return self._loaded[max(self._loaded)]
            if version not in self._loaded:
                raise errors.not_found(
                    f"Servable not found for request: Specific({self.model_name}, {version}): "
                    f"version {version} of model '{self.model_name}' is not available; "
                    f"available: {sorted(self._loaded)}")
            return self._loaded[version]

    def available_versions(self) -> List[int]:
        """The loaded versions, the ones requests can get, oldest first."""
        with self._lock:
            return sorted(self._loaded)

    def status(self, version: Optional[int] = None) -> List[VersionStatus]:
        """The status entry of `version`; None: of every version the store has loaded or tried
        to load that is still on disk or in memory, newest first. Raises NOT_FOUND for a
        version without an entry, or when there is none."""
        with self._lock:
            if version is not None:
                if version not in self._status:
                    raise errors.not_found(f"Could not find version {version} of model "
                                           f"{self.model_name}")
                return [self._status[version]]
            if not self._status:
                raise errors.not_found(f"Could not find any versions of model {self.model_name} "
                                       f"(watching {self.base_path})")
            return [self._status[v] for v in sorted(self._status, reverse=True)]

    # --- keeping up with the directory ---

    def wanted_versions(self, loadable: Sequence[int]) -> List[int]:
        """The policy: `specific` (pinned versions) serves exactly the pinned ones among
        `loadable`, `latest` the newest `num_latest`."""
        if self.pinned_versions:
            return sorted(self.pinned_versions & set(loadable), reverse=True)
        return sorted(loadable, reverse=True)[:self.num_latest]

    def refresh_safely(self) -> bool:
        """refresh() that logs a failure (a file system hiccup) instead of raising: for the
        server's start-up and the polling loop. True when the pass completed."""
        try:
            self.refresh()
            return True
        except Exception:  # a file system hiccup must not stop the server or the watcher
            log.exception("model %s: refresh of %s failed", self.model_name, self.base_path)
            return False

    def refresh(self) -> None:
        """One pass: load wanted versions not yet loaded (newest first), then drop the rest.
        A version that failed to load is passed over (the next wanted ones are loaded instead)
        until its retry is due or its files change; each version is tried at most once a pass."""
        with self._refresh_lock:
            on_disk = version_dirs(self.base_path, self._ignored_names)
            fingerprints = {}
            for version, path in on_disk.items():
                try:
                    fingerprints[version] = _fingerprint(path)
                except tf.errors.NotFoundError:  # deleted since the listing
                    pass
            on_disk = {v: path for v, path in on_disk.items() if v in fingerprints}
            self._report_missing_pins(on_disk)
            now = time.monotonic()
            tried = set()
            while True:
                loadable = [v for v in on_disk if v in self._loaded or (
                    v not in tried and self._may_load(v, fingerprints[v], now))]
                wanted = self.wanted_versions(loadable)
                missing = [v for v in wanted if v not in self._loaded]
                if not missing:
                    break
                version = missing[0]
                tried.add(version)
                self._load(version, on_disk[version], fingerprints[version])
            with self._lock:
                loaded_wanted = [v for v in wanted if v in self._loaded]
                # Never drop the last serving version unless a wanted one replaced it.
                keep = set(loaded_wanted) if loaded_wanted else set(self._loaded)
                for version in sorted(set(self._loaded) - keep):
                    self._status[version] = VersionStatus(version, UNLOADING)
                    del self._loaded[version]  # in-flight requests still hold a reference
                    self._status[version] = VersionStatus(version, END)
                    log.info("model %s: version %d unloaded", self.model_name, version)
                for version in [v for v in self._status
                                if v not in on_disk and v not in self._loaded]:
                    del self._status[version]  # gone from disk and from memory: forgotten
            for version in [v for v in self._failed if v not in on_disk]:
                del self._failed[version]
            if self.metrics:
                self.metrics.set_versions(self.model_name, self.available_versions())

    def _may_load(self, version: int, fingerprint: float, now: float) -> bool:
        failure = self._failed.get(version)
        if failure is None or failure.fingerprint != fingerprint:
            return True  # never failed, or its files changed since: a fresh count
        return (failure.failures <= self.max_load_retries
                and now - failure.at >= self.load_retry_interval_s)

    def _report_missing_pins(self, on_disk: Mapping[int, str]) -> None:
        missing = self.pinned_versions - set(on_disk)
        for version in sorted(missing - self._missing_pins):
            log.warning("model %s: pinned version %d is not in %s; the `specific` policy "
                        "serves only pinned versions", self.model_name, version, self.base_path)
        self._missing_pins = missing

    def _load(self, version: int, path: str, fingerprint: float) -> None:
        previous = self._failed.get(version)
        retry = previous.failures if previous and previous.fingerprint == fingerprint else 0
        with self._lock:
            self._status[version] = VersionStatus(version, LOADING)
        if retry:
            log.warning("model %s: retrying to load version %d from %s (retry %d of %d)",
                        self.model_name, version, path, retry, self.max_load_retries)
        else:
            log.info("model %s: loading version %d from %s", self.model_name, version, path)
        try:
            loaded = load_version(self.model_name, version, path, self.replay_warmup)
        except Exception as e:  # any failure: keep serving what we have
            message = f"{type(e).__name__}: {images.tf_error_text(e)}"
            failures = retry + 1
            if failures <= self.max_load_retries:
                then = (f"retry {failures} of {self.max_load_retries} in "
                        f"{self.load_retry_interval_s:g} s or once its files change")
            else:
                then = "no more retries until its files change"
            log.error("model %s: version %d failed to load; still serving %s; %s. %s",
                      self.model_name, version, self.available_versions() or "nothing", then,
                      message)
            self._failed[version] = _Failure(fingerprint, failures, time.monotonic())
            with self._lock:
                self._status[version] = VersionStatus(version, END, grpc.StatusCode.UNKNOWN,
                                                      message)
            if self.metrics:
                self.metrics.load_finished(self.model_name, ok=False)
            return
        self._failed.pop(version, None)
        with self._lock:
            self._loaded[version] = loaded
            self._status[version] = VersionStatus(version, AVAILABLE)
        log.info("model %s: version %d available (load %.1f s, %d warm-up requests %.1f s)",
                 self.model_name, version, loaded.load_seconds, loaded.warmup_requests,
                 loaded.warmup_seconds)
        if self.metrics:
            self.metrics.load_finished(self.model_name, ok=True)

    def start_polling(self, interval_s: float) -> None:
        """Starts a daemon thread that runs `refresh_safely` every `interval_s` seconds until
        `stop()`."""
        def loop():
            while not self._stop.wait(interval_s):
                self.refresh_safely()

        self._thread = threading.Thread(target=loop, name="fer-serve-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the polling thread, waiting up to 10 s for a refresh under way; the loaded
        versions stay."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
