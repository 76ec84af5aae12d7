# Container image for Kubeflow runs (pipeline/kubeflow_runner.py --image ...), from the same lock
# as the local environment. The current stack by default (TFX 1.21, Python 3.12, Debian 13):
#
#   docker build -t fer-pipeline .
#   docker build --build-arg LOCK=current-gpu -t fer-pipeline:gpu .        # with CUDA libraries
#   docker build --build-arg LOCK=legacy --build-arg PYTHON_IMAGE=python:3.10-slim-bookworm \
#       -t fer-pipeline:legacy .                                            # TFX 1.16, Python 3.10
#
# The GPU image needs the host's NVIDIA driver (the NVIDIA container toolkit) to see a GPU.
# Without a registry to pull the Python image from: docker/build-debootstrap.sh (docs/development.md).
ARG PYTHON_IMAGE=python:3.12-slim-trixie
FROM ${PYTHON_IMAGE}
ARG LOCK=current

# TF_USE_LEGACY_KERAS=0 before anything imports TensorFlow: the KFP entry point imports
# tf.Transform (which sets it to 1) before this project's modules can.
ENV PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_USE_LEGACY_KERAS=0 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A compiler for the few locked packages that ship only as source (pyfarmhash, crcmod).
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements/${LOCK}.lock requirements.lock
# Fully pinned: pip installs without resolving.
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && python -c "import tfx, tensorflow as tf; print('tfx', tfx.__version__, 'tf', tf.__version__)"
