# emodrift API images.
#   CPU (default, the last stage):  docker build -t emodrift:0.1.0 .
#   GPU (CUDA execution provider):  docker build --target gpu -t emodrift:0.1.0-gpu .
# Runtime images hold a virtualenv with the service's runtime dependencies only (`pip install .`:
# onnxruntime, no torch; at the versions constraints.txt pins) and the committed model repository; they
# run as an unprivileged user.
# tests/test_deploy.py lints this file with hadolint and checks every COPY source exists.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# onnxruntime-gpu 1.20+ is built against CUDA 12 and cuDNN 9
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- build: a virtualenv with emodrift and its runtime dependencies ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
# only the service package: model/ and export/ (torch, training) are not part of the runtime
COPY service ./service
RUN pip install --no-cache-dir -c constraints.txt .

# ---- gpu-build: the same virtualenv on the CUDA base's own Python, with onnxruntime-gpu ----------------
FROM ${CUDA_IMAGE} AS gpu-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY service ./service
# Both wheels install the same `onnxruntime` module: removing the CPU wheel after the GPU one would
# delete shared files, so the GPU wheel is reinstalled over what is left, at constraints.txt's pin.
RUN pip install --no-cache-dir -c constraints.txt . \
 && pip uninstall -y onnxruntime \
 && pip install --no-cache-dir --force-reinstall --no-deps -c constraints.txt onnxruntime-gpu

# ---- gpu: CUDA + cuDNN runtime, onnxruntime-gpu; EMODRIFT_PROVIDER=auto picks CUDA when a GPU is visible
FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin emodrift \
 && mkdir -p /app/data \
 && chown emodrift /app/data
COPY --from=gpu-build /opt/venv /opt/venv
COPY model_repository /app/model_repository
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    EMODRIFT_MODEL_REPOSITORY=/app/model_repository EMODRIFT_DATA_DIR=/app/data EMODRIFT_PROVIDER=auto
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["emodrift", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"]

# ---- runtime (default): python slim + the virtualenv + the model repository ------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin emodrift \
 && mkdir -p /app/data \
 && chown emodrift /app/data
COPY --from=build /opt/venv /opt/venv
COPY model_repository /app/model_repository
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    EMODRIFT_MODEL_REPOSITORY=/app/model_repository EMODRIFT_DATA_DIR=/app/data
WORKDIR /app
USER 10001
EXPOSE 8000
# ready = models loaded and Redis reachable (/readyz); compose waits on it before starting Prometheus
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["emodrift", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
