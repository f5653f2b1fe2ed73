# syntax=docker/dockerfile:1
# Build: docker build -t actions-gateway .   Run: docker run -p 8080:8080 -v gw-data:/data actions-gateway

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md openapi.yaml ./
COPY gateway ./gateway
COPY runtime ./runtime
COPY actions ./actions
COPY writeback ./writeback
# The package data link gateway/openapi.yaml -> ../openapi.yaml is resolved into the wheel.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# libseccomp is what the script workers confine themselves with (docs/decisions/0001).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libseccomp2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home gateway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gateway
WORKDIR /data
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
EXPOSE 8080
VOLUME ["/data"]
# The probe asks the port the gateway was configured with (`-e GATEWAY_PORT=...` moves both).
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${GATEWAY_PORT:-8080}/healthz', timeout=2)" || exit 1
ENTRYPOINT ["gateway"]
CMD ["serve"]
