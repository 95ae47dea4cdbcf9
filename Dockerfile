# emodrift API image: CPU inference by default; build with --build-arg EXTRA=gpu for onnxruntime-gpu.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY service ./service
COPY model ./model
COPY export ./export
COPY model_repository ./model_repository
ARG EXTRA=""
RUN pip install --no-cache-dir ".${EXTRA:+[$EXTRA]}" \
 && if [ "$EXTRA" = "gpu" ]; then pip uninstall -y onnxruntime \
      && pip install --no-cache-dir --force-reinstall --no-deps onnxruntime-gpu; fi

RUN useradd --create-home --uid 10001 emodrift && mkdir -p /app/data && chown emodrift /app/data
USER emodrift
ENV EMODRIFT_MODEL_REPOSITORY=/app/model_repository EMODRIFT_DATA_DIR=/app/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status==200 else 1)"
CMD ["emodrift", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
