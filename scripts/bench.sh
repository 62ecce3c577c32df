#!/usr/bin/env bash
# The benchmark harness (docs/benchmarks.md): a release build, a durable throwaway
# PostgreSQL (unless DATABASE_URL is set), real tasker-server and tasker-worker
# processes, and a markdown table on stdout (JSON under target/bench/).
#
# Knobs: BENCH_RUNS (200), BENCH_THROUGHPUT_SECONDS (20), BENCH_HISTORY_TASKS (100000).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  pg_dir=target/tasker-bench-pg
  DATABASE_URL=$(TASKER_PG_DURABLE=1 scripts/pg-ephemeral.sh start "$pg_dir")
  export DATABASE_URL
  trap 'scripts/pg-ephemeral.sh stop "$pg_dir"' EXIT
  echo "bench: started a throwaway PostgreSQL (durable settings) at $DATABASE_URL" >&2
fi

cargo build --release --bins
# The Ruby phase needs the gem's extension (release build); it is skipped without Ruby.
if ruby -rrbconfig -e 'exit(File.exist?(File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby.h")))' 2>/dev/null; then
  rake -f workers/ruby/Rakefile compile >&2
else
  echo "bench: no Ruby headers; the Ruby phase will be skipped" >&2
fi
target/release/tasker-bench "$@"
