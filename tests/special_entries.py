"""Entries of an image folder that are no readable file (test helpers): a dangling symlink, a
FIFO, a Unix socket, a directory with an image name; and a guard that fails a test which opens
a FIFO for reading instead of letting it hang."""
from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Iterable, Iterator

# A reader blocked on a FIFO is let through within this many seconds.
_FIFO_POLL_S = 0.05


def dangling_link(path: str) -> str:
    """A symlink at `path` to a file beside it that does not exist."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.basename(path) + ".removed", path)
    return path


def fifo(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)
    return path


def unix_socket(path: str) -> str:
    """A Unix socket file at `path` (it stays once the socket is closed)."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    # Bound by its name in its folder: socket paths are limited to ~108 bytes, less than
    # pytest's tmp_path can take.
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(name)
    finally:
        os.chdir(cwd)
    return path


def directory(path: str) -> str:
    os.makedirs(path)
    return path


@contextlib.contextmanager
def fifo_guard(fifos: Iterable[str]) -> Iterator[None]:
    """Fails the block if anything opened one of `fifos` for reading, instead of hanging on it.

    A thread keeps opening each FIFO for writing without blocking: that only succeeds while a
    reader has it open, and lets a blocked reader through (with nothing to read).
    """
    fifos = list(fifos)
    done = threading.Event()
    opened = []

    def watch():
        while not done.wait(_FIFO_POLL_S):
            for path in fifos:
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:     # ENXIO: no reader
                    continue
                opened.append(path)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        # Also when the block raised: the FIFO read is the likelier cause of its error.
        assert not opened, f"FIFO(s) opened for reading: {sorted(set(opened))}"
