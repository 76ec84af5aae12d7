"""pytest configuration shared by the unit tests beside the code and the tests in tests/."""
import os
import warnings

# Quiet TensorFlow's C++ start-up logs; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")  # see components/__init__.py
