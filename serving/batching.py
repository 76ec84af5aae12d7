"""Server-side batching of concurrent requests, as TF Serving's `--enable_batching` does.

Requests for the same version and signature that arrive within `timeout_s` of each other are
run as one batch of at most `max_batch_size` images, then the outputs are split back. Each
request's images are checked before it joins a batch; if a joined batch still fails (an image
that only the decoder rejects), every request of it is run alone, so an error carries the
request's own image indices and never fails another client's request.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from serving import errors, prediction


@dataclass
class _Task:
    version: object
    signature_name: str
    inputs: Mapping[str, np.ndarray]
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[Dict[str, np.ndarray]] = None
    error: Optional[BaseException] = None


class Batcher:
    def __init__(self, max_batch_size: int = 32, timeout_s: float = 0.002, num_threads: int = 1,
                 observe_batch: Optional[Callable[[int], None]] = None):
        self.max_batch_size = max_batch_size
        self._observe_batch = observe_batch  # called with the image count of each run batch
        self.timeout_s = timeout_s
        self._queue: "queue.Queue[Optional[_Task]]" = queue.Queue()
        self._held: Optional[_Task] = None  # taken from the queue but for the next batch
        self._threads = [threading.Thread(target=self._loop, name=f"fer-batcher-{i}",
                                          daemon=True) for i in range(num_threads)]
        self._take_lock = threading.Lock()
        for thread in self._threads:
            thread.start()

    def run(self, version, signature_name: str, inputs: Mapping[str, np.ndarray]
            ) -> Dict[str, np.ndarray]:
        size = next(iter(inputs.values())).shape[0]
        task = _Task(version, signature_name, inputs, size)
        self._queue.put(task)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _next(self, timeout: Optional[float]) -> Optional[_Task]:
        if self._held is not None:
            task, self._held = self._held, None
            return task
        return self._queue.get(timeout=timeout) if timeout is not None else self._queue.get()

    def _take_batch(self) -> Optional[List[_Task]]:
        with self._take_lock:
            first = self._next(None)
            if first is None:
                return None
            batch, size = [first], first.size
            deadline = time.perf_counter() + self.timeout_s
            while size < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    task = self._next(remaining)
                except queue.Empty:
                    break
                if task is None:
                    self._queue.put(None)
                    break
                if (task.version is not first.version or task.signature_name != first.signature_name
                        or set(task.inputs) != set(first.inputs)
                        or size + task.size > self.max_batch_size):
                    self._held = task
                    break
                batch.append(task)
                size += task.size
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._run(batch)

    @staticmethod
    def _run_alone(task: _Task) -> None:
        try:
            task.result = prediction.run(task.version, task.signature_name, task.inputs)
        except BaseException as e:  # handed to the waiting request thread
            task.error = e
        task.done.set()

    def _run(self, batch: List[_Task]) -> None:
        if self._observe_batch:
            self._observe_batch(sum(t.size for t in batch))
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        first = batch[0]
        merged = {key: np.concatenate([t.inputs[key] for t in batch]) for key in first.inputs}
        try:
            outputs = prediction.run(first.version, first.signature_name, merged)
        except errors.ServingError:
            for task in batch:
                self._run_alone(task)
            return
        except BaseException as e:
            for task in batch:
                task.error = e
                task.done.set()
            return
        start = 0
        for task in batch:
            task.result = {key: value[start:start + task.size] for key, value in outputs.items()}
            start += task.size
            task.done.set()
