"""One run at a time: a lock file holding the PID, host and start time of the run that holds it.

`fer-pipeline retrain` takes it before anything else, so a cron job that fires while the last
run is still going exits at once, naming the lock and its holder. A lock whose process is gone
(killed, machine rebooted) is stale: the next run takes it over and says so in its log.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from typing import Any, Dict, Optional


class LockHeldError(RuntimeError):
    """Another live run holds the lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_holder(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written or garbage: treated as stale


def is_stale(holder: Dict[str, Any]) -> bool:
    """A holder on this host whose process is gone, or an unreadable lock. A holder on another
    host (shared file system) is never taken over: its PID means nothing here."""
    if not holder or "pid" not in holder:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    return not _alive(int(holder["pid"]))


class RunLock:
    """A context manager around the lock file at `path`."""

    def __init__(self, path: str):
        self.path = path
        self.took_over: Optional[Dict[str, Any]] = None  # the stale holder replaced, if any

    def acquire(self) -> "RunLock":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(2):  # second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
                holder = read_holder(self.path)
                if holder is None:
                    continue  # released meanwhile
                if not is_stale(holder):
                    raise LockHeldError(
                        f"another run holds the lock {self.path} (pid {holder.get('pid')} on "
                        f"{holder.get('host')}, since {holder.get('started')})") from None
                self.took_over = holder
                os.remove(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return self
        raise LockHeldError(f"could not take the lock {self.path}: it keeps changing hands")

    def release(self) -> None:
        holder = read_holder(self.path)
        if holder and holder.get("pid") == os.getpid() and \
                holder.get("host") == socket.gethostname():
            os.remove(self.path)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
