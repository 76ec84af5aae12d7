"""Server-side batching of concurrent requests, as TF Serving's `--enable_batching` does.

Requests for the same version and signature, with inputs of the same dtypes and inner shapes,
that arrive within `timeout_s` of each other run as one batch of at most `max_batch_size` images;
the outputs are split back. Requests come here checked (prediction.check), so a merged batch
holds only inputs the signature takes.

Nothing can lose a request: a failure in merging, running or splitting runs each request of the
batch alone, so each gets its own answer or its own error; requests that cannot merge run apart;
a request waits at most until its deadline (DEADLINE_EXCEEDED, and it is not run if still
queued); the batching thread answers the batch it held and restarts if it ever stops.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import grpc
import numpy as np

from serving import errors, prediction

log = logging.getLogger("fer_serve")

RunFn = Callable[[object, str, Mapping[str, np.ndarray]], Dict[str, np.ndarray]]


@dataclass
class _Task:
    version: object
    signature_name: str
    inputs: Mapping[str, np.ndarray]
    size: int
    deadline: Optional[float]  # time.monotonic() seconds; None: no deadline
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[Dict[str, np.ndarray]] = None
    error: Optional[BaseException] = None
    abandoned: bool = False  # its caller stopped waiting: do not run it

    def merge_key(self) -> Tuple:
        return (id(self.version), self.signature_name,
                tuple(sorted((k, a.dtype.str, a.shape[1:]) for k, a in self.inputs.items())))

    def answer(self, result=None, error: Optional[BaseException] = None) -> None:
        self.result, self.error = result, error
        self.done.set()


def deadline_exceeded(what: str) -> errors.ServingError:
    """DEADLINE_EXCEEDED (REST: 408) with `what` as the message."""
    return errors.ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, what)


class Batcher:
    """Merges concurrent requests into model calls of at most `max_batch_size` images, on one
    thread: a batch waits at most `timeout_s` seconds after its first request for others.
    `observe_batch` is called with each model call's image count (the batch-size metric);
    `execute` runs a request or a merged batch (prediction.execute; tests pass fakes).
    `restarts` counts the times the thread had stopped and was started again."""

    def __init__(self, max_batch_size: int = 32, timeout_s: float = 0.002,
                 observe_batch: Optional[Callable[[int], None]] = None,
                 execute: RunFn = prediction.execute):
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self._observe_batch = observe_batch  # called with the image count of each model call
        self._execute = execute
        self._queue: "queue.Queue[Optional[_Task]]" = queue.Queue()
        self._stopped = False
        self._thread_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self.restarts = 0
        self._ensure_thread()

    def run(self, version, signature_name: str, inputs: Mapping[str, np.ndarray],
            deadline: Optional[float] = None) -> Dict[str, np.ndarray]:
        """Runs checked `inputs` as part of a batch; waits at most until `deadline`."""
        if self._stopped:
            raise errors.ServingError(grpc.StatusCode.UNAVAILABLE, "the server is stopping")
        size = next(iter(inputs.values())).shape[0]
        task = _Task(version, signature_name, inputs, size, deadline)
        self._ensure_thread()
        self._queue.put(task)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not task.done.wait(timeout):
            task.abandoned = True
            raise deadline_exceeded("the request's deadline passed while it waited for its "
                                    "batch")
        if task.error is not None:
            raise task.error
        return task.result

    def stop(self) -> None:
        """Refuses new requests (UNAVAILABLE), answers those still queued with UNAVAILABLE and
        asks the thread to end after the batch it holds; returns without waiting for it."""
        self._stopped = True
        while True:  # whatever is still queued gets an answer
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task.answer(error=errors.ServingError(grpc.StatusCode.UNAVAILABLE,
                                                      "the server is stopping"))
        # The stop signal goes last: drained with the tasks, it would leave the thread waiting.
        self._queue.put(None)

    def _ensure_thread(self) -> None:
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._thread is not None:
                self.restarts += 1
                log.error("batcher thread had stopped; restarted (%d)", self.restarts)
            self._thread = threading.Thread(target=self._loop, name="fer-batcher", daemon=True)
            self._thread.start()

    # --- the batching thread ---

    def _take(self) -> Optional[List[_Task]]:
        """Tasks that arrived within the window of the first one; None once stopped."""
        first = self._queue.get()
        if first is None:
            return None
        tasks, size = [first], first.size
        window_end = time.monotonic() + self.timeout_s
        while size < self.max_batch_size:
            remaining = window_end - time.monotonic()
            if remaining <= 0:
                break
            try:
                task = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if task is None:
                self._queue.put(None)  # stop after this batch
                break
            tasks.append(task)
            size += task.size
        return tasks

    def _loop(self) -> None:
        while True:
            tasks: List[_Task] = []
            try:
                tasks = self._take()
                if tasks is None:
                    return
                for batch in self._batches(tasks):
                    self._run(batch)
            except Exception as e:  # a bug here must not leave a request waiting
                log.exception("batcher failed; answering its requests with the error")
                for task in tasks or ():
                    if not task.done.is_set():
                        task.answer(error=e)

    def _batches(self, tasks: List[_Task]) -> List[List[_Task]]:
        """Live tasks grouped by what can merge, each group cut to max_batch_size images."""
        now = time.monotonic()
        groups: Dict[Tuple, List[List[_Task]]] = {}
        for task in tasks:
            if task.abandoned:
                continue
            if task.deadline is not None and task.deadline <= now:
                task.answer(error=deadline_exceeded("the request's deadline passed in the "
                                                    "batching queue"))
                continue
            chunks = groups.setdefault(task.merge_key(), [[]])
            if chunks[-1] and sum(t.size for t in chunks[-1]) + task.size > self.max_batch_size:
                chunks.append([])
            chunks[-1].append(task)
        return [chunk for chunks in groups.values() for chunk in chunks]

    def _run_alone(self, task: _Task) -> None:
        try:
            self._observe(task.size)
            task.answer(self._execute(task.version, task.signature_name, task.inputs))
        except Exception as e:  # handed to the waiting request thread
            task.answer(error=e)

    def _observe(self, size: int) -> None:
        if self._observe_batch:
            self._observe_batch(size)

    def _run(self, batch: List[_Task]) -> None:
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        first, total = batch[0], sum(t.size for t in batch)
        try:
            merged = {key: np.concatenate([t.inputs[key] for t in batch])
                      for key in first.inputs}
            self._observe(total)
            outputs = self._execute(first.version, first.signature_name, merged)
            results, start = [], 0
            for task in batch:
                results.append({key: value[start:start + task.size]
                                for key, value in outputs.items()})
                start += task.size
            short = [k for k, v in outputs.items() if len(v) != total]
            if short:
                raise ValueError(f"outputs {short} do not have one row per image of the batch")
        except Exception as e:
            # Each request alone: its own answer, or its own error with its own image indices.
            log.debug("merged batch of %d requests failed (%s); running them alone",
                      len(batch), e)
            for task in batch:
                self._run_alone(task)
            return
        for task, result in zip(batch, results, strict=True):
            task.answer(result)
