# tasker-server: orchestration + REST API, built without the `dev` feature (no worker
# crate linked). Build from the repository root:
#   docker build -f docker/tasker-server.Dockerfile -t tasker-server .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tasker-server --no-default-features --bin tasker-server \
    && install -m 0755 target/release/tasker-server /usr/local/bin/tasker-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tasker
WORKDIR /app
COPY --from=build /usr/local/bin/tasker-server /usr/local/bin/tasker-server
COPY config/tasker /app/config/tasker
ENV TASKER_ENV=production \
    TASKER_CONFIG_DIR=/app/config/tasker
USER tasker
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["tasker-server"]
CMD ["serve"]
