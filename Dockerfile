# Container image for Kubeflow runs (pipeline/kubeflow_runner.py --image ...).
# Same pins as the local environment: requirements.lock, Python 3.10.
FROM python:3.10-slim

ENV PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
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
