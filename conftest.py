"""pytest configuration shared by the unit tests beside the code and the tests in tests/."""
import os
import warnings

# Quiet TensorFlow's C++ start-up logs; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")  # see components/__init__.py

# Skipped tests in one line at the end; a skipped FER2013 slice test fails the run when the
# FER2013 directory exists (tests/skip_report.py).
pytest_plugins = ["tests.skip_report"]
