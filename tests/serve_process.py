"""`fer-serve` in a subprocess on free ports, as users start it (test helper)."""
import queue
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from pipeline import configs
from serving import server_cli

READY_TIMEOUT_S = 180


class ServeProcess:
    """`python -m serving.server_cli` (what the fer-serve entry point runs) on free ports."""

    def __init__(self, model_base_path: str, *extra: str,
                 python: Sequence[str] = (sys.executable,), env: Optional[dict] = None):
        """`python`: the interpreter's command line (e.g. `podman run ... IMAGE python`)."""
        self.proc = subprocess.Popen(
            [*python, "-m", "serving.server_cli", "--model-base-path", model_base_path,
             "--port", "0", "--rest-port", "0", "--poll-interval", "0.2", *extra],
            cwd=configs.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()
        self.grpc_port = self.rest_port = None
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline and self.proc.poll() is None:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            ports = server_cli.ready_ports(line)
            if ports:
                self.grpc_port, self.rest_port = ports
                return
        self.stop()
        raise AssertionError("fer-serve did not start:\n" + "".join(self.log))

    def _read(self):
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then SIGKILL if it has not stopped within `timeout_s`; its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
