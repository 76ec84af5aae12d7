"""The batcher cannot lose a request: merge, run and split failures, shapes that cannot merge,
deadlines, and a batching thread that stops. The model is a stand-in: these are the batcher's
own rules (the served model runs through it in server_test.py and hostile_clients_test.py)."""
import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest

from serving import errors
from serving.batching import Batcher

VERSION = object()


def doubling(version, signature_name, inputs):
    return {"y": inputs["x"] * 2}


def run_together(batcher, arrays, deadline_s=5.0):
    """Each array as its own request, all at once; their results or errors, in order."""
    def one(array):
        try:
            return batcher.run(VERSION, "sig", {"x": array}, time.monotonic() + deadline_s)
        except Exception as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(len(arrays)) as pool:
        return list(pool.map(one, arrays))


@pytest.fixture
def calls():
    return []


def test_requests_of_different_inner_shapes_run_apart(calls):
    def execute(version, signature_name, inputs):
        calls.append(inputs["x"].shape)
        return doubling(version, signature_name, inputs)

    batcher = Batcher(max_batch_size=16, timeout_s=0.2, execute=execute)
    arrays = [np.ones((1, 3)), np.ones((2, 3)), np.ones((1, 4)), np.ones((1,))]
    results = run_together(batcher, arrays)
    batcher.stop()
    for array, result in zip(arrays, results, strict=True):
        np.testing.assert_array_equal(result["y"], array * 2)
    assert sorted(calls) == sorted([(3, 3), (1, 4), (1,)])  # the (·, 3) pair merged


def test_a_failing_merged_batch_runs_each_request_alone_with_its_own_answer():
    def execute(version, signature_name, inputs):
        x = inputs["x"]
        if (x < 0).any():
            raise errors.invalid(f"negative input in a batch of {len(x)}")
        return doubling(version, signature_name, inputs)

    batcher = Batcher(max_batch_size=16, timeout_s=0.2, execute=execute)
    arrays = [np.ones((1, 2)), -np.ones((1, 2)), np.ones((2, 2))]
    results = run_together(batcher, arrays)
    batcher.stop()
    np.testing.assert_array_equal(results[0]["y"], arrays[0] * 2)
    assert isinstance(results[1], errors.ServingError) and "batch of 1" in results[1].message
    np.testing.assert_array_equal(results[2]["y"], arrays[2] * 2)


def test_outputs_that_do_not_split_fall_back_to_running_alone():
    def execute(version, signature_name, inputs):
        return {"y": inputs["x"][:1] * 2}  # one row, whatever the batch: wrong when merged

    batcher = Batcher(max_batch_size=16, timeout_s=0.2, execute=execute)
    results = run_together(batcher, [np.ones((1, 2)), np.full((1, 2), 3.0)])
    batcher.stop()
    assert [r["y"][0, 0] for r in results] == [2.0, 6.0]


def test_a_request_waits_no_longer_than_its_deadline():
    release = threading.Event()

    def slow(version, signature_name, inputs):
        release.wait(5)
        return doubling(version, signature_name, inputs)

    batcher = Batcher(max_batch_size=4, timeout_s=0.0, execute=slow)
    started = time.monotonic()
    results = run_together(batcher, [np.ones((1, 1)), np.ones((1, 1))], deadline_s=0.3)
    assert time.monotonic() - started < 2
    assert any(isinstance(r, errors.ServingError)
               and r.code == grpc.StatusCode.DEADLINE_EXCEEDED for r in results)
    release.set()
    batcher.stop()


def test_a_failure_in_the_batching_thread_answers_its_requests_and_the_next_ones_run(
        monkeypatch):
    batcher = Batcher(max_batch_size=4, timeout_s=0.01, execute=doubling)
    original = batcher._batches
    failures = iter([RuntimeError("bug while grouping")])

    def failing_once(tasks):
        failure = next(failures, None)
        if failure:
            raise failure
        return original(tasks)

    monkeypatch.setattr(batcher, "_batches", failing_once)
    [first] = run_together(batcher, [np.ones((1, 1))])
    assert isinstance(first, RuntimeError)
    [second] = run_together(batcher, [np.ones((1, 1))])
    np.testing.assert_array_equal(second["y"], [[2.0]])
    batcher.stop()


def test_a_batching_thread_that_stopped_is_restarted():
    batcher = Batcher(max_batch_size=4, timeout_s=0.01, execute=doubling)
    batcher._queue.put(None)  # the thread's stop signal, as if it had died
    batcher._thread.join(timeout=5)
    assert not batcher._thread.is_alive()
    [result] = run_together(batcher, [np.ones((1, 1))])
    np.testing.assert_array_equal(result["y"], [[2.0]])
    assert batcher.restarts == 1
    batcher.stop()


def test_stop_answers_what_is_still_queued():
    batcher = Batcher(max_batch_size=4, timeout_s=0.01, execute=doubling)
    batcher.stop()
    batcher._thread.join(timeout=5)
    assert not batcher._thread.is_alive()  # the batching thread ends too
    with pytest.raises(errors.ServingError) as e:
        batcher.run(VERSION, "sig", {"x": np.ones((1, 1))}, time.monotonic() + 1)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
