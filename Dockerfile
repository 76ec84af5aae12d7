# Container image for Kubeflow runs (pipeline/kubeflow_runner.py --image ...).
# Same pins as the local environment: requirements.lock, Python 3.10. Without a registry to pull
# python:3.10-slim from: docker/build-debootstrap.sh (README, "Kubeflow").
FROM python:3.10-slim

# TF_USE_LEGACY_KERAS=0 before anything imports TensorFlow: the KFP entry point imports
# tf.Transform (which sets it to 1) before this project's modules can.
ENV PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_USE_LEGACY_KERAS=0 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A compiler for the few locked packages that ship only as source (e.g. crcmod's C extension).
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock .
# Fully pinned: pip installs without resolving.
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
