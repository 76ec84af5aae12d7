"""Start-up noise kept off a command's console: for fer-serve, fer-client and the Kubeflow
compiler (fer-pipeline has its own console, pipeline/console.py).

Importing TensorFlow prints lines a user cannot act on: CUDA factory registration errors on a
machine without a GPU, oneDNN and CPU-feature notices, TensorRT warnings, and Python warnings
from the Google Cloud clients. TensorFlow's C++ runtime writes them straight to file descriptor
2, so only a descriptor-level redirect catches them. `quiet_start()` points descriptor 2 at a
temporary file for the length of a block (the heavy imports, a compile) and drops the file when
the block succeeds; when it raises, the captured text goes to the terminal first, so nothing
that explains a failure is lost. Light on purpose: standard library only.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

# Before TensorFlow loads: its INFO and WARNING lines (oneDNN, cpu_feature_guard, TensorRT) are
# not printed at all; the ERROR lines it prints at import are caught below.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_start(verbose: bool = False) -> Iterator[None]:
    """Runs the block with standard error (descriptor 2 and Python warnings) in a temporary file,
    replayed on the terminal only if the block raises. `verbose`: leave everything on the
    terminal."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved_fd)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            sys.stderr.flush()
            raise
        else:
            _restore(saved_fd)


def _restore(saved_fd: int) -> None:
    sys.stderr.flush()
    os.dup2(saved_fd, 2)
    os.close(saved_fd)
