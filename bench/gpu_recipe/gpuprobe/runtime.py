"""Process plumbing: the log tee (stdout/stderr to probe.log), log(), the run clock, and
whether the machine has an NVIDIA GPU."""

from __future__ import annotations

import time


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
