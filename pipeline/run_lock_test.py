"""The retrain lock: one holder at a time, stale locks taken over, only the holder releases."""
import json
import os
import socket
import subprocess
import sys

import pytest

from pipeline import run_lock


def _write_holder(path, pid, host=None):
    with open(path, "w") as f:
        json.dump({"pid": pid, "host": host or socket.gethostname(), "started": "t"}, f)


def test_a_live_holder_keeps_the_lock_and_a_dead_one_is_taken_over(tmp_path):
    path = str(tmp_path / "retrain.lock")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _write_holder(path, live.pid)
        with pytest.raises(run_lock.LockHeldError, match=f"pid {live.pid}"):
            run_lock.RunLock(path).acquire()
    finally:
        live.kill()
        live.wait()
    # The same PID, now dead: stale.
    with run_lock.RunLock(path) as lock:
        assert lock.took_over["pid"] == live.pid
        assert run_lock.read_holder(path)["pid"] == os.getpid()
    assert not os.path.exists(path)  # released


def test_no_second_holder_in_one_process_and_garbage_is_stale(tmp_path):
    path = str(tmp_path / "retrain.lock")
    with run_lock.RunLock(path):
        with pytest.raises(run_lock.LockHeldError):
            run_lock.RunLock(path).acquire()  # this process is alive
    with open(path, "w") as f:
        f.write("{half")
    with run_lock.RunLock(path) as lock:
        assert lock.took_over == {}


def test_a_holder_on_another_host_is_never_taken_over(tmp_path):
    path = str(tmp_path / "retrain.lock")
    _write_holder(path, 1, host="elsewhere")
    with pytest.raises(run_lock.LockHeldError, match="on elsewhere"):
        run_lock.RunLock(path).acquire()
    lock = run_lock.RunLock(path)
    lock.release()                     # not ours: left alone
    assert run_lock.read_holder(path)["host"] == "elsewhere"
