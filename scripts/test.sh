#!/usr/bin/env bash
# The project's test command (`make test`): builds the binaries the end-to-end tests
# start, then runs every test. When DATABASE_URL is unset it starts a throwaway
# PostgreSQL cluster under target/ and removes it afterwards.
#
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh -p tasker-shared`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  pg_dir=target/tasker-test-pg
  DATABASE_URL=$(scripts/pg-ephemeral.sh start "$pg_dir")
  export DATABASE_URL
  trap 'scripts/pg-ephemeral.sh stop "$pg_dir"' EXIT
  echo "test: started a throwaway PostgreSQL at $DATABASE_URL" >&2
fi

cargo build --bins
cargo test --all-features "$@"
