"""The console shows components, progress and errors; the log file gets everything else."""
import logging
import subprocess
import sys
import textwrap

from components import contract
from pipeline import console as console_lib

# Stands in for a run: a C++ line written straight to descriptor 2 (as TensorFlow's runtime
# does), a Python warning, absl logging from TFX, a component's start and end, a progress line,
# and a print from library code.
_SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    from absl import logging as absl_logging
    from components import contract
    from pipeline import console as console_lib

    with console_lib.Console.capture(sys.argv[1]) as console:
        os.write(2, b"E0000 cuda_fft.cc:479] Unable to register cuFFT factory\\n")
        warnings.warn("the foo argument is deprecated", DeprecationWarning)
        absl_logging.warning("ArtifactQuery.property_predicate is not supported.")
        absl_logging.info("Component %s is running.", "Transform")
        logging.getLogger(contract.PROGRESS_LOGGER).info("Trainer vgg16: epoch 1/2")
        print("Epoch 1/2 - 3s - loss: 1.7")
        absl_logging.info("Component %s is finished.", "Transform")
        print("summary line", file=console.out)
    print("after the run")
""")


def test_capture_keeps_the_console_to_progress_and_the_rest_in_the_log(tmp_path):
    log = tmp_path / "logs" / "run.log"
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(log)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    console_lines = done.stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in console_lines[:3]] == [
        "Transform ...", "Trainer vgg16: epoch 1/2", "Transform done in 0 s"]
    assert console_lines[3:] == ["summary line", "after the run"]  # descriptors restored
    assert done.stderr == ""
    logged = log.read_text()
    for noise in ("Unable to register cuFFT factory", "DeprecationWarning: the foo argument",
                  "ArtifactQuery.property_predicate", "Epoch 1/2 - 3s", "Trainer vgg16: epoch"):
        assert noise in logged, noise
    assert "after the run" not in logged


def _record(message, name="absl"):
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, (), None)


def test_component_lines_carry_the_wall_time(tmp_path):
    now = [100.0]
    with open(tmp_path / "console.txt", "w") as stream:
        handler = console_lib.ProgressHandler(stream, clock=lambda: now[0])
        assert handler.line_for(_record("Component Trainer_vgg16 is running.")) == \
            "Trainer_vgg16 ..."
        now[0] += 150
        assert handler.line_for(_record("Component Trainer_vgg16 is finished.")) == \
            "Trainer_vgg16 done in 2.5 min"
        assert handler.line_for(_record("Component Pusher is finished.")) == "Pusher done"
        assert handler.line_for(_record("Generating ephemeral wheel package")) is None
        assert handler.line_for(_record("epoch 2/8", contract.PROGRESS_LOGGER)) == "epoch 2/8"


def test_format_seconds():
    assert console_lib.format_seconds(42.4) == "42 s"
    assert console_lib.format_seconds(150) == "2.5 min"


def test_one_line_joins_a_message_for_cron():
    assert console_lib.one_line("drifted (see x):\n  a: 0.2\n  b: 0.3\nAnomalies: /p\n") == \
        "drifted (see x): a: 0.2; b: 0.3; Anomalies: /p"
    assert console_lib.one_line("single") == "single"
    assert console_lib.one_line("") == ""
