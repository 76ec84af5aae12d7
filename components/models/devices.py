"""The devices TensorFlow trains on, and the stop for settings that need a GPU.

The `gpu` profile sets `require_gpu`: without this check, a machine whose TensorFlow has no CUDA
libraries (the plain `tensorflow` wheel) or sees no GPU trains that profile's full-width networks
on the CPU, for days, saying nothing. The Trainer and the Tuner check where they run (on
Kubeflow, a node other than the one that compiled the pipeline); the local runner checks the
same before the run starts.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any, Dict

# The command-line override (pipeline/cli_options.py defines the option with this name).
ALLOW_CPU_OPTION = "--allow-cpu"
# One of the wheels `tensorflow[and-cuda]` installs (requirements/*-gpu.lock).
CUDA_WHEEL = "nvidia-cudnn-cu12"
GPU_INSTALL = "make bootstrap GPU=1 (requirements/<stack>-gpu.lock: tensorflow[and-cuda])"


class NoGpuError(RuntimeError):
    """Training settings require a GPU and TensorFlow sees none."""


def describe() -> Dict[str, Any]:
    """What this process trains on: the GPUs TensorFlow sees (with their model names), the CPU,
    and what TensorFlow was built and installed with; `trained_on` says it in a few words."""
    import tensorflow as tf  # here: the command line imports this module for its option name

    gpus = tf.config.list_physical_devices("GPU")
    models = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
              for g in gpus]
    build = tf.sysconfig.get_build_info()
    devices = {
        "gpus": models,
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "cuda_build": bool(build.get("is_cuda_build")),
        "cuda_libraries": _cuda_wheel_version(),
    }
    devices["trained_on"] = trained_on(devices)
    return devices


def trained_on(devices: Dict[str, Any]) -> str:
    """'1 GPU (NVIDIA H100 80GB HBM3)', or 'CPU (Intel Xeon ..., 2 cores; no GPU visible)'."""
    gpus = devices.get("gpus") or []
    if gpus:
        names = ", ".join(sorted(set(gpus)))
        return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({names})"
    return f"CPU ({devices.get('cpu')}, {devices.get('cpu_cores')} cores; no GPU visible)"


def check(require_gpu: bool, devices: Dict[str, Any], who: str) -> None:
    """Raises NoGpuError when `require_gpu` and `devices` has no GPU, saying why and the fixes."""
    if not require_gpu or devices.get("gpus"):
        return
    if not devices.get("cuda_libraries"):
        why = (f"TensorFlow {devices.get('tensorflow')} has no CUDA libraries here (the "
               f"plain tensorflow wheel); install them: {GPU_INSTALL}")
    else:
        why = (f"TensorFlow {devices.get('tensorflow')} has its CUDA libraries "
               f"({CUDA_WHEEL} {devices['cuda_libraries']}) but sees no GPU: check the driver "
               f"(nvidia-smi) and CUDA_VISIBLE_DEVICES")
    raise NoGpuError(
        f"{who} needs a GPU (the profile trains for an accelerator) and TensorFlow sees none: "
        f"{why}; or pass {ALLOW_CPU_OPTION} to train on the CPU anyway "
        f"({devices.get('cpu')}, {devices.get('cpu_cores')} cores)")


def _cuda_wheel_version() -> str:
    try:
        return importlib.metadata.version(CUDA_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
