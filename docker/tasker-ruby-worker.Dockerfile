# tasker-ruby-worker: a worker whose handlers are Ruby classes (the tasker_core gem with
# its native extension) running the examples in workers/ruby/app. Build from the
# repository root:
#   docker build -f docker/tasker-ruby-worker.Dockerfile -t tasker-ruby-worker .
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends ruby ruby-dev libclang-dev rake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rake -f workers/ruby/Rakefile compile

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl ruby \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tasker
WORKDIR /app
COPY --from=build /src/workers/ruby/lib /app/lib
COPY --from=build /src/workers/ruby/bin /app/bin
COPY --from=build /src/workers/ruby/app /app/app
COPY config/tasker /app/config/tasker
ENV TASKER_ENV=production \
    TASKER_CONFIG_DIR=/app/config/tasker \
    TASKER__WORKER__HEALTH_PORT=9090
USER tasker
EXPOSE 9090
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
    CMD curl -fsS http://127.0.0.1:9090/health/ready || exit 1
ENTRYPOINT ["ruby", "-I", "/app/lib", "/app/bin/tasker-ruby-worker", \
            "--templates", "/app/app/tasker/tasks/templates", \
            "--require", "/app/app/tasker/handlers.rb"]
