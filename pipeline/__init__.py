"""FER pipeline: configuration, graph, runners and CLI."""
import os

# See components/__init__.py: Keras 3 everywhere; must precede the first TensorFlow import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
