"""Serving the pushed model: fer-serve (TF Serving's APIs), clients, production configuration."""
import os
import warnings

# Before TensorFlow is imported: its C++ start-up lines are noise on a serving console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
