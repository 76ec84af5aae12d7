"""The per-epoch progress line: metrics, training rate without validation, ETA."""
import logging

from components import contract
from components.models import progress


def test_epoch_line_has_metrics_rate_and_eta(caplog):
    now = [0.0]
    callback = progress.EpochProgress("Trainer vgg16", epochs=4, images_per_epoch=1000,
                                      clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger=contract.PROGRESS_LOGGER):
        callback.on_epoch_begin(0)
        now[0] = 10.0            # 1,000 images trained in 10 s ...
        callback.on_test_begin()
        now[0] = 20.0            # ... then 10 s of validation
        callback.on_epoch_end(0, {"loss": 1.5, "accuracy": 0.25, "val_loss": 1.6,
                                  "val_accuracy": 0.2, "learning_rate": 0.001})
        callback.on_epoch_begin(1)
        now[0] = 25.0            # the second epoch is faster (no tracing), no validation
        callback.on_epoch_end(1, {"loss": 1.2})
    first, second = [r.getMessage() for r in caplog.records]
    assert first == ("Trainer vgg16: epoch 1/4  loss 1.5000  accuracy 0.2500  val_loss 1.6000  "
                     "val_accuracy 0.2000  (100.0 images/s, ETA 1m00s)")
    assert second == "Trainer vgg16: epoch 2/4  loss 1.2000  (200.0 images/s, ETA 10s)"
