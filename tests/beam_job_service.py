"""Beam's own job service (Job API, Python), on loopback, for tests and benchmarks of the portable
runner: started in its own process on a free port it picks itself, stopped in every case."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from typing import Iterator

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
LOG_FILE = "job_service.log"


class JobServiceError(RuntimeError):
    """The job service did not start."""


@contextlib.contextmanager
def local_job_service(work_dir: str) -> Iterator[str]:
    """Runs `python -m apache_beam.runners.portability.local_job_service_main` on a free
    loopback port (the service binds localhost) and yields its address, `localhost:PORT`. Its
    output goes to `work_dir`/job_service.log (read it with `completed_jobs`). The process is
    terminated, then killed, when the block ends, however it ends."""
    os.makedirs(work_dir, exist_ok=True)
    port_file = os.path.join(work_dir, "job_service.port")
    log_path = os.path.join(work_dir, LOG_FILE)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
             "--port", "0", "--port_file", port_file,
             "--staging_dir", os.path.join(work_dir, "staging")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(port_file):   # written (renamed into place) once listening
            if process.poll() is not None:
                raise JobServiceError(f"the job service exited ({process.returncode}): "
                                      f"{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise JobServiceError(f"the job service did not start in {START_TIMEOUT_S:.0f} s:"
                                      f" {_tail(log_path)}")
            time.sleep(0.1)
        with open(port_file) as f:
            yield f"localhost:{int(f.read())}"
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


def completed_jobs(work_dir: str) -> int:
    """How many jobs the service in `work_dir` finished in state DONE."""
    with open(os.path.join(work_dir, LOG_FILE), errors="replace") as f:
        return sum("Completed job in" in line and "state DONE" in line for line in f)


def _tail(path: str, chars: int = 2000) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-chars:]
