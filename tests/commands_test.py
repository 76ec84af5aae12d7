"""What a person sees from the console commands: `--help` answers without loading TensorFlow,
and fer-serve, fer-client and the Kubeflow compiler print their own lines only (TensorFlow's
start-up lines are kept off the console: components/quiet_start.py)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipeline import configs

# Each console command's module (setup.py's entry points, and the Kubeflow compiler).
COMMANDS = {
    "fer-pipeline": "pipeline.cli",
    "fer-serve": "serving.server_cli",
    "fer-client": "serving.client_cli",
    "fer-deploy": "serving.deploy_cli",
    "kubeflow_runner": "pipeline.kubeflow_runner",
}
HEAVY_MODULES = ("tensorflow", "tfx", "apache_beam", "grpc")
# Lines TensorFlow, its plugins and the Google Cloud clients print at start-up.
NOISE = re.compile(r"cuDNN|cuFFT|cuBLAS|oneDNN|cpu_feature_guard|TensorRT|TF-TRT|"
                   r"FutureWarning|absl::InitializeLog|^[WEI]\d{4} ")
TIMEOUT_S = 180


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=configs.PROJECT_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def _module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=configs.PROJECT_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_answers_without_loading_tensorflow(command):
    result = _python(
        "import importlib, sys\n"
        f"main = importlib.import_module({COMMANDS[command]!r}).main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {HEAVY_MODULES!r} if m in sys.modules])\n")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED []"


def test_fer_client_prints_only_its_own_error():
    # Nothing listens on port 1: the client loads TensorFlow, calls, and fails with one line.
    result = _module("serving.client_cli", "status", "--server", "127.0.0.1:1",
                     "--timeout", "2", "--retries", "0")
    assert result.returncode != 0
    assert result.stderr.startswith("fer-client: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_fer_serve_prints_only_its_own_lines(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.server_cli", "--model-base-path", str(tmp_path),
         "--port", "0", "--rest-port", "-1"],
        cwd=configs.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "serving model" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.splitlines(keepends=True)
    assert any("serving model" in line for line in lines), "".join(lines)
    assert [line for line in lines if " fer-serve " not in line] == []
    assert not any(NOISE.search(line) for line in lines)


def test_the_kubeflow_compiler_prints_only_its_own_error(tmp_path):
    # A data root that does not exist stops the compile with one line, after TFX has loaded.
    result = _module("pipeline.kubeflow_runner", "--image", "fer:test",
                     "--data-root", os.path.join(str(tmp_path), "missing"),
                     "--pipeline-root", str(tmp_path / "root"),
                     "--output-file", str(tmp_path / "spec.json"), "--classes", "all")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("ERROR ("), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
