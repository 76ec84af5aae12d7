"""FER pipeline components."""
import os

# One Keras for Tuner, Trainer and export (Keras 3). tf.Transform defaults TF_USE_LEGACY_KERAS to
# 1 (tf.keras = Keras 2), which KerasTuner 1.4 rejects. This must run before TensorFlow is
# imported; importing any module of this package first guarantees that, in Beam workers too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
