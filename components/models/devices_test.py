"""What training runs on, and the stop when settings require a GPU that is not there."""
import pytest

from components.models import devices, trainer
from components.models.training_config import TrainConfig

NO_GPU = {"gpus": [], "cpu": "Some CPU", "cpu_cores": 2, "tensorflow": "2.99.0",
          "cuda_build": True, "cuda_libraries": ""}


def test_describe_says_what_tensorflow_sees_here():
    found = devices.describe()
    assert found["cpu_cores"] >= 1 and found["tensorflow"]
    if not found["cuda_libraries"]:  # the plain lock: TensorFlow cannot reach a GPU
        assert found["gpus"] == []
    if found["gpus"]:
        assert found["trained_on"].startswith(f"{len(found['gpus'])} GPU")
    else:
        assert found["trained_on"].startswith("CPU (") and "no GPU visible" in found["trained_on"]


def test_trained_on_names_the_gpus():
    assert devices.trained_on({**NO_GPU, "gpus": ["NVIDIA H100"]}) == "1 GPU (NVIDIA H100)"
    assert devices.trained_on({**NO_GPU, "gpus": ["NVIDIA H100"] * 2}) == "2 GPUs (NVIDIA H100)"


def test_require_gpu_without_cuda_libraries_names_the_install_and_the_override():
    with pytest.raises(devices.NoGpuError, match="needs a GPU") as raised:
        devices.check(True, NO_GPU, "Trainer vgg16")
    message = str(raised.value)
    assert message.startswith("Trainer vgg16 needs a GPU")
    assert "no CUDA libraries" in message and "make bootstrap GPU=1" in message
    assert devices.ALLOW_CPU_OPTION in message


def test_require_gpu_with_cuda_libraries_but_no_device_points_at_the_driver():
    with pytest.raises(devices.NoGpuError, match="sees no GPU: check the driver"):
        devices.check(True, {**NO_GPU, "cuda_libraries": "9.1"}, "Tuner resnet50")


def test_no_stop_with_a_gpu_or_without_the_requirement():
    devices.check(True, {**NO_GPU, "gpus": ["NVIDIA H100"]}, "Trainer vgg16")
    devices.check(False, NO_GPU, "Trainer vgg16")


def test_the_trainer_and_tuner_stop_before_training_when_the_settings_require_a_gpu(
        monkeypatch):
    monkeypatch.setattr(devices, "describe", lambda: {**NO_GPU, "trained_on": "CPU"})
    config = TrainConfig(architecture="vgg16", label_names=["a", "b"], require_gpu=True)
    with pytest.raises(devices.NoGpuError, match="^Trainer vgg16 needs a GPU"):
        trainer._training_devices(config, "Trainer vgg16")
    allowed = TrainConfig(architecture="vgg16", label_names=["a", "b"])
    assert trainer._training_devices(allowed, "Trainer vgg16")["gpus"] == []
