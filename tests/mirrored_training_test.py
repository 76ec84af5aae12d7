"""The Trainer under MirroredStrategy: two logical CPUs stand in for two GPUs."""
import json
import os
import subprocess
import sys

from components.models import trainer
from pipeline import configs


def test_run_fn_trains_and_exports_through_mirrored_strategy(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.mirrored_training", str(tmp_path)],
        cwd=configs.PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["logical_cpus"] == 2
    assert report["replicas"] == 2
    assert report["batch_size"] == 8            # 4 per replica, global batch 8
    assert report["epochs_run"] == 2
    probabilities = report["probabilities"][0]
    assert len(probabilities) == 2 and abs(sum(probabilities) - 1) < 1e-5


def test_strategy_is_the_default_one_without_two_devices():
    import tensorflow as tf
    assert trainer.distribution_strategy("auto") is tf.distribute.get_strategy()
    assert trainer.distribution_strategy("default") is tf.distribute.get_strategy()
