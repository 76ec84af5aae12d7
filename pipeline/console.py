"""What a person sees during `fer-pipeline run`, and the log file that keeps the rest.

Without `-v` the console gets one line when each component starts and one when it ends (with
its wall time), the training progress lines (contract.PROGRESS_LOGGER), errors and the run's
summary. Everything else goes to the log file: TFX, absl and Beam logging, Python warnings, and
the lines TensorFlow's C++ runtime writes straight to the process's stderr (CUDA registration
errors on a machine without a GPU, for one). Those can only be caught at the file-descriptor
level, so `Console.capture` points descriptors 1 and 2 at the log file before TensorFlow loads,
and the console writes to duplicates of the original ones.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Callable, Dict, Optional, TextIO

from components import contract

_COMPONENT_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")  # TFX's local runner


def one_line(text: str) -> str:
    """A multi-line message as one line (for cron mail and log scrapers): lines joined by
    "; ", or by a space after a line that ends with a colon."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "".join(line + ("" if i == len(lines) - 1 else " " if line.endswith(":") else "; ")
                   for i, line in enumerate(lines))


def format_seconds(seconds: float) -> str:
    """42 s, 3.1 min."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class ProgressHandler(logging.Handler):
    """Writes component starts and ends and progress records to `stream`, one line each."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        super().__init__(logging.INFO)
        self.stream, self._clock = stream, clock
        self._started: Dict[str, float] = {}

    def line_for(self, record: logging.LogRecord) -> Optional[str]:
        message = record.getMessage()
        if record.name == contract.PROGRESS_LOGGER:
            return message
        event = _COMPONENT_EVENT.match(message)
        if not event:
            return None
        node, state = event.groups()
        if state == "running":
            self._started[node] = self._clock()
            return f"{node} ..."
        started = self._started.pop(node, None)
        took = "" if started is None else f" in {format_seconds(self._clock() - started)}"
        return f"{node} done{took}"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.line_for(record)
            if line is not None:
                self.stream.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
                self.stream.flush()
        except Exception:  # noqa: BLE001  (logging must never raise into the run)
            self.handleError(record)


class Console:
    """The console of one run, a context manager: `out` and `err` are what a person sees.

    `Console.capture(log_path)` sends descriptors 1 and 2, Python logging and warnings to
    `log_path` and keeps `out`/`err` on the terminal until the `with` block ends;
    `Console.verbose()` leaves everything on the terminal.
    """

    def __init__(self, out: TextIO, err: TextIO, log_path: Optional[str] = None,
                 handler: Optional[logging.Handler] = None):
        self.out, self.err, self.log_path = out, err, log_path
        self._handler = handler
        self._captured = log_path is not None

    @classmethod
    def capture(cls, log_path: str, progress: bool = True) -> "Console":
        """`progress`: show component and epoch lines on the terminal (they are logged
        either way)."""
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        out = os.fdopen(os.dup(1), "w", buffering=1)
        err = os.fdopen(os.dup(2), "w", buffering=1)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        _route_logging()
        handler = None
        if progress:
            handler = ProgressHandler(out)
            logging.getLogger().addHandler(handler)
        return cls(out, err, log_path, handler)

    @classmethod
    def verbose(cls) -> "Console":
        # Progress lines are plain INFO records here, shown by absl's handler with the rest.
        _route_logging()
        return cls(sys.stdout, sys.stderr)

    def __enter__(self) -> "Console":
        return self

    def __exit__(self, *exc) -> None:
        if not self._captured:
            return
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.out.fileno(), 1)
        os.dup2(self.err.fileno(), 2)
        self.out.close()
        self.err.close()
        self._handler = None
        self._captured = False


def _route_logging() -> None:
    from absl import logging as absl_logging

    # Python warnings become log records: in the log file, or on the terminal with -v.
    logging.captureWarnings(True)
    absl_logging.set_verbosity(absl_logging.INFO)
    logging.getLogger().setLevel(logging.INFO)
    # absl's handler on the root logger writes to sys.stderr: the log file once captured.
    absl_logging.use_absl_handler()
