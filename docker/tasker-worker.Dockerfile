# tasker-worker: the native Rust worker with the example handlers. Build from the
# repository root:
#   docker build -f docker/tasker-worker.Dockerfile -t tasker-worker .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tasker-worker-rust --bin tasker-worker \
    && install -m 0755 target/release/tasker-worker /usr/local/bin/tasker-worker

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tasker
WORKDIR /app
COPY --from=build /usr/local/bin/tasker-worker /usr/local/bin/tasker-worker
COPY config/tasker /app/config/tasker
COPY config/tasks /app/config/tasks
ENV TASKER_ENV=production \
    TASKER_CONFIG_DIR=/app/config/tasker \
    TASKER_TEMPLATE_PATH=/app/config/tasks \
    TASKER__WORKER__HEALTH_PORT=9090
USER tasker
EXPOSE 9090
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD curl -fsS http://127.0.0.1:9090/health/ready || exit 1
ENTRYPOINT ["tasker-worker"]
