"""FER pipeline components."""
import os

# One Keras for Tuner, Trainer and export (Keras 3). tf.Transform defaults TF_USE_LEGACY_KERAS to
# 1 (tf.keras = Keras 2), which KerasTuner 1.4 rejects. This must run before TensorFlow is
# imported; importing any module of this package first guarantees that, in Beam workers too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")


# Custom artifact types by their TYPE_NAME ("components.<Name>"): KFP v2 accepts only "ns.Name"
# type names, and its container entry point imports the class by that path. Imported lazily:
# this package must stay light to import.
_ARTIFACT_TYPES = {
    "ImageIngestReport": "components.image_example_gen.component.IngestReport",
    "RunReport": "components.run_report.component.RunReportArtifact",
}


def __getattr__(name):
    if name not in _ARTIFACT_TYPES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, _, attribute = _ARTIFACT_TYPES[name].rpartition(".")
    return getattr(importlib.import_module(module), attribute)
